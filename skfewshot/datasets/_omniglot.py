"""Loader for the Omniglot handwritten characters dataset."""

# License: BSD-3-Clause

import hashlib
import io
import os
import re
import warnings
import zipfile
import zlib
from collections import namedtuple

import numpy as np
from PIL import Image
from sklearn.utils import Bunch

from ._base import (
    _check_image_size,
    _fetch_remote,
    _get_fallback_cache_home,
    _is_read_only_location,
    _load_npz,
    _save_npz_atomic,
    get_data_home,
)

__all__ = ["fetch_omniglot"]

RemoteArchive = namedtuple("RemoteArchive", ["filename", "url", "md5"])

_OMNIGLOT_URL = "https://github.com/brendenlake/omniglot/raw/master/python/"

#: Archive of each subset: file name in ``<data_home>/omniglot/``, download
#: URL and md5 checksum of the official file. Entries are plain
#: ``(filename, url, md5)`` tuples as far as `fetch_omniglot` is concerned.
OMNIGLOT_ARCHIVES = {
    subset: RemoteArchive(
        filename=f"images_{subset}.zip",
        url=f"{_OMNIGLOT_URL}images_{subset}.zip",
        md5=md5,
    )
    for subset, md5 in [
        ("background", "68d2efa1b9178cc56df9314c21c6e718"),
        ("evaluation", "6b91aef0f799c5bb55b94e3f2daec811"),
        ("background_small1", "e704a628b5459e08445c13499850abc4"),
        ("background_small2", "b75a71a51d3b13f821f212756fe481fd"),
    ]
}

ArchiveContents = namedtuple("ArchiveContents", ["alphabets", "characters", "drawers"])

#: What each official archive holds: ``alphabets`` alphabet folders with
#: ``characters`` character folders in all, under ``images_<subset>/``, each
#: holding one drawing by each of the ``drawers`` drawers,
#: ``<id>_<drawer>.png`` (``characterNN/0108_01.png`` to ``0108_20.png``,
#: one 4-digit id per character). An archive already in the data folder is
#: loaded without a checksum (a re-encoded copy is fine), so its members are
#: checked against this instead: a member renamed, missing or added would
#: otherwise change the data set silently. A subset without an entry (e.g.
#: the small synthetic archives of the tests) is only checked for what holds
#: in any archive: images named ``<id>_<drawer>.png``, one id per character,
#: no drawer twice.
OMNIGLOT_CONTENTS = {
    "background": ArchiveContents(alphabets=30, characters=964, drawers=20),
    "evaluation": ArchiveContents(alphabets=20, characters=659, drawers=20),
    "background_small1": ArchiveContents(alphabets=5, characters=136, drawers=20),
    "background_small2": ArchiveContents(alphabets=5, characters=156, drawers=20),
}

# The names of the drawings: any archive, and the official ones (case included).
_DRAWING = re.compile(r"(\d+)_(\d+)\.png", re.IGNORECASE | re.ASCII)
_OFFICIAL_DRAWING = re.compile(r"\d{4}_\d{2}\.png", re.ASCII)
_OFFICIAL_CHARACTER = re.compile(r"character\d{2}", re.ASCII)

# Problems named in the error of an incomplete archive (then counted).
_PROBLEMS_SHOWN = 5

# Bump when the decoding changes, so that stale caches are not used (2: the archives
# are checked for completeness, so a cache of an incomplete archive is not used).
_CACHE_VERSION = 2

# Images decoded, then resized together, per batch (bounds the memory used by
# the full-size images).
_BATCH_SIZE = 512

_CACHE_KEYS = ("key", "images", "target", "alphabet", "target_names", "alphabet_names")

