"""Data larger than memory: memory-maps, uint8 arrays, lazy image folders and torch Datasets.

Every input is read episode by episode (or batch by batch): the same
``random_state`` gives the same episodes and weights whatever the source and
the number of loader workers, only the rows of the episodes are read, and an
unreadable file is an error naming it, raised in the main process.
"""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.model_selection import cross_val_score
from skorch.callbacks import Callback
from skorch.dataset import Dataset as SkorchDataset
from torch.utils.data import Dataset, IterableDataset, TensorDataset

from skfewshot import EmbeddingTransformer, PrototypicalClassifier
from skfewshot._lazy import as_samples
from skfewshot.datasets import (
    DatasetSamples,
    ImageFolder,
    LazySamples,
    RandomAffine,
    SampleReadError,
    load_image_folder,
)
from skfewshot.meta import EpisodeLoader, PrototypicalLearner, ValidClassSplit
from skfewshot.model_selection import EpisodicSplit, evaluate_episodes
from skfewshot.nn import Conv4

N_CLASSES, PER_CLASS, SIDE = 5, 6, 8

#: Episodes of every class and every sample: each one reads the whole (tiny) data set.
WHOLE = {"n_way": N_CLASSES, "n_shot": 2, "n_query": PER_CLASS - 2}


@pytest.fixture
def images():
    """uint8 gray images (30, 1, 8, 8) of 5 classes of 6 (a brightness each, plus noise)."""
    rng = np.random.RandomState(0)
    y = np.repeat(np.arange(N_CLASSES), PER_CLASS)
    levels = (y * 45 + 30)[:, None, None, None]
    noise = rng.randint(-30, 31, size=(len(y), 1, SIDE, SIDE))
    return np.clip(levels + noise, 0, 255).astype(np.uint8), y


def _as_float(U8):
    """The images as the image loaders decode them: float32 levels in [0, 1]."""
    return U8.astype(np.float32) / np.float32(255)


def _memmap(path, array):
    """``array`` written to a .npy file, opened back as a read-only memory-map."""
    np.save(path, array)
    return np.load(path, mmap_mode="r")


def _write_folder(root, U8, y):
    """The images as PNG files, one folder per class, in the order of ``U8``."""
    for i, (image, label) in enumerate(zip(U8, y)):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0]).save(folder / f"{i:03d}.png")
    return root


class RecordEpisodes(Callback):
    """Records the samples and labels of every training episode."""

    def initialize(self):
        self.episodes_ = []
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            for episode, labels in zip(*batch):
                tensors = (episode.support, episode.support_labels, episode.query, labels)
                self.episodes_.append([t.clone() for t in tensors])


def _learner(**params):
    """A tiny ProtoNet on 8x8 images: Conv4 of 4 channels, pooling 8 -> 4 -> 2 -> 1."""
    defaults = {
        "encoder__hidden_channels": 4,
        "encoder__out_channels": 4,
        "encoder__pooled_blocks": 3,
        "n_way": 3,
        "n_shot": 2,
        "n_query": 2,
        "episodes_per_epoch": 4,
        "max_epochs": 1,
        "verbose": 0,
        "random_state": 0,
    }
    return PrototypicalLearner(Conv4, **{**defaults, **params})


def _fit(X, y, **params):
    record = RecordEpisodes()
    learner = _learner(callbacks=[record], **params).fit(X, y)
    return learner, record.episodes_


def _assert_same_training(reference, other, what):
    (learner_a, episodes_a), (learner_b, episodes_b) = reference, other
    assert len(episodes_a) == len(episodes_b) > 0, what
    for a, b in zip(episodes_a, episodes_b):
        for ta, tb in zip(a, b):
            assert ta.dtype == tb.dtype and torch.equal(ta, tb), what
    weights_a, weights_b = learner_a.module_.state_dict(), learner_b.module_.state_dict()
    assert weights_a.keys() == weights_b.keys()
    for key in weights_a:
        assert torch.equal(weights_a[key], weights_b[key]), f"{what}: {key}"


# -- the same episodes and weights from every source ------------------------------------


