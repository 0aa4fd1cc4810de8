"""Loader for the Vinyals et al. split of Omniglot, with rotated characters as classes."""

# License: BSD-3-Clause
# The class lists in data/omniglot_vinyals.txt come from the Prototypical Networks code
# (jakesnell/prototypical-networks), MIT License, Copyright (c) 2017 Jake Snell: the full
# notice is in that file.

import functools
from importlib import resources

import numpy as np
from sklearn.utils import Bunch

from ._omniglot import fetch_omniglot

__all__ = ["fetch_omniglot_vinyals"]

#: The splits, in the order of the documentation.
VINYALS_SPLITS = ("train", "val", "trainval", "test")

#: Rotations of each character, in degrees counter-clockwise, in the order of the classes
#: of a character in the published lists (``rot000``, ``rot090``, ``rot180``, ``rot270``).
VINYALS_ANGLES = (0, 90, 180, 270)

# Packaged file of the class lists: "<split> <archive> <Alphabet>/characterNN" a line.
_SPLIT_FILE = "omniglot_vinyals.txt"

DESCR = """\
.. _omniglot_vinyals_dataset:

Omniglot, Vinyals et al. split
------------------------------

**Data Set Characteristics:**

=================  ==========  ========  ============  ========
Split              ``train``   ``val``   ``trainval``  ``test``
=================  ==========  ========  ============  ========
Characters         1,028       172       1,200         423
Classes            4,112       688       4,800         1,692
Samples            82,240      13,760    96,000        33,840
=================  ==========  ========  ============  ========

Samples per class: 20 (one per drawer). Image size: 28x28 by default.

The split of Omniglot of Vinyals et al. (2016, Matching Networks), as
published and used by Snell et al. (2017, Prototypical Networks): the 1,623
characters of both official archives (``images_background`` and
``images_evaluation``) are pooled, and each character rotated by 0, 90, 180
and 270 degrees gives four classes. The characters are split into 1,200 for
meta-training (``trainval``; the Prototypical Networks code further splits
them into 1,028 for ``train`` and 172 for ``val``) and 423 for testing
(``test``). The splits are disjoint by character, but not by alphabet:
``Gurmukhi`` characters 1 to 41 are in ``train`` and 42 to 45 in ``test``.

Finn et al. (2017, MAML) and Sung et al. (2018, Relation Networks) follow the
same protocol (1,200 characters for meta-training, the other 423 for testing,
rotations by multiples of 90 degrees) but draw their 1,200 characters with a
seeded shuffle of the character folders, so their test characters are not
these ones.

The class lists are those published with the Prototypical Networks code
(https://github.com/jakesnell/prototypical-networks, folder
``data/omniglot/splits/vinyals/``, MIT license), shipped with skfewshot.
Classes are named ``"<Alphabet>/characterNN/rotDDD"`` and numbered in the
order of these lists, where the four rotations of a character follow each
other.

The images are those of :func:`~skfewshot.datasets.fetch_omniglot`: float32
values in [0, 1], strokes being 1, resized with Pillow's Lanczos filter. The
rotations are exact quarter turns of the resized images, counter-clockwise as
:func:`numpy.rot90` and Pillow's ``Image.rotate`` (which the Prototypical
Networks code uses).

Known quirk: in ``Braille/character01`` (in ``train``) the drawings of
drawers 03 and 19 are identical.

The Omniglot dataset and the class lists are released under the MIT license.

.. rubric:: References

- Lake, B. M., Salakhutdinov, R., and Tenenbaum, J. B. (2015).
  Human-level concept learning through probabilistic program induction.
  Science, 350(6266), 1332-1338.
- Vinyals, O., Blundell, C., Lillicrap, T., Kavukcuoglu, K., and Wierstra, D.
  (2016). Matching networks for one shot learning. NeurIPS.
- Snell, J., Swersky, K., and Zemel, R. (2017). Prototypical networks for
  few-shot learning. NeurIPS.
- https://github.com/jakesnell/prototypical-networks
"""


