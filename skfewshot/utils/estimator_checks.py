"""The contract of a few-shot method, as public checks.

scikit-learn's :func:`~sklearn.utils.estimator_checks.check_estimator`
checks what every classifier must do; these checks add what a few-shot
method must do on top of it:

* a classifier's ``fit`` leaves its torch modules (``encoder``,
  ``comparator``, ``rule``) bit-identical;
* each query's prediction depends on the support set and on that query only
  (unless the classifier is transductive: a ``transductive=True`` parameter);
* any number of ways works at test time;
* the same ``random_state`` gives the same result;
* a joblib round trip gives the same predictions;
* ``clone``, a ``Pipeline`` and ``GridSearchCV`` with
  :class:`~skfewshot.model_selection.EpisodicSplit` work;
* a learner's ``to_classifier()`` scores the episodes that the learner's
  own ``score`` reports.

:func:`check_classifier` runs the classifier checks, :func:`check_learner`
meta-trains a learner and runs its checks and those of its classifier.
Each check raises an :class:`AssertionError` that says what broke.

Examples
--------
>>> from sklearn.datasets import load_digits
>>> from skfewshot import PrototypicalClassifier
>>> from skfewshot.utils.estimator_checks import check_classifier
>>> X, y = load_digits(return_X_y=True)
>>> check_classifier(PrototypicalClassifier(), X / 16, y)
"""

import copy
import io

import joblib
import numpy as np
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from ..model_selection import EpisodicSplit

__all__ = [
    "check_any_number_of_ways",
    "check_classifier",
    "check_fit_leaves_modules_unchanged",
    "check_joblib_round_trip",
    "check_learner",
    "check_queries_scored_independently",
    "check_same_random_state_same_result",
    "check_sklearn_tools",
    "check_to_classifier_scores_like_the_learner",
]

_MODULES = ("encoder", "comparator", "rule")


def _episode(y, n_way, n_shot=2, n_query=3, random_state=0):
    """Support and query indices of one episode of ``(X, y)``."""
    cv = EpisodicSplit(n_way, n_shot, n_query, n_episodes=1, random_state=random_state)
    return next(cv.split(np.zeros(len(y)), y))


