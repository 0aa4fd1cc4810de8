"""Samples read on demand: arrays of any dtype, memory-maps, image folders, torch Datasets.

The estimators read their data through one small interface, *samples*: a
length, the shape of one sample, and the rows of a list of indices as
float32 (:meth:`LazySamples.take`). A training episode reads its
``n_way * (n_shot + n_query)`` rows, an evaluation batch its ``batch_size``
rows: a data set is never converted whole, so that one larger than memory
can be meta-trained on and evaluated.

* A NumPy array of numbers is validated whole (finiteness included) but not
  converted: a float32 one is read as torch indexes it, as in earlier
  versions; another (uint8 images, float64, integers) stays as it is, and
  its rows are converted when read, uint8 scaled by 1/255 to [0, 1] as the
  image loaders scale pixels, other dtypes cast. Any other array-like (a
  list, a DataFrame, a tensor) is converted to float32 whole, as before.
* A memory-map (:class:`numpy.memmap`, e.g. ``np.load(path, mmap_mode="r")``)
  of any numeric dtype stays on disk: its rows are read and converted when
  read.
* An :class:`~skfewshot.datasets.ImageFolder` decodes its images when read.
* A map-style :class:`torch.utils.data.Dataset` is read item by item
  (:class:`DatasetSamples`).

What cannot be checked without reading every sample (finiteness, the shape
of a Dataset's items) is checked on the rows as they are read.
"""

import mmap
import numbers

import numpy as np
import torch
from sklearn.utils.validation import check_array

from ._param_validation import Options

__all__ = [
    "DatasetSamples",
    "LazySamples",
    "SampleReadError",
    "as_samples",
    "loader_samples",
    "reads_lazily",
]


class SampleReadError(OSError):
    """A sample could not be read: an unreadable image file, a failing Dataset item.

    The message names the sample and, for an image folder, its file. Raised
    where the sample is read (in the main process also when it was read by a
    loader worker, with the worker's traceback as its cause); a subclass of
    :class:`OSError`.
    """


def _indices(key, n):
    """``key`` (an integer array or list, a slice, a boolean mask) as int64 indices in [0, n)."""
    if isinstance(key, slice):
        return np.arange(*key.indices(n), dtype=np.int64)
    key = np.asarray(key)
    if key.size == 0:
        return np.empty(0, dtype=np.int64)
    if key.dtype == bool:
        if key.shape != (n,):
            raise IndexError(f"a boolean index of {n} samples has shape ({n},), not {key.shape}.")
        return np.flatnonzero(key)
    if key.dtype.kind not in "iu" or key.ndim != 1:
        raise IndexError(
            "samples are indexed by an integer, a slice, or a 1-D array of integers or "
            f"booleans; got an array of {key.dtype} of shape {key.shape}."
        )
    key = key.astype(np.int64, copy=False)
    low, high = int(key.min()), int(key.max())
    if low < -n or high >= n:
        raise IndexError(f"index {low if low < -n else high} is out of bounds for {n} samples.")
    return np.where(key < 0, key + n, key) if low < 0 else key


def _to_float32(rows, out):
    """Write ``rows`` into the float32 array ``out``: uint8 scaled by 1/255, the rest cast.

    The division is the one of the image loaders (``pixels / np.float32(255)``),
    so a uint8 image read here equals the same image decoded by them.
    """
    if rows.dtype == np.uint8:
        np.divide(rows, np.float32(255), out=out, dtype=np.float32)
    else:
        np.copyto(out, rows, casting="unsafe")
    return out


def _check_finite(rows, indices, samples):
    """Refuse rows (read and converted to float32) holding NaN or infinity, naming the first."""
    if np.isfinite(rows).all():
        return
    flat = rows.reshape(len(rows), -1)
    k = int(np.flatnonzero(~np.isfinite(flat).all(axis=1))[0])
    what = "NaN" if np.isnan(flat[k]).any() else "infinity"
    index = int(indices[k])
    raise ValueError(
        f"Input X contains {what}: {samples._describe(index)}, as float32 (the samples of "
        f"{samples._what} are checked as they are read and converted, a check of the whole "
        "would read them all); drop, repair or rescale that sample."
    )


