"""The shared checks of scalar parameters."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skfewshot import MAMLClassifier
from skfewshot._params import check_integer, check_positive
from skfewshot.model_selection import EpisodicSplit


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.int8(1)])
def test_check_integer_accepts_python_and_numpy_integers(value):
    out = check_integer(value, "n")
    assert out == value and type(out) is int


@pytest.mark.parametrize("value", [0, -1, 2.0, 1.5, True, np.bool_(True), "3", None])
def test_check_integer_refuses_with_owner_name_and_value(value):
    with pytest.raises(ValueError, match=r"^Owner: n must be an integer >= 1, got "):
        check_integer(value, "n", owner="Owner")


def test_check_integer_minimum_and_none():
    assert check_integer(0, "steps", minimum=0) == 0
    assert check_integer(None, "n_query", none="all samples") is None
    with pytest.raises(ValueError, match=r"n_query must be an integer >= 1 or None \(all "):
        check_integer(0, "n_query", none="all samples")


@pytest.mark.parametrize("value", [0.1, 3, np.float32(0.5)])
def test_check_positive_accepts(value):
    assert check_positive(value, "lr") == pytest.approx(float(value))


@pytest.mark.parametrize("value", [0, -0.1, np.nan, np.inf, True, "0.1", None])
def test_check_positive_refuses(value):
    with pytest.raises(ValueError, match=r"^lr must be a positive number, got "):
        check_positive(value, "lr")


def test_numpy_scalars_from_a_parameter_grid_are_accepted():
    # Grids built with np.arange hold NumPy integers; they used to be refused.
    X, y = load_digits(return_X_y=True)
    train, test = next(EpisodicSplit(3, 2, 2, n_episodes=1, random_state=0).split(X, y))
    numpy_params = dict(n_steps=np.int64(2), batch_size=np.int64(4), inner_lr=np.float64(0.1))
    python_params = dict(n_steps=2, batch_size=4, inner_lr=0.1)
    probas = [
        MAMLClassifier(**params).fit(X[train] / 16, y[train]).predict_proba(X[test] / 16)
        for params in (numpy_params, python_params)
    ]
    np.testing.assert_array_equal(*probas)
    cv = EpisodicSplit(np.int64(3), np.int64(1), np.int64(2), n_episodes=np.int64(2))
    assert len(list(cv.split(X, y))) == 2
