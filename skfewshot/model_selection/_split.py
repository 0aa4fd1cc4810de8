"""Episodic cross-validation splitter."""

import numpy as np
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import check_random_state
from sklearn.utils.validation import _num_samples

from .._param_validation import Integer, validate_params
from ._episodes import EPISODE_CONSTRAINTS, EpisodeSampler


class EpisodicSplit(BaseCrossValidator):
    """Few-shot episodes as cross-validation splits.

    Each split is one N-way K-shot episode: ``n_way`` classes drawn at random,
    ``n_shot`` support samples (the "train" indices) and ``n_query`` query
    samples (the "test" indices) of each. Used as ``cv=`` of
    :func:`~sklearn.model_selection.cross_val_score` or
    :class:`~sklearn.model_selection.GridSearchCV`, it evaluates a few-shot
    estimator with the standard protocol: fit on the support set, score on
    the query set, average over episodes.

    Parameters
    ----------
    n_way : int, default=5
        Number of classes per episode.
    n_shot : int, default=1
        Support samples per class.
    n_query : int or None, default=15
        Query samples per class; None takes all remaining samples of each
        drawn class.
    n_episodes : int, default=600
        Number of episodes (splits).
    random_state : int, RandomState instance or None, default=None
        Controls the episodes. Pass an int for the same episodes on every
        call of :meth:`split`.

    See Also
    --------
    skfewshot.metrics.mean_confidence_interval : Mean and confidence interval
        of the episode scores.

    Examples
    --------
    >>> import numpy as np
    >>> from skfewshot.model_selection import EpisodicSplit
    >>> y = np.repeat(np.arange(4), 5)
    >>> cv = EpisodicSplit(n_way=3, n_shot=1, n_query=2, n_episodes=2, random_state=0)
    >>> [(len(s), len(q)) for s, q in cv.split(np.zeros((20, 1)), y)]
    [(3, 6), (3, 6)]
    """

    _parameter_constraints = {**EPISODE_CONSTRAINTS, "n_episodes": Integer(1)}

    def __init__(self, n_way=5, n_shot=1, n_query=15, n_episodes=600, random_state=None):
        self.n_way = n_way
        self.n_shot = n_shot
        self.n_query = n_query
        self.n_episodes = n_episodes
        self.random_state = random_state

    def split(self, X, y, groups=None):
        """Generate (support, query) indices, one pair per episode.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Data; only its length is used, so a memory-map, lazy samples
            (:class:`~skfewshot.datasets.ImageFolder`) or a torch Dataset is
            never read here (scikit-learn's ``cross_val_score`` then reads
            each episode's samples, ``X[indices]``).
        y : array-like of shape (n_samples,)
            Class labels; NaN, None and infinite labels are refused.
        groups : object
            Ignored, present for API consistency.

        Yields
        ------
        support : ndarray
            Indices of the support set ("train") of the episode.
        query : ndarray
            Indices of the query set ("test") of the episode.
        """
        owner = type(self).__name__
        self._check_params()
        if y is None:
            raise ValueError(f"{owner}.split needs the labels y to draw episodes.")
        y = np.asarray(y)
        if _num_samples(X) != len(y):
            raise ValueError(f"{owner}: X has {_num_samples(X)} samples but y has {len(y)}.")
        sampler = EpisodeSampler(y, self.n_way, self.n_shot, self.n_query, owner=owner)
        rng = check_random_state(self.random_state)
        for _ in range(self.n_episodes):
            support, query, _, _ = sampler.sample(rng)
            yield support, query

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return the number of episodes, ``n_episodes``, checked as :meth:`split` checks it.

        Parameters
        ----------
        X, y, groups : object
            Ignored, present for API consistency.

        Returns
        -------
        n_splits : int
            The number of episodes.
        """
        return self._check_params()["n_episodes"]

    def _check_params(self):
        params = {name: getattr(self, name) for name in self._parameter_constraints}
        return validate_params(params, self._parameter_constraints, type(self).__name__)
