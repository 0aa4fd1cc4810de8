"""The declarative parameter constraints shared by every estimator, learner and module."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skfewshot import MAMLClassifier
from skfewshot.base import Boolean, Instance, Integer, Options, Positive
from skfewshot.model_selection import EpisodicSplit


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.int8(1)])
def test_check_integer_accepts_python_and_numpy_integers(value):
    out = Integer().check(value, "n")
    assert out == value and type(out) is int


@pytest.mark.parametrize("value", [0, -1, 2.0, 1.5, True, np.bool_(True), "3", None])
def test_check_integer_refuses_with_owner_name_and_value(value):
    with pytest.raises(ValueError, match=r"^Owner: n must be an integer >= 1, got "):
        Integer().check(value, "n", owner="Owner")


def test_check_integer_minimum_and_none():
    assert Integer(0).check(0, "steps") == 0
    assert Integer(none="all samples").check(None, "n_query") is None
    with pytest.raises(ValueError, match=r"n_query must be an integer >= 1 or None \(all "):
        Integer(none="all samples").check(0, "n_query")


@pytest.mark.parametrize("value", [0.1, 3, np.float32(0.5)])
def test_check_positive_accepts(value):
    assert Positive().check(value, "lr") == pytest.approx(float(value))


@pytest.mark.parametrize("value", [0, -0.1, np.nan, np.inf, True, "0.1", None])
def test_check_positive_refuses(value):
    with pytest.raises(ValueError, match=r"^lr must be a positive number, got "):
        Positive().check(value, "lr")


def test_numpy_scalars_from_a_parameter_grid_are_accepted():
    # Grids built with np.arange hold NumPy integers; they used to be refused.
    X, y = load_digits(return_X_y=True)
    train, test = next(EpisodicSplit(3, 2, 2, n_episodes=1, random_state=0).split(X, y))
    numpy_params = dict(inner_steps=np.int64(2), batch_size=np.int64(4), inner_lr=np.float64(0.1))
    python_params = dict(inner_steps=2, batch_size=4, inner_lr=0.1)
    probas = [
        MAMLClassifier(**params).fit(X[train] / 16, y[train]).predict_proba(X[test] / 16)
        for params in (numpy_params, python_params)
    ]
    np.testing.assert_array_equal(*probas)
    cv = EpisodicSplit(np.int64(3), np.int64(1), np.int64(2), n_episodes=np.int64(2))
    assert len(list(cv.split(X, y))) == 2


def test_options_boolean_and_instance():
    assert Options("a", "b").check("b", "how") == "b"
    with pytest.raises(ValueError, match=r"^O: how must be one of \('a', 'b'\), got 'c'\.$"):
        Options("a", "b").check("c", "how", owner="O")
    assert Boolean().check(np.bool_(True), "fce") is True
    with pytest.raises(ValueError, match="fce must be True or False, got 1"):
        Boolean().check(1, "fce")
    assert Instance(int, none=True).check(None, "x") is None
    with pytest.raises(TypeError, match="x must be a int instance or None, got str. Pass 1"):
        Instance(int, none=True, hint="Pass 1.").check("1", "x")
