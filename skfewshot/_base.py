"""The bases of the few-shot classifiers: what a new method extends.

* :class:`FewShotClassifier`: validation, labels, ``predict`` /
  ``predict_proba`` / ``decision_function`` from a method's class scores.
* :class:`EmbeddingClassifier`: embed with a frozen encoder, then compare
  the query embeddings with the support embeddings.
* :class:`ComparatorClassifier`: the comparison is a torch module (a
  *comparator*), e.g. the one a :class:`~skfewshot.base.ComparatorLearner`
  meta-trained.
* :class:`GradientClassifier`: adapt a copy of a network to the support set
  by an update rule (the MAML family).
"""

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._lazy import LazySamples
from ._param_validation import Integer
from ._torch_utils import as_tensor, embed, encoder_errors, frozen_copy, non_finite_rows
from ._validation import (
    Device,
    check_embedding_dim,
    check_labels,
    check_params,
    module_or_none,
    validate_X,
)
from .nn._adaptation import ADAPTATION_CONSTRAINTS, GradientAdaptation


def _batches(X, classifier):
    """The indices of ``X`` in batches of the classifier's ``batch_size``."""
    n, size = len(X), classifier.batch_size
    return [np.arange(start, min(start + size, n)) for start in range(0, n, size)]


class FewShotClassifier(ClassifierMixin, BaseEstimator):
    """Base class of the few-shot classifiers.

    ``fit(X, y)`` takes the support set: it validates the data and the
    parameters (against ``_parameter_constraints``), encodes the labels
    into ``classes_``, copies ``encoder`` in evaluation mode (its weights
    never change) and hands the samples to :meth:`_fit_support`.
    ``predict``, ``predict_proba`` and ``decision_function`` validate the
    queries and score them with :meth:`_scores`. Labels that name no class
    (NaN, None, infinite) are refused at fit, and a query whose class scores
    are not finite (NaN, or an overflow: e.g. a sample far out of the scale
    the encoder was trained on) raises a ValueError naming the cause, rather
    than being predicted as ``classes_[0]``.

    A subclass stores its parameters in ``__init__`` (at least ``encoder``,
    ``device`` and ``batch_size``), declares their constraints in
    ``_parameter_constraints`` and implements :meth:`_fit_support` and
    :meth:`_scores`; it may override :meth:`_proba` and :meth:`_log_proba`.
    """

    _parameter_constraints = {
        "encoder": module_or_none("encoder"),
        "device": Device(),
        "batch_size": Integer(1),
    }

    def _fit_support(self, X, labels, n_classes):
        """Store what scoring needs from the support samples ``X`` (a CPU tensor) and
        their class indices ``labels`` into ``classes_`` (on the device)."""
        raise NotImplementedError

    def _scores(self, X):
        """Class scores (n_query, n_classes) of query samples ``X`` (a CPU tensor)."""
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
            Support labels; at least two classes. NaN, None and infinite
            labels are refused.

        Returns
        -------
        self : object
            The fitted classifier.
        """
        owner = type(self).__name__
        X, y = validate_X(self, X, y, reset=True)
        check_labels(y, owner=owner)
        if y.dtype.kind not in "iub":  # integer and boolean labels are always classes
            check_classification_targets(y)
        self._device = check_params(self)["device"]
        self.encoder_ = None if self.encoder is None else frozen_copy(self.encoder, self._device)
        label_encoder = LabelEncoder()
        y_ind = label_encoder.fit_transform(y)
        self.classes_ = label_encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"{owner}: the support set has only 1 class ({self.classes_[0]!r}); "
                "a few-shot task needs at least 2 classes."
            )
        labels = torch.as_tensor(y_ind, device=self._device)
        self._fit_support(as_tensor(X, "cpu"), labels, len(self.classes_))
        return self

    def _query_scores(self, X):
        check_is_fitted(self)
        # Lazy queries (a memory-map, an image folder, ...) are read batch_size at a time,
        # never whole; transductive scoring needs them all together.
        X = validate_X(self, X, reset=False, lazy=not getattr(self, "transductive", False))
        if isinstance(X, LazySamples):
            scores = self._lazy_scores(X)
        else:
            X = as_tensor(X, "cpu")
            scores = self._scores(X)
        bad = non_finite_rows(scores)  # an error, never a silent classes_[0]
        if bad.any():
            bad = bad.cpu()
            rows = X._tensor_rows(bad.numpy()) if isinstance(X, LazySamples) else X[bad]
            raise ValueError(
                f"{type(self).__name__}: the class scores of {int(bad.sum())} of the "
                f"{len(bad)} query samples are not finite (NaN or infinite; the first at "
                f"index {int(bad.nonzero()[0, 0])}), so no class can be predicted for them. "
                + self._non_finite_cause(rows)
            )
        return scores

    def _lazy_scores(self, X):
        """Class scores of lazy query samples ``X``, read and scored ``batch_size`` at a time
        (the batches in which :meth:`_scores` scores an array)."""
        return torch.cat([self._scores(X._tensor_rows(batch)) for batch in _batches(X, self)])

    def _non_finite_cause(self, X):
        """What to check when the class scores of the query samples ``X`` are not finite."""
        largest = float(X.abs().max()) if X.numel() else 0.0
        return (
            f"The largest absolute value in those samples is {largest:.3g}: scale X (e.g. to "
            "[0, 1], or to zero mean and unit variance) and check the weights of the "
            "encoder (e.g. a meta-training that diverged)."
        )

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

        Raises
        ------
        ValueError
            If the class scores of a query are not finite (NaN, or infinite
            for a class, or minus infinity for every class): no class can
            be predicted for it. The error names the number of such queries
            and the likely cause (the scale of X, non-finite embeddings, a
            diverged adaptation).
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

        Raises
        ------
        ValueError
            If the class scores of a query are not finite (NaN, or infinite
            for a class, or minus infinity for every class): no class can
            be predicted for it. The error names the number of such queries
            and the likely cause (the scale of X, non-finite embeddings, a
            diverged adaptation).
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

        Raises
        ------
        ValueError
            If the class scores of a query are not finite (NaN, or infinite
            for a class, or minus infinity for every class): no class can
            be predicted for it. The error names the number of such queries
            and the likely cause (the scale of X, non-finite embeddings, a
            diverged adaptation).
        """
        indices = self._query_scores(X).argmax(1).cpu().numpy()
        return self.classes_[indices]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = self.encoder is not None
        return tags


