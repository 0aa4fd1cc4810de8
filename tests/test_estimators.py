"""PrototypicalClassifier and EmbeddingTransformer through the public scikit-learn API."""

import joblib
import numpy as np
import pytest
import torch
from conftest import TinyEncoder, check_bad_input
from methods import tiny_learner
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from skfewshot import EmbeddingTransformer, PrototypicalClassifier
from skfewshot.model_selection import EpisodicSplit
from skfewshot.nn import Conv4


def test_prototypes_are_class_means_of_embeddings(digits, mlp):
    X, y = digits
    clf = PrototypicalClassifier(mlp).fit(X[:100], y[:100])
    with torch.no_grad():
        Z = mlp.eval()(torch.as_tensor(X[:100])).numpy()
    expected = np.stack([Z[y[:100] == c].mean(0) for c in clf.classes_])
    np.testing.assert_allclose(clf.prototypes_, expected, rtol=1e-5, atol=1e-6)
    proba = clf.predict_proba(X[100:130])
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(1)], clf.predict(X[100:130]))
    np.testing.assert_array_equal(
        clf.classes_[clf.decision_function(X[100:130]).argmax(1)], clf.predict(X[100:130])
    )


def test_nearest_centroid_without_encoder(digits):
    from sklearn.neighbors import NearestCentroid

    X, y = digits
    ours = PrototypicalClassifier().fit(X[:300], y[:300]).predict(X[300:])
    theirs = NearestCentroid().fit(X[:300], y[:300]).predict(X[300:])
    np.testing.assert_array_equal(ours, theirs)


def test_batchnorm_encoder_predictions_do_not_depend_on_the_batch(digits):
    X, y = digits
    torch.manual_seed(0)
    encoder = Conv4(hidden_channels=8, out_channels=8)
    images = np.repeat(np.repeat(X.reshape(-1, 1, 8, 8), 2, 2), 2, 3)  # 16x16
    clf = PrototypicalClassifier(encoder, batch_size=7).fit(images[:50], y[:50])
    together = clf.predict_proba(images[50:70])
    alone = np.vstack([clf.predict_proba(images[i : i + 1]) for i in range(50, 70)])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)


def test_transformer_pipeline_joblib_round_trip_and_untouched_encoder(tmp_path, digits, mlp):
    X, y = digits
    mlp.train()
    before = {k: v.clone() for k, v in mlp.state_dict().items()}
    pipe = make_pipeline(EmbeddingTransformer(mlp), PrototypicalClassifier()).fit(X[:50], y[:50])
    assert mlp.training and all(torch.equal(v, before[k]) for k, v in mlp.state_dict().items())
    joblib.dump(pipe, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(X[50:]), pipe.predict_proba(X[50:]))


def test_precomputed_embeddings_give_identical_scores(digits, mlp):
    X, y = digits
    cv = EpisodicSplit(n_way=5, n_shot=1, n_query=15, n_episodes=40, random_state=0)
    direct = cross_val_score(PrototypicalClassifier(mlp), X, y, cv=cv)
    Z = EmbeddingTransformer(mlp).fit_transform(X)
    assert Z.shape == (len(X), 16) and Z.dtype == np.float32
    precomputed = cross_val_score(PrototypicalClassifier(), Z, y, cv=cv)
    np.testing.assert_array_equal(direct, precomputed)


def test_transformer_feature_names(digits, mlp):
    X, _ = digits
    names = EmbeddingTransformer(mlp).fit(X).get_feature_names_out()
    assert list(names[:2]) == ["embeddingtransformer0", "embeddingtransformer1"]
    assert len(names) == 16


def test_string_labels(digits, mlp):
    X, y = digits
    labels = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )[y]
    clf = PrototypicalClassifier(mlp).fit(X[:100], labels[:100])
    assert clf.predict(X[100:105]).dtype.kind == "U"
    assert set(clf.predict(X[100:])) <= set(labels)


def _images(n=20):
    rng = np.random.RandomState(0)
    return rng.rand(n, 1, 28, 28).astype(np.float32), np.arange(n) % 4


