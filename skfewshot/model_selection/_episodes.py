"""The one episode sampler, shared by meta-training and episodic cross-validation."""

import numpy as np

from .._param_validation import Integer, validate_params
from .._validation import check_labels

#: The constraints of an episode's shape, shared by the sampler, the splitter and the learners.
EPISODE_CONSTRAINTS = {
    "n_way": Integer(2),
    "n_shot": Integer(1),
    "n_query": Integer(1, none="all remaining samples of each class"),
}


class EpisodeSampler:
    """Draw N-way K-shot episodes from a labelled dataset.

    An episode picks ``n_way`` classes at random among the classes that have
    at least ``n_shot + n_query`` samples (``n_shot + 1`` when ``n_query`` is
    None), then ``n_shot`` support and ``n_query`` query samples of each, with
    no sample in both sets. :class:`~skfewshot.model_selection.EpisodicSplit`
    and the meta-learners' training loop both draw their episodes here.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels of the dataset the episodes are drawn from. NaN, None and
        infinite labels are refused (a NaN would otherwise be a class).
    n_way, n_shot, n_query : int
        Classes per episode, support and query samples per class.
        ``n_query=None`` takes all remaining samples of each drawn class.
    owner : str, default="EpisodeSampler"
        Name used in error messages (the estimator or data set at hand).
    """

    def __init__(self, y, n_way, n_shot, n_query, *, owner="EpisodeSampler"):
        validate_params(
            {"n_way": n_way, "n_shot": n_shot, "n_query": n_query}, EPISODE_CONSTRAINTS, owner
        )
        self.n_way, self.n_shot, self.n_query = n_way, n_shot, n_query
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"{owner}: y must be 1-dimensional, got shape {y.shape}.")
        check_labels(y, owner=owner)
        try:
            _, y_idx = np.unique(y, return_inverse=True)
        except TypeError as exc:  # e.g. strings and numbers in one object array
            types = sorted({type(label).__name__ for label in y})
            raise ValueError(
                f"{owner}: the labels of y cannot be sorted: they mix the types "
                f"{', '.join(types)}. Use labels of one type (e.g. y.astype(str))."
            ) from exc
        counts = np.bincount(y_idx)
        order = np.argsort(y_idx, kind="stable")
        per_class = np.split(order, np.cumsum(counts)[:-1])
        needed = n_shot + (1 if n_query is None else n_query)
        eligible = np.flatnonzero(counts >= needed)
        if len(eligible) < n_way:
            query = "at least 1 query" if n_query is None else f"{n_query} queries"
            raise ValueError(
                f"{owner}: an episode of n_way={n_way} classes needs {n_way} classes "
                f"with at least {needed} samples each (n_shot={n_shot} + {query}), "
                f"but only {len(eligible)} of the {len(counts)} classes qualify "
                f"(the smallest class has {counts.min()} samples). Lower n_way, "
                "n_shot or n_query, or provide more classes."
            )
        self._per_class = [per_class[c] for c in eligible]

    def sample(self, rng, *, sort_classes=False):
        """Draw one episode.

        Parameters
        ----------
        rng : numpy.random.RandomState
            The source of randomness; one episode consumes a few draws.
        sort_classes : bool, default=False
            Order the episode's classes (their blocks and local labels) as
            the classes of ``y`` sort, as a classifier's ``classes_`` do,
            instead of in the order they were drawn; the samples drawn are
            the same.

        Returns
        -------
        support_idx, query_idx : ndarray of int
            Indices into ``y``, grouped by class in the episode's class order.
        support_labels, query_labels : ndarray of int
            The episode-local labels 0..n_way-1 of those samples.
        """
        chosen = rng.choice(len(self._per_class), self.n_way, replace=False)
        support, query = [], []
        for c in chosen:
            members = self._per_class[c]
            n_q = len(members) - self.n_shot if self.n_query is None else self.n_query
            picked = members[rng.permutation(len(members))[: self.n_shot + n_q]]
            support.append(picked[: self.n_shot])
            query.append(picked[self.n_shot :])
        if sort_classes:
            order = np.argsort(chosen)
            support, query = [support[i] for i in order], [query[i] for i in order]
        query_labels = [np.full(len(q), label) for label, q in enumerate(query)]
        support_labels = np.repeat(np.arange(self.n_way), self.n_shot)
        return (
            np.concatenate(support),
            np.concatenate(query),
            support_labels,
            np.concatenate(query_labels),
        )
