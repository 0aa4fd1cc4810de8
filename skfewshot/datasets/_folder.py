"""Loader for image datasets stored as one folder per class, whole or lazily."""

# License: BSD-3-Clause

import os
import warnings
from collections import OrderedDict

import numpy as np
from PIL import Image
from sklearn.utils import Bunch

from .._lazy import LazySamples, SampleReadError
from .._param_validation import Integer, Options
from ._base import _check_image_size

__all__ = ["ImageFolder", "load_image_folder"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def load_image_folder(
    path,
    image_size=28,
    *,
    grayscale=True,
    invert=False,
    return_X_y=False,
    lazy=False,
    cache_size=0,
    on_error="raise",
):
    """Load an image dataset stored as one subfolder per class.

    The folder structure must be::

        path/
            class_a/
                image_1.png
                image_2.jpg
                ...
            class_b/
                ...

    Each subfolder is a class, named after the folder. Files with the
    extensions ``.png``, ``.jpg``, ``.jpeg``, ``.bmp`` and ``.gif`` (in any
    case) directly inside a class folder are loaded; other files, nested
    folders and hidden entries (whose name starts with a dot) are ignored.

    Parameters
    ----------
    path : str or path-like
        The folder holding the class folders.

    image_size : int, default=28
        Side of the returned square images, in pixels. Images are resized
        with Pillow's Lanczos filter to ``image_size x image_size``; images
        that are not square are stretched.

    grayscale : bool, default=True
        If True, images are converted to one gray channel, otherwise to
        three RGB channels. Transparency is dropped. For animated GIFs only
        the first frame is read.

    invert : bool, default=False
        If True, return ``1 - v`` instead of the gray levels ``v``, so that
        dark strokes on a light background (such as Omniglot's) become 1.

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch object.

    lazy : bool, default=False
        If True, only list the files: `data` is an :class:`ImageFolder`,
        which decodes each image when it is read (by the episodes of a
        meta-learner, the batches of an evaluation), so that a folder larger
        than memory can be used. The images read are the same as with
        ``lazy=False``.

    cache_size : int, default=0
        With ``lazy=True``, the number of decoded images kept in memory
        (least recently used first out; 0: none). Needs ``lazy=True``.

    on_error : {"raise", "skip"}, default="raise"
        What an image file that cannot be read does: raise an
        :class:`OSError` naming it, or, with ``"skip"``, leave it out with a
        warning (with ``lazy=True``: skip the training episode, or batch,
        that holds it, see :class:`ImageFolder`).

    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        Dictionary-like object, with the following attributes.

        data : ndarray of shape (n_samples, n_channels, image_size, image_size) or ImageFolder
            The images as float32 values in [0, 1], with ``n_channels`` 1 if
            `grayscale` else 3. Samples are sorted by class then file name.
            With ``lazy=True``, an :class:`ImageFolder` of that shape.
        target : ndarray of shape (n_samples,)
            The class of each sample, as int64 indices into `target_names`.
        target_names : ndarray of shape (n_classes,)
            The class folder names, sorted.
        filenames : ndarray of shape (n_samples,)
            The path of the file of each sample.

    (data, target) : tuple if ``return_X_y`` is True
        The `data` and `target` arrays described above.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.

    NotADirectoryError
        If `path` is not a folder.

    ValueError
        If `image_size` is not a positive integer, `path` has no class
        folder, or a class folder holds no image.

    OSError
        If an image file cannot be read (with ``lazy=False`` and
        ``on_error="raise"``); the message names the file.

    Examples
    --------
    >>> from skfewshot.datasets import load_image_folder
    >>> dataset = load_image_folder("my_images/", image_size=32)  # doctest: +SKIP
    >>> dataset.data.shape  # doctest: +SKIP
    (120, 1, 32, 32)
    """
    if lazy:
        folder = ImageFolder(
            path,
            image_size,
            grayscale=grayscale,
            invert=invert,
            cache_size=cache_size,
            on_error=on_error,
        )
        if return_X_y:
            return folder, folder.target
        return Bunch(
            data=folder,
            target=folder.target,
            target_names=folder.target_names,
            filenames=np.array(folder.filenames, dtype=object),
        )
    image_size = _check_image_size(image_size)
    on_error = Options("raise", "skip").check(on_error, "on_error", "load_image_folder")
    if Integer(0).check(cache_size, "cache_size", "load_image_folder"):
        raise ValueError(
            f"load_image_folder: cache_size={cache_size!r} keeps decoded images of a lazy "
            "folder; it needs lazy=True (with lazy=False every image is decoded once)."
        )
    class_names, filenames, target = _list_image_folder(path)

    mode = "L" if grayscale else "RGB"
    data = np.empty(
        (len(filenames), 1 if grayscale else 3, image_size, image_size),
        dtype=np.float32,
    )
    kept = np.ones(len(filenames), dtype=bool)
    for i, filename in enumerate(filenames):
        try:
            pixels = _read_image(filename, mode, image_size)
        except OSError as exc:
            if on_error == "raise":
                raise
            warnings.warn(f"Skipped an unreadable image: {exc}", UserWarning, stacklevel=2)
            kept[i] = False
            continue
        data[i] = pixels[np.newaxis] if grayscale else pixels.transpose(2, 0, 1)
    if not kept.all():
        data = data[kept]
        filenames = [name for name, keep in zip(filenames, kept) if keep]
        target = [label for label, keep in zip(target, kept) if keep]
    if invert:
        np.subtract(1, data, out=data)
    target = np.asarray(target, dtype=np.int64)

    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        target_names=np.array(class_names, dtype=str),
        filenames=np.array(filenames, dtype=str),
    )