class LazySamples:
    """Samples read on demand: the lazy inputs of the estimators and meta-learners.

    A data set that is never read whole: its length, the shape of one sample
    and the rows of any list of indices, decoded and converted to float32
    when they are read. The meta-learners draw the indices of each episode
    and read only those rows; :class:`~skfewshot.EmbeddingTransformer` and
    the classifiers read ``batch_size`` rows at a time. It is also
    array-like for scikit-learn's tools: ``len(X)``, ``X.shape`` and
    ``X[indices]`` (a float32 array of those samples), so that
    :func:`~sklearn.model_selection.cross_val_score` over an
    :class:`~skfewshot.model_selection.EpisodicSplit` reads each episode's
    samples only. Converting it to one array (``np.asarray(X)``) is refused:
    it would read every sample; ``X.take(np.arange(len(X)))`` does that on
    purpose.

    :class:`~skfewshot.datasets.ImageFolder` and :class:`DatasetSamples`
    are lazy samples; NumPy memory-maps and uint8 arrays are read the same
    way without being wrapped.

    Attributes
    ----------
    shape : tuple of int
        ``(n_samples, *sample_shape)``.
    sample_shape : tuple of int
        The shape of one sample, e.g. ``(3, 84, 84)``.
    on_error : {"raise", "skip"}
        What an unreadable sample met in training does: raise a
        :class:`SampleReadError` naming it, or skip the episode (or batch)
        that holds it with a warning.
    """

    #: What an unreadable sample met in training does: "raise" or "skip" (the episode).
    on_error = "raise"

    #: Whether the rows read are checked to be finite (NaN and infinity are refused).
    _check_finite_rows = False

    #: How the data set is named in errors.
    _what = "the data set"

    def __len__(self):
        raise NotImplementedError

    @property
    def sample_shape(self):
        """The shape of one sample."""
        raise NotImplementedError

    def _read(self, index):
        """Sample ``index`` (an int in [0, len)) as a float32 array of ``sample_shape``."""
        raise NotImplementedError

    def _describe(self, index):
        """Sample ``index``, for an error: "sample 12 of ..." (and its file, if any)."""
        return f"sample {index} of {self._what}"

    @property
    def shape(self):
        return (len(self), *self.sample_shape)

    @property
    def ndim(self):
        return 1 + len(self.sample_shape)

    @property
    def dtype(self):
        """float32: the dtype of the rows read."""
        return np.dtype(np.float32)

    def _rows(self, indices, out):
        """Read the samples ``indices`` (int64, in range) into the float32 array ``out``."""
        for k, index in enumerate(indices):
            out[k] = self._read(int(index))
        if self._check_finite_rows:
            _check_finite(out, indices, self)
        return out

    def take(self, indices):
        """Read the samples ``indices`` as one float32 array.

        Parameters
        ----------
        indices : array-like of int or bool, or slice
            The samples to read: integer indices (negative ones count from
            the end), a boolean mask of ``len(self)`` or a slice.

        Returns
        -------
        rows : ndarray of shape ``(len(indices), *sample_shape)``, dtype float32
            The samples, in the order of ``indices``.

        Raises
        ------
        SampleReadError
            If a sample cannot be read (an unreadable image file), naming it.
        ValueError
            If a sample read holds NaN or infinity, or (a Dataset) has
            another shape than the first sample.
        """
        indices = _indices(indices, len(self))
        return self._rows(indices, np.empty((len(indices), *self.sample_shape), np.float32))

    def _tensor_rows(self, indices):
        """The samples ``indices`` as a float32 CPU tensor (the loaders' reading)."""
        indices = _indices(indices, len(self))
        out = torch.empty((len(indices), *self.sample_shape), dtype=torch.float32)
        self._rows(indices, out.numpy())
        return out

    def subset(self, indices):
        """The samples ``indices``, as lazy samples (nothing is read).

        Parameters
        ----------
        indices : array-like of int or bool, or slice
            The samples kept, as for :meth:`take`.

        Returns
        -------
        subset : LazySamples
            A view: sample ``i`` of it is sample ``indices[i]`` of this one.
        """
        return _Subset(self, _indices(indices, len(self)))

    def __getitem__(self, key):
        if isinstance(key, tuple):  # scikit-learn's X[indices, ...]
            if len(key) == 2 and key[1] is Ellipsis:
                key = key[0]
            else:
                raise IndexError("samples are indexed along their first axis only.")
        if isinstance(key, numbers.Integral) or (
            isinstance(key, np.ndarray) and key.ndim == 0 and key.dtype.kind in "iu"
        ):
            index = int(key)
            if not -len(self) <= index < len(self):
                raise IndexError(f"index {index} is out of bounds for {len(self)} samples.")
            return self.take([index])[0]
        return self.take(key)

    def __iter__(self):
        for index in range(len(self)):
            yield self.take([index])[0]

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            f"{type(self).__name__} reads its {len(self)} samples on demand: converting it "
            "to one array would read them all. Index the samples you need (X[indices]), or "
            "read them all on purpose with X.take(np.arange(len(X)))."
        )

    def __repr__(self):
        return f"<{type(self).__name__}: {len(self)} samples of shape {self.sample_shape}>"