DESCR = """\
.. _omniglot_dataset:

Omniglot handwritten characters dataset
---------------------------------------

**Data Set Characteristics:**

=================  =====================================================
Alphabets          50 (30 in ``background``, 20 in ``evaluation``)
Characters         1,623 (964 in ``background``, 659 in ``evaluation``)
Samples per class  20 (one per drawer)
Samples total      32,460 (19,280 in ``background``, 13,180 in ``evaluation``)
Original size      105x105 binary images
=================  =====================================================

Omniglot contains handwritten characters from 50 alphabets, each drawn once
by 20 different people through Amazon Mechanical Turk. With many classes and
few examples per class it is the standard benchmark for few-shot learning.

The data comes in the official splits of the Omniglot repository:
``background`` (for learning general knowledge about characters) and
``evaluation`` (disjoint alphabets, for testing one-shot classification), and
two minimal variants of the background set, ``background_small1`` (5
alphabets, 136 characters, 2,720 images) and ``background_small2`` (5
alphabets, 156 characters, 3,120 images).

:func:`~skfewshot.datasets.fetch_omniglot` returns the images as float32
arrays of shape ``(n_samples, 1, image_size, image_size)`` with values in
[0, 1] where **strokes are 1** and the background is 0 (the original PNGs are
black strokes on white). Images are resized with Pillow's Lanczos filter.
Classes (``target``) are characters, numbered in sorted alphabet then
character order; ``alphabet`` gives the alphabet of each sample.

Common protocols:

- Lake et al.: learn on ``background``, test on ``evaluation`` (the minimal
  variants learn on ``background_small1`` or ``background_small2`` only).
- Vinyals et al. (Matching Networks) and Snell et al. (Prototypical
  Networks): pool all 1,623 characters, resize to 28x28, add rotations by
  90, 180 and 270 degrees as new classes
  (:func:`~skfewshot.datasets.rotate_classes`), train on 1,200 characters
  and test on the remaining 423.

Known quirk: in ``Braille/character01`` the drawings of drawers 03 and 19 are
identical.

The dataset is released under the MIT license.

.. rubric:: References

- Lake, B. M., Salakhutdinov, R., and Tenenbaum, J. B. (2015).
  Human-level concept learning through probabilistic program induction.
  Science, 350(6266), 1332-1338.
- https://github.com/brendenlake/omniglot
"""


