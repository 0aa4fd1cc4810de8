"""Dataset loaders and augmentations for few-shot learning.

The loaders follow the conventions of :mod:`sklearn.datasets`: they return a
:class:`~sklearn.utils.Bunch` (or ``(data, target)`` with
``return_X_y=True``) and keep downloaded files in a data folder given by
:func:`get_data_home`. Data larger than memory is read lazily: an
:class:`ImageFolder` decodes its images when they are read, and a torch
Dataset is read through :class:`DatasetSamples` (see :class:`LazySamples`).
"""

# License: BSD-3-Clause

from .._lazy import DatasetSamples, LazySamples, SampleReadError
from ._affine import RandomAffine
from ._augment import rotate_classes
from ._base import get_data_home
from ._folder import ImageFolder, load_image_folder
from ._omniglot import fetch_omniglot
from ._vinyals import fetch_omniglot_vinyals

__all__ = [
    "DatasetSamples",
    "ImageFolder",
    "LazySamples",
    "RandomAffine",
    "SampleReadError",
    "fetch_omniglot",
    "fetch_omniglot_vinyals",
    "get_data_home",
    "load_image_folder",
    "rotate_classes",
]