class EmbeddingClassifier(FewShotClassifier):
    """Base class of the classifiers that embed, then compare embeddings.

    The support set and the queries are embedded by the frozen copy of
    ``encoder`` (in batches of ``batch_size``, in inference mode, each
    sample independently of the others); with ``encoder=None`` the samples
    are the embeddings. A subclass implements :meth:`_fit_embeddings` and
    :meth:`_score_embeddings`.
    """

    def _fit_embeddings(self, support, labels, n_classes):
        """Store what scoring needs from the support embeddings and labels."""
        raise NotImplementedError

    def _score_embeddings(self, query):
        """Class scores (n_query, n_classes) of query embeddings, as a tensor."""
        raise NotImplementedError

    def _embed(self, X):
        return embed(
            self.encoder_,
            X,
            device=self._device,
            batch_size=self.batch_size,
            owner=type(self).__name__,
        )

    def _fit_support(self, X, labels, n_classes):
        self._fit_embeddings(self._embed(X), labels, n_classes)

    def _lazy_scores(self, X):
        # Embedded batch_size at a time, as _embed embeds an array, then scored together.
        embeddings = [self._embed(X._tensor_rows(batch)) for batch in _batches(X, self)]
        return self._score_embeddings(torch.cat(embeddings))

    def _scores(self, X):
        return self._score_embeddings(self._embed(X))

    def _non_finite_cause(self, X):
        cause = super()._non_finite_cause(X)
        if self.encoder_ is None:
            return cause
        embeddings = self._embed(X).flatten(1)
        n_bad = int((~torch.isfinite(embeddings)).any(1).sum())
        if n_bad:
            return f"The encoder produced non-finite embeddings for {n_bad} of them. {cause}"
        return (
            "Their embeddings are finite, but scoring them against the support set "
            f"overflowed. {cause}"
        )


