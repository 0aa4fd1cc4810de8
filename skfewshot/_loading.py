"""Reading the rows of episodes and batches: in this process, or in DataLoader workers.

The index lists are always drawn in the main process, from the one seeded
sampler, at the same points of the random stream whatever the number of
workers; a :class:`RowReader` only loads the rows they name. Workers decode
the rows of one request (an episode's support and query sets, a batch) in
parallel, each a share of them, so the episodes, the augmentations drawn
after them and the weights trained on them are the same with 0, 2 or 8
workers.

An error met in a worker (an unreadable file, a sample of another shape) is
carried back as data and raised in the main process, as the same exception,
with the worker's traceback as its cause: never a crash inside a worker.
"""

import pickle
import traceback

import numpy as np
import torch


class _WorkerTraceback(Exception):
    """The traceback of an error raised in a loader worker, shown as the cause of its re-raise."""

    def __str__(self):
        return "\n\nThe loader worker's traceback:\n\n" + self.args[0]


class _Failure:
    """An error met reading rows in a worker, carried to the main process to be raised there."""

    def __init__(self, exc):
        self.traceback = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        try:  # an exception that does not survive pickling is carried as its text
            pickle.loads(pickle.dumps(exc))
            self.exception = exc
        except Exception:
            self.exception = RuntimeError(f"{type(exc).__name__}: {exc}")

    def __getstate__(self):
        return {"traceback": self.traceback, "exception": self.exception}

    def raise_(self):
        raise self.exception from _WorkerTraceback(self.traceback)


class _Rows:
    """The map-style dataset of a reader's DataLoader: a key (row indices) gives those rows."""

    def __init__(self, samples):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, indices):
        try:
            return self.samples._tensor_rows(indices)
        except Exception as exc:  # raised in the main process, by the reader
            return _Failure(exc)


class _Keys(torch.utils.data.Sampler):
    """The keys the reader's DataLoader reads in its next pass (set before each pass)."""

    def __init__(self):
        self.keys = []

    def __iter__(self):
        # The DataLoader may iterate twice at its first pass (its iterator's set-up, then
        # its reset); each pass reads the keys set for it.
        return iter(list(self.keys))

    def __len__(self):
        return len(self.keys)


def _identity(batch):
    return batch


class RowReader:
    """Read rows of samples: in this process, or shared among DataLoader workers.

    Parameters
    ----------
    samples : skfewshot._lazy.LazySamples
        What is read.
    num_workers : int, default=0
        0 reads in this process. Otherwise a
        :class:`torch.utils.data.DataLoader` with that many persistent
        workers (started at the first read, stopped by :meth:`close`) reads
        each request, every worker a contiguous share of its rows.

    Notes
    -----
    The workers are started by the default start method of
    :mod:`multiprocessing` (``fork`` on Linux: they share the samples' memory;
    ``spawn`` elsewhere: the samples are pickled, a memory-map by its file
    name). The DataLoader draws its workers' seeds from a private generator,
    so that reading never touches torch's global random state.
    """

    def __init__(self, samples, num_workers=0):
        self.samples = samples
        self.num_workers = num_workers
        self._keys = None
        self._loader = None

    def read(self, parts):
        """The rows of each index array of ``parts``, as float32 CPU tensors, in order.

        Parameters
        ----------
        parts : list of ndarray of int
            The requests, e.g. ``[support_indices, query_indices]``.

        Returns
        -------
        rows : list of torch.Tensor
            One tensor of ``(len(part), *sample_shape)`` per part.

        Raises
        ------
        Exception
            What reading a row raised (e.g. a
            :class:`~skfewshot.datasets.SampleReadError` naming an unreadable
            file), raised here with, from a worker, the worker's traceback as
            its cause.
        """
        if self.num_workers == 0:
            return [self.samples._tensor_rows(part) for part in parts]
        keys, owners = [], []
        for owner, part in enumerate(parts):
            part = np.asarray(part, dtype=np.int64)
            for chunk in np.array_split(part, max(1, min(self.num_workers, len(part)))):
                keys.append(chunk)
                owners.append(owner)
        if self._loader is None:
            self._keys = _Keys()
            self._loader = torch.utils.data.DataLoader(
                _Rows(self.samples),
                batch_size=None,
                sampler=self._keys,
                num_workers=self.num_workers,
                collate_fn=_identity,
                persistent_workers=True,
                generator=torch.Generator(),
            )
        self._keys.keys = keys
        results = list(self._loader)  # the whole pass, also when a chunk failed
        for result in results:
            if isinstance(result, _Failure):
                result.raise_()
        pieces = [[] for _ in parts]
        for owner, rows in zip(owners, results):
            pieces[owner].append(rows)
        return [chunks[0] if len(chunks) == 1 else torch.cat(chunks) for chunks in pieces]

    def close(self):
        """Stop the workers, if any were started."""
        loader, self._loader = self._loader, None
        iterator = getattr(loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
