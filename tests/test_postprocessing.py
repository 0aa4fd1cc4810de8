"""benchmarks/embedding_postprocessing.py: scikit-learn post-processing pipelines of embeddings."""

import json

import joblib
import numpy as np
import pytest
from benchmark_scripts import load_script
from sklearn.base import clone, is_classifier
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.utils.validation import check_is_fitted

from skfewshot import PrototypicalClassifier
from skfewshot._cli import main as cli_main
from skfewshot.model_selection import evaluate_episodes

script = load_script("embedding_postprocessing")


@pytest.fixture(scope="module")
def digits():
    """Digits 0-4 as base classes, 5-9 as novel classes, raw pixels as embeddings."""
    X, y = load_digits(return_X_y=True)
    base = y < 5
    return X[base], X[~base], y[~base]


def test_pipelines_are_classifiers_that_clone_and_score_above_chance(digits):
    Z_base, Z_novel, y_novel = digits
    estimators = script.pipelines(Z_base)
    assert list(estimators) == list(script.NAMES)
    for name, estimator in estimators.items():
        assert is_classifier(estimator), name
        copy = clone(estimator)
        assert copy.get_params().keys() == estimator.get_params().keys()
        support = np.concatenate([np.flatnonzero(y_novel == c)[:5] for c in range(5, 10)])
        assert copy.fit(Z_novel[support], y_novel[support]).predict(Z_novel).shape == y_novel.shape
        result = evaluate_episodes(
            estimator, Z_novel, y_novel, n_way=5, n_shot=1, n_episodes=30, random_state=0
        )
        assert result["accuracy"] > 0.6, (name, result["accuracy"])  # chance: 0.2


def test_centering_is_on_the_base_mean_and_stays_frozen(digits):
    Z_base, Z_novel, y_novel = digits
    pipe = script.pipelines(Z_base)["centered_l2"]
    centering = pipe[0]
    assert isinstance(centering, FrozenEstimator)
    base_mean = Z_base.mean(axis=0)
    np.testing.assert_allclose(centering.estimator.mean_, base_mean)
    support = np.concatenate([np.flatnonzero(y_novel == c)[:5] for c in range(5, 10)])
    for fitted in (pipe.fit(Z_novel[support], y_novel[support]), clone(pipe).fit(Z_novel, y_novel)):
        check_is_fitted(fitted[0].estimator)
        np.testing.assert_allclose(fitted[0].estimator.mean_, base_mean)
        assert not hasattr(fitted[0].estimator, "scale_") or fitted[0].estimator.scale_ is None
        # centred on the base mean, then unit-norm rows
        expected = Z_novel - base_mean
        expected /= np.linalg.norm(expected, axis=1, keepdims=True)
        np.testing.assert_allclose(fitted[:-1].transform(Z_novel), expected, rtol=1e-6)


def test_l2_and_logistic_regression_normalise_without_centering(digits):
    Z_base, Z_novel, _ = digits
    estimators = script.pipelines(Z_base)
    expected = Z_novel / np.linalg.norm(Z_novel, axis=1, keepdims=True)
    for name in ("l2", "logistic_regression"):
        np.testing.assert_allclose(estimators[name][:-1].transform(Z_novel), expected)
    assert estimators["logistic_regression"][-1].C == 1.0
    assert script.pipelines(Z_base, C=10.0)["logistic_regression"][-1].C == 10.0


@pytest.fixture(scope="module")
def saved_classifier(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "protonet_digits.joblib"
    cli_main(
        [
            "benchmark",
            "--dataset",
            "digits",
            "--episodes",
            "20",
            "--episodes-per-epoch",
            "20",
            "--test-episodes",
            "5",
            "--ways",
            "5",
            "--shots",
            "1",
            "--quiet",
            "--output",
            str(path),
        ]
    )
    return path


def test_script_runs_end_to_end_on_digits(saved_classifier, tmp_path, capsys):
    out = tmp_path / "postprocessing.json"
    result = script.main(
        [str(saved_classifier), "--dataset", "digits", "--episodes", "10", "--out", str(out)]
    )
    printed = capsys.readouterr().out
    assert "centered_l2" in printed and "10-way 5-shot" in printed
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    rows = result["results"]
    assert len(rows) == 4 * 2 * 2  # pipelines x ways (5, 10 on digits) x shots (1, 5)
    assert {r["pipeline"] for r in rows} == set(script.NAMES)
    assert {(r["n_way"], r["n_shot"]) for r in rows} == {(5, 1), (5, 5), (10, 1), (10, 5)}
    assert all(20 < r["accuracy"] <= 100 and r["ci95"] >= 0 for r in rows)
    assert result["args"]["dataset"] == "digits" and result["args"]["episodes"] == 10

    # The reference is the saved classifier itself, on the CLI's novel classes.
    args = script.build_args([str(saved_classifier), "--dataset", "digits"])
    _, y_base, X_novel, y_novel = script.load_data(args)
    assert set(y_base % 10) == set(range(6)) and set(y_novel % 10) == {6, 7, 8, 9}
    clf = joblib.load(saved_classifier)
    assert isinstance(clf, PrototypicalClassifier) and clf.encoder is not None
    reference = evaluate_episodes(
        clf, X_novel, y_novel, n_way=10, n_shot=5, n_episodes=10, random_state=0
    )
    row = next(
        r for r in rows if r["pipeline"] == "prototypes" and (r["n_way"], r["n_shot"]) == (10, 5)
    )
    assert row["accuracy"] == pytest.approx(100 * reference["accuracy"])


def test_script_pipeline_subset_and_validation_split(saved_classifier):
    result = script.main(
        [
            str(saved_classifier),
            "--dataset",
            "digits",
            "--validation",
            "--pipelines",
            "l2,logistic_regression",
            "--ways",
            "5",
            "--shots",
            "1",
            "--episodes",
            "10",
        ]
    )
    assert [r["pipeline"] for r in result["results"]] == ["l2", "logistic_regression"]
    assert all(r["n_way"] == 5 and r["n_shot"] == 1 for r in result["results"])
    _, y_base, _, y_novel = script.load_data(
        script.build_args(["m", "--dataset", "digits", "--validation"])
    )
    assert set(y_novel % 10) == {4, 5} and set(y_base % 10) == set(range(4))


def test_script_rejects_unknown_pipelines():
    with pytest.raises(SystemExit):
        script.build_args(["model.joblib", "--pipelines", "l2,whitening"])
