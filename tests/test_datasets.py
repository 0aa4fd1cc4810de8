"""Tests for skfewshot.datasets."""

import functools
import hashlib
import http.server
import io
import os
import shutil
import socket
import threading
import warnings
import zipfile

import numpy as np
import pytest
from PIL import Image
from sklearn.utils import Bunch

from skfewshot.datasets import (
    _base,
    _omniglot,
    fetch_omniglot,
    get_data_home,
    load_image_folder,
    rotate_classes,
)
from skfewshot.datasets._base import ChecksumError, DownloadError
from skfewshot.datasets._omniglot import OMNIGLOT_ARCHIVES

# The real Omniglot archives are found through SKFEWSHOT_DATA, resolved as
# given (relative paths are relative to the working directory). Read it before
# the autouse fixture below removes it from the environment of each test.
SHARED_DATA_HOME = os.environ.get("SKFEWSHOT_DATA") or None
SMALL1 = "images_background_small1.zip"
SMALL1_MD5 = "e704a628b5459e08445c13499850abc4"
# What the official archives hold, before the autouse fixture below empties the table.
OFFICIAL_CONTENTS = dict(_omniglot.OMNIGLOT_CONTENTS)


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path, monkeypatch):
    """Keep tests away from the user's data and cache folders.

    The synthetic archives below bear the official names but hold a few
    characters, drawn by a few drawers: no archive is checked against the
    official contents here (``OMNIGLOT_CONTENTS`` is emptied), except where a
    test sets the contents it expects. The real archives are loaded by
    module-scoped fixtures, set up before this one, with the official table.
    """
    monkeypatch.delenv("SKFEWSHOT_DATA", raising=False)
    monkeypatch.setenv("SKFEWSHOT_CACHE", str(tmp_path / "fallback_cache"))
    monkeypatch.setattr(_omniglot, "OMNIGLOT_CONTENTS", {})


def _md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def _files_under(folder):
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, _, names in os.walk(folder)
        for name in names
    )


# --------------------------------------------------------------------------
# Synthetic Omniglot-like archives (always available)
# --------------------------------------------------------------------------

SYNTHETIC_LAYOUT = {
    # alphabet: {character: number of drawers}
    "Beta": {"character01": 2, "character02": 3},
    "Alpha": {"character02": 2, "character01": 2, "character10": 1},
}


def _stroke_box(alphabet, character, drawer):
    """A black rectangle specific to each synthetic image (left, top)."""
    offset = 3 * drawer + 7 * int(character[-2:]) + (20 if alphabet == "Beta" else 0)
    return offset, 2 * offset // 3


def _synthetic_png(alphabet, character, drawer):
    img = Image.new("1", (105, 105), color=1)  # white background
    left, top = _stroke_box(alphabet, character, drawer)
    img.paste(0, (left, top, left + 20, top + 10))  # black strokes
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _make_omniglot_zip(path, top, layout=SYNTHETIC_LAYOUT):
    """Write an archive with the official layout, members in scrambled order."""
    members = [
        (alphabet, character, drawer)
        for alphabet, characters in layout.items()
        for character, n_drawers in characters.items()
        for drawer in range(n_drawers, 0, -1)
    ]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{top}/", b"")
        for alphabet, character, drawer in members:
            name = f"{top}/{alphabet}/{character}/0{character[-2:]}_{drawer:02d}.png"
            zf.writestr(name, _synthetic_png(alphabet, character, drawer))
        zf.writestr(f"{top}/README.txt", b"not an image")
    return path


@pytest.fixture
def synthetic_home(tmp_path):
    """A writable data home with a synthetic ``background_small2`` archive."""
    home = tmp_path / "data"
    (home / "omniglot").mkdir(parents=True)
    _make_omniglot_zip(
        home / "omniglot" / "images_background_small2.zip",
        "images_background_small2",
    )
    return home


def test_fetch_omniglot_synthetic_archive(synthetic_home):
    bunch = fetch_omniglot("background_small2", data_home=synthetic_home, image_size=105)

    assert isinstance(bunch, Bunch)
    assert bunch.data.shape == (10, 1, 105, 105)
    assert bunch.data.dtype == np.float32
    assert bunch.data.flags.c_contiguous
    assert set(np.unique(bunch.data)) == {0.0, 1.0}  # 1-bit images, unresized
    assert list(bunch.alphabet_names) == ["Alpha", "Beta"]
    assert list(bunch.target_names) == [
        "Alpha/character01",
        "Alpha/character02",
        "Alpha/character10",
        "Beta/character01",
        "Beta/character02",
    ]
    # Sorted by alphabet, character, then file name.
    assert bunch.target.dtype == np.int64
    assert bunch.alphabet.dtype == np.int64
    np.testing.assert_array_equal(bunch.target, [0, 0, 1, 1, 2, 3, 3, 4, 4, 4])
    np.testing.assert_array_equal(bunch.alphabet, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    assert "Omniglot" in bunch.DESCR

    # Strokes (black in the PNG) are 1, the background 0.
    expected_drawers = [1, 2, 1, 2, 1, 1, 2, 1, 2, 3]
    for image, target, drawer in zip(bunch.data, bunch.target, expected_drawers):
        alphabet, character = bunch.target_names[target].split("/")
        left, top = _stroke_box(alphabet, character, drawer)
        expected = np.zeros((105, 105), dtype=np.float32)
        expected[top : top + 10, left : left + 20] = 1
        np.testing.assert_array_equal(image[0], expected)


def test_fetch_omniglot_return_X_y(synthetic_home):
    bunch = fetch_omniglot("background_small2", data_home=synthetic_home)
    X, y = fetch_omniglot("background_small2", data_home=synthetic_home, return_X_y=True)
    np.testing.assert_array_equal(X, bunch.data)
    np.testing.assert_array_equal(y, bunch.target)
    assert X.shape == (10, 1, 28, 28)


def test_fetch_omniglot_resize_matches_pillow(synthetic_home):
    """Images are resized exactly as Pillow's Lanczos on the 'L' image."""
    X, _ = fetch_omniglot(
        "background_small2", data_home=synthetic_home, image_size=20, return_X_y=True
    )
    archive = synthetic_home / "omniglot" / "images_background_small2.zip"
    with zipfile.ZipFile(archive) as zf:
        names = sorted(n for n in zf.namelist() if n.endswith(".png"))
        for image, name in zip(X, names):
            gray = Image.open(io.BytesIO(zf.read(name))).convert("L")
            gray = gray.resize((20, 20), Image.Resampling.LANCZOS)
            expected = 1 - np.asarray(gray, dtype=np.float32) / 255
            np.testing.assert_array_equal(image[0], expected)


@pytest.mark.parametrize("shape, size", [((5, 105, 105), 28), ((3, 105, 105), 7), ((4, 9, 13), 16)])
def test_resize_batch_is_bit_identical_to_pillow(shape, size):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=shape, dtype=np.uint8)
    resized = _omniglot._resize_batch(images, size)
    assert resized.shape == (shape[0], size, size)
    for image, result in zip(images, resized):
        expected = Image.fromarray(image).resize((size, size), Image.Resampling.LANCZOS)
        np.testing.assert_array_equal(result, np.asarray(expected))