class ComparatorClassifier(EmbeddingClassifier):
    """Base class of the classifiers that score queries with a comparator module.

    ``fit`` stores the support embeddings and labels and an evaluation-mode
    copy of ``comparator`` (by default :meth:`_default_comparator`, built
    in the embeddings' dtype), which computes in the dtype of its tensors;
    the queries are scored
    ``comparator(support, support_labels, query)`` in batches of
    ``batch_size``, each query independently of the others. A comparator
    that declares an ``embedding_dim`` is checked against the support
    embeddings at fit. A new method needs only :meth:`_default_comparator`
    (and a docstring); see "Write your own method" in the user guide.

    Parameters
    ----------
    encoder : torch.nn.Module or None, default=None
        Maps a batch of samples to embeddings, e.g. a meta-learner's
        ``encoder_``. Copied at fit and used in evaluation mode; with None
        the samples are the embeddings.
    comparator : torch.nn.Module or None, default=None
        Maps ``(support, support_labels, query)`` embeddings to class scores,
        e.g. a meta-learner's ``comparator_``. Copied at fit and used in
        evaluation mode. None: :meth:`_default_comparator`.
    device : str or torch.device, default="cpu"
        Where the encoder and the comparator run.
    batch_size : int, default=256
        Samples embedded, and queries scored, at once.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The support set's class labels.
    encoder_ : torch.nn.Module or None
        The evaluation-mode copy of ``encoder`` in use.
    comparator_ : torch.nn.Module
        The evaluation-mode copy of the comparator in use.
    support_ : torch.Tensor
        Embeddings of the support set.
    support_labels_ : torch.Tensor
        Their class indices into ``classes_``.
    n_features_in_ : int
        Number of features (for images, channels) seen during fit.
    """

    _parameter_constraints = {
        **FewShotClassifier._parameter_constraints,
        "comparator": module_or_none("comparator"),
    }

    def __init__(self, encoder=None, comparator=None, *, device="cpu", batch_size=256):
        self.encoder = encoder
        self.comparator = comparator
        self.device = device
        self.batch_size = batch_size

    def _default_comparator(self):
        """The comparator used when ``comparator=None``."""
        raise TypeError(f"{type(self).__name__} needs a comparator module.")

    def _fit_embeddings(self, support, labels, n_classes):
        comparator = self.comparator
        if comparator is None:  # built in the embeddings' dtype (float64 features stay float64)
            comparator = self._default_comparator().to(support.dtype)
        check_embedding_dim(
            comparator,
            support,
            owner=type(self).__name__,
            parameter="the comparator's embedding_dim",
            source="X holds" if self.encoder is None else "the encoder gives",
        )
        self.comparator_ = frozen_copy(comparator, self._device)
        # The comparator computes in the dtype of its tensors (the embeddings' without any).
        tensors = [*self.comparator_.parameters(), *self.comparator_.buffers()]
        dtypes = [t.dtype for t in tensors if t.is_floating_point()]
        self.support_ = support.to(dtypes[0] if dtypes else support.dtype)
        self.support_labels_ = labels

    def _compare(self, support, support_labels, query):
        """Class scores of a batch of query embeddings: the comparator's output."""
        return self.comparator_(support, support_labels, query)

    def _score_embeddings(self, query):
        query = query.to(self.support_.dtype)
        with torch.inference_mode():
            return torch.cat(
                [
                    self._compare(
                        self.support_, self.support_labels_, query[start : start + self.batch_size]
                    )
                    for start in range(0, len(query), self.batch_size)
                ]
            )