@pytest.mark.parametrize("workers", [0, 2])
def test_same_random_state_same_episodes_and_weights_whatever_the_source(tmp_path, images, workers):
    U8, y = images
    reference = _fit(_as_float(U8), y)  # in memory, float32, no worker: as before
    folder = ImageFolder(_write_folder(tmp_path / "folder", U8, y), image_size=SIDE)
    np.testing.assert_array_equal(folder.target, y)
    sources = {"memory-map": _memmap(tmp_path / "X.npy", U8), "image folder": folder}
    if workers == 0:  # the 2-worker run stays small
        sources["uint8 array"] = U8
        sources["float64 array"] = _as_float(U8).astype(np.float64)  # cast per episode
        sources["torch Dataset"] = TensorDataset(torch.from_numpy(U8), torch.from_numpy(y))
    for what, X in sources.items():
        _assert_same_training(reference, _fit(X, y, loader_workers=workers), what)


def test_augmentation_draws_are_the_same_with_loader_workers(tmp_path, images):
    # The augmentation draws from the episodes' stream after each episode's rows are read:
    # workers read the rows only, so the stream, and the weights, do not change.
    U8, y = images
    reference = _fit(_as_float(U8), y, augmentation=RandomAffine())
    memmap = _memmap(tmp_path / "X.npy", U8)
    _assert_same_training(
        reference, _fit(memmap, y, augmentation=RandomAffine(), loader_workers=2), "affine"
    )


def test_uint8_images_are_scaled_like_the_image_loaders(tmp_path, images):
    U8, y = images
    X = _as_float(U8)
    folder = load_image_folder(_write_folder(tmp_path, U8, y), image_size=SIDE)
    np.testing.assert_array_equal(folder.data, X)  # what every uint8 input is read as
    learner = _learner().fit(X, y)
    for source in (U8, _memmap(tmp_path / "X.npy", U8)):
        assert learner.score(source, y, n_episodes=5) == learner.score(X, y, n_episodes=5)
    clf = learner.to_classifier()
    float_proba = clf.fit(X[::2], y[::2]).predict_proba(X[1::2])
    np.testing.assert_allclose(
        clf.fit(U8[::2], y[::2]).predict_proba(U8[1::2]), float_proba, rtol=1e-5, atol=1e-6
    )


def test_validation_split_of_a_memory_map_is_a_view(tmp_path, images):
    U8, y = images
    memmap = _memmap(tmp_path / "X.npy", U8)
    split = ValidClassSplit(2, random_state=0)
    train, valid = split(SkorchDataset(as_samples(memmap), y))
    assert isinstance(train.X, LazySamples) and isinstance(valid.X, LazySamples)
    assert len(train.X) + len(valid.X) == len(y)
    params = {"train_split": split, "n_way": 2, "valid_episodes": 3}
    _assert_same_training(_fit(_as_float(U8), y, **params), _fit(memmap, y, **params), "split")


# -- torch Datasets ---------------------------------------------------------------------


class Images(Dataset):
    """The images as a torch Dataset of PIL images, counting the items read."""

    def __init__(self, U8):
        self.U8 = U8
        self.reads = 0

    def __len__(self):
        return len(self.U8)

    def __getitem__(self, index):
        self.reads += 1
        return Image.fromarray(self.U8[index][0])


def test_a_torch_dataset_is_read_episode_by_episode(images):
    U8, y = images
    dataset = Images(U8)
    learner = _learner(episodes_per_epoch=3).fit(dataset, y)
    episode = learner.n_way * (learner.n_shot + learner.n_query)
    # Its first sample when wrapped (the samples' shape), the probe of the encoder, and
    # the samples of each episode: never the whole data set.
    assert dataset.reads == 2 + 3 * episode
    reference = _learner(episodes_per_epoch=3).fit(_as_float(U8), y)
    for key, value in reference.module_.state_dict().items():
        assert torch.equal(learner.module_.state_dict()[key], value)


def test_torch_dataset_errors(images):
    U8, y = images
    with pytest.raises(ValueError, match=r"needs the class labels y .*y=dataset\.targets"):
        _learner().fit(TensorDataset(torch.from_numpy(U8)), None)

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(torch.from_numpy(U8))

    with pytest.raises(TypeError, match="IterableDataset, which has no random access"):
        _learner().fit(Stream(), y)

    class Ragged(Dataset):
        def __len__(self):
            return len(U8)

        def __getitem__(self, index):
            return torch.zeros(1, SIDE, SIDE - (index == 4))

    with pytest.raises(ValueError, match=r"sample 4 .* shape \(1, 8, 7\), but sample 0"):
        DatasetSamples(Ragged()).take([0, 4])