def test_fetch_omniglot_cache_hit(synthetic_home, monkeypatch):
    first = fetch_omniglot("background_small2", data_home=synthetic_home)
    cache_dir = synthetic_home / "omniglot" / "cache"
    assert len(os.listdir(cache_dir)) == 1
    assert os.listdir(cache_dir)[0].endswith(".npz")

    def fail(*args, **kwargs):
        raise AssertionError("the archive should not be decoded on a cache hit")

    monkeypatch.setattr(_omniglot, "_decode_archive", fail)
    second = fetch_omniglot("background_small2", data_home=synthetic_home)
    for key in ["data", "target", "alphabet", "target_names", "alphabet_names"]:
        np.testing.assert_array_equal(second[key], first[key])
        assert second[key].dtype == first[key].dtype


def test_a_cache_write_killed_midway_leaves_nothing_behind(synthetic_home):
    first = fetch_omniglot("background_small2", data_home=synthetic_home)
    cache_dir = synthetic_home / "omniglot" / "cache"
    (name,) = os.listdir(cache_dir)
    os.remove(cache_dir / name)
    # What a SIGKILL during the write leaves: the temporary of a process that is gone.
    (cache_dir / f".tmp-999999999-{name}").write_bytes(b"half")
    second = fetch_omniglot("background_small2", data_home=synthetic_home)
    assert os.listdir(cache_dir) == [name]
    np.testing.assert_array_equal(second.data, first.data)