def _state(module):
    """A deep copy of a module's parameters and buffers, with its training mode."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}, module.training


def check_fit_leaves_modules_unchanged(classifier, X, y):
    """``fit`` and ``predict`` leave the torch modules passed as parameters untouched.

    The weights, buffers (e.g. batch-norm running statistics) and training
    mode of ``encoder``, ``comparator`` and ``rule`` are bit-identical
    afterwards: a classifier works on copies.
    """
    name = type(classifier).__name__
    params = classifier.get_params(deep=False)
    modules = {k: params[k] for k in _MODULES if isinstance(params.get(k), torch.nn.Module)}
    before = {k: _state(m) for k, m in modules.items()}
    support, query = _episode(y, 3)
    clone(classifier).set_params(**modules).fit(X[support], y[support]).predict(X[query])
    for key, module in modules.items():
        state, training = _state(module)
        assert training == before[key][1], (
            f"{name}: fit changed the training mode of its {key} (it must work on a copy)."
        )
        for tensor, value in state.items():
            assert torch.equal(value, before[key][0][tensor]), (
                f"{name}: fit changed {key}.{tensor} (it must work on a copy)."
            )


def check_queries_scored_independently(classifier, X, y):
    """Each query's scores depend on the support set and on that query only.

    The probabilities of the queries scored together, one by one and in
    reverse order agree. Transductive classifiers (``transductive=True``)
    are exempt.
    """
    if classifier.get_params().get("transductive", False):
        return
    name = type(classifier).__name__
    support, query = _episode(y, 3)
    clf = clone(classifier).fit(X[support], y[support])
    together = clf.predict_proba(X[query])
    alone = np.concatenate([clf.predict_proba(X[[i]]) for i in query])
    reverse = clf.predict_proba(X[query[::-1]])[::-1]
    for other, how in ((alone, "one by one"), (reverse, "in reverse order")):
        np.testing.assert_allclose(
            together,
            other,
            rtol=1e-5,
            atol=1e-6,
            err_msg=f"{name}: a query's probabilities change when queries are scored {how}.",
        )


def check_any_number_of_ways(classifier, X, y, ways=(2, 3, 5)):
    """Support sets of any number of classes give one probability column per class."""
    name = type(classifier).__name__
    for n_way in ways:
        support, query = _episode(y, n_way)
        clf = clone(classifier).fit(X[support], y[support])
        proba = clf.predict_proba(X[query])
        assert proba.shape == (len(query), n_way), (
            f"{name}: {n_way}-way support set, but predict_proba has shape {proba.shape}."
        )
        np.testing.assert_allclose(
            proba.sum(1), 1, rtol=1e-5, err_msg=f"{name}: probabilities do not sum to 1."
        )
        assert set(clf.predict(X[query])) <= set(y[support]), (
            f"{name}: predicted a class that is not in the {n_way}-way support set."
        )


def _fitted_output(estimator, X, y):
    """What must be reproducible: a learner's weights, a classifier's probabilities."""
    if hasattr(estimator, "module_"):
        return {k: v.detach().clone() for k, v in estimator.module_.state_dict().items()}
    support, query = _episode(y, 3)
    return estimator.predict_proba(X[query])


def check_same_random_state_same_result(estimator, X, y):
    """Two fits of clones with the same ``random_state`` give the same result.

    For a learner, bit-identical meta-trained weights; for a classifier,
    the same probabilities (on the same support set).
    """
    name = type(estimator).__name__
    if hasattr(estimator, "module"):  # a learner: meta-train twice
        a, b = (
            _fitted_output(clone(estimator).fit(X, y), X, y),
            _fitted_output(clone(estimator).fit(X, y), X, y),
        )
        for key in a:
            assert torch.equal(a[key], b[key]), (
                f"{name}: the same random_state gave different weights ({key})."
            )
        return
    support, _ = _episode(y, 3)
    a, b = (_fitted_output(clone(estimator).fit(X[support], y[support]), X, y) for _ in range(2))
    np.testing.assert_array_equal(a, b, err_msg=f"{name}: two fits gave different results.")


def check_joblib_round_trip(estimator, X, y):
    """A fitted classifier (or learner) survives ``joblib.dump`` / ``joblib.load``.

    A classifier predicts the same probabilities after the round trip; a
    learner's classifier does too.
    """
    name = type(estimator).__name__
    support, query = _episode(y, 3)
    if hasattr(estimator, "module"):
        estimator = clone(estimator).fit(X, y)
        fitted = estimator.to_classifier().fit(X[support], y[support])
        buffer = io.BytesIO()
        joblib.dump(estimator, buffer)
        buffer.seek(0)
        fitted_again = joblib.load(buffer).to_classifier().fit(X[support], y[support])
    else:
        fitted = clone(estimator).fit(X[support], y[support])
        buffer = io.BytesIO()
        joblib.dump(fitted, buffer)
        buffer.seek(0)
        fitted_again = joblib.load(buffer)
    np.testing.assert_array_equal(
        fitted.predict_proba(X[query]),
        fitted_again.predict_proba(X[query]),
        err_msg=f"{name}: predictions differ after a joblib round trip.",
    )


def check_sklearn_tools(classifier, X, y):
    """``clone``, a ``Pipeline`` and ``GridSearchCV`` over ``EpisodicSplit`` episodes work.

    The pipeline (an identity step, then the classifier) scores every
    episode like the classifier alone, and a grid search over
    ``batch_size`` finds the same score for each value.
    """
    name = type(classifier).__name__
    cv = EpisodicSplit(n_way=3, n_shot=2, n_query=3, n_episodes=3, random_state=0)
    try:
        cloned = clone(classifier)
    except RuntimeError as exc:  # e.g. an __init__ that changes its parameters
        raise AssertionError(f"{name}: sklearn.base.clone fails: {exc}") from exc
    alone = cross_val_score(cloned, X, y, cv=cv)
    pipeline = make_pipeline(FunctionTransformer(), clone(classifier))
    piped = cross_val_score(pipeline, X, y, cv=cv)
    np.testing.assert_allclose(
        alone, piped, err_msg=f"{name}: a Pipeline scores the episodes differently."
    )
    search = GridSearchCV(clone(classifier), {"batch_size": [1, 64]}, cv=cv).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    np.testing.assert_allclose(
        scores,
        alone.mean(),
        rtol=1e-6,
        err_msg=f"{name}: GridSearchCV over batch_size changes the episodes' scores.",
    )


def check_to_classifier_scores_like_the_learner(learner, X, y, n_episodes=5):
    """``to_classifier()`` scores the episodes the learner's ``score`` reports.

    The learner is fitted on ``(X, y)``; ``learner.score`` and the mean of
    ``cross_val_score(learner.to_classifier(), ...)`` over
    :class:`EpisodicSplit` episodes with the learner's ``random_state``
    (the same episodes) agree.
    """
    name = type(learner).__name__
    learner = clone(learner).fit(X, y)
    shape = dict(n_way=3, n_shot=2, n_query=3)
    expected = learner.score(X, y, n_episodes=n_episodes, **shape)
    cv = EpisodicSplit(**shape, n_episodes=n_episodes, random_state=learner.random_state)
    got = cross_val_score(learner.to_classifier(), X, y, cv=cv).mean()
    assert abs(got - expected) < 1e-6, (
        f"{name}: learner.score gives {expected:.4f} but its classifier {got:.4f} on the "
        "same episodes."
    )


def check_classifier(classifier, X, y):
    """Run every classifier check on ``classifier`` with the labelled data ``(X, y)``.

    ``(X, y)`` needs at least 5 classes of at least 5 samples each.
    """
    for check in (
        check_fit_leaves_modules_unchanged,
        check_queries_scored_independently,
        check_any_number_of_ways,
        check_same_random_state_same_result,
        check_joblib_round_trip,
        check_sklearn_tools,
    ):
        check(classifier, X, y)


def check_learner(learner, X, y):
    """Meta-train ``learner`` on ``(X, y)``, run the learner checks, then the classifier's.

    Give the learner a small budget (a tiny encoder, a few episodes) and an
    integer ``random_state``; ``(X, y)`` needs at least 5 classes of at
    least 5 samples each.
    """
    for check in (
        check_same_random_state_same_result,
        check_joblib_round_trip,
        check_to_classifier_scores_like_the_learner,
    ):
        check(learner, X, y)
    classifier = copy.deepcopy(clone(learner).fit(X, y).to_classifier())
    check_classifier(classifier, X, y)
