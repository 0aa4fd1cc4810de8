"""Random affine distortions of images, per sample, for training (Koch et al. 2015)."""

import numpy as np
import torch
from torch.nn import functional as F

from .._param_validation import Positive, validate_params


class _Range:
    """A non-negative number (the half-width of a symmetric range), 0 switching it off."""

    def check(self, value, name, owner=None):
        if value == 0 and not isinstance(value, bool):
            return 0.0
        return Positive().check(value, name, owner)


class RandomAffine:
    """Random affine distortions of images, drawn per sample: rotation, shear, scale, shift.

    The distortions Koch et al. (2015) used to augment Omniglot, applied to a
    batch of images ``(n, channels, height, width)`` by bilinear resampling
    (:func:`torch.nn.functional.grid_sample`; pixels from outside the image
    are 0, the background of Omniglot's strokes). Every sample gets its own
    rotation by an angle in ``[-rotation, rotation]`` degrees, shears in
    ``[-shear, shear]`` along each axis, a zoom factor in ``[1 - scale, 1 +
    scale]`` per axis and a shift in ``[-translate, translate]`` of the
    image's side per axis, all uniform; 0 switches a distortion off.

    A meta-learner applies it to the samples of its training episodes (or
    batches) with its own random generator, so the same ``random_state``
    gives the same distortions (see the ``augmentation`` parameter of
    :class:`~skfewshot.base.EpisodicLearner`); validation, scoring and the
    classifiers never distort.

    Parameters
    ----------
    rotation : float, default=10.0
        Largest rotation, in degrees.
    shear : float, default=0.3
        Largest shear factor along each axis.
    scale : float, default=0.2
        Largest relative change of size along each axis.
    translate : float, default=0.05
        Largest shift along each axis, as a fraction of the image's side.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skfewshot.datasets import RandomAffine
    >>> images = torch.zeros(4, 1, 28, 28)
    >>> images[:, :, 10:18, 13:15] = 1  # a bar
    >>> distorted = RandomAffine()(images, np.random.RandomState(0))
    >>> distorted.shape
    torch.Size([4, 1, 28, 28])
    """

    _parameter_constraints = {
        name: _Range() for name in ("rotation", "shear", "scale", "translate")
    }

    def __init__(self, rotation=10.0, shear=0.3, scale=0.2, translate=0.05):
        params = {"rotation": rotation, "shear": shear, "scale": scale, "translate": translate}
        validate_params(params, self._parameter_constraints, "RandomAffine")
        self.rotation = rotation
        self.shear = shear
        self.scale = scale
        self.translate = translate

    def __repr__(self):
        return (
            f"RandomAffine(rotation={self.rotation!r}, shear={self.shear!r}, "
            f"scale={self.scale!r}, translate={self.translate!r})"
        )

    def matrices(self, n, rng):
        """The (n, 2, 3) affine maps, in the normalised coordinates of ``affine_grid``."""
        angle = np.deg2rad(rng.uniform(-self.rotation, self.rotation, n))
        shear = rng.uniform(-self.shear, self.shear, (2, n))
        zoom = rng.uniform(1 - self.scale, 1 + self.scale, (2, n))
        shift = 2 * rng.uniform(-self.translate, self.translate, (2, n))
        cos, sin = np.cos(angle), np.sin(angle)
        rotate = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)
        shear_m = np.stack(
            [np.stack([np.ones(n), shear[0]], -1), np.stack([shear[1], np.ones(n)], -1)], 1
        )
        linear = rotate @ shear_m * (1 / zoom.T)[:, :, None]
        return np.concatenate([linear, shift.T[:, :, None]], axis=2)

    def __call__(self, X, rng):
        """Distort each image of ``X``, a tensor (n, channels, height, width), with ``rng``."""
        if X.ndim != 4:
            raise ValueError(
                "RandomAffine distorts images of shape (n_samples, channels, height, width), "
                f"got samples of shape {tuple(X.shape[1:])}. Use augmentation only with "
                "image data (e.g. Omniglot), or reshape the samples to images."
            )
        return warp(X, torch.as_tensor(self.matrices(len(X), rng), dtype=X.dtype, device=X.device))


def warp(X, theta):
    """Resample the images ``X`` (n, channels, height, width) by the affine maps ``theta``.

    ``theta`` is (n, 2, 3), one map per image, or (1, 2, 3), one map for all,
    in the normalised coordinates of :func:`torch.nn.functional.affine_grid`.
    """
    grid = F.affine_grid(theta.expand(len(X), 2, 3), list(X.shape), align_corners=False)
    return F.grid_sample(X, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


__all__ = ["RandomAffine"]
