"""Relation Networks few-shot classifier."""

import torch

from ._base import ComparatorClassifier


class RelationClassifier(ComparatorClassifier):
    """Few-shot classifier by learned relation scores (Sung et al. 2018).

    ``fit`` embeds the support set with a fixed (e.g. meta-trained) encoder
    and stores the embeddings; no weight changes. A query is scored against
    each class by a meta-trained relation module
    (:class:`~skfewshot.nn.RelationModule`), which compares the query's
    feature map with the class's aggregated support maps, and is labelled by
    the class of highest relation score. Any number of classes and shots
    works; note that the paper's class map is the *sum* of the support maps,
    whose scale follows the number of shots (see ``aggregation`` of
    :class:`~skfewshot.nn.RelationModule`).

    Parameters
    ----------
    encoder : torch.nn.Module or None, default=None
        Maps a batch of samples to feature maps (n, c, h, w) or vectors
        (n, d), e.g. the ``encoder_`` of a
        :class:`~skfewshot.meta.RelationLearner`. It is copied at fit and
        used in evaluation mode; its weights never change. With None the
        samples (n, d) are the embeddings, taken as 1x1 maps. For
        precomputed feature maps, pass ``encoder=torch.nn.Identity()`` on
        maps (n, c, h, w) (n-D samples need an encoder), or
        ``encoder=torch.nn.Unflatten(1, (c, h, w))`` on the flattened maps
        of :class:`~skfewshot.EmbeddingTransformer`.
    comparator : torch.nn.Module, default=None
        The meta-trained relation module, e.g. the ``comparator_`` of a
        :class:`~skfewshot.meta.RelationLearner` (which
        ``learner.to_classifier()`` passes). Required: an untrained relation
        module scores at random, so there is no meaningful default and
        ``fit`` raises a TypeError without one. It is copied at fit and used
        in evaluation mode; its ``embedding_dim`` must match the embeddings'
        channels.
    device : str or torch.device, default="cpu"
        Where the encoder and the relation module run.
    batch_size : int, default=256
        Samples embedded at once, and queries scored at once (each against
        every class: ``batch_size * n_classes`` pairs in memory).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The support set's class labels.
    encoder_ : torch.nn.Module or None
        The evaluation-mode copy of ``encoder`` in use.
    comparator_ : torch.nn.Module
        The evaluation-mode copy of ``comparator`` in use.
    support_ : torch.Tensor
        Embeddings of the support set.
    support_labels_ : torch.Tensor
        Their class indices into ``classes_``.
    n_features_in_ : int
        Number of features (for images, channels) seen during fit.

    Notes
    -----
    ``decision_function`` returns the relation scores, in [0, 1] (with two
    classes, the log-ratio of the second class's score to the first's).
    ``predict_proba`` returns them divided by their sum over the classes
    (uniform where all are 0). Relation scores are regressed on one-hot
    targets, not calibrated: these "probabilities" rank the classes like
    the scores do but are not calibrated probabilities.

    See Also
    --------
    skfewshot.meta.RelationLearner : Meta-trains the encoder and the
        relation module; its ``to_classifier()`` returns this classifier.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot.meta import RelationLearner
    >>> from skfewshot.nn import MLP
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> learner = RelationLearner(MLP, encoder__out_features=16,
    ...                              comparator__embedding_dim=16, n_way=5, n_shot=1,
    ...                              max_epochs=1, episodes_per_epoch=20,
    ...                              verbose=0, random_state=0).fit(X[y < 6], y[y < 6])
    >>> clf = learner.to_classifier().fit(X[y >= 6][:20], y[y >= 6][:20])
    >>> clf.predict_proba(X[y >= 6][20:22]).shape
    (2, 4)
    """

    def _default_comparator(self):
        raise TypeError(
            f"{type(self).__name__} needs a meta-trained relation module: pass "
            "comparator=learner.comparator_ of a fitted RelationLearner, or build the "
            "classifier with learner.to_classifier(). An untrained RelationModule would "
            "score at random."
        )

    def _proba(self, scores):
        """Relation scores normalised to sum to 1 over the classes (uniform if all are 0)."""
        total = scores.sum(1, keepdim=True)
        uniform = torch.full_like(scores, 1.0 / scores.shape[1])
        return torch.where(
            total > 0, scores / total.clamp_min(torch.finfo(scores.dtype).tiny), uniform
        )

    def _log_proba(self, scores):
        return self._proba(scores).clamp_min(torch.finfo(scores.dtype).tiny).log()


__all__ = ["RelationClassifier"]
