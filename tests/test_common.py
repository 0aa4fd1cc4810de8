"""The contract of every method: scikit-learn's checks and skfewshot's public checks.

One registry (``methods.py``) lists every learner and classifier; the
per-method test modules keep only their method's maths.
"""

import numpy as np
import pytest
import torch
from conftest import check_bad_input, expected_failed_checks
from methods import LEARNERS, TRANSFORMERS, classifiers, tiny_learner
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from skfewshot.nn import Conv4
from skfewshot.utils.estimator_checks import check_classifier, check_learner

CLASSIFIERS = classifiers()


@parametrize_with_checks(
    [*CLASSIFIERS, *TRANSFORMERS], expected_failed_checks=expected_failed_checks
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("classifier", CLASSIFIERS, ids=lambda c: repr(c)[:60])
def test_classifier_contract(classifier, digits):
    check_classifier(classifier, *digits)


@pytest.mark.parametrize("name", LEARNERS)
def test_learner_contract(name, digits):
    X, y = digits
    check_learner(tiny_learner(name), X[y < 6], y[y < 6])


@pytest.mark.parametrize("name", LEARNERS)
def test_bfloat16_training_is_deterministic_and_keeps_float32_weights(name, digits):
    X, y = digits
    base = y < 6
    runs = [
        tiny_learner(name, precision="bfloat16", random_state=0).fit(X[base], y[base])
        for _ in range(2)
    ]
    full = tiny_learner(name, random_state=0).fit(X[base], y[base])
    ours, again, theirs = (run.module_.state_dict() for run in (*runs, full))
    for key, value in ours.items():
        assert torch.equal(value, again[key]), key
        assert value.dtype == theirs[key].dtype, key  # the weights stay float32
    # The training arithmetic did change (the weights differ from float32 training).
    assert any(v.is_floating_point() and not torch.equal(v, theirs[k]) for k, v in ours.items())
    assert all(np.isfinite(runs[0].history[:, "train_loss"]))
    assert 0 <= runs[0].score(X[~base], y[~base], n_episodes=5) <= 1


#: name -> what the Omniglot smoke needs beyond the common settings
OMNIGLOT = {
    "prototypical": {"max_epochs": 2},
    "pretraining": {"batch_size": 64, "max_epochs": 6},
    "matching": {"comparator__embedding_dim": 16},
    "relation": {
        "comparator__embedding_dim": 16,
        "comparator__hidden_channels": 16,
        "n_way": 10,
        "episodes_per_epoch": 50,
        "max_epochs": 3,
    },
    "siamese": {"comparator__embedding_dim": 16, "lr": 3e-3},
    "maml": {"lr": 3e-3},
    "fomaml": {"lr": 3e-3},
    "reptile": {"lr": 0.5, "inner_steps": 5},
}


@pytest.mark.parametrize("name", OMNIGLOT)
def test_meta_training_improves_novel_class_accuracy(name, omniglot_small):
    X, y = omniglot_small.data, omniglot_small.target
    base = y < 100  # meta-train on 100 characters, test on the 36 others
    conv4 = {"encoder": Conv4, "encoder__hidden_channels": 16, "encoder__out_channels": 16}
    params = {
        "n_way": 5,
        "n_shot": 1,
        "n_query": 5,
        "episodes_per_epoch": 30,
        "meta_batch_size": 2,
        **OMNIGLOT[name],
    }
    untrained = tiny_learner(name, conv4, **{**params, "max_epochs": 0}).fit(X[base], y[base])
    trained = tiny_learner(name, conv4, **params).fit(X[base], y[base])
    score = {"n_way": 5, "n_shot": 1, "n_query": 5, "n_episodes": 60}
    before = untrained.score(X[~base], y[~base], **score)
    after = trained.score(X[~base], y[~base], **score)
    assert after > before + 0.1, (before, after)


_X = np.random.RandomState(0).rand(6, 5)
_Y = [0, 0, 1, 1, 2, 2]
_NAN = _X.copy()
_NAN[0, 0] = np.nan

#: Bad input every classifier must refuse with a clear error:
#: (parameters, X, y, X_predict, error, message); see conftest.check_bad_input.
BAD_INPUT = {
    "one-class support set": ({}, _X, [1] * 6, None, ValueError, "only 1 class"),
    "predict before fit": ({}, None, None, _X, NotFittedError, "not fitted yet"),
    "mismatched feature sizes": ({}, _X, _Y, _X[:, :4], ValueError, "X has 4 features, but"),
    "NaN in support": ({}, _NAN, _Y, None, ValueError, "Input X contains NaN"),
    "NaN in query": ({}, _X, _Y, _NAN, ValueError, "Input X contains NaN"),
    "zero batch_size": (
        {"batch_size": 0},
        _X,
        _Y,
        _X,
        ValueError,
        "batch_size must be an integer >= 1, got 0",
    ),
    "float batch_size": (
        {"batch_size": 2.5},
        _X,
        _Y,
        _X,
        ValueError,
        "batch_size must be an integer >= 1, got 2.5",
    ),
    "encoder that is not a module": (
        {"encoder": "conv4"},
        _X,
        _Y,
        _X,
        TypeError,
        "encoder must be a torch.nn.Module instance or None, got str",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
@pytest.mark.parametrize("classifier", CLASSIFIERS, ids=lambda c: repr(c)[:60])
def test_bad_input_is_refused_clearly(classifier, case):
    params, *rest = BAD_INPUT[case]
    check_bad_input((clone(classifier).set_params(**params), *rest))