def fetch_omniglot(
    subset="background",
    *,
    data_home=None,
    image_size=28,
    download_if_missing=True,
    return_X_y=False,
):
    """Load the Omniglot handwritten characters dataset (classification).

    Download it if necessary. The images are read from the zip archive
    ``<data_home>/omniglot/images_<subset>.zip`` (no extraction to disk) and
    the decoded arrays are cached, so that later calls are fast.

    =================  ==================================
    Classes            964 (``background``)
    Samples total      19,280 (``background``)
    Dimensionality     ``image_size * image_size``
    Features           real, between 0 and 1
    =================  ==================================

    Read more in the :ref:`dataset description <omniglot_dataset>`.

    Parameters
    ----------
    subset : {"background", "evaluation", "background_small1", \
            "background_small2"}, default="background"
        Which official split to load: ``"background"`` (30 alphabets, 964
        characters) for training, ``"evaluation"`` (20 other alphabets, 659
        characters) for testing, or one of the minimal background sets
        ``"background_small1"`` (5 alphabets, 136 characters) and
        ``"background_small2"`` (5 alphabets, 156 characters).

    data_home : str or path-like, default=None
        Folder in which the archive is looked for, in an ``omniglot``
        subfolder, and downloaded to. By default it is given by
        :func:`~skfewshot.datasets.get_data_home`: the ``SKFEWSHOT_DATA``
        environment variable, or ``~/skfewshot_data``.

    image_size : int, default=28
        Side of the returned square images, in pixels. The original
        105x105 images are resized with Pillow's Lanczos filter; use 105 to
        get them unchanged.

    download_if_missing : bool, default=True
        If True, download the archive from the Omniglot repository when it is
        not in `data_home`, and verify its md5 checksum. If False, raise an
        :class:`OSError` instead. An archive already present is used as it
        is, without checksum, so a local copy may be re-encoded; its members
        are checked instead: every character of an official subset drawn once
        by each of its 20 drawers, and the official numbers of alphabets and
        characters (``OMNIGLOT_CONTENTS`` in ``skfewshot.datasets._omniglot``).

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch object.

    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        Dictionary-like object, with the following attributes.

        data : ndarray of shape (n_samples, 1, image_size, image_size)
            The images as float32 values in [0, 1], strokes being 1 and the
            background 0. Samples are sorted by alphabet, character and file
            name, so that the order is deterministic.
        target : ndarray of shape (n_samples,)
            The character (class) of each sample, as int64 in
            ``[0, n_characters)``; characters are numbered in sorted alphabet
            then character order.
        alphabet : ndarray of shape (n_samples,)
            The alphabet of each sample, as int64 indices into
            `alphabet_names`.
        target_names : ndarray of shape (n_characters,)
            The name of each character, ``"<Alphabet>/characterNN"``.
        alphabet_names : ndarray of shape (n_alphabets,)
            The name of each alphabet, sorted.
        DESCR : str
            Description of the Omniglot dataset.

    (data, target) : tuple if ``return_X_y`` is True
        The `data` and `target` arrays described above.

    Raises
    ------
    ValueError
        If `subset` or `image_size` is not valid.

    FileNotFoundError
        If the archive is missing and `download_if_missing` is False.

    OSError
        If the archive cannot be downloaded or read, or is incomplete: a
        member renamed, missing or added (the error names the archive and what
        is wrong), rather than a smaller data set.

    Notes
    -----
    The decoded images are cached in a ``.npz`` file, keyed by subset, image
    size and the size and modification time of the archive, in
    ``<data_home>/omniglot/cache/``. When ``<data_home>/omniglot`` cannot be
    written, or has no write permission bit at all (a data folder shared
    read-only, which root could write to anyway), the cache goes to the
    folder given by the ``SKFEWSHOT_CACHE`` environment variable, or to
    ``~/.cache/skfewshot``. Existing cache files are read from both places.
    Cache files can be deleted at any time.

    Examples
    --------
    >>> from skfewshot.datasets import fetch_omniglot
    >>> omniglot = fetch_omniglot("background_small1")  # doctest: +SKIP
    >>> omniglot.data.shape  # doctest: +SKIP
    (2720, 1, 28, 28)
    >>> omniglot.target_names[:2]  # doctest: +SKIP
    array(['Balinese/character01', 'Balinese/character02'], dtype='<U...')
    """
    if not isinstance(subset, str) or subset not in OMNIGLOT_ARCHIVES:
        raise ValueError(f"subset must be one of {sorted(OMNIGLOT_ARCHIVES)}, got {subset!r}.")
    image_size = _check_image_size(image_size)

    filename, url, md5 = OMNIGLOT_ARCHIVES[subset]
    omniglot_home = os.path.join(get_data_home(data_home), "omniglot")
    archive_path = os.path.join(omniglot_home, filename)
    if not os.path.isfile(archive_path):
        if not download_if_missing:
            raise FileNotFoundError(
                f"The Omniglot archive {archive_path!r} was not found. Set "
                "data_home (or the SKFEWSHOT_DATA environment variable) to a "
                f"folder with an 'omniglot/{filename}' file, or call "
                "fetch_omniglot with download_if_missing=True to download it "
                f"from {url}."
            )
        _fetch_remote(url, archive_path, md5)

    stat = os.stat(archive_path)
    key = "|".join(
        map(
            str,
            [_CACHE_VERSION, subset, image_size, stat.st_size, stat.st_mtime_ns],
        )
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    cache_name = f"{os.path.splitext(filename)[0]}_{image_size}px_{digest}.npz"
    fallback_home = os.path.join(_get_fallback_cache_home(), "omniglot")
    # (cache file, folder whose permissions decide whether to write there):
    # a read-only data folder is never written to, even if a cache subfolder
    # was created in it before.
    cache_locations = [
        (os.path.join(omniglot_home, "cache", cache_name), omniglot_home),
        (os.path.join(fallback_home, cache_name), fallback_home),
    ]

    arrays = None
    for cache_path, _ in cache_locations:
        arrays = _load_npz(cache_path, _CACHE_KEYS)
        if arrays is not None and _is_valid_cache(arrays, key, image_size):
            break
        arrays = None

    if arrays is None:
        arrays = _decode_archive(archive_path, image_size, subset)
        arrays["key"] = np.asarray(key)
        _write_cache(cache_locations, arrays)

    # 1 - v, with v in [0, 1] the gray level: strokes (black) become 1.
    data = arrays["images"].astype(np.float32)
    data /= 255
    np.subtract(1, data, out=data)
    data = data[:, np.newaxis]
    target = arrays["target"].astype(np.int64, copy=False)

    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        alphabet=arrays["alphabet"].astype(np.int64, copy=False),
        target_names=arrays["target_names"],
        alphabet_names=arrays["alphabet_names"],
        DESCR=DESCR,
    )