class _Subset(LazySamples):
    """Samples ``indices`` of ``samples``, read through them (a view)."""

    def __init__(self, samples, indices):
        self.samples = samples
        self.indices = indices

    def __len__(self):
        return len(self.indices)

    @property
    def sample_shape(self):
        return self.samples.sample_shape

    @property
    def on_error(self):
        return self.samples.on_error

    @property
    def _what(self):
        return self.samples._what

    def _describe(self, index):
        return self.samples._describe(index)

    def _rows(self, indices, out):
        # Errors name the samples by their index in the whole data set.
        return self.samples._rows(self.indices[indices], out)

    def _tensor_rows(self, indices):
        return self.samples._tensor_rows(self.indices[_indices(indices, len(self))])

    def subset(self, indices):
        return _Subset(self.samples, self.indices[_indices(indices, len(self))])

    def __repr__(self):
        return f"<{len(self)} samples of {self.samples!r}>"


def _is_memory_map(X):
    """Whether the array ``X`` lies in a memory-mapped file (a memmap, or a view of one)."""
    while isinstance(X, np.ndarray):
        if isinstance(X, np.memmap):
            return True
        X = X.base
    return isinstance(X, mmap.mmap)


def _tensor_view(X):
    """A tensor sharing the memory of an in-memory float32 array, or None.

    Such an array is read as torch indexes it, exactly as in earlier versions;
    any other is read and converted row by row, into tensors torch allocates
    as it allocates those (so the arithmetic on them is the same).
    """
    if (
        X.dtype != np.float32
        or _is_memory_map(X)
        or not X.flags.writeable
        or any(stride < 0 for stride in X.strides)
    ):
        return None
    return torch.from_numpy(X)


def _memmap_location(X):
    """``(filename, byte offset)`` of a C-contiguous memory-map's first element, or None."""
    buffer = getattr(X, "_mmap", None)
    if not isinstance(X, np.memmap) or buffer is None or not X.filename:
        return None
    if not X.flags.c_contiguous:
        return None
    try:
        start = X.offset - X.offset % mmap.ALLOCATIONGRANULARITY  # where numpy mapped the file
        base = np.frombuffer(buffer, dtype=np.uint8).ctypes.data
    except (TypeError, ValueError, BufferError):
        return None
    return X.filename, start + X.ctypes.data - base


class ArraySamples(LazySamples):
    """A NumPy array (a memory-map too) as samples: the rows converted when read.

    Not public: the estimators wrap arrays themselves (:func:`as_samples`).
    Pickled (for loader workers started by ``spawn``), a C-contiguous
    memory-map is re-opened from its file instead of being copied.
    """

    def __init__(self, X):
        self.X = X
        memory_map = _is_memory_map(X)
        # In memory, floats were checked whole (check_array), but wider ones may overflow
        # float32; integers are finite.
        self._check_finite_rows = X.dtype.kind == "f" and (memory_map or X.dtype.itemsize > 4)
        self._what = "the memory-map X" if memory_map else "the array X"
        self._tensor = _tensor_view(X)

    def __len__(self):
        return len(self.X)

    @property
    def sample_shape(self):
        return tuple(int(d) for d in self.X.shape[1:])

    def _rows(self, indices, out):
        _to_float32(np.asarray(self.X[indices]), out)  # a memory-map reads those rows only
        if self._check_finite_rows:
            _check_finite(out, indices, self)
        return out

    def _tensor_rows(self, indices):
        if self._tensor is not None:
            return self._tensor[torch.from_numpy(_indices(indices, len(self)))]
        return super()._tensor_rows(indices)

    def __getstate__(self):
        state = dict(vars(self))
        state.pop("_tensor", None)
        location = _memmap_location(self.X)
        if location is not None:
            state["X"] = None
            state["_memmap"] = (*location, self.X.dtype.str, self.X.shape)
        return state

    def __setstate__(self, state):
        location = state.pop("_memmap", None)
        vars(self).update(state)
        if location is not None:
            filename, offset, dtype, shape = location
            self.X = np.memmap(filename, np.dtype(dtype), mode="r", offset=offset, shape=shape)
        self._tensor = _tensor_view(self.X)

    def __repr__(self):
        kind = "memory-map" if _is_memory_map(self.X) else "array"
        return f"<{kind} of {len(self)} {self.X.dtype} samples of shape {self.sample_shape}>"


