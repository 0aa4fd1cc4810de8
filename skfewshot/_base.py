"""The common machinery of the few-shot classifiers."""

import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._params import check_integer
from ._torch_utils import check_device, embed, frozen_copy
from ._validation import validate_X


class FewShotClassifier(ClassifierMixin, BaseEstimator):
    """Base class of the few-shot classifiers.

    ``fit`` takes the support set: it embeds it with an evaluation-mode copy
    of ``encoder`` (never changing its weights) and hands the embeddings to
    :meth:`_fit_support`. ``predict``, ``predict_proba`` and
    ``decision_function`` embed the queries the same way and score them with
    :meth:`_scores`; queries are scored independently of one another. With
    ``encoder=None`` the samples are the embeddings (feature vectors, or
    whatever the method compares).

    Subclasses set the parameters ``encoder``, ``device`` and ``batch_size``
    and implement :meth:`_fit_support` and :meth:`_scores`; they may
    override :meth:`_check_params` and :meth:`_proba`.
    """

    def _check_params(self):
        """Validate the method's own parameters (called first in ``fit``)."""

    def _fit_support(self, support, labels, n_classes):
        """Store what scoring needs from the support embeddings and labels."""
        raise NotImplementedError

    def _scores(self, query):
        """Class scores (n_query, n_classes) of query embeddings, as a tensor."""
        raise NotImplementedError

    def _proba(self, scores):
        """Class probabilities from scores; a softmax unless overridden."""
        return torch.softmax(scores, dim=1)

    def _log_proba(self, scores):
        """Log class probabilities from scores; override together with :meth:`_proba`."""
        return torch.log_softmax(scores, dim=1)

    def fit(self, X, y):
        """Fit on the support set; the encoder's weights do not change.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Support samples, in the shape the encoder takes (embeddings when
            ``encoder=None``).
        y : array-like of shape (n_samples,)
            Support labels; at least two classes.

        Returns
        -------
        self : object
            The fitted classifier.
        """
        owner = type(self).__name__
        X, y = validate_X(self, X, y, reset=True)
        if y.dtype.kind not in "iub":  # integer and boolean labels are always classes
            check_classification_targets(y)
        check_integer(self.batch_size, "batch_size", owner=owner)
        self._check_params()
        self._device = check_device(self.device, owner=owner)
        self.encoder_ = None if self.encoder is None else frozen_copy(self.encoder, self._device)
        label_encoder = LabelEncoder()
        y_ind = label_encoder.fit_transform(y)
        self.classes_ = label_encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"{owner}: the support set has only 1 class ({self.classes_[0]!r}); "
                "a few-shot task needs at least 2 classes."
            )
        z = self._embed(X)
        self._fit_support(z, torch.as_tensor(y_ind, device=z.device), len(self.classes_))
        return self

    def _embed(self, X):
        return embed(
            self.encoder_,
            X,
            device=self._device,
            batch_size=self.batch_size,
            owner=type(self).__name__,
        )

    def _query_scores(self, X):
        check_is_fitted(self)
        X = validate_X(self, X, reset=False)
        return self._scores(self._embed(X))

    def decision_function(self, X):
        """Class scores of the queries.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Query samples.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes), or (n_samples,) for two classes
            Higher means more likely. With two classes, the log-ratio
            ``log P(classes_[1]) - log P(classes_[0])`` of the probabilities
            (positive means ``classes_[1]``), as scikit-learn expects: it
            ranks queries like ``predict_proba(X)[:, 1]``. For softmax
            scores it is the difference of the two scores.
        """
        scores = self._query_scores(X)
        if scores.shape[1] == 2:
            log_proba = self._log_proba(scores)
            return (log_proba[:, 1] - log_proba[:, 0]).cpu().numpy()
        return scores.cpu().numpy()

    def predict_proba(self, X):
        """Class probabilities of the queries.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Query samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``.
        """
        return self._proba(self._query_scores(X)).cpu().numpy()

    def predict(self, X):
        """Labels of the queries: the class of highest score.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Query samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        indices = self._query_scores(X).argmax(1).cpu().numpy()
        return self.classes_[indices]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = self.encoder is not None
        return tags


class ComparatorClassifier(FewShotClassifier):
    """Base class of the classifiers that score queries with a comparator module.

    ``fit`` stores the support embeddings and labels and an evaluation-mode
    copy of ``comparator`` (by default :meth:`_default_comparator`); the
    queries are scored ``comparator(support, support_labels, query)`` in
    batches of ``batch_size``, each query independently of the others.
    Subclasses set the parameters ``encoder``, ``comparator``, ``device`` and
    ``batch_size``.

    Attributes
    ----------
    comparator_ : torch.nn.Module
        The evaluation-mode copy of the comparator in use.
    support_ : torch.Tensor
        Embeddings of the support set.
    support_labels_ : torch.Tensor
        Their class indices into ``classes_``.
    """

    def _default_comparator(self):
        """The comparator used when ``comparator=None``."""
        raise TypeError(f"{type(self).__name__} needs a comparator module.")

    def _fit_support(self, support, labels, n_classes):
        comparator = self.comparator
        if comparator is None:
            comparator = self._default_comparator()
        self.comparator_ = self._configure_comparator(
            frozen_copy(comparator, self._device, name="comparator"), support
        )
        self.support_ = self._as_comparator_dtype(support)
        self.support_labels_ = labels

    def _configure_comparator(self, comparator, support):
        """Adjust the evaluation-mode copy of the comparator for this support set."""
        return comparator

    def _as_comparator_dtype(self, z):
        """Embeddings in the floating dtype of the comparator's weights (float32 without
        weights): e.g. float64 feature vectors, without an encoder, for a float32 module."""
        dtypes = [p.dtype for p in self.comparator_.parameters() if p.is_floating_point()]
        return z.to(dtypes[0] if dtypes else torch.float32)

    def _scores(self, query):
        query = self._as_comparator_dtype(query)
        with torch.inference_mode():
            return torch.cat(
                [
                    self.comparator_(
                        self.support_, self.support_labels_, query[start : start + self.batch_size]
                    )
                    for start in range(0, len(query), self.batch_size)
                ]
            )
