"""Loader for image datasets stored as one folder per class."""

# License: BSD-3-Clause

import os

import numpy as np
from PIL import Image
from sklearn.utils import Bunch

from ._base import _check_image_size

__all__ = ["load_image_folder"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def load_image_folder(path, image_size=28, *, grayscale=True, invert=False, return_X_y=False):
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

    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        Dictionary-like object, with the following attributes.

        data : ndarray of shape (n_samples, n_channels, image_size, image_size)
            The images as float32 values in [0, 1], with ``n_channels`` 1 if
            `grayscale` else 3. Samples are sorted by class then file name.
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
        If an image file cannot be read; the message names the file.

    Examples
    --------
    >>> from skfewshot.datasets import load_image_folder
    >>> dataset = load_image_folder("my_images/", image_size=32)  # doctest: +SKIP
    >>> dataset.data.shape  # doctest: +SKIP
    (120, 1, 32, 32)
    """
    image_size = _check_image_size(image_size)
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

    mode = "L" if grayscale else "RGB"
    data = np.empty(
        (len(filenames), 1 if grayscale else 3, image_size, image_size),
        dtype=np.float32,
    )
    for i, filename in enumerate(filenames):
        pixels = _read_image(filename, mode, image_size)
        data[i] = pixels[np.newaxis] if grayscale else pixels.transpose(2, 0, 1)
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