def _is_valid_cache(arrays, key, image_size):
    """Whether arrays loaded from a cache file are complete and match `key`."""
    images = arrays["images"]
    n_samples = len(images)
    if arrays["key"].shape != () or str(arrays["key"]) != key:
        # A different archive or version with the same file name: not an
        # error, but not ours either.
        return False
    valid = (
        images.dtype == np.uint8
        and images.shape[1:] == (image_size, image_size)
        and arrays["target"].shape == (n_samples,)
        and arrays["alphabet"].shape == (n_samples,)
        and np.issubdtype(arrays["target"].dtype, np.integer)
        and np.issubdtype(arrays["alphabet"].dtype, np.integer)
        and arrays["target_names"].ndim == 1
        and arrays["alphabet_names"].ndim == 1
    )
    if not valid:
        warnings.warn(
            f"Ignoring an inconsistent Omniglot cache file for key {key!r}; "
            "it is rebuilt from the archive.",
            UserWarning,
            stacklevel=3,
        )
    return valid


def _write_cache(cache_locations, arrays):
    """Save `arrays` to the first cache file that can be written.

    `cache_locations` holds ``(cache file, folder)`` pairs; a cache file is
    not written when its folder is read-only.
    """
    errors = []
    for cache_path, folder in cache_locations:
        if _is_read_only_location(folder):
            errors.append(f"{cache_path!r}: {folder!r} is read-only")
            continue
        try:
            _save_npz_atomic(cache_path, **arrays)
            return
        except OSError as exc:
            errors.append(f"{cache_path!r}: {exc}")
    warnings.warn(
        "Could not cache the decoded Omniglot images, so they will be decoded "
        "again at the next call (" + "; ".join(errors) + "). Set the "
        "SKFEWSHOT_CACHE environment variable to a writable folder to fix "
        "this.",
        UserWarning,
        stacklevel=3,
    )


def _list_members(zf, archive_path):
    """Return the sorted ``(alphabet, character, file name, member)`` of the
    PNG images in the Omniglot archive `zf`."""
    members = []
    for info in zf.infolist():
        name = info.filename
        parts = name.split("/")
        if (
            info.is_dir()
            or not name.lower().endswith(".png")
            or parts[0] == "__MACOSX"
            or parts[-1].startswith("._")
        ):
            continue
        if len(parts) != 4:
            raise ValueError(
                f"Unexpected file {name!r} in {archive_path!r}: Omniglot "
                "archives hold images as "
                "'<images_subset>/<Alphabet>/characterNN/<id>_<drawer>.png'. "
                "Replace the file with an official Omniglot archive, or delete "
                "it to download it again."
            )
        members.append((parts[1], parts[2], parts[3], name))
    if not members:
        raise ValueError(
            f"No PNG image found in {archive_path!r}. Replace the file with an "
            "official Omniglot archive, or delete it to download it again."
        )
    members.sort()
    return members