# (estimator, fit X, fit y, predict X or None, error, message): each bad input gets a
# clear error that names the problem.
X_IMG, Y_IMG = _images()
X_NAN = X_IMG.copy()
X_NAN[0, 0, 0, 0] = np.nan
BAD_INPUT = {
    "1-D X": (
        PrototypicalClassifier(),
        np.arange(5.0),
        np.arange(5),
        None,
        ValueError,
        "Expected 2D array, got 1D array",
    ),
    "3-D X without encoder": (
        PrototypicalClassifier(),
        X_IMG[:, 0],
        Y_IMG,
        None,
        ValueError,
        "Found array with dim 3",
    ),
    "mismatched image sizes": (
        PrototypicalClassifier(Conv4()),
        X_IMG,
        Y_IMG,
        X_IMG[:, :, :20, :20],
        ValueError,
        r"samples of shape \(1, 20, 20\).*\(1, 28, 28\)",
    ),
    "input the encoder cannot take": (
        PrototypicalClassifier(Conv4()),
        X_IMG[:, 0],
        Y_IMG,
        None,
        ValueError,
        r"encoder Conv4 failed on a batch of shape",
    ),
    "labels and samples differ in number": (
        PrototypicalClassifier(),
        np.ones((4, 2)),
        [0, 1, 0],
        None,
        ValueError,
        "inconsistent",
    ),
    "continuous labels": (
        PrototypicalClassifier(),
        np.ones((4, 2)),
        [0.1, 0.2, 0.3, 0.4],
        None,
        ValueError,
        "Unknown label type",
    ),
    "unknown distance": (
        PrototypicalClassifier(distance="manhattan"),
        np.ones((4, 2)),
        [0, 0, 1, 1],
        None,
        ValueError,
        "distance must be one of",
    ),
    "unavailable device": (
        PrototypicalClassifier(device="cuda:7" if not torch.cuda.is_available() else "nope"),
        np.ones((4, 2)),
        [0, 0, 1, 1],
        None,
        ValueError,
        "device",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT), ids=list(BAD_INPUT))
def test_bad_input_table(case):
    check_bad_input(BAD_INPUT[case])


def test_too_few_samples_and_too_many_ways_in_episodic_cv(digits):
    X, y = digits
    with pytest.raises(ValueError, match="only 10 of the 10 classes qualify"):
        cross_val_score(PrototypicalClassifier(), X, y, cv=EpisodicSplit(n_way=12))
    keep = (y != 3) | (np.arange(len(y)) < 400)  # class 3 keeps few samples
    counts = np.bincount(y[keep])
    n_shot = 10
    cv = EpisodicSplit(n_way=10, n_shot=n_shot, n_query=counts[3] - n_shot + 1)
    with pytest.raises(ValueError, match="only 9 of the 10 classes qualify"):
        cross_val_score(PrototypicalClassifier(), X[keep], y[keep], cv=cv)


def test_tiny_encoder_is_used(digits):
    X, y = digits
    plain = PrototypicalClassifier().fit(X[:60], y[:60]).decision_function(X[60:70])
    encoded = PrototypicalClassifier(TinyEncoder(3.0)).fit(X[:60], y[:60])
    assert not np.allclose(plain, encoded.decision_function(X[60:70]))


def test_scale_is_the_inverse_temperature_of_the_probabilities(digits, mlp):
    X, y = digits
    plain = PrototypicalClassifier(mlp, distance="cosine").fit(X[:50], y[:50])
    sharp = PrototypicalClassifier(mlp, distance="cosine", scale=10.0).fit(X[:50], y[:50])
    np.testing.assert_array_equal(plain.predict(X[50:]), sharp.predict(X[50:]))
    scores = plain.decision_function(X[50:])
    np.testing.assert_allclose(sharp.decision_function(X[50:]), 10 * scores, rtol=1e-5)
    learner = tiny_learner("prototypical", distance="cosine", scale=10.0).fit(X[y < 6], y[y < 6])
    assert learner.comparator_.scale == 10.0
    assert learner.to_classifier().get_params()["scale"] == 10.0
    with pytest.raises(ValueError, match="PrototypicalClassifier: scale must be a positive"):
        PrototypicalClassifier(scale=0).fit(X[:50], y[:50])