def fetch_omniglot_vinyals(
    split="train",
    *,
    data_home=None,
    image_size=28,
    download_if_missing=True,
    return_X_y=False,
):
    """Load the Vinyals et al. split of Omniglot, with rotated characters as classes.

    This is the split of the Omniglot results of Matching Networks (Vinyals
    et al., 2016), with the class lists published by Prototypical Networks
    (Snell et al., 2017), so that results compare like for like with those
    papers (MAML and Relation Networks use the same protocol with their own
    random split of the characters). The characters of the split are loaded
    from the two official archives with
    :func:`~skfewshot.datasets.fetch_omniglot` (downloaded if necessary,
    decoded once and cached), and each character rotated by 0, 90, 180 and
    270 degrees is a class.

    =================  ==========  ========  ============  ========
    Split              ``train``   ``val``   ``trainval``  ``test``
    =================  ==========  ========  ============  ========
    Classes            4,112       688       4,800         1,692
    Samples total      82,240      13,760    96,000        33,840
    =================  ==========  ========  ============  ========

    The description of the data set is in the ``DESCR`` attribute of the result.

    Parameters
    ----------
    split : {"train", "val", "trainval", "test"}, default="train"
        Which classes to load: ``"trainval"`` (1,200 characters) for
        meta-training and ``"test"`` (the other 423 characters) for testing,
        or ``"train"`` (1,028 characters) and ``"val"`` (172 characters),
        the split of ``"trainval"`` used by the Prototypical Networks code to
        select models.

    data_home : str or path-like, default=None
        Folder in which the Omniglot archives are looked for, in an
        ``omniglot`` subfolder, and downloaded to. By default it is given by
        :func:`~skfewshot.datasets.get_data_home`: the ``SKFEWSHOT_DATA``
        environment variable, or ``~/skfewshot_data``.

    image_size : int, default=28
        Side of the returned square images, in pixels. The original 105x105
        images are resized with Pillow's Lanczos filter; 28 is the size of
        the papers.

    download_if_missing : bool, default=True
        If True, download the archives ``images_background.zip`` and
        ``images_evaluation.zip`` from the Omniglot repository when they are
        not in `data_home`. If False, raise an :class:`OSError` instead.

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch object.

    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        Dictionary-like object, with the following attributes.

        data : ndarray of shape (n_samples, 1, image_size, image_size)
            The images as float32 values in [0, 1], strokes being 1 and the
            background 0. Samples are sorted by class, then by drawer.
        target : ndarray of shape (n_samples,)
            The class of each sample, as int64 in ``[0, n_classes)``, in the
            order of the published class lists: class ``4 * i + r`` is the
            ``i``-th character of the split rotated by
            ``(0, 90, 180, 270)[r]`` degrees, so ``target // 4`` is the
            character of a sample.
        rotation : ndarray of shape (n_samples,)
            The rotation of each sample, as int64 degrees counter-clockwise:
            0, 90, 180 or 270.
        alphabet : ndarray of shape (n_samples,)
            The alphabet of each sample, as int64 indices into
            `alphabet_names`.
        target_names : ndarray of shape (n_classes,)
            The name of each class, ``"<Alphabet>/characterNN/rotDDD"``, as
            in the published lists.
        alphabet_names : ndarray of shape (n_alphabets,)
            The name of each alphabet of the split, sorted.
        DESCR : str
            Description of the Vinyals et al. split of Omniglot.

    (data, target) : tuple if ``return_X_y`` is True
        The `data` and `target` arrays described above.

    Raises
    ------
    ValueError
        If `split` or `image_size` is not valid, or an archive lacks a
        character of the split.

    FileNotFoundError
        If an archive is missing and `download_if_missing` is False.

    OSError
        If an archive cannot be downloaded or read.

    See Also
    --------
    fetch_omniglot : The official Omniglot subsets, one class per character.
    rotate_classes : Rotated copies of any images as new classes.

    Notes
    -----
    The rotation by ``90`` degrees (classes ``rot090``) turns the image a
    quarter turn counter-clockwise: it is ``np.rot90(image, 1)``, as Pillow's
    ``Image.rotate(90)`` used by the Prototypical Networks code, and as
    :func:`~skfewshot.datasets.rotate_classes`. The images are resized before
    they are rotated, so that a rotated image is exactly the rotated pixel
    grid of the unrotated one. The Prototypical Networks code instead rotates
    the 105x105 binary images, then resizes them (to binary 28x28 images,
    Pillow resizing 1-bit images with the nearest neighbour), and transposes
    its tensors; the classes are the same, the pixels differ slightly.

    Only the archives that hold characters of the split are read:
    ``images_evaluation`` for ``"test"``, ``images_background`` for
    ``"val"``, both for ``"train"`` and ``"trainval"``. At 28x28, the returned
    images take 4 * 784 bytes each: about 260 MB for ``"train"``, 300 MB for
    ``"trainval"`` and 110 MB for ``"test"``.

    Examples
    --------
    >>> from skfewshot.datasets import fetch_omniglot_vinyals
    >>> omniglot = fetch_omniglot_vinyals("test")  # doctest: +SKIP
    >>> omniglot.data.shape  # doctest: +SKIP
    (33840, 1, 28, 28)
    >>> omniglot.target_names[:2]  # doctest: +SKIP
    array(['Gurmukhi/character42/rot000', 'Gurmukhi/character42/rot090'],
          dtype='<U...')
    """
    if not isinstance(split, str) or split not in VINYALS_SPLITS:
        raise ValueError(f"split must be one of {list(VINYALS_SPLITS)}, got {split!r}.")
    characters = _split_characters()[split]

    # The images of each character of the split, from the archive that holds it.
    images = [None] * len(characters)
    for archive in sorted({archive for archive, _ in characters}):
        omniglot = fetch_omniglot(
            archive,
            data_home=data_home,
            image_size=image_size,
            download_if_missing=download_if_missing,
        )
        samples = _samples_by_name(omniglot.target, omniglot.target_names)
        missing = []
        for i, (char_archive, name) in enumerate(characters):
            if char_archive != archive:
                continue
            if name not in samples:
                missing.append(name)
                continue
            images[i] = omniglot.data[samples[name]]
        if missing:
            raise ValueError(
                f"The Omniglot archive images_{archive}.zip has no image of "
                f"{len(missing)} character(s) of the Vinyals split, such as "
                f"{missing[0]!r}. Replace it with the official archive."
            )
        del omniglot  # the full archive is not needed any more

    n_angles = len(VINYALS_ANGLES)
    counts = np.repeat([len(x) for x in images], n_angles)
    n_samples = int(counts.sum())
    data = np.empty((n_samples,) + images[0].shape[1:], dtype=np.float32)
    start = 0
    for i in range(len(images)):
        # Consume the images of each character, to release them as soon as they are copied.
        x, images[i] = images[i], None
        for k in range(n_angles):
            data[start : start + len(x)] = np.rot90(x, k, axes=(-2, -1))
            start += len(x)
    target = np.repeat(np.arange(len(counts), dtype=np.int64), counts)

    if return_X_y:
        return data, target

    alphabets = [name.split("/")[0] for _, name in characters]
    alphabet_names = np.array(sorted(set(alphabets)), dtype=str)
    alphabet = np.searchsorted(alphabet_names, np.repeat(alphabets, n_angles))
    return Bunch(
        data=data,
        target=target,
        rotation=np.tile(np.array(VINYALS_ANGLES, dtype=np.int64), len(characters))[target],
        alphabet=alphabet.astype(np.int64)[target],
        target_names=np.array(
            [f"{name}/rot{angle:03d}" for _, name in characters for angle in VINYALS_ANGLES],
            dtype=str,
        ),
        alphabet_names=alphabet_names,
        DESCR=DESCR,
    )


@functools.cache
def _split_characters():
    """Return the ``(archive, "<Alphabet>/characterNN")`` of the characters of each split.

    The characters are read from the packaged file, in the published order; ``trainval``
    is ``train`` followed by ``val``, as in the published lists.
    """
    path = resources.files(__package__) / "data" / _SPLIT_FILE
    characters = {"train": [], "val": [], "test": []}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            split, archive, name = line.split()
            characters[split].append((archive, name))
    characters["trainval"] = characters["train"] + characters["val"]
    return {split: tuple(chars) for split, chars in characters.items()}


def _samples_by_name(target, target_names):
    """Map each class name of `target_names` to the indices of its samples in `target`."""
    order = np.argsort(target, kind="stable")
    counts = np.bincount(target, minlength=len(target_names))
    bounds = np.cumsum(counts)
    starts = bounds - counts
    return {
        name: order[begin:end]
        for name, begin, end in zip(target_names, starts, bounds)
        if end > begin
    }
