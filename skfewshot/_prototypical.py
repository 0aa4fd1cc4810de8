"""Prototypical few-shot classifier."""

import torch

from ._base import EmbeddingClassifier, FewShotClassifier
from ._param_validation import Options
from .nn._distances import DISTANCES, class_means, pairwise_distance


class PrototypicalClassifier(EmbeddingClassifier):
    """Few-shot classifier by distance to class prototypes (Snell et al. 2017).

    ``fit`` embeds the support set with a fixed (e.g. meta-trained) encoder
    and stores each class's mean embedding, its prototype; no weight
    changes. A query is labelled by its nearest prototype, and its class
    probabilities are the softmax over negative distances.

    Parameters
    ----------
    encoder : torch.nn.Module or None, default=None
        Maps a batch of samples to (n, d) embeddings, e.g. the ``encoder_``
        of a :class:`~skfewshot.meta.PrototypicalLearner`. It is copied at fit
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
    array([2, 2, 7])
    """

    _parameter_constraints = {
        **FewShotClassifier._parameter_constraints,
        "distance": Options(*DISTANCES),
    }

    def __init__(self, encoder=None, *, distance="sqeuclidean", device="cpu", batch_size=256):
        self.encoder = encoder
        self.distance = distance
        self.device = device
        self.batch_size = batch_size

    def _fit_embeddings(self, support, labels, n_classes):
        self.prototypes_ = class_means(support.flatten(1), labels, n_classes).cpu().numpy()

    def _score_embeddings(self, query):
        """Negative distances of the queries to each prototype."""
        query = query.flatten(1)
        prototypes = torch.as_tensor(self.prototypes_, device=query.device, dtype=query.dtype)
        return -pairwise_distance(query, prototypes, self.distance)