class GradientClassifier(FewShotClassifier):
    """Base class of the classifiers that adapt weights to the support set.

    ``fit`` copies ``encoder`` (the meta-learned weights are never
    changed), puts a linear head sized to the support set's classes on it
    and adapts the copy to the support set with ``inner_steps`` updates of an
    update rule (:class:`~skfewshot.nn.GradientAdaptation`, first order:
    no meta-gradient is needed here). ``predict``, ``predict_proba`` and
    ``decision_function`` use the adapted weights. Batch-norm layers
    normalise with the support set's statistics, so each query is scored
    independently of the others, unless ``transductive=True``. With
    ``encoder=None`` the samples are the embeddings and only the head is
    trained (a logistic regression by ``inner_steps`` gradient steps).

    A subclass stores ``encoder``, ``inner_steps``, ``head_init``,
    ``transductive``, ``device`` and ``batch_size`` and implements
    :meth:`_rule`; it may set ``_adapt = "head"`` (adapt the head only) and
    override :meth:`_lr_scale`.

    Attributes
    ----------
    model_ : skfewshot.nn.GradientAdaptation
        The frozen copies of the encoder and the rule.
    adapted_ : dict of str to torch.Tensor
        The adapted tensors: ``"head.weight"``, ``"head.bias"`` and, when the
        encoder is adapted, ``"encoder.<name>"``.
    support_ : torch.Tensor
        The support samples.
    statistics_ : dict
        The support set's batch-norm statistics under the adapted weights,
        which normalise the queries (empty without batch norm).
    """

    _parameter_constraints = {
        **FewShotClassifier._parameter_constraints,
        **{
            name: ADAPTATION_CONSTRAINTS[name]
            for name in ("inner_steps", "head_init", "transductive")
        },
    }

    #: What is adapted: "all" (encoder and head) or "head".
    _adapt = "all"

    def _rule(self):
        """The update rule (a torch module) the adaptation uses."""
        raise NotImplementedError

    def _lr_scale(self):
        """Multiplier of the rule's step sizes."""
        return 1.0

    def _fit_support(self, X, labels, n_classes):
        X = X.to(self._device)
        encoder = nn.Identity() if self.encoder_ is None else self.encoder_
        model = GradientAdaptation(
            encoder,
            self._rule(),
            inner_steps=self.inner_steps,
            first_order=True,
            adapt=self._adapt,
            head_init=self.head_init,
            transductive=self.transductive,
        )
        # Without an encoder the samples may be float64: the rule follows their dtype.
        model = model.to(self._device, X.dtype).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.model_ = model
        self.support_ = X
        with torch.enable_grad(), self._errors(X):
            params = model.adapt_to(X, labels, scale=self._lr_scale())
        self.adapted_ = {name: p.detach() for name, p in params.items()}
        # The support set's batch-norm statistics, computed once for every query batch.
        with torch.no_grad():
            self.statistics_ = model.support_statistics(self.adapted_, X)

    def _non_finite_cause(self, X):
        if all(bool(torch.isfinite(p).all()) for p in self.adapted_.values()):
            return super()._non_finite_cause(X)
        rate = f"inner_lr={self.inner_lr!r}" if hasattr(self, "inner_lr") else "the rule's steps"
        return (
            "The adaptation to the support set diverged: its adapted weights are not "
            f"finite. Lower {rate} or inner_steps={self.inner_steps!r}, or scale X (e.g. "
            "to [0, 1])."
        )

    def _errors(self, batch):
        return encoder_errors(self.model_.encoder, batch.shape, owner=type(self).__name__)

    def _scores(self, X):
        query = X.to(self._device, self.support_.dtype)  # the dtype the model was adapted in
        with torch.no_grad(), self._errors(query):
            if self.transductive:
                return self.model_.query_logits(self.adapted_, self.support_, query)
            return torch.cat(
                [
                    self.model_.query_logits(
                        self.adapted_,
                        self.support_,
                        query[start : start + self.batch_size],
                        statistics=self.statistics_,
                    )
                    for start in range(0, len(query), self.batch_size)
                ]
            )
