"""The few-shot evaluation protocol: episodes, per-episode scores, mean and confidence interval."""

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import cross_validate
from torch.utils.data import Dataset

from .._lazy import DatasetSamples
from ..metrics import mean_confidence_interval
from ._split import EpisodicSplit


def _embedded_once(estimator, X):
    """``(estimator, X)`` with X embedded once, for an embed-then-compare classifier.

    The classifier embeds every sample on its own with a frozen copy of its
    encoder, so embedding the data set once and handing the embeddings to a
    copy of the classifier without the encoder gives the same scores, without
    re-embedding the samples of every episode.
    """
    from torch import nn

    from .._base import EmbeddingClassifier
    from .._embedding import EmbeddingTransformer

    if not isinstance(estimator, EmbeddingClassifier) or estimator.encoder is None:
        return estimator, X
    transformer = EmbeddingTransformer(
        estimator.encoder, device=estimator.device, batch_size=estimator.batch_size
    ).fit(X[:1])
    Z = transformer.transform(X)
    shape = transformer.embedding_shape_
    # Feature maps (e.g. for relation modules) are restored from their flattened form.
    encoder = None if len(shape) == 1 else nn.Unflatten(1, shape)
    return clone(estimator).set_params(encoder=encoder), Z


def evaluate_episodes(
    estimator,
    X,
    y,
    *,
    n_way=5,
    n_shot=1,
    n_query=15,
    n_episodes=600,
    random_state=None,
    return_support_score=False,
    embed_once=True,
    scoring=None,
):
    """Evaluate a few-shot classifier over N-way K-shot episodes, with a 95% interval.

    The standard protocol: each of ``n_episodes`` episodes draws ``n_way``
    classes of ``(X, y)`` (normally classes never seen in meta-training),
    fits a copy of ``estimator`` on ``n_shot`` samples of each and scores it
    on ``n_query`` others (:class:`EpisodicSplit` with
    :func:`~sklearn.model_selection.cross_validate`); the result is the
    mean of the episodes' scores and the half-width of its 95% confidence
    interval (:func:`~skfewshot.metrics.mean_confidence_interval`).

    Parameters
    ----------
    estimator : classifier
        A few-shot classifier (any scikit-learn classifier works).
    X : array-like, memory-map, ImageFolder or torch Dataset of shape (n_samples, ...)
        Samples, in the shape the estimator takes. Lazy samples are never
        read whole: embedded once in batches (``embed_once``), or read
        episode by episode (a torch Dataset is wrapped in
        :class:`~skfewshot.datasets.DatasetSamples` for that).
    y : array-like of shape (n_samples,)
        Their labels.
    n_way, n_shot, n_query : int, default=5, 1, 15
        The episodes (see :class:`EpisodicSplit`).
    n_episodes : int, default=600
        Number of episodes.
    random_state : int, RandomState instance or None, default=None
        Controls the episodes.
    return_support_score : bool, default=False
        Also score each fitted copy on its own support set (a failing
        adaptation, diverging or stalled, shows there first).
    embed_once : bool, default=True
        For an embed-then-compare classifier with an encoder
        (:class:`~skfewshot.base.EmbeddingClassifier`), embed ``X`` once and
        evaluate the classifier on the embeddings: the same scores, many
        times faster than embedding every episode's samples again.
    scoring : callable or None, default=None
        A scorer ``scoring(estimator, X_query, y_query)`` called on each
        episode's fitted copy (see :func:`~sklearn.model_selection.cross_validate`);
        None uses the estimator's ``score``, accuracy for a classifier. A
        scorer can also report progress, one call per episode.

    Returns
    -------
    result : dict
        ``"accuracy"`` (the mean score), ``"ci95"`` (the interval's
        half-width), ``"scores"`` (one per episode) and, with
        ``return_support_score``, ``"support_scores"``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot import PrototypicalClassifier
    >>> from skfewshot.model_selection import evaluate_episodes
    >>> X, y = load_digits(return_X_y=True)
    >>> result = evaluate_episodes(PrototypicalClassifier(), X, y, n_shot=5, n_episodes=50,
    ...                            random_state=0)
    >>> sorted(result)
    ['accuracy', 'ci95', 'scores']
    >>> print(f"{result['accuracy']:.3f} ± {result['ci95']:.3f}")
    0.904 ± 0.012
    """
    cv = EpisodicSplit(n_way, n_shot, n_query, n_episodes, random_state=random_state)
    if isinstance(X, Dataset):  # indexable by scikit-learn's tools, episode by episode
        X = DatasetSamples(X)
    if embed_once:
        estimator, X = _embedded_once(estimator, X)
    scores = cross_validate(
        estimator, X, y, cv=cv, scoring=scoring, return_train_score=return_support_score
    )
    accuracy, ci95 = mean_confidence_interval(scores["test_score"])
    result = {"accuracy": accuracy, "ci95": ci95, "scores": scores["test_score"]}
    if return_support_score:
        result["support_scores"] = np.asarray(scores["train_score"])
    return result
