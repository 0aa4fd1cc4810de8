"""Tests for skfewshot.datasets.fetch_omniglot_vinyals (the Vinyals et al. split of Omniglot)."""

import functools
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from conftest import _data_home
from PIL import Image
from sklearn.utils import Bunch

from skfewshot.datasets import _vinyals, fetch_omniglot, fetch_omniglot_vinyals

SPLITS = ("train", "val", "trainval", "test")
N_CHARACTERS = {"train": 1028, "val": 172, "trainval": 1200, "test": 423}
ROTATIONS = ("rot000", "rot090", "rot180", "rot270")


def _characters(split):
    return [name for _, name in _vinyals._split_characters()[split]]


# --------------------------------------------------------------------------
# The packaged class lists (always available)
# --------------------------------------------------------------------------


def test_packaged_lists_are_installed_with_their_licence():
    text = (resources.files("skfewshot.datasets") / "data" / "omniglot_vinyals.txt").read_text(
        encoding="utf-8"
    )
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert "jakesnell/prototypical-networks" in header
    assert "MIT License" in header
    assert "Copyright (c) 2017 Jake Snell" in header
    assert "Permission is hereby granted, free of charge" in header


def test_packaged_lists():
    characters = _vinyals._split_characters()
    assert {split: len(characters[split]) for split in SPLITS} == N_CHARACTERS
    train, val, test = (set(_characters(split)) for split in ("train", "val", "test"))
    assert len(train) + len(val) + len(test) == 1623  # no duplicate...
    assert not (train & val or train & test or val & test)  # ...and disjoint splits
    assert characters["trainval"] == characters["train"] + characters["val"]
    archives = {split: {archive for archive, _ in characters[split]} for split in SPLITS}
    assert archives == {
        "train": {"background", "evaluation"},
        "val": {"background"},
        "trainval": {"background", "evaluation"},
        "test": {"evaluation"},
    }
    # Every character of an alphabet is in the same archive.
    archive_of = {}
    for archive, name in characters["trainval"] + characters["test"]:
        assert archive_of.setdefault(name.split("/")[0], archive) == archive
    assert len(archive_of) == 50


@pytest.mark.parametrize("split", ["training", "Train", "", None, 0, ("train",)])
def test_bad_split_raises(split):
    with pytest.raises(ValueError, match=r"split must be one of \['train', 'val', 'trainval'"):
        fetch_omniglot_vinyals(split, data_home="/nonexistent", download_if_missing=False)


def test_bad_image_size_raises():
    with pytest.raises(ValueError, match="image_size"):
        fetch_omniglot_vinyals(
            "test", data_home="/nonexistent", image_size=0, download_if_missing=False
        )


# --------------------------------------------------------------------------
# The loader on fake archives (always available)
# --------------------------------------------------------------------------


def _fake_fetch_omniglot(subset, *, data_home, image_size, download_if_missing, calls, skip=()):
    """A stand-in for fetch_omniglot: the characters of `subset` in the Vinyals lists, each
    with 2 or 3 random images, as fetch_omniglot returns them (sorted by character)."""
    calls.append(subset)
    all_characters = _vinyals._split_characters()
    names = sorted(
        name
        for archive, name in all_characters["trainval"] + all_characters["test"]
        if archive == subset and name not in skip
    )
    rng = np.random.default_rng(len(subset))
    n_per_class = 2 + np.arange(len(names)) % 2  # not always 20: the loader must not assume it
    target = np.repeat(np.arange(len(names)), n_per_class)
    data = rng.random((len(target), 1, image_size, image_size), dtype=np.float32)
    alphabet_names = sorted({name.split("/")[0] for name in names})
    return Bunch(
        data=data,
        target=target,
        target_names=np.array(names),
        alphabet=np.searchsorted(alphabet_names, [names[t].split("/")[0] for t in target]),
        alphabet_names=np.array(alphabet_names),
    )


@pytest.fixture
def fake_archives(monkeypatch):
    calls = []
    monkeypatch.setattr(
        _vinyals, "fetch_omniglot", functools.partial(_fake_fetch_omniglot, calls=calls)
    )
    return calls


@pytest.mark.parametrize(
    "split, archives",
    [("train", ["background", "evaluation"]), ("val", ["background"]), ("test", ["evaluation"])],
)
def test_loader_on_fake_archives(fake_archives, split, archives):
    dataset = fetch_omniglot_vinyals(split, image_size=5)
    assert fake_archives == archives  # only the archives holding characters of the split
    characters = _characters(split)
    n_classes = 4 * len(characters)

    assert list(dataset.target_names) == [f"{c}/{r}" for c in characters for r in ROTATIONS]
    assert dataset.data.shape[1:] == (1, 5, 5) and dataset.data.dtype == np.float32
    assert dataset.data.flags.c_contiguous
    assert dataset.target.dtype == np.int64
    np.testing.assert_array_equal(np.unique(dataset.target), np.arange(n_classes))
    assert np.all(np.diff(dataset.target) >= 0)  # sorted by class
    counts = np.bincount(dataset.target)
    np.testing.assert_array_equal(counts[0::4], counts[1::4])  # same drawings in each rotation
    assert set(counts) == {2, 3}
    np.testing.assert_array_equal(dataset.rotation, 90 * (dataset.target % 4))
    alphabets = dataset.alphabet_names[dataset.alphabet]
    np.testing.assert_array_equal(
        alphabets, [name.split("/")[0] for name in dataset.target_names[dataset.target]]
    )
    assert list(dataset.alphabet_names) == sorted(set(alphabets))

    # Class 4 * i + k holds the images of character i, in the order of its archive,
    # rotated by k quarter turns counter-clockwise.
    sources = {
        archive: _fake_fetch_omniglot(
            archive, data_home=None, image_size=5, download_if_missing=False, calls=[]
        )
        for archive in archives
    }
    for i, (archive, name) in enumerate(_vinyals._split_characters()[split]):
        source = sources[archive]
        original = source.data[source.target == list(source.target_names).index(name)]
        for k in range(4):
            np.testing.assert_array_equal(
                dataset.data[dataset.target == 4 * i + k], np.rot90(original, k, axes=(-2, -1))
            )

    X, y = fetch_omniglot_vinyals(split, image_size=5, return_X_y=True)
    np.testing.assert_array_equal(X, dataset.data)
    np.testing.assert_array_equal(y, dataset.target)