class _TensorSamples(LazySamples):
    """A tensor indexed as it is, for the loaders (:class:`~skfewshot.meta.EpisodeLoader`)."""

    _what = "the tensor X"

    def __init__(self, X):
        self.X = X

    def __len__(self):
        return len(self.X)

    @property
    def sample_shape(self):
        return tuple(int(d) for d in self.X.shape[1:])

    def _tensor_rows(self, indices):
        return self.X[torch.from_numpy(_indices(indices, len(self)))]

    def _rows(self, indices, out):
        rows = self.X[torch.from_numpy(indices)].detach().cpu()
        out[...] = rows.float().numpy()
        return out


def _item_array(item, index, owner):
    """An item of a Dataset (a sample, or a (sample, label) pair) as a NumPy array."""
    if isinstance(item, (tuple, list)):  # (sample, label): the labels are given as y
        item = item[0]
    if isinstance(item, torch.Tensor):
        item = item.detach().cpu()
        array = (item.float() if item.dtype == torch.bfloat16 else item).numpy()
    elif type(item).__module__.startswith("PIL."):  # an image: (channels, height, width)
        array = np.asarray(item)
        array = array[np.newaxis] if array.ndim == 2 else array.transpose(2, 0, 1)
    else:
        array = np.asarray(item)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{owner}: sample {index} is an array of {array.dtype}; the samples must be "
            "numbers (a tensor, an array or a PIL image, possibly as the first item of a "
            "(sample, label) pair)."
        )
    return array