def _check_contents(zf, members, archive_path, subset):
    """Check that the archive `zf` of `subset` is whole: raise an OSError if not.

    In any archive, each image is named ``<id>_<drawer>.png`` (numbers), the
    drawings of a character share one id, and no drawer drew a character
    twice. An official subset (in `OMNIGLOT_CONTENTS`) is also checked
    against the official archive: its members are under ``images_<subset>/``
    and named as the official ones (``characterNN/<4-digit id>_<2-digit
    drawer>.png``), a character folder holds PNG images only, each
    character has one drawing by each drawer, and the archive holds the
    official numbers of alphabets and characters. `members` are the sorted
    ``(alphabet, character, file name, member)`` of ``_list_members``.
    """
    expected = OMNIGLOT_CONTENTS.get(subset)
    top = os.path.splitext(os.path.basename(archive_path))[0]
    problems = []
    if expected is not None:
        for info in zf.infolist():
            parts = info.filename.split("/")
            if (
                len(parts) == 4
                and not info.is_dir()
                and parts[0] != "__MACOSX"
                and not parts[-1].startswith(".")
                and not parts[-1].lower().endswith(".png")
            ):
                problems.append(f"{info.filename!r} is not a PNG image")
    characters = {}  # (alphabet, character) -> [(id, drawer)] of its drawings
    for alphabet, character, filename, name in members:
        match = _DRAWING.fullmatch(filename)
        if match is None:
            problems.append(f"{name!r} is not named <id>_<drawer>.png")
            continue
        if expected is not None:
            if name.split("/")[0] != top:
                problems.append(f"{name!r} is not in the folder {top}/")
            if not _OFFICIAL_CHARACTER.fullmatch(character):
                problems.append(f"{name!r} is not in a folder named characterNN")
            if not _OFFICIAL_DRAWING.fullmatch(filename):
                problems.append(
                    f"{name!r} is not named as the official drawings "
                    "(<4-digit id>_<2-digit drawer>.png)"
                )
        characters.setdefault((alphabet, character), []).append(
            (match.group(1), int(match.group(2)))
        )
    for (alphabet, character), drawings in characters.items():
        ids = sorted({id_ for id_, _ in drawings})
        if len(ids) > 1:
            problems.append(
                f"the drawings of {alphabet}/{character} have {len(ids)} character ids "
                f"({_listed(ids)}), not one"
            )
        drawers = sorted(drawer for _, drawer in drawings)
        twice = sorted({drawer for drawer in drawers if drawers.count(drawer) > 1})
        details = [f"drawer {_listed(twice)} twice"] if twice else []
        count = f"{len(drawers)} drawing" + ("" if len(drawers) == 1 else "s")
        if expected is not None:
            numbers = range(1, expected.drawers + 1)  # the drawers: 01 to 20
            missing = [drawer for drawer in numbers if drawer not in drawers]
            beyond = sorted({drawer for drawer in drawers if drawer not in numbers})
            if missing:
                details.append(f"no drawing by drawer {_listed(missing)}")
            if beyond:
                details.append(f"drawer {_listed(beyond)} beyond the {expected.drawers} drawers")
            if len(drawers) != expected.drawers:
                count += f", not {expected.drawers}"
        if details:
            problems.append(f"{alphabet}/{character} has {count} ({'; '.join(details)})")
    if expected is not None:
        n_alphabets = len({alphabet for alphabet, _ in characters})
        if n_alphabets != expected.alphabets:
            problems.append(f"it holds {n_alphabets} alphabets, not {expected.alphabets}")
        if len(characters) != expected.characters:
            problems.append(f"it holds {len(characters)} characters, not {expected.characters}")
    if not problems:
        return
    shown = "; ".join(problems[:_PROBLEMS_SHOWN])
    if len(problems) > _PROBLEMS_SHOWN:
        shown += f"; and {len(problems) - _PROBLEMS_SHOWN} more problems"
    official = (
        ""
        if expected is None
        else f" The official archive holds {expected.alphabets} alphabets and "
        f"{expected.characters} characters, each drawn once by each of {expected.drawers} "
        "drawers."
    )
    url = OMNIGLOT_ARCHIVES[subset][1] if subset in OMNIGLOT_ARCHIVES else None
    source = "" if url is None else f" (from {url})"
    raise OSError(
        f"The Omniglot archive {archive_path!r} is incomplete or damaged: {shown}.{official} "
        "Delete it so that it is downloaded again, or replace it with a good copy"
        f"{source}; with download_if_missing=False (skfewshot benchmark --no-download) "
        "nothing is downloaded."
    )


def _listed(values, limit=5):
    """``values`` (drawers, as 2-digit numbers, or ids) as a short comma-separated list."""
    texts = [f"{value:02d}" if isinstance(value, int) else str(value) for value in values]
    if len(texts) > limit:
        texts = [*texts[:limit], f"... ({len(texts)} in all)"]
    return ", ".join(texts)