# -- evaluation in batches --------------------------------------------------------------


def _recording(memmap, reads):
    """``memmap`` as a memory-map that records the index of every read of its rows."""

    class Recording(np.memmap):
        def __getitem__(self, key):
            reads.append(key)
            return super().__getitem__(key)

    return memmap.view(Recording)


def test_embedding_transformer_reads_a_memory_map_in_batches(tmp_path, images):
    U8, y = images
    reads = []
    X = _recording(_memmap(tmp_path / "X.npy", U8), reads)
    encoder = Conv4(hidden_channels=4, out_channels=4, pooled_blocks=3)
    transformer = EmbeddingTransformer(encoder, batch_size=7).fit(X)
    Z = transformer.transform(X)
    expected = EmbeddingTransformer(encoder, batch_size=7).fit_transform(_as_float(U8))
    np.testing.assert_allclose(Z, expected, rtol=1e-6, atol=1e-6)
    assert all(isinstance(key, np.ndarray) and len(key) <= 7 for key in reads)
    assert sorted(np.concatenate(reads[1:]).tolist()) == list(range(len(U8)))  # once each


def test_meta_training_reads_only_the_rows_of_its_episodes(tmp_path, images):
    U8, y = images
    reads = []
    X = _recording(_memmap(tmp_path / "X.npy", U8), reads)
    learner = _learner(episodes_per_epoch=3).fit(X, y)
    assert all(isinstance(key, np.ndarray) for key in reads)  # never a slice of it all
    episode = learner.n_way * (learner.n_shot + learner.n_query)
    assert sum(len(key) for key in reads) == 1 + 3 * episode  # the probe, the episodes
    assert max(len(key) for key in reads) <= learner.n_way * learner.n_query


def test_classifiers_and_cross_validation_read_lazy_samples(tmp_path, images):
    U8, y = images
    X = _as_float(U8)
    folder = ImageFolder(_write_folder(tmp_path / "folder", U8, y), image_size=SIDE)
    memmap = _memmap(tmp_path / "X.npy", U8)
    encoder = _learner().fit(X, y).encoder_
    clf = PrototypicalClassifier(encoder, batch_size=4)
    cv = EpisodicSplit(n_way=3, n_shot=2, n_query=2, n_episodes=5, random_state=0)
    expected = cross_val_score(clf, X, y, cv=cv)
    for source in (folder, memmap):  # each episode's samples read by X[indices]
        np.testing.assert_array_equal(cross_val_score(clf, source, y, cv=cv), expected)
    dataset = TensorDataset(torch.from_numpy(U8), torch.from_numpy(y))
    protocol = {"n_way": 3, "n_shot": 1, "n_query": 3, "n_episodes": 5, "random_state": 0}
    reference = evaluate_episodes(clf, X, y, **protocol)["accuracy"]
    for source in (folder, memmap, dataset):
        assert evaluate_episodes(clf, source, y, **protocol)["accuracy"] == pytest.approx(reference)
    fitted = clf.fit(folder[:15], y[:15])  # queries read and scored 4 at a time
    np.testing.assert_allclose(
        fitted.predict_proba(folder), fitted.predict_proba(X), rtol=1e-5, atol=1e-6
    )


# -- the lazy image folder --------------------------------------------------------------


def test_lazy_image_folder_reads_what_load_image_folder_decodes(tmp_path):
    rng = np.random.RandomState(1)
    for c in range(2):
        (tmp_path / f"c{c}").mkdir()
        for i in range(3):
            pixels = rng.randint(0, 256, size=(10, 12, 3)).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / f"c{c}" / f"{i}.png")
    for options in ({"grayscale": False}, {"invert": True}):  # resized 12x10 -> 6x6
        eager = load_image_folder(tmp_path, 6, **options)
        lazy = load_image_folder(tmp_path, 6, lazy=True, cache_size=2, **options)
        assert isinstance(lazy.data, ImageFolder) and lazy.data.shape == eager.data.shape
        np.testing.assert_array_equal(lazy.data.take(np.arange(6)), eager.data)
        np.testing.assert_array_equal(lazy.data.take(np.arange(6)), eager.data)  # cached
        assert len(lazy.data._cache) == 2  # bounded
        np.testing.assert_array_equal(lazy.target, eager.target)
        np.testing.assert_array_equal(lazy.target_names, eager.target_names)
        assert list(lazy.filenames) == list(eager.filenames)