class DatasetSamples(LazySamples):
    """A map-style torch Dataset as samples read on demand.

    Item ``i`` of the Dataset is sample ``i``: a tensor, a NumPy array or a
    PIL image (as ``(channels, height, width)``), or a ``(sample, label)``
    pair whose label is ignored: **the labels are given as y** (reading
    them from the Dataset would read every sample; torchvision's datasets
    list them, e.g. ``y=dataset.targets``). uint8 samples are scaled by
    1/255 to [0, 1], others cast to float32. The meta-learners,
    :class:`~skfewshot.EmbeddingTransformer` and the classifiers wrap a
    Dataset themselves; wrap it to use it with scikit-learn's tools
    (``cross_val_score(clf, DatasetSamples(dataset), y, cv=EpisodicSplit(...))``).

    The first sample is read at construction: its shape and dtype are those
    of every sample, which is checked, with finiteness, on each sample read.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        A map-style dataset with ``__len__`` and ``__getitem__``.
    on_error : {"raise", "skip"}, default="raise"
        What a sample whose reading raises an :class:`OSError` (e.g. an
        unreadable image file) does in training: raise a
        :class:`SampleReadError` naming it, or skip the episode (or batch)
        holding it, with a warning.

    Attributes
    ----------
    sample_shape : tuple of int
        The shape of one sample.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> from skfewshot.datasets import DatasetSamples
    >>> dataset = TensorDataset(torch.rand(10, 1, 8, 8), torch.arange(10) % 2)
    >>> X = DatasetSamples(dataset)
    >>> X.shape, X[[0, 3]].shape
    ((10, 1, 8, 8), (2, 1, 8, 8))
    """

    _check_finite_rows = True

    def __init__(self, dataset, *, on_error="raise"):
        owner = type(self).__name__
        if isinstance(dataset, torch.utils.data.IterableDataset):
            raise TypeError(
                f"{owner}: {type(dataset).__name__} is an IterableDataset, which has no "
                "random access; episodes read their samples by index: use a map-style "
                "Dataset (with __len__ and __getitem__)."
            )
        self.dataset = dataset
        self.on_error = Options("raise", "skip").check(on_error, "on_error", owner)
        self._what = f"the Dataset {type(dataset).__name__}"
        try:
            n = len(dataset)
        except TypeError as exc:
            raise TypeError(f"{owner}: the Dataset {type(dataset).__name__} has no len().") from exc
        if n < 1:
            raise ValueError(f"{owner}: the Dataset {type(dataset).__name__} has no sample.")
        first = self._item(0)
        if first.ndim < 1:
            raise ValueError(
                f"{owner}: the samples of {self._what} are scalars; they must be arrays "
                "(feature vectors, images, ...)."
            )
        self._sample_shape = tuple(int(d) for d in first.shape)
        self._dtype = first.dtype

    def __len__(self):
        return len(self.dataset)

    @property
    def sample_shape(self):
        return self._sample_shape

    def _item(self, index):
        try:
            item = self.dataset[index]
        except OSError as exc:
            raise SampleReadError(
                f"Cannot read {self._describe(index)} ({type(exc).__name__}: {exc})."
            ) from exc
        return _item_array(item, index, type(self).__name__)

    def _read(self, index):
        array = self._item(index)
        if array.shape != self._sample_shape or array.dtype != self._dtype:
            raise ValueError(
                f"{type(self).__name__}: sample {index} of {self._what} is an array of "
                f"{array.dtype} of shape {array.shape}, but sample 0 is one of {self._dtype} "
                f"of shape {self._sample_shape}; the samples must share one shape and dtype "
                "(resize or convert them in the Dataset's transform)."
            )
        return _to_float32(array, np.empty(self._sample_shape, dtype=np.float32))

    def __repr__(self):
        return f"DatasetSamples({type(self.dataset).__name__} of {len(self)} samples)"


def reads_lazily(X):
    """Whether ``X`` is read in episodes or batches rather than converted whole.

    Lazy samples, torch Datasets, memory-maps and uint8 arrays (images, which
    would take four times their size as float32) are; other inputs are
    validated and converted whole, as scikit-learn does.
    """
    if isinstance(X, (LazySamples, torch.utils.data.Dataset)):
        return True
    return isinstance(X, np.ndarray) and (X.dtype == np.uint8 or _is_memory_map(X))


def as_samples(X, *, input_name="X"):
    """``X`` as samples, checked as far as can be without reading every sample.

    Parameters
    ----------
    X : array-like, memory-map, LazySamples or torch.utils.data.Dataset
        The data. Lazy samples are returned as they are and a Dataset is
        wrapped in :class:`DatasetSamples`. A NumPy array of numbers gets
        scikit-learn's checks (at least 2 dimensions, a sample, numbers,
        finiteness) without being converted; for a memory-map, finiteness is
        checked on the rows as they are read instead (a full pass would read
        the whole file). Anything else is validated and converted to float32
        whole (:func:`~sklearn.utils.check_array`), as in earlier versions.
    input_name : str, default="X"
        The name of the data in scikit-learn's errors.

    Returns
    -------
    samples : LazySamples
    """
    if isinstance(X, LazySamples):
        return X
    if isinstance(X, torch.utils.data.Dataset):
        return DatasetSamples(X)
    memory_map = isinstance(X, np.ndarray) and _is_memory_map(X)
    if isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
        checked = check_array(
            X, allow_nd=True, dtype=None, ensure_all_finite=not memory_map, input_name=input_name
        )
        return ArraySamples(X if memory_map else checked)  # a memory-map stays one
    if memory_map:
        raise ValueError(
            f"{input_name} is a memory-map of {X.dtype}; the samples must be numbers "
            "(integers, floats or booleans)."
        )
    return ArraySamples(check_array(X, allow_nd=True, dtype=np.float32, input_name=input_name))


def loader_samples(X):
    """The samples an episode or batch loader reads: a tensor is indexed as it is."""
    if isinstance(X, torch.Tensor):
        return _TensorSamples(X)
    return as_samples(X)