def test_loader_arguments_are_passed_on(monkeypatch):
    received = []

    def fetch(subset, **kwargs):
        received.append(kwargs)
        return _fake_fetch_omniglot(subset, **kwargs, calls=[])

    monkeypatch.setattr(_vinyals, "fetch_omniglot", fetch)
    fetch_omniglot_vinyals("test", data_home="/some/where", image_size=4, download_if_missing=False)
    assert received == [{"data_home": "/some/where", "image_size": 4, "download_if_missing": False}]


def test_missing_character_raises(monkeypatch):
    skip = ("Tengwar/character03",)
    monkeypatch.setattr(
        _vinyals, "fetch_omniglot", functools.partial(_fake_fetch_omniglot, calls=[], skip=skip)
    )
    with pytest.raises(ValueError, match=r"images_evaluation\.zip has no image of 1 .*Tengwar"):
        fetch_omniglot_vinyals("test", image_size=4)


# --------------------------------------------------------------------------
# The published lists and the real archives (skip without local data)
# --------------------------------------------------------------------------


def test_packaged_lists_equal_the_published_lists():
    home = _data_home()
    folder = Path(home or ".") / "omniglot" / "splits" / "vinyals"
    if home is None or not folder.is_dir():
        pytest.skip("The published Vinyals lists were not found under SKFEWSHOT_DATA")
    for split in SPLITS:
        published = (folder / f"{split}.txt").read_text(encoding="utf-8").splitlines()
        # Every character is listed with its 4 rotations, in order: the packaged file lists
        # each character once.
        assert published == [f"{c}/{r}" for c in _characters(split) for r in ROTATIONS], split


@pytest.fixture(scope="module")
def vinyals():
    """``vinyals(split)``: the split at 28x28, loaded once per module (skips without data)."""
    home = _data_home()
    if home is None:
        pytest.skip("Omniglot not found: set SKFEWSHOT_DATA to a folder holding omniglot/")
    return functools.cache(
        lambda split: fetch_omniglot_vinyals(split, data_home=home, download_if_missing=False)
    )


@pytest.mark.parametrize("split", SPLITS)
def test_split_sizes(vinyals, split):
    dataset = vinyals(split)
    n_classes = 4 * N_CHARACTERS[split]
    assert n_classes == {"train": 4112, "val": 688, "trainval": 4800, "test": 1692}[split]
    assert dataset.data.shape == (20 * n_classes, 1, 28, 28)
    assert dataset.data.dtype == np.float32
    assert 0 <= dataset.data.min() and dataset.data.max() <= 1
    assert len(dataset.target_names) == len(set(dataset.target_names)) == n_classes
    np.testing.assert_array_equal(np.bincount(dataset.target), np.full(n_classes, 20))
    np.testing.assert_array_equal(
        dataset.rotation, [int(name[-3:]) for name in dataset.target_names[dataset.target]]
    )
    assert "Vinyals" in dataset.DESCR


def test_splits_are_disjoint_by_character_and_train_val_is_trainval(vinyals):
    def characters(split):
        return {name.rsplit("/", 1)[0] for name in vinyals(split).target_names}

    train, val, test = characters("train"), characters("val"), characters("test")
    assert not (train & val or train & test or val & test)
    assert len(train | val | test) == 1623
    assert characters("trainval") == train | val

    train, val, trainval = vinyals("train"), vinyals("val"), vinyals("trainval")
    np.testing.assert_array_equal(
        trainval.target_names, np.concatenate([train.target_names, val.target_names])
    )
    np.testing.assert_array_equal(
        trainval.target, np.concatenate([train.target, val.target + len(train.target_names)])
    )
    n_train = len(train.data)
    assert np.array_equal(trainval.data[:n_train], train.data)
    assert np.array_equal(trainval.data[n_train:], val.data)


@pytest.mark.parametrize("split", ["val", "test"])
def test_classes_are_the_rotated_characters(vinyals, split):
    dataset = vinyals(split)
    size = dataset.data.shape[-1]
    # Classes 4i..4i+3 are character i rotated by 0, 90, 180, 270 degrees, 20 images each.
    images = dataset.data.reshape(N_CHARACTERS[split], 4, 20, size, size)
    for k in range(1, 4):
        np.testing.assert_array_equal(images[:, k], np.rot90(images[:, 0], k, axes=(-2, -1)))
    # Counter-clockwise, as Pillow's Image.rotate of the Prototypical Networks code.
    for angle in (90, 180, 270):
        rotated = Image.fromarray(images[0, 0, 0]).rotate(angle)
        np.testing.assert_array_equal(np.asarray(rotated), images[0, angle // 90, 0])
    # The unrotated classes are the characters of the official archive, drawings in order.
    archive = "background" if split == "val" else "evaluation"
    omniglot = fetch_omniglot(archive, data_home=_data_home(), download_if_missing=False)
    names = list(omniglot.target_names)
    for i, name in enumerate(dataset.target_names[::4]):
        character = names.index(name.removesuffix("/rot000"))
        np.testing.assert_array_equal(images[i, 0], omniglot.data[omniglot.target == character, 0])