def test_fetch_omniglot_cache_keyed_by_image_size_and_archive(synthetic_home, monkeypatch):
    calls = []
    decode = _omniglot._decode_archive

    def spy(*args, **kwargs):
        calls.append(args)
        return decode(*args, **kwargs)

    monkeypatch.setattr(_omniglot, "_decode_archive", spy)
    fetch_omniglot("background_small2", data_home=synthetic_home)
    fetch_omniglot("background_small2", data_home=synthetic_home)
    assert len(calls) == 1
    fetch_omniglot("background_small2", data_home=synthetic_home, image_size=14)
    assert len(calls) == 2

    # A modified archive (other size or modification time) is decoded again.
    archive = synthetic_home / "omniglot" / "images_background_small2.zip"
    stat = os.stat(archive)
    os.utime(archive, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    fetch_omniglot("background_small2", data_home=synthetic_home)
    assert len(calls) == 3


def test_fetch_omniglot_cache_falls_back_when_data_home_not_writable(
    synthetic_home, tmp_path, monkeypatch
):
    # A file where the cache folder should be makes it impossible to create,
    # like a read-only data home (chmod would not stop root).
    (synthetic_home / "omniglot" / "cache").write_bytes(b"")
    fallback = tmp_path / "elsewhere"
    monkeypatch.setenv("SKFEWSHOT_CACHE", str(fallback))

    first = fetch_omniglot("background_small2", data_home=synthetic_home)
    assert len(os.listdir(fallback / "omniglot")) == 1

    monkeypatch.setattr(_omniglot, "_decode_archive", None)  # must not be called
    second = fetch_omniglot("background_small2", data_home=synthetic_home)
    np.testing.assert_array_equal(second.data, first.data)


def test_fetch_omniglot_read_only_data_home(synthetic_home, tmp_path, monkeypatch):
    # No write permission bit: treated as read-only even when running as root.
    # A writable cache subfolder left in it does not change that.
    fallback = tmp_path / "elsewhere"
    monkeypatch.setenv("SKFEWSHOT_CACHE", str(fallback))
    (synthetic_home / "omniglot" / "cache").mkdir(mode=0o755)
    os.chmod(synthetic_home / "omniglot", 0o555)
    try:
        X, _ = fetch_omniglot("background_small2", data_home=synthetic_home, return_X_y=True)
        assert _files_under(synthetic_home) == [
            os.path.join("omniglot", "images_background_small2.zip")
        ]
    finally:
        os.chmod(synthetic_home / "omniglot", 0o755)
    assert len(os.listdir(fallback / "omniglot")) == 1
    assert X.shape == (10, 1, 28, 28)


def test_written_files_follow_the_umask(served_synthetic, tmp_path):
    umask = os.umask(0o022)
    try:
        fetch_omniglot("background_small2", data_home=tmp_path / "home")
    finally:
        os.umask(umask)
    omniglot_home = tmp_path / "home" / "omniglot"
    (cache_file,) = os.listdir(omniglot_home / "cache")
    for path in [
        omniglot_home / "images_background_small2.zip",
        omniglot_home / "cache" / cache_file,
    ]:
        assert os.stat(path).st_mode & 0o777 == 0o644


def test_fetch_omniglot_default_fallback_cache_is_in_home(synthetic_home, tmp_path, monkeypatch):
    (synthetic_home / "omniglot" / "cache").write_bytes(b"")
    monkeypatch.delenv("SKFEWSHOT_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    fetch_omniglot("background_small2", data_home=synthetic_home)
    assert len(os.listdir(tmp_path / "home" / ".cache" / "skfewshot" / "omniglot")) == 1


def test_fetch_omniglot_warns_when_no_cache_is_writable(synthetic_home, tmp_path, monkeypatch):
    (synthetic_home / "omniglot" / "cache").write_bytes(b"")
    (tmp_path / "not_a_folder").write_bytes(b"")
    monkeypatch.setenv("SKFEWSHOT_CACHE", str(tmp_path / "not_a_folder"))
    with pytest.warns(UserWarning, match="SKFEWSHOT_CACHE"):
        X, _ = fetch_omniglot("background_small2", data_home=synthetic_home, return_X_y=True)
    assert X.shape == (10, 1, 28, 28)
    assert _files_under(synthetic_home) == [
        os.path.join("omniglot", "cache"),
        os.path.join("omniglot", "images_background_small2.zip"),
    ]


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04truncated"])
def test_fetch_omniglot_rebuilds_corrupted_cache(synthetic_home, content):
    expected = fetch_omniglot("background_small2", data_home=synthetic_home)
    cache_dir = synthetic_home / "omniglot" / "cache"
    (cache_file,) = os.listdir(cache_dir)
    (cache_dir / cache_file).write_bytes(content)

    with pytest.warns(UserWarning, match="cache file"):
        rebuilt = fetch_omniglot("background_small2", data_home=synthetic_home)
    np.testing.assert_array_equal(rebuilt.data, expected.data)
    np.testing.assert_array_equal(rebuilt.target, expected.target)

    # The rebuilt cache file is valid again and no temporary file is left.
    assert os.listdir(cache_dir) == [cache_file]
    with np.load(cache_dir / cache_file) as npz:
        assert npz["images"].shape == (10, 28, 28)


def test_fetch_omniglot_missing_archive_without_download(tmp_path):
    with pytest.raises(FileNotFoundError) as excinfo:
        fetch_omniglot("background_small1", data_home=tmp_path, download_if_missing=False)
    message = str(excinfo.value)
    expected_path = os.path.join(str(tmp_path), "omniglot", SMALL1)
    assert expected_path in message
    assert "SKFEWSHOT_DATA" in message
    assert "download_if_missing=True" in message
    assert os.listdir(tmp_path) == []  # nothing created


@pytest.mark.parametrize("subset", ["train", "Background", "", None, 1])
def test_fetch_omniglot_invalid_subset(subset, tmp_path):
    with pytest.raises(ValueError, match="subset must be one of") as excinfo:
        fetch_omniglot(subset, data_home=tmp_path)
    for valid in OMNIGLOT_ARCHIVES:
        assert valid in str(excinfo.value)


@pytest.mark.parametrize("image_size", [0, -28, 28.0, 2.5, "28", None, True])
def test_fetch_omniglot_invalid_image_size(image_size, tmp_path):
    with pytest.raises(ValueError, match="image_size must be an integer >= 1"):
        fetch_omniglot("background_small1", data_home=tmp_path, image_size=image_size)


def test_fetch_omniglot_image_size_accepts_numpy_integers(synthetic_home):
    X, _ = fetch_omniglot(
        "background_small2",
        data_home=synthetic_home,
        image_size=np.int64(12),
        return_X_y=True,
    )
    assert X.shape == (10, 1, 12, 12)


def test_fetch_omniglot_not_a_zip(tmp_path):
    (tmp_path / "omniglot").mkdir()
    (tmp_path / "omniglot" / "images_evaluation.zip").write_bytes(b"<html>404</html>")
    with pytest.raises(OSError, match="not a valid zip archive"):
        fetch_omniglot("evaluation", data_home=tmp_path)


def test_fetch_omniglot_unexpected_layout(tmp_path):
    (tmp_path / "omniglot").mkdir()
    with zipfile.ZipFile(tmp_path / "omniglot" / "images_evaluation.zip", "w") as zf:
        zf.writestr("Alphabet/character01/0001_01.png", _synthetic_png("A", "c01", 1))
    with pytest.raises(ValueError, match="Unexpected file"):
        fetch_omniglot("evaluation", data_home=tmp_path)

    with zipfile.ZipFile(tmp_path / "omniglot" / "images_evaluation.zip", "w") as zf:
        zf.writestr("images_evaluation/README", b"")
    with pytest.raises(ValueError, match="No PNG image"):
        fetch_omniglot("evaluation", data_home=tmp_path)


def test_fetch_omniglot_damaged_image(tmp_path):
    (tmp_path / "omniglot").mkdir()
    with zipfile.ZipFile(tmp_path / "omniglot" / "images_evaluation.zip", "w") as zf:
        zf.writestr("images_evaluation/A/character01/0001_01.png", b"not a png")
    with pytest.raises(OSError, match="0001_01.png") as excinfo:
        fetch_omniglot("evaluation", data_home=tmp_path)
    assert "delete it" in str(excinfo.value)


def test_fetch_omniglot_flipped_bit_in_an_archive_member(tmp_path):
    # A bit flipped inside a member's data fails zipfile's CRC check (BadZipFile, which is
    # no OSError): the same clear error as a damaged image.
    (tmp_path / "omniglot").mkdir()
    archive = tmp_path / "omniglot" / "images_evaluation.zip"
    png = _synthetic_png("A", "c01", 1)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("images_evaluation/A/character01/0001_01.png", png)
    data = bytearray(archive.read_bytes())
    data[data.index(png) + len(png) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    with pytest.raises(OSError, match="0001_01.png.*BadZipFile.*delete it"):
        fetch_omniglot("evaluation", data_home=tmp_path)


# --------------------------------------------------------------------------
# Completeness of a local archive (issue 14): no checksum applies to a local
# copy, so a member renamed, missing or added must be an error, never a
# smaller (or larger) data set cached and used.
# --------------------------------------------------------------------------

# A complete archive in miniature: 2 alphabets, 3 characters (ids 0001 to 0003), each
# drawn once by each of the 20 drawers, named as in the official archives.
COMPLETE_LAYOUT = {"Alpha": ["character01", "character02"], "Beta": ["character01"]}
COMPLETE_CONTENTS = _omniglot.ArchiveContents(alphabets=2, characters=3, drawers=20)


def _complete_members(top="images_evaluation"):
    """``{member name: PNG bytes}`` of the miniature archive."""
    members = {}
    number = 0
    for alphabet, characters in COMPLETE_LAYOUT.items():
        for character in characters:
            number += 1
            for drawer in range(1, 21):
                name = f"{top}/{alphabet}/{character}/{number:04d}_{drawer:02d}.png"
                members[name] = _synthetic_png(alphabet, character, drawer)
    return members


@pytest.fixture
def complete_home(tmp_path, monkeypatch):
    """A data home for an ``evaluation`` archive, checked against COMPLETE_CONTENTS."""
    home = tmp_path / "complete"
    (home / "omniglot").mkdir(parents=True)
    monkeypatch.setitem(_omniglot.OMNIGLOT_CONTENTS, "evaluation", COMPLETE_CONTENTS)
    return home


def _write_archive(home, members):
    archive = home / "omniglot" / "images_evaluation.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return archive


def _assert_refused(home, archive, *problems):
    with pytest.raises(OSError) as excinfo:
        fetch_omniglot("evaluation", data_home=home)
    message = str(excinfo.value)
    assert message.startswith(f"The Omniglot archive {str(archive)!r} is incomplete or damaged: ")
    for problem in problems:
        assert problem in message, message
    assert "The official archive holds 2 alphabets and 3 characters" in message
    assert "Delete it so that it is downloaded again, or replace it with a good copy" in message
    assert "download_if_missing=False (skfewshot benchmark --no-download)" in message
    assert not (home / "omniglot" / "cache").exists()  # nothing cached


def test_a_complete_archive_is_loaded(complete_home):
    _write_archive(complete_home, _complete_members())
    X, y = fetch_omniglot("evaluation", data_home=complete_home, return_X_y=True)
    assert X.shape == (60, 1, 28, 28)
    np.testing.assert_array_equal(np.bincount(y), [20, 20, 20])


ONE_BYTE_RENAMES = {
    # member -> its name with one byte changed, and what the error says
    "drawer not a number": (
        "Alpha/character02/0002_07.png",
        "Alpha/character02/0002_0x.png",
        [
            "'images_evaluation/Alpha/character02/0002_0x.png' is not named <id>_<drawer>.png",
            "Alpha/character02 has 19 drawings, not 20 (no drawing by drawer 07)",
        ],
    ),
    "another drawer": (
        "Alpha/character02/0002_07.png",
        "Alpha/character02/0002_27.png",
        [
            "Alpha/character02 has 20 drawings (no drawing by drawer 07; drawer 27 beyond the "
            "20 drawers)"
        ],
    ),
    "another character id": (
        "Alpha/character02/0002_07.png",
        "Alpha/character02/0003_07.png",
        ["the drawings of Alpha/character02 have 2 character ids (0002, 0003), not one"],
    ),
    "another character": (
        "Alpha/character02/0002_07.png",
        "Alpha/character12/0002_07.png",
        [
            "Alpha/character02 has 19 drawings, not 20 (no drawing by drawer 07)",
            "Alpha/character12 has 1 drawing, not 20 (no drawing by drawer 01, 02, 03, 04, "
            "05, ... (19 in all))",
            "it holds 4 characters, not 3",
        ],
    ),
    "another alphabet": (
        "Beta/character01/0003_20.png",
        "Beto/character01/0003_20.png",
        [
            "Beta/character01 has 19 drawings, not 20 (no drawing by drawer 20)",
            "it holds 3 alphabets, not 2",
        ],
    ),
    "not a PNG": (
        "Alpha/character01/0001_05.png",
        "Alpha/character01/0001_05.pnf",
        [
            "'images_evaluation/Alpha/character01/0001_05.pnf' is not a PNG image",
            "Alpha/character01 has 19 drawings, not 20 (no drawing by drawer 05)",
        ],
    ),
    "not in the top folder": (
        "Alpha/character01/0001_05.png",
        "Alpha/character01/0001_05.png",  # the top folder renamed instead, below
        [
            "'images_evaluatiom/Alpha/character01/0001_05.png' is not in the folder "
            "images_evaluation/"
        ],
    ),
    "not a character folder": (
        "Alpha/character01/0001_05.png",
        "Alpha/characterO1/0001_05.png",
        ["'images_evaluation/Alpha/characterO1/0001_05.png' is not in a folder named characterNN"],
    ),
}


@pytest.mark.parametrize("case", list(ONE_BYTE_RENAMES))
def test_a_member_renamed_by_one_byte_is_an_error(case, complete_home):
    # It used to drop the image, or add a class, and cache the changed data set.
    old, new, problems = ONE_BYTE_RENAMES[case]
    members = _complete_members()
    data = members.pop(f"images_evaluation/{old}")
    top = "images_evaluatiom" if case == "not in the top folder" else "images_evaluation"
    members[f"{top}/{new}"] = data
    archive = _write_archive(complete_home, members)
    _assert_refused(complete_home, archive, *problems)


def test_a_missing_drawing_is_an_error(complete_home):
    members = _complete_members()
    del members["images_evaluation/Beta/character01/0003_11.png"]
    archive = _write_archive(complete_home, members)
    _assert_refused(
        complete_home, archive, "Beta/character01 has 19 drawings, not 20 (no drawing by drawer 11)"
    )


def test_an_extra_file_is_an_error(complete_home):
    members = _complete_members()
    extra_drawing = _synthetic_png("Beta", "character01", 3)
    members["images_evaluation/Beta/character01/0003_21.png"] = extra_drawing
    archive = _write_archive(complete_home, members)
    _assert_refused(
        complete_home,
        archive,
        "Beta/character01 has 21 drawings, not 20 (drawer 21 beyond the 20 drawers)",
    )
    # The same drawing twice: a second member of the same name.
    archive = _write_archive(complete_home, _complete_members())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile's "Duplicate name"
        with zipfile.ZipFile(archive, "a") as zf:
            zf.writestr("images_evaluation/Beta/character01/0003_03.png", extra_drawing)
    _assert_refused(
        complete_home, archive, "Beta/character01 has 21 drawings, not 20 (drawer 03 twice)"
    )
    # A whole extra character: complete in itself, but not in the official archive.
    members = _complete_members()
    for drawer in range(1, 21):
        name = f"images_evaluation/Beta/character02/0004_{drawer:02d}.png"
        members[name] = _synthetic_png("Beta", "character02", drawer)
    archive = _write_archive(complete_home, members)
    _assert_refused(complete_home, archive, "it holds 4 characters, not 3")
    # Files that are no drawings outside the character folders, and a macOS archive's
    # resource forks, are left alone, as before.
    members = _complete_members()
    members["images_evaluation/README.txt"] = b"not an image"
    members["__MACOSX/images_evaluation/Alpha/character01/._0001_01.png"] = b"fork"
    _write_archive(complete_home, members)
    assert fetch_omniglot("evaluation", data_home=complete_home).data.shape[0] == 60


def test_many_problems_are_counted(complete_home):
    members = {
        name: data for name, data in _complete_members().items() if not name.endswith("_20.png")
    }
    for i in range(4):
        members[f"images_evaluation/Alpha/character01/notes{i}.txt"] = b"not an image"
    archive = _write_archive(complete_home, members)
    _assert_refused(
        complete_home,
        archive,
        "'images_evaluation/Alpha/character01/notes3.txt' is not a PNG image",
        "Alpha/character01 has 19 drawings, not 20 (no drawing by drawer 20); and 2 more problems.",
    )


def test_the_official_archives_are_complete():
    # The table of the official contents against the real archives (where SKFEWSHOT_DATA
    # holds them): each passes the check.
    if SHARED_DATA_HOME is None:
        pytest.skip("SKFEWSHOT_DATA is not set: no real Omniglot data to test on")
    checked = 0
    for subset, (filename, _, _) in OMNIGLOT_ARCHIVES.items():
        path = os.path.join(SHARED_DATA_HOME, "omniglot", filename)
        if not os.path.isfile(path):
            continue
        with zipfile.ZipFile(path) as zf:
            members = _omniglot._list_members(zf, path)
            contents = OFFICIAL_CONTENTS[subset]
            assert len(members) == contents.characters * contents.drawers
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(_omniglot, "OMNIGLOT_CONTENTS", OFFICIAL_CONTENTS)
                _omniglot._check_contents(zf, members, path, subset)
        checked += 1
    if not checked:
        pytest.skip(f"no Omniglot archive in {SHARED_DATA_HOME}/omniglot")


# --------------------------------------------------------------------------
# get_data_home
# --------------------------------------------------------------------------


def test_get_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert get_data_home() == os.path.join(str(tmp_path), "skfewshot_data")
    assert get_data_home("~/other") == os.path.join(str(tmp_path), "other")
    assert get_data_home(tmp_path / "explicit") == str(tmp_path / "explicit")

    monkeypatch.setenv("SKFEWSHOT_DATA", "../shared/data")
    assert get_data_home() == "../shared/data"  # relative paths kept as given
    assert get_data_home("/explicit") == "/explicit"  # argument wins

    monkeypatch.setenv("SKFEWSHOT_DATA", "")
    assert get_data_home() == os.path.join(str(tmp_path), "skfewshot_data")
    # Nothing is created.
    assert not os.path.exists(tmp_path / "skfewshot_data")
    assert not os.path.exists(tmp_path / "other")


# --------------------------------------------------------------------------
# Downloads, from a local HTTP server
# --------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def http_server(tmp_path, monkeypatch):
    """Serve ``tmp_path / "www"`` on 127.0.0.1; yields (folder, base URL)."""
    for var in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]:
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def served_synthetic(http_server, monkeypatch):
    """Serve a synthetic archive as the ``background_small2`` download."""
    root, base_url = http_server
    archive = _make_omniglot_zip(root / "images_background_small2.zip", "images_background_small2")
    md5 = _md5(archive)
    url = base_url + "images_background_small2.zip"
    monkeypatch.setitem(
        OMNIGLOT_ARCHIVES,
        "background_small2",
        ("images_background_small2.zip", url, md5),
    )
    return url, md5


def test_download_success_is_atomic(served_synthetic, tmp_path, monkeypatch):
    url, md5 = served_synthetic
    home = tmp_path / "new_home"
    archive = home / "omniglot" / "images_background_small2.zip"

    replaced = []
    replace = os.replace

    def spy(src, dst):
        if os.fspath(dst) == os.fspath(archive):
            assert os.path.dirname(src) == str(archive.parent)  # same folder
            assert _md5(src) == md5  # complete and verified before the move
            replaced.append(src)
        return replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    X, y = fetch_omniglot("background_small2", data_home=home, return_X_y=True)

    assert len(replaced) == 1
    assert _md5(archive) == md5
    assert X.shape == (10, 1, 28, 28)
    assert len(np.unique(y)) == 5
    assert _files_under(home / "omniglot") == [
        os.path.join("cache", os.listdir(home / "omniglot" / "cache")[0]),
        "images_background_small2.zip",
    ]


def test_download_checksum_mismatch(served_synthetic, tmp_path, monkeypatch):
    url, md5 = served_synthetic
    wrong = "0" * 32
    monkeypatch.setitem(
        OMNIGLOT_ARCHIVES,
        "background_small2",
        ("images_background_small2.zip", url, wrong),
    )
    home = tmp_path / "new_home"
    with pytest.raises(ChecksumError) as excinfo:
        fetch_omniglot("background_small2", data_home=home)
    assert isinstance(excinfo.value, OSError)
    assert isinstance(excinfo.value, ValueError)
    message = str(excinfo.value)
    assert md5 in message and wrong in message
    assert url in message
    assert str(home / "omniglot" / "images_background_small2.zip") in message
    # Nothing left behind, not even the temporary file.
    assert _files_under(home) == []


def test_download_http_error(http_server, tmp_path, monkeypatch):
    _, base_url = http_server
    url = base_url + "missing.zip"
    monkeypatch.setitem(OMNIGLOT_ARCHIVES, "evaluation", ("images_evaluation.zip", url, "0" * 32))
    home = tmp_path / "new_home"
    with pytest.raises(DownloadError) as excinfo:
        fetch_omniglot("evaluation", data_home=home)
    assert not isinstance(excinfo.value, ChecksumError)
    message = str(excinfo.value)
    assert url in message
    assert str(home / "omniglot" / "images_evaluation.zip") in message
    assert "place it at" in message
    assert _files_under(home) == []


def test_download_network_failure(tmp_path, monkeypatch):
    # A port nobody listens on: the connection is refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for var in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]:
        monkeypatch.delenv(var, raising=False)
    url = f"http://127.0.0.1:{port}/images_evaluation.zip"
    monkeypatch.setitem(OMNIGLOT_ARCHIVES, "evaluation", ("images_evaluation.zip", url, "0" * 32))
    home = tmp_path / "new_home"
    with pytest.raises(OSError, match="Failed to download") as excinfo:
        fetch_omniglot("evaluation", data_home=home)
    assert isinstance(excinfo.value, DownloadError)
    assert str(home / "omniglot" / "images_evaluation.zip") in str(excinfo.value)
    assert _files_under(home) == []


def test_fetch_remote_without_checksum(http_server, tmp_path):
    root, base_url = http_server
    (root / "file.bin").write_bytes(b"payload")
    target = tmp_path / "sub" / "file.bin"
    assert _base._fetch_remote(base_url + "file.bin", target, None) == str(target)
    assert target.read_bytes() == b"payload"
    assert _files_under(tmp_path / "sub") == ["file.bin"]


def test_existing_archive_is_not_checksummed(synthetic_home, monkeypatch):
    # Local copies may be re-encoded: their checksum is not verified, and
    # nothing is downloaded.
    monkeypatch.setitem(
        OMNIGLOT_ARCHIVES,
        "background_small2",
        ("images_background_small2.zip", "http://127.0.0.1:9/x.zip", "0" * 32),
    )
    X, _ = fetch_omniglot("background_small2", data_home=synthetic_home, return_X_y=True)
    assert len(X) == 10


# --------------------------------------------------------------------------
# Real Omniglot data (skipped when SKFEWSHOT_DATA does not hold it)
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small1_archive():
    if SHARED_DATA_HOME is None:
        pytest.skip("SKFEWSHOT_DATA is not set: no real Omniglot data to test on")
    path = os.path.join(SHARED_DATA_HOME, "omniglot", SMALL1)
    if not os.path.isfile(path):
        pytest.skip(f"{path} not found (SKFEWSHOT_DATA={SHARED_DATA_HOME!r})")
    return os.path.abspath(path)


def _writable_home_with(archive, home):
    """A data home in `home` with `archive` linked (or copied) into it.

    The shared data folder is read-only for users, but not for root: loading
    from a writable copy keeps the tests from ever writing there.
    """
    target = home / "omniglot" / os.path.basename(archive)
    target.parent.mkdir(parents=True)
    try:
        os.symlink(archive, target)
    except OSError:
        shutil.copyfile(archive, target)
    return home


@pytest.fixture(scope="module")
def small1(small1_archive, tmp_path_factory):
    home = _writable_home_with(small1_archive, tmp_path_factory.mktemp("small1"))
    # Module-scoped fixtures run before the autouse isolation: isolate here too,
    # so that a user's own fallback cache is neither read nor written.
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SKFEWSHOT_DATA", raising=False)
        mp.setenv("SKFEWSHOT_CACHE", str(tmp_path_factory.mktemp("small1_fallback")))
        return home, fetch_omniglot("background_small1", data_home=home)


def test_small1_content(small1):
    _, bunch = small1
    assert bunch.data.shape == (2720, 1, 28, 28)
    assert bunch.data.dtype == np.float32
    assert bunch.data.min() == 0.0 and bunch.data.max() == 1.0
    # Strokes are 1: they cover a small part of the images.
    assert bunch.data.mean() < 0.2
    # The borders are background.
    assert bunch.data[:, :, 0, :].mean() < 0.05
    assert bunch.data[:, :, :, 0].mean() < 0.05

    assert bunch.target.dtype == np.int64 and bunch.alphabet.dtype == np.int64
    assert len(bunch.target_names) == 136
    np.testing.assert_array_equal(np.bincount(bunch.target), np.full(136, 20))
    assert np.all(np.diff(bunch.target) >= 0)
    assert list(bunch.alphabet_names) == [
        "Balinese",
        "Early_Aramaic",
        "Greek",
        "Korean",
        "Latin",
    ]
    assert bunch.target_names[0] == "Balinese/character01"
    # Each character belongs to the alphabet in its name.
    alphabets = bunch.alphabet_names[bunch.alphabet]
    prefixes = np.array([name.split("/")[0] for name in bunch.target_names])
    np.testing.assert_array_equal(alphabets, prefixes[bunch.target])


def test_small1_original_size_is_binary(small1):
    home, _ = small1
    X, y = fetch_omniglot("background_small1", data_home=home, image_size=105, return_X_y=True)
    assert X.shape == (2720, 1, 105, 105)
    assert set(np.unique(X)) == {0.0, 1.0}
    assert X.mean() < 0.2


def test_small1_cache_hit_returns_identical_arrays(small1, monkeypatch):
    home, first = small1
    monkeypatch.setattr(_omniglot, "_decode_archive", None)  # must not be called
    second = fetch_omniglot("background_small1", data_home=home)
    for key in ["data", "target", "alphabet", "target_names", "alphabet_names"]:
        np.testing.assert_array_equal(second[key], first[key])


def test_small1_read_only_data_home_uses_fallback_cache(small1_archive, tmp_path, monkeypatch):
    home = _writable_home_with(small1_archive, tmp_path / "home")
    (home / "omniglot" / "cache").write_bytes(b"")  # the data home is unwritable
    fallback = tmp_path / "fallback"
    monkeypatch.setenv("SKFEWSHOT_CACHE", str(fallback))
    X, _ = fetch_omniglot("background_small1", data_home=home, return_X_y=True)
    assert len(os.listdir(fallback / "omniglot")) == 1
    monkeypatch.setattr(_omniglot, "_decode_archive", None)
    X_again, _ = fetch_omniglot("background_small1", data_home=home, return_X_y=True)
    np.testing.assert_array_equal(X_again, X)


def test_small1_download_with_official_checksum(small1_archive, http_server, tmp_path, monkeypatch):
    root, base_url = http_server
    shutil.copyfile(small1_archive, root / SMALL1)
    filename, _, md5 = OMNIGLOT_ARCHIVES["background_small1"]
    assert md5 == SMALL1_MD5
    monkeypatch.setitem(OMNIGLOT_ARCHIVES, "background_small1", (filename, base_url + SMALL1, md5))
    home = tmp_path / "new_home"
    X, y = fetch_omniglot("background_small1", data_home=home, image_size=14, return_X_y=True)
    assert _md5(home / "omniglot" / SMALL1) == SMALL1_MD5
    assert X.shape == (2720, 1, 14, 14)
    assert len(np.unique(y)) == 136


# --------------------------------------------------------------------------
# rotate_classes
# --------------------------------------------------------------------------


def test_rotate_classes_shapes_and_labels():
    rng = np.random.default_rng(0)
    X = rng.random((6, 1, 5, 5)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    X_rot, y_rot = rotate_classes(X, y)

    assert X_rot.shape == (24, 1, 5, 5)
    assert X_rot.dtype == np.float32
    assert X_rot.flags.c_contiguous
    assert y_rot.dtype == np.int64
    np.testing.assert_array_equal(y_rot, np.concatenate([y, y + 3, y + 6, y + 9]))
    np.testing.assert_array_equal(X_rot[:6], X)  # angle 0 keeps the images
    for k in range(4):
        np.testing.assert_array_equal(X_rot[6 * k : 6 * (k + 1)], np.rot90(X, k, axes=(2, 3)))


def test_rotate_classes_90_is_a_real_rotation():
    image = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.uint8)
    X_rot, _ = rotate_classes(image[np.newaxis, np.newaxis], [0], angles=(90,))
    # Counter-clockwise, as np.rot90: the top row becomes the left column.
    expected = np.array([[3, 6, 9], [2, 5, 8], [1, 4, 7]], dtype=np.uint8)
    np.testing.assert_array_equal(X_rot[0, 0], expected)
    np.testing.assert_array_equal(X_rot[0, 0], np.rot90(image))
    assert X_rot.dtype == np.uint8


def test_rotate_classes_one_class_becomes_four():
    X = np.arange(3 * 4 * 4, dtype=np.float64).reshape(3, 4, 4)  # 3D input
    X_rot, y_rot = rotate_classes(X, np.zeros(3, dtype=int))
    assert X_rot.shape == (12, 4, 4)
    np.testing.assert_array_equal(np.unique(y_rot), [0, 1, 2, 3])
    np.testing.assert_array_equal(np.bincount(y_rot), [3, 3, 3, 3])
    # The four rotations of an asymmetric image are all different.
    assert len({X_rot[i].tobytes() for i in [0, 3, 6, 9]}) == 4


def test_rotate_classes_encodes_labels():
    X = np.zeros((4, 1, 2, 2))
    y = np.array(["b", "a", "c", "a"])
    _, y_rot = rotate_classes(X, y, angles=[0, 180])
    np.testing.assert_array_equal(y_rot, [1, 0, 2, 0, 4, 3, 5, 3])

    # Integer labels that are not 0..C-1 are encoded too.
    _, y_rot = rotate_classes(X, [10, 30, 10, 20], angles=(270, 0))
    np.testing.assert_array_equal(y_rot, [0, 2, 0, 1, 3, 5, 3, 4])


def test_rotate_classes_negative_and_large_angles():
    X = np.arange(2 * 3 * 3).reshape(2, 1, 3, 3)
    X_a, _ = rotate_classes(X, [0, 1], angles=(-90, 450))
    X_b, _ = rotate_classes(X, [0, 1], angles=(270, 90))
    np.testing.assert_array_equal(X_a, X_b)


@pytest.mark.parametrize(
    "X, y, angles, match",
    [
        (np.zeros((2, 3, 4)), [0, 1], (0, 90), "square"),
        (np.zeros((2, 1, 4, 3)), [0, 1], (0, 90), "square"),
        (np.zeros((2, 4)), [0, 1], (0, 90), "3D"),
        (np.zeros((2, 1, 1, 4, 4)), [0, 1], (0, 90), "3D"),
        (np.zeros((2, 4, 4)), [0, 1, 1], (0, 90), "one label per image"),
        (np.zeros((2, 4, 4)), [[0], [1]], (0, 90), "one label per image"),
        (np.zeros((2, 4, 4)), [0, 1], (0, 45), "multiples of 90"),
        (np.zeros((2, 4, 4)), [0, 1], (0, 90.5), "multiples of 90"),
        (np.zeros((2, 4, 4)), [0, 1], ("90",), "multiples of 90"),
        (np.zeros((2, 4, 4)), [0, 1], (), "at least one angle"),
        (np.zeros((2, 4, 4)), [0, 1], (0, 360), "distinct modulo 360"),
    ],
)
def test_rotate_classes_errors(X, y, angles, match):
    with pytest.raises(ValueError, match=match):
        rotate_classes(X, y, angles=angles)


# --------------------------------------------------------------------------
# load_image_folder
# --------------------------------------------------------------------------


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "images"
    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    (root / ".hidden").mkdir()
    # cat: a white 28x28 gray image with one black pixel, and an RGB image.
    gray = Image.new("L", (28, 28), color=255)
    gray.putpixel((3, 5), 0)
    gray.save(root / "cat" / "a.png")
    Image.new("RGB", (40, 30), color=(255, 0, 0)).save(root / "cat" / "b.JPG")
    (root / "cat" / "notes.txt").write_text("ignored")
    # dog: RGBA, 1-bit and palette images of other sizes.
    Image.new("RGBA", (10, 10), color=(0, 0, 255, 128)).save(root / "dog" / "c.png")
    Image.new("1", (56, 56), color=1).save(root / "dog" / "d.bmp")
    Image.new("P", (28, 28), color=0).save(root / "dog" / "e.gif")
    return root


def test_load_image_folder_reads_16_bit_gray_levels(tmp_path):
    levels = np.array([[0, 1000, 30000, 65535]] * 4, dtype=np.uint16)
    (tmp_path / "a").mkdir()
    Image.fromarray(levels).save(tmp_path / "a" / "x.png")  # a 16-bit gray PNG
    X, _ = load_image_folder(tmp_path, image_size=4, return_X_y=True)
    np.testing.assert_allclose(X[0, 0], levels / 65535, rtol=1e-6)  # not all white from 255 up


def test_load_image_folder_grayscale(image_folder):
    bunch = load_image_folder(image_folder)
    assert isinstance(bunch, Bunch)
    assert bunch.data.shape == (5, 1, 28, 28)
    assert bunch.data.dtype == np.float32
    assert bunch.data.min() >= 0 and bunch.data.max() <= 1
    np.testing.assert_array_equal(bunch.target, [0, 0, 1, 1, 1])
    assert bunch.target.dtype == np.int64
    assert list(bunch.target_names) == ["cat", "dog"]
    assert [os.path.relpath(f, image_folder) for f in bunch.filenames] == [
        os.path.join("cat", "a.png"),
        os.path.join("cat", "b.JPG"),
        os.path.join("dog", "c.png"),
        os.path.join("dog", "d.bmp"),
        os.path.join("dog", "e.gif"),
    ]
    # The 28x28 image is not resampled: exact pixels.
    expected = np.ones((28, 28), dtype=np.float32)
    expected[5, 3] = 0
    np.testing.assert_array_equal(bunch.data[0, 0], expected)
    np.testing.assert_allclose(bunch.data[3], 1.0)  # white 1-bit image


def test_load_image_folder_rgb_invert_and_return_X_y(image_folder):
    X, y = load_image_folder(
        image_folder, image_size=8, grayscale=False, invert=True, return_X_y=True
    )
    assert X.shape == (5, 3, 8, 8)
    assert X.dtype == np.float32
    np.testing.assert_array_equal(y, [0, 0, 1, 1, 1])
    # The red JPEG, inverted: red close to 0, green and blue close to 1.
    np.testing.assert_allclose(X[1].mean(axis=(1, 2)), [0, 1, 1], atol=0.02)
    # The white 1-bit BMP, inverted: 0 everywhere.
    np.testing.assert_array_equal(X[3], 0)


def test_load_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "missing")

    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        load_image_folder(tmp_path / "file.png")

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "loose.png").write_bytes(b"")
    with pytest.raises(ValueError, match="no class folder"):
        load_image_folder(empty)

    (empty / "class_a").mkdir()
    (empty / "class_a" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="class_a.*holds no image"):
        load_image_folder(empty)

    Image.new("L", (4, 4)).save(empty / "class_a" / "ok.png")
    (empty / "class_a" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(OSError, match="broken.png"):
        load_image_folder(empty)

    with pytest.raises(ValueError, match="image_size must be an integer >= 1"):
        load_image_folder(empty, image_size=0)
