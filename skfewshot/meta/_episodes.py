"""Episode batches for the skorch training loop."""

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import GroupShuffleSplit
from skorch.dataset import Dataset

from .._lazy import LazySamples, SampleReadError, loader_samples
from .._loading import RowReader


@dataclass
class Episode:
    """The inputs of one episode: support samples with labels, and queries.

    Its length is the number of queries: the training loop
    (``EpisodicLearner.run_single_epoch``) records the mean over a
    meta-batch's episodes as its batch size (episodes drawn with
    ``n_query=None`` differ in length).
    """

    support: torch.Tensor
    support_labels: torch.Tensor
    query: torch.Tensor

    def __len__(self):
        return len(self.query)

    def to(self, device):
        """The episode with its tensors on ``device``."""
        return Episode(
            self.support.to(device), self.support_labels.to(device), self.query.to(device)
        )


def _skipped(samples, exc, what):
    """Whether an unreadable sample skips its episode (``on_error="skip"``), with a warning."""
    if getattr(samples, "on_error", "raise") != "skip":
        return False
    warnings.warn(f"Skipped {what} holding an unreadable sample: {exc}", UserWarning, stacklevel=3)
    return True


class EpisodeLoader:
    """Iterate over episodes of a data set, as skorch iterates over batches.

    Each item is a meta-batch ``([Episode, ...], [query_labels, ...])`` of
    ``meta_batch_size`` episodes (the last one may be shorter); ``len`` is
    the number of meta-batches. With an integer ``random_state``
    every pass yields the same episodes (for validation and scoring); with a
    :class:`numpy.random.RandomState` the passes continue its stream (for
    training, a fresh draw each epoch).

    Each episode's indices are drawn here, in the main process, then only
    its rows are read (see :class:`~skfewshot.datasets.LazySamples`): by this
    process, or shared among ``num_workers`` DataLoader workers; the episodes
    are the same either way. An episode holding a sample that cannot be read
    raises a :class:`~skfewshot.datasets.SampleReadError` naming it, or, for
    samples with ``on_error="skip"``, is left out of its meta-batch with a
    warning.

    Parameters
    ----------
    X : torch.Tensor, array-like, memory-map, LazySamples or torch Dataset of shape (n_samples, ...)
        The samples. A tensor is indexed as it is; anything else is read
        as the meta-learners read it (float32, uint8 scaled by 1/255).
    sampler : skfewshot.model_selection.EpisodeSampler
        Draws the episodes' indices.
    n_episodes : int
        Episodes per pass.
    random_state : int or numpy.random.RandomState
        Source of the episodes.
    meta_batch_size : int, default=1
        Episodes per meta-batch.
    sort_classes : bool, default=False
        Order each episode's classes as a few-shot classifier's ``classes_``
        (see :meth:`EpisodeSampler.sample`), so that the episodes are scored
        as the classifier scores them, also by order-sensitive models.
    transform : callable or None, default=None
        Applied to the support and the query samples of each episode as
        ``transform(samples, rng)`` with the loader's random generator (e.g.
        :class:`~skfewshot.datasets.RandomAffine`, for training), in the
        main process.
    num_workers : int, default=0
        DataLoader workers reading the rows of each episode (0: this
        process). They are started at each pass and stopped at its end.
    """

    def __init__(
        self,
        X,
        sampler,
        n_episodes,
        random_state,
        meta_batch_size=1,
        sort_classes=False,
        transform=None,
        num_workers=0,
    ):
        self.X = X
        self.sampler = sampler
        self.n_episodes = n_episodes
        self.random_state = random_state
        self.meta_batch_size = meta_batch_size
        self.sort_classes = sort_classes
        self.transform = transform
        self.num_workers = num_workers

    def __len__(self):
        return -(-self.n_episodes // self.meta_batch_size)

    def _episodes(self):
        """The pass's episodes, ``(Episode, query_labels)``; None for one that is skipped."""
        rng = self.random_state
        if not isinstance(rng, np.random.RandomState):
            rng = np.random.RandomState(rng)
        samples = loader_samples(self.X)
        with RowReader(samples, self.num_workers) as reader:
            for _ in range(self.n_episodes):
                support, query, support_labels, query_labels = self.sampler.sample(
                    rng, sort_classes=self.sort_classes
                )
                try:
                    support, query = reader.read([support, query])
                except SampleReadError as exc:
                    if not _skipped(samples, exc, "an episode"):
                        raise
                    yield None
                    continue
                if self.transform is not None:
                    support, query = self.transform(support, rng), self.transform(query, rng)
                episode = Episode(support, torch.from_numpy(support_labels), query)
                yield episode, torch.from_numpy(query_labels)

    def __iter__(self):
        # Meta-batches of meta_batch_size drawn episodes: a skipped one leaves its meta-batch
        # shorter, so that the following episodes are grouped as without it.
        episodes, labels, drawn = [], [], 0
        for item in self._episodes():
            drawn += 1
            if item is not None:
                episodes.append(item[0])
                labels.append(item[1])
            if drawn == self.meta_batch_size:
                if episodes:
                    yield episodes, labels
                episodes, labels, drawn = [], [], 0
        if episodes:
            yield episodes, labels


class BatchLoader:
    """Iterate over mini-batches of labelled samples, in the meta-batch shape of episodes.

    For supervised pre-training in the episodic loop: each item is
    ``([Episode(empty support, query=samples)], [labels])``, a meta-batch
    of ``meta_batch_size`` classification batches of ``batch_size`` samples
    each, drawn at random without replacement within a batch; the labels
    are global class indices. ``len`` is the number of meta-batches. The
    samples are read as :class:`EpisodeLoader` reads them (a batch holding
    an unreadable sample of samples with ``on_error="skip"`` is skipped).

    Parameters
    ----------
    X : torch.Tensor, array-like, memory-map, LazySamples or torch Dataset of shape (n_samples, ...)
        The samples.
    y : ndarray of shape (n_samples,)
        Their class indices.
    batch_size : int
        Samples per batch.
    n_batches : int
        Batches per pass.
    random_state : numpy.random.RandomState
        Source of the batches (a pass continues its stream).
    meta_batch_size : int, default=1
        Batches per meta-batch (their losses are averaged).
    transform : callable or None, default=None
        Applied to each batch's samples as ``transform(samples, rng)``.
    num_workers : int, default=0
        DataLoader workers reading the rows of each batch (0: this process).
    """

    def __init__(
        self,
        X,
        y,
        batch_size,
        n_batches,
        random_state,
        meta_batch_size=1,
        transform=None,
        num_workers=0,
    ):
        self.X = X
        self.y = torch.as_tensor(y)
        self.batch_size = batch_size
        self.n_batches = n_batches
        self.random_state = random_state
        self.meta_batch_size = meta_batch_size
        self.transform = transform
        self.num_workers = num_workers

    def __len__(self):
        return -(-self.n_batches // self.meta_batch_size)

    def _batches(self):
        """The pass's batches, ``(samples, labels)``; None for one that is skipped."""
        rng = self.random_state
        samples = loader_samples(self.X)
        size = min(self.batch_size, len(samples))
        with RowReader(samples, self.num_workers) as reader:
            for _ in range(self.n_batches):
                index = rng.choice(len(samples), size, replace=False)
                try:
                    (rows,) = reader.read([index])
                except SampleReadError as exc:
                    if not _skipped(samples, exc, "a batch"):
                        raise
                    yield None
                    continue
                if self.transform is not None:
                    rows = self.transform(rows, rng)
                yield rows, self.y[torch.from_numpy(index)]

    def __iter__(self):
        batches, labels, drawn = [], [], 0
        for item in self._batches():
            drawn += 1
            if item is not None:
                samples, batch_labels = item
                batches.append(Episode(samples[:0], self.y[:0], samples))
                labels.append(batch_labels)
            if drawn == self.meta_batch_size:
                if batches:
                    yield batches, labels
                batches, labels, drawn = [], [], 0
        if batches:
            yield batches, labels


def _rows(X, indices):
    """The samples ``indices`` of ``X``: a view of lazy samples (nothing is read), else a copy."""
    return X.subset(indices) if isinstance(X, LazySamples) else X[indices]


class ValidClassSplit:
    """Hold out whole classes for meta-validation, as a skorch ``train_split``.

    skorch's default split holds out samples of the training classes; a
    meta-learner must be validated on classes it never trained on. This
    split draws a fraction of the classes at random (a
    :class:`~sklearn.model_selection.GroupShuffleSplit` with the labels as
    groups) and returns their samples as the validation set. Lazy samples
    (a memory-map, an image folder, a torch Dataset) are split into views:
    nothing is read or copied.

    Parameters
    ----------
    valid_size : float or int, default=0.2
        Fraction (float) or number (int) of classes held out.
    random_state : int, RandomState instance or None, default=None
        Controls which classes are held out.
    """

    def __init__(self, valid_size=0.2, random_state=None):
        self.valid_size = valid_size
        self.random_state = random_state

    def __call__(self, dataset, y=None, **fit_params):
        X, y = dataset.X, dataset.y if y is None else y
        splitter = GroupShuffleSplit(
            n_splits=1, test_size=self.valid_size, random_state=self.random_state
        )
        train, valid = next(splitter.split(X, y, groups=y))
        return Dataset(_rows(X, train), y[train]), Dataset(_rows(X, valid), y[valid])

    def __repr__(self):
        return (
            f"{type(self).__name__}(valid_size={self.valid_size!r}, "
            f"random_state={self.random_state!r})"
        )
