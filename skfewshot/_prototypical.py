"""Prototypical few-shot classifier."""

import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._distances import check_distance, class_means, pairwise_distance
from ._torch_utils import check_device, embed, frozen_copy
from ._validation import validate_X


class PrototypicalClassifier(ClassifierMixin, BaseEstimator):
    """Few-shot classifier by distance to class prototypes (Snell et al. 2017).

    ``fit`` embeds the support set with a fixed (e.g. meta-trained) encoder
    and stores each class's mean embedding, its prototype; no weight
    changes. A query is labelled by its nearest prototype, and its class
    probabilities are the softmax over negative distances.

    Parameters
    ----------
    encoder : torch.nn.Module or None, default=None
        Maps a batch of samples to (n, d) embeddings, e.g. the ``encoder_``
        of a :class:`~skfewshot.meta.ProtoNetLearner`. It is copied at fit
        and used in evaluation mode; its weights never change. With None
        the samples are used as they are (feature vectors or precomputed
        embeddings), and the model is the nearest-centroid classifier.
    distance : {"sqeuclidean", "euclidean", "cosine"}, default="sqeuclidean"
        Distance between an embedding and a prototype.
    device : str or torch.device, default="cpu"
        Where the encoder runs.
    batch_size : int, default=256
        Samples embedded at once.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The support set's class labels.
    prototypes_ : ndarray of shape (n_classes, n_embedding)
        Mean embedding of each class.
    encoder_ : torch.nn.Module or None
        The evaluation-mode copy of ``encoder`` in use.
    n_features_in_ : int
        Number of features (for images, channels) seen during fit.

    See Also
    --------
    EmbeddingTransformer : Embed a data set once, then fit this classifier
        (``encoder=None``) on the embeddings of many episodes.
    sklearn.neighbors.NearestCentroid : The same rule without an encoder or
        probabilities.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot import PrototypicalClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = PrototypicalClassifier().fit(X[:50], y[:50])
    >>> clf.predict(X[50:53])
    array([2, 3, 4])
    """

    def __init__(self, encoder=None, *, distance="sqeuclidean", device="cpu", batch_size=256):
        self.encoder = encoder
        self.distance = distance
        self.device = device
        self.batch_size = batch_size

    def fit(self, X, y):
        """Store the class prototypes of the support set.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Support samples, in the shape the encoder takes.
        y : array-like of shape (n_samples,)
            Support labels; at least two classes.

        Returns
        -------
        self : PrototypicalClassifier
            The fitted classifier.
        """
        owner = type(self).__name__
        X, y = validate_X(self, X, y, reset=True)
        if y.dtype.kind not in "iub":  # integer and boolean labels are always classes
            check_classification_targets(y)
        check_distance(self.distance, owner=owner)
        self._device = check_device(self.device, owner=owner)
        encoder = self.encoder
        self.encoder_ = None if encoder is None else frozen_copy(encoder, self._device)
        label_encoder = LabelEncoder()
        y_ind = label_encoder.fit_transform(y)
        self.classes_ = label_encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"{owner}: the support set has only 1 class ({self.classes_[0]!r}); "
                "a few-shot task needs at least 2 classes."
            )
        z = self._embed(X)
        labels = torch.as_tensor(y_ind, device=z.device)
        self.prototypes_ = class_means(z, labels, len(self.classes_)).cpu().numpy()
        return self

    def _embed(self, X):
        return embed(self.encoder_, X, device=self._device, batch_size=self.batch_size,
                     owner=type(self).__name__)

    def _logits(self, X):
        """Negative distances of ``X`` to each prototype, (n_samples, n_classes)."""
        check_is_fitted(self)
        X = validate_X(self, X, reset=False)
        z = self._embed(X)
        protos = torch.as_tensor(self.prototypes_, device=z.device, dtype=z.dtype)
        return -pairwise_distance(z, protos, self.distance)

    def decision_function(self, X):
        """Negative distance of each sample to each class prototype.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Query samples.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes), or (n_samples,) for two classes
            With two classes, the score of the second class relative to the
            first (positive means ``classes_[1]``), as scikit-learn expects.
        """
        logits = self._logits(X).cpu().numpy()
        if logits.shape[1] == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    def predict_proba(self, X):
        """Class probabilities: softmax over negative distances.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Query samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``.
        """
        return torch.softmax(self._logits(X), dim=1).cpu().numpy()

    def predict(self, X):
        """Label of the nearest prototype.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Query samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        indices = self._logits(X).argmax(1).cpu().numpy()
        return self.classes_[indices]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = self.encoder is not None
        return tags