def _list_image_folder(path):
    """The class names, the image files (sorted by class, then name) and their class indices."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"The image folder {path!r} does not exist. Give the path of a "
            "folder holding one subfolder of images per class."
        )
    if not os.path.isdir(path):
        raise NotADirectoryError(
            f"{path!r} is not a folder. Give the path of a folder holding one "
            "subfolder of images per class."
        )

    with os.scandir(path) as entries:
        class_names = sorted(
            entry.name for entry in entries if entry.is_dir() and not entry.name.startswith(".")
        )
    if not class_names:
        raise ValueError(
            f"The folder {path!r} has no class folder. Put the images of each "
            "class in their own subfolder of it, named after the class."
        )

    filenames, target = [], []
    for class_index, class_name in enumerate(class_names):
        class_dir = os.path.join(path, class_name)
        with os.scandir(class_dir) as entries:
            files = sorted(
                entry.name
                for entry in entries
                if entry.is_file()
                and not entry.name.startswith(".")
                and entry.name.lower().endswith(IMAGE_EXTENSIONS)
            )
        if not files:
            raise ValueError(
                f"The class folder {class_dir!r} holds no image. Supported "
                f"extensions are {', '.join(IMAGE_EXTENSIONS)}; remove the "
                "folder or add images to it."
            )
        filenames.extend(os.path.join(class_dir, name) for name in files)
        target.extend([class_index] * len(files))
    return class_names, filenames, target


class ImageFolder(LazySamples):
    """An image folder read lazily: the files listed up front, each image decoded when read.

    The folder layout and the images are those of :func:`load_image_folder`
    (one subfolder per class; sorted by class, then file name; resized to
    ``image_size``; gray levels or RGB in [0, 1]), which returns one with
    ``lazy=True``. Nothing is decoded when it is opened: a meta-learner
    reads the images of each episode, :class:`~skfewshot.EmbeddingTransformer`
    and the classifiers ``batch_size`` at a time, so a folder far larger
    than memory (miniImageNet, tieredImageNet) is used as it is::

        folder = ImageFolder("tiered_imagenet/train", image_size=84, grayscale=False)
        learner.fit(folder, folder.target)

    It is array-like for scikit-learn's tools (``len``, ``shape``,
    ``X[indices]`` decodes those images), see
    :class:`~skfewshot.datasets.LazySamples`.

    Parameters
    ----------
    path : str or path-like
        The folder holding the class folders.
    image_size : int, default=28
        Side of the square images, in pixels (Lanczos resampling).
    grayscale : bool, default=True
        One gray channel if True, three RGB channels otherwise.
    invert : bool, default=False
        Return ``1 - v`` instead of the levels ``v``.
    cache_size : int, default=0
        Decoded images kept in memory, the least recently used evicted first
        (0: none). Each loader worker keeps its own cache: ``cache_size``
        images of ``4 * n_channels * image_size**2`` bytes each.
    on_error : {"raise", "skip"}, default="raise"
        What an image file that cannot be read (corrupt, truncated, removed)
        does when it is met in training: raise a
        :class:`~skfewshot.datasets.SampleReadError` (an :class:`OSError`)
        naming the file, or skip the episode (or batch) that holds it, with
        a warning naming the file; the other episodes are drawn as they
        would be without it. Evaluation (:meth:`take`, ``transform``,
        ``predict``) always raises: it needs every sample it reads.

    Attributes
    ----------
    target : ndarray of shape (n_samples,)
        The class of each image, as int64 indices into ``target_names``:
        the labels to fit on.
    target_names : ndarray of shape (n_classes,)
        The class folder names, sorted.
    filenames : list of str
        The path of each image.
    sample_shape : tuple of int
        ``(n_channels, image_size, image_size)``.

    Examples
    --------
    >>> from skfewshot.datasets import ImageFolder
    >>> folder = ImageFolder("mini_imagenet/train", image_size=84,
    ...                      grayscale=False)  # doctest: +SKIP
    >>> folder.shape  # doctest: +SKIP
    (38400, 3, 84, 84)
    >>> folder[[0, 1]].shape  # decodes two images  # doctest: +SKIP
    (2, 3, 84, 84)
    """

    def __init__(
        self, path, image_size=28, *, grayscale=True, invert=False, cache_size=0, on_error="raise"
    ):
        owner = type(self).__name__
        self.path = os.fspath(path)
        self.image_size = _check_image_size(image_size)
        self.grayscale = bool(grayscale)
        self.invert = bool(invert)
        self.cache_size = Integer(0).check(cache_size, "cache_size", owner)
        self.on_error = Options("raise", "skip").check(on_error, "on_error", owner)
        class_names, filenames, target = _list_image_folder(self.path)
        self.target_names = np.array(class_names, dtype=str)
        self.target = np.asarray(target, dtype=np.int64)
        # The file names packed in one buffer: no Python object per image, which loader
        # workers started by fork would otherwise copy as they touch them.
        encoded = [os.fsencode(name) for name in filenames]
        self._offsets = np.cumsum([0, *map(len, encoded)], dtype=np.int64)
        self._names = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        self._what = f"the image folder {self.path!r}"
        self._cache = OrderedDict()

    def __len__(self):
        return len(self.target)

    @property
    def sample_shape(self):
        return (1 if self.grayscale else 3, self.image_size, self.image_size)

    def filename(self, index):
        """The path of image ``index``.

        Parameters
        ----------
        index : int
            An image, in ``[0, len(self))``.

        Returns
        -------
        filename : str
        """
        start, stop = self._offsets[index], self._offsets[index + 1]
        return os.fsdecode(self._names[start:stop].tobytes())

    @property
    def filenames(self):
        """The path of each image, as a list (built on each access)."""
        return [self.filename(index) for index in range(len(self))]

    def _describe(self, index):
        return f"the image file {self.filename(index)!r} (sample {index} of {self._what})"

    def _read(self, index):
        sample = self._cache.get(index)
        if sample is not None:
            self._cache.move_to_end(index)
            return sample
        filename = self.filename(index)
        try:
            pixels = _read_image(filename, "L" if self.grayscale else "RGB", self.image_size)
        except OSError as exc:
            raise SampleReadError(f"{exc} (sample {index} of {self._what})") from exc
        sample = pixels[np.newaxis] if self.grayscale else pixels.transpose(2, 0, 1)
        if self.invert:
            sample = np.subtract(1, sample)  # in float32, as load_image_folder inverts
        if self.cache_size:
            self._cache[index] = sample
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return sample

    def __getstate__(self):
        state = dict(vars(self))
        state["_cache"] = OrderedDict()  # a copy (e.g. in a loader worker) starts empty
        return state

    def __repr__(self):
        return (
            f"ImageFolder({self.path!r}, image_size={self.image_size}, "
            f"grayscale={self.grayscale}, invert={self.invert}: {len(self)} images of "
            f"{len(self.target_names)} classes)"
        )


#: Pillow's modes of 16-bit gray images (PNG), read to gray levels in [0, 1] without
#: going through 8 bits, where every value from 255 up would become white.
_GRAY_16 = ("I;16", "I;16B", "I;16L", "I")


def _read_image(filename, mode, image_size):
    """Read `filename` in `mode` as float32 levels in [0, 1], resized to `image_size`."""
    try:
        with Image.open(filename) as img:
            if mode == "L" and img.mode in _GRAY_16:
                img = Image.fromarray(np.asarray(img, dtype=np.float32) / 65535, mode="F")
                full_scale = 1
            else:
                img = img.convert(mode)
                full_scale = 255
            if img.size != (image_size, image_size):
                img = img.resize((image_size, image_size), Image.Resampling.LANCZOS)
            return np.asarray(img, dtype=np.float32) / np.float32(full_scale)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise OSError(
            f"Cannot read the image file {filename!r} ({type(exc).__name__}: "
            f"{exc}). Repair or remove it."
        ) from exc
