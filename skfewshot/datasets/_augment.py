"""Class-level data augmentation for few-shot datasets."""

# License: BSD-3-Clause

import numbers

import numpy as np

__all__ = ["rotate_classes"]


def rotate_classes(X, y, angles=(0, 90, 180, 270)):
    """Add rotated copies of the images as new classes.

    Each image is rotated by each angle in `angles`, and the rotated copies
    of a class form a new class: rotating all classes by 4 angles multiplies
    the number of classes by 4. This is the augmentation of Omniglot used by
    Vinyals et al. (2016) and Snell et al. (2017), where a character rotated
    by 90 degrees is treated as a new character.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_channels, height, width) or \
            (n_samples, height, width)
        The images. They must be square (``height == width``).

    y : array-like of shape (n_samples,)
        The class of each image. Labels of any type are accepted: they are
        encoded as integers ``0..n_classes - 1`` in the order of
        ``np.unique(y)``, so that integer labels that already are
        ``0..n_classes - 1`` are kept as they are.

    angles : sequence of int, default=(0, 90, 180, 270)
        The rotation angles, in degrees counter-clockwise (the direction of
        :func:`numpy.rot90`). They must be multiples of 90 and distinct
        modulo 360. Include 0 to keep the original images.

    Returns
    -------
    X_rot : ndarray of shape (n_samples * len(angles), ...)
        The rotated images, with the dtype and trailing shape of `X`, as a
        C-contiguous array. The first `n_samples` images are rotated by
        ``angles[0]``, the next `n_samples` by ``angles[1]``, and so on.

    y_rot : ndarray of shape (n_samples * len(angles),)
        The int64 class of each rotated image: the image of class ``c``
        (encoded as above) rotated by ``angles[k]`` has class
        ``c + k * n_classes``. The rotations by ``angles[0]`` therefore keep
        the encoded labels of `y`, and for a label ``y_rot[i]`` the original
        label is ``np.unique(y)[y_rot[i] % n_classes]``.

    Raises
    ------
    ValueError
        If `X` is not 3D or 4D, its images are not square, its length does
        not match `y`, or `angles` is empty, holds angles that are not
        multiples of 90 or angles equal modulo 360.

    Examples
    --------
    >>> import numpy as np
    >>> from skfewshot.datasets import rotate_classes
    >>> X = np.arange(2 * 1 * 2 * 2).reshape(2, 1, 2, 2)
    >>> y = np.array([0, 1])
    >>> X_rot, y_rot = rotate_classes(X, y, angles=(0, 90))
    >>> X_rot.shape
    (4, 1, 2, 2)
    >>> y_rot
    array([0, 1, 2, 3])
    >>> X_rot[2, 0]
    array([[1, 3],
           [0, 2]])
    """
    X = np.asarray(X)
    if X.ndim not in (3, 4):
        raise ValueError(
            "X must be a 3D array of shape (n_samples, height, width) or a 4D "
            "array of shape (n_samples, n_channels, height, width), got an "
            f"array of shape {X.shape}."
        )
    if X.shape[-1] != X.shape[-2]:
        raise ValueError(
            "rotate_classes needs square images (height == width) so that "
            f"rotated images keep their shape, got images of shape "
            f"{X.shape[-2:]}. Crop or resize the images first."
        )
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(
            f"y must be a 1D array with one label per image of X ({len(X)}), "
            f"got an array of shape {y.shape}."
        )
    quarter_turns = _angles_to_quarter_turns(angles)

    classes, y_index = np.unique(y, return_inverse=True)
    y_index = y_index.reshape(-1).astype(np.int64, copy=False)
    n_classes = len(classes)

    X_rot = np.concatenate([np.rot90(X, k, axes=(-2, -1)) for k in quarter_turns], axis=0)
    y_rot = np.concatenate([y_index + i * n_classes for i in range(len(quarter_turns))])
    return np.ascontiguousarray(X_rot), y_rot


def _angles_to_quarter_turns(angles):
    """Validate `angles` and return the number of quarter turns of each."""
    if isinstance(angles, numbers.Number):
        angles = [angles]
    angles = list(angles)
    if not angles:
        raise ValueError("angles must hold at least one angle, got none.")
    quarter_turns = []
    for angle in angles:
        if not isinstance(angle, numbers.Real) or isinstance(angle, bool) or angle % 90 != 0:
            raise ValueError(
                "angles must be multiples of 90 degrees (rotations by other "
                f"angles would change the image grid), got {angle!r}."
            )
        quarter_turns.append(int(angle // 90) % 4)
    if len(set(quarter_turns)) != len(quarter_turns):
        raise ValueError(
            f"angles must be distinct modulo 360, got {angles}: equal angles "
            "would create classes holding identical images."
        )
    return quarter_turns