def _decode_archive(archive_path, image_size, subset=None):
    """Decode and resize all the images of an Omniglot archive.

    The archive is checked first (``_check_contents``): an incomplete one
    raises an OSError, never a smaller data set.

    Returns a dict with the images as uint8 gray levels (not inverted) and
    the label arrays, in the layout of the cache files.
    """
    try:
        with open(archive_path, "rb") as f:
            # Reading the archive at once avoids one seek + read per member.
            zf = zipfile.ZipFile(io.BytesIO(f.read()))
    except zipfile.BadZipFile as exc:
        raise OSError(
            f"{archive_path!r} is not a valid zip archive ({exc}). Delete it "
            "so that it is downloaded again, or replace it with a good copy."
        ) from exc

    with zf:
        members = _list_members(zf, archive_path)
        _check_contents(zf, members, archive_path, subset)
        alphabet_names = sorted({alphabet for alphabet, *_ in members})
        character_keys = sorted({(alphabet, char) for alphabet, char, *_ in members})
        alphabet_index = {name: i for i, name in enumerate(alphabet_names)}
        character_index = {name: i for i, name in enumerate(character_keys)}

        names = [member[3] for member in members]
        images = np.empty((len(names), image_size, image_size), dtype=np.uint8)
        for start in range(0, len(names), _BATCH_SIZE):
            batch = names[start : start + _BATCH_SIZE]
            images[start : start + len(batch)] = _decode_members(
                zf, batch, image_size, archive_path
            )

    return {
        "images": images,
        "target": np.array(
            [character_index[alphabet, char] for alphabet, char, *_ in members],
            dtype=np.int64,
        ),
        "alphabet": np.array(
            [alphabet_index[alphabet] for alphabet, *_ in members], dtype=np.int64
        ),
        "target_names": np.array(
            [f"{alphabet}/{char}" for alphabet, char in character_keys], dtype=str
        ),
        "alphabet_names": np.array(alphabet_names, dtype=str),
    }


def _decode_members(zf, names, image_size, archive_path):
    """Decode the PNG images `names` of `zf` to (n, image_size, image_size)
    uint8 gray levels resized with Pillow's Lanczos filter."""
    decoded = []
    for name in names:
        try:
            with Image.open(io.BytesIO(zf.read(name))) as img:
                decoded.append(np.asarray(img.convert("L")))
        except (OSError, ValueError, SyntaxError, zlib.error, zipfile.BadZipFile) as exc:
            # Pillow's UnidentifiedImageError is an OSError; zipfile's BadZipFile
            # (a member failing its CRC check) is not.
            raise OSError(
                f"Cannot decode the image {name!r} of {archive_path!r} "
                f"({type(exc).__name__}: {exc}). The archive is damaged: "
                "delete it so that it is downloaded again, or replace it with "
                "a good copy."
            ) from exc

    out = np.empty((len(decoded), image_size, image_size), dtype=np.uint8)
    # Images of the same shape (all of them in Omniglot) are resized together.
    by_shape = {}
    for i, arr in enumerate(decoded):
        by_shape.setdefault(arr.shape, []).append(i)
    for indices in by_shape.values():
        out[indices] = _resize_batch(np.stack([decoded[i] for i in indices]), image_size)
    return out


def _resize_batch(images, size):
    """Resize (n, h, w) uint8 images to (n, size, size), exactly as
    ``Image.fromarray(img).resize((size, size), Image.Resampling.LANCZOS)``
    would do for each image, but with two Pillow calls.

    Pillow resamples separably: a horizontal pass (rounded to uint8), then a
    vertical pass. A horizontal-only resize treats each row independently, so
    it can run on the images stacked vertically; likewise a vertical-only
    resize on the images placed side by side. The result is bit-identical.
    """
    n, h, w = images.shape
    if n == 0 or (h, w) == (size, size):
        return images
    lanczos = Image.Resampling.LANCZOS
    # Horizontal pass: (n * h, w) -> (n * h, size).
    tall = Image.fromarray(np.ascontiguousarray(images.reshape(n * h, w)))
    rows = np.asarray(tall.resize((size, n * h), lanczos)).reshape(n, h, size)
    # Vertical pass: (h, n * size) -> (size, n * size).
    wide = np.ascontiguousarray(rows.transpose(1, 0, 2).reshape(h, n * size))
    wide = Image.fromarray(wide)
    cols = np.asarray(wide.resize((n * size, size), lanczos))
    return cols.reshape(size, n, size).transpose(1, 0, 2)
