"""The few-shot evaluation protocol: episodes, per-episode scores, mean and confidence interval."""

import numbers

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, ParameterGrid, cross_validate
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


def _check_settings(settings):
    """``settings`` as a list of distinct ``(n_way, n_shot)`` pairs of integers, or a ValueError."""

    def is_int(value, low):
        return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low

    try:
        pairs = [tuple(setting) for setting in settings]
    except TypeError:
        pairs = None
    if not pairs or not all(
        len(pair) == 2 and is_int(pair[0], 2) and is_int(pair[1], 1) for pair in pairs
    ):
        raise ValueError(
            "settings must be a non-empty list of (n_way, n_shot) pairs of integers, "
            "n_way >= 2 and n_shot >= 1, e.g. [(5, 1), (5, 5)], or [(5, 1)] for one "
            f"setting; got {settings!r}."
        )
    return list(dict.fromkeys((int(n_way), int(n_shot)) for n_way, n_shot in pairs))


def _check_param_grid(param_grid):
    """The list of grids in ``param_grid`` (a dict or a list of dicts), or a ValueError."""
    grids = [param_grid] if isinstance(param_grid, dict) else param_grid
    if not isinstance(grids, list) or not all(isinstance(g, dict) for g in grids):
        raise ValueError(
            "param_grid must be a dict of parameter names and lists of candidate values "
            "(or a list of such dicts, as GridSearchCV takes), e.g. "
            f"{{'inner_steps': [1, 2, 5]}}; got a {type(param_grid).__name__}."
        )
    if not any(grids):
        raise ValueError(
            "param_grid names no parameter: give at least one with its candidate values, "
            f"e.g. {{'inner_steps': [1, 2, 5]}}; got {param_grid!r}."
        )
    ParameterGrid(grids)  # scikit-learn's checks of the candidate values
    return grids


def _sets_encoder(param_grid):
    """Whether ``param_grid`` (a dict or a list of dicts) sets the encoder or its parameters:
    then the samples cannot be embedded once for all its candidates."""
    grids = [param_grid] if isinstance(param_grid, dict) else param_grid
    return any(name == "encoder" or name.startswith("encoder__") for g in grids for name in g)


def tune_per_setting(
    estimator,
    X,
    y,
    param_grid,
    *,
    settings=((5, 1),),
    n_query=15,
    n_episodes=100,
    random_state=None,
    embed_once=True,
    scoring=None,
):
    """Choose test-time parameters for each N-way K-shot setting, by episodes.

    Parameters such as ``inner_steps`` and ``inner_lr`` of a gradient-based
    classifier do not suit every setting alike. For each ``(n_way, n_shot)``
    of ``settings``, a :class:`~sklearn.model_selection.GridSearchCV` over
    ``param_grid`` scores every candidate on the same ``n_episodes``
    episodes of ``(X, y)`` (:class:`EpisodicSplit`) and keeps the best mean
    accuracy. Search on validation classes held out from meta-training,
    never on the test classes. ``refit=False``: a few-shot classifier is
    fitted on each episode's support set, so there is nothing to refit; set
    the chosen parameters on the classifier to evaluate
    (``clone(estimator).set_params(**result[5, 1]["params"])``).

    Parameters
    ----------
    estimator : classifier
        A few-shot classifier (any scikit-learn classifier works).
    X : array-like, memory-map, ImageFolder or torch Dataset of shape (n_samples, ...)
        Samples of the validation classes, in the shape the estimator takes
        (a torch Dataset is wrapped in :class:`~skfewshot.datasets.DatasetSamples`).
    y : array-like of shape (n_samples,)
        Their labels.
    param_grid : dict or list of dicts
        Parameter names and lists of candidate values, as
        :class:`~sklearn.model_selection.GridSearchCV` takes them.
    settings : iterable of (n_way, n_shot) pairs, default=((5, 1),)
        The settings to tune for, each on its own.
    n_query : int, default=15
        Queries per class of an episode (see :class:`EpisodicSplit`).
    n_episodes : int, default=100
        Episodes per candidate and setting.
    random_state : int, RandomState instance or None, default=None
        Controls the episodes; every candidate of a setting is scored on the
        same episodes.
    embed_once : bool, default=True
        For an embed-then-compare classifier with an encoder
        (:class:`~skfewshot.base.EmbeddingClassifier`), embed ``X`` once for
        every setting and candidate (as :func:`evaluate_episodes` does);
        not when ``param_grid`` sets the ``encoder`` or its parameters
        (``encoder__*``), which then embeds each episode's samples.
    scoring : callable or None, default=None
        A scorer ``scoring(estimator, X_query, y_query)`` called on each
        episode's fitted copy; None uses the estimator's ``score``, accuracy
        for a classifier. A scorer can also report progress, one call per
        episode and candidate.

    Returns
    -------
    result : dict
        By ``(n_way, n_shot)``: a dict of ``"params"`` (the chosen
        parameters, the search's ``best_params_``), ``"accuracy"`` (their
        mean score, ``best_score_``) and ``"cv_results"`` (the search's
        ``cv_results_``, every candidate's scores). Ties go to the first
        best candidate in the order of ``cv_results["params"]`` (GridSearchCV's
        rule).

    See Also
    --------
    evaluate_episodes : Evaluate a classifier over episodes, with a 95% interval.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot import PrototypicalClassifier
    >>> from skfewshot.model_selection import tune_per_setting
    >>> X, y = load_digits(return_X_y=True)
    >>> result = tune_per_setting(PrototypicalClassifier(), X, y,
    ...                           {"distance": ["sqeuclidean", "cosine"]},
    ...                           settings=[(5, 1), (5, 5)], n_episodes=20, random_state=0)
    >>> sorted(result)
    [(5, 1), (5, 5)]
    >>> sorted(result[5, 1])
    ['accuracy', 'cv_results', 'params']
    >>> sorted(result[5, 1]["params"])
    ['distance']
    """
    settings = _check_settings(settings)
    grids = _check_param_grid(param_grid)
    if isinstance(X, Dataset):  # indexable by scikit-learn's tools, episode by episode
        X = DatasetSamples(X)
    if embed_once and not _sets_encoder(grids):
        estimator, X = _embedded_once(estimator, X)
    result = {}
    for n_way, n_shot in settings:
        cv = EpisodicSplit(n_way, n_shot, n_query, n_episodes, random_state=random_state)
        search = GridSearchCV(estimator, param_grid, scoring=scoring, cv=cv, refit=False)
        search.fit(X, y)
        result[n_way, n_shot] = {
            "params": search.best_params_,
            "accuracy": search.best_score_,
            "cv_results": search.cv_results_,
        }
    return result
