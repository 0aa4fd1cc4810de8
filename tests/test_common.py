"""The contract of every method: scikit-learn's checks and skfewshot's public checks.

One registry (``methods.py``) lists every learner and classifier; the
per-method test modules keep only their method's maths.
"""

import pytest
from conftest import expected_failed_checks
from methods import LEARNERS, TRANSFORMERS, classifiers, tiny_learner
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