def test_lazy_samples_index_like_arrays_but_are_not_read_whole(tmp_path, images):
    U8, y = images
    X = _as_float(U8)
    folder = ImageFolder(_write_folder(tmp_path, U8, y), image_size=SIDE)
    assert folder.shape == X.shape and len(folder) == len(X) and folder.ndim == 4
    np.testing.assert_array_equal(folder[3], X[3])
    np.testing.assert_array_equal(folder[-1], X[-1])
    np.testing.assert_array_equal(folder[2:9:3], X[2:9:3])
    np.testing.assert_array_equal(folder[y == 2], X[y == 2])
    np.testing.assert_array_equal(folder[[4, 0, 4]], X[[4, 0, 4]])
    np.testing.assert_array_equal(folder.subset(y == 1)[[0, 5]], X[y == 1][[0, 5]])
    with pytest.raises(TypeError, match="reads its 30 samples on demand"):
        np.asarray(folder)
    with pytest.raises(IndexError, match="out of bounds"):
        folder[len(X)]


def test_a_pickled_memory_map_is_reopened_not_copied(tmp_path):
    pixels = (np.arange(200 * 32 * 32) % 251).astype(np.uint8).reshape(200, 32, 32)
    X = _memmap(tmp_path / "X.npy", pixels)
    for view in (X, X[50:]):
        samples = as_samples(view)
        data = pickle.dumps(samples)
        assert len(data) < 10_000  # not the 200 KB of pixels
        copy = pickle.loads(data)
        assert isinstance(copy.X, np.memmap)
        everything = np.arange(len(view))
        np.testing.assert_array_equal(copy.take(everything), samples.take(everything))


# -- unreadable and non-finite samples --------------------------------------------------


@pytest.mark.parametrize("workers", [0, 2])
def test_a_corrupt_file_met_in_training_is_an_error_naming_it(tmp_path, images, workers):
    U8, y = images
    root = _write_folder(tmp_path, U8, y)
    bad = root / "class_1" / "007.png"
    bad.write_bytes(b"not a PNG file")
    folder = ImageFolder(root, image_size=SIDE)
    with pytest.raises(SampleReadError, match="007.png") as raised:
        _learner(loader_workers=workers, **WHOLE).fit(folder, y)
    assert isinstance(raised.value, OSError)
    if workers:  # raised in this process, the worker's traceback as its cause
        assert "loader worker's traceback" in str(raised.value.__cause__)


class FixedEpisodes:
    """An episode sampler drawing the given (support, query) indices in turn."""

    def __init__(self, episodes):
        self.episodes = episodes
        self.drawn = 0

    def sample(self, rng, *, sort_classes=False):
        support, query = map(np.asarray, self.episodes[self.drawn % len(self.episodes)])
        self.drawn += 1
        return support, query, np.zeros(len(support), int), np.zeros(len(query), int)


def test_skipped_episodes_leave_their_meta_batch_shorter(tmp_path, images):
    U8, y = images
    root = _write_folder(tmp_path, U8, y)
    (root / "class_1" / "007.png").write_bytes(b"not a PNG file")
    folder = ImageFolder(root, image_size=SIDE, on_error="skip")
    good, holding_it = ([0, 1], [2, 3]), ([6, 7], [8, 9])
    sampler = FixedEpisodes([good, holding_it, good, good])
    loader = EpisodeLoader(folder, sampler, 4, random_state=0, meta_batch_size=2)
    with pytest.warns(UserWarning, match="Skipped an episode .*007.png"):
        sizes = [len(episodes) for episodes, _ in loader]
    assert sizes == [1, 2]


def test_non_finite_samples_of_a_memory_map_are_refused_when_read(tmp_path, images):
    U8, y = images
    X = _as_float(U8)
    X[7, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN: sample 7 of the memory-map X"):
        _learner(**WHOLE).fit(_memmap(tmp_path / "X.npy", X), y)


def test_loader_workers_is_checked():
    with pytest.raises(ValueError, match="loader_workers must be an integer >= 0"):
        _learner(loader_workers=-1).initialize()
