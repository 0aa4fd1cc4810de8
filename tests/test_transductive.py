"""PrototypicalClassifier(transductive=True): prototypes refined with the queries by soft k-means.

The refinement is Ren et al. (2018)'s soft k-means step: each query is
softly assigned to the prototypes (the softmax over its negative distances)
and each prototype becomes the weighted mean of its support embeddings
(weight 1 each) and of the queries (weight their assignment).
"""

import re

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score

from skfewshot import PrototypicalClassifier
from skfewshot.model_selection import EpisodicSplit, evaluate_episodes
from skfewshot.nn._distances import class_means, pairwise_distance
from skfewshot.utils.estimator_checks import check_classifier

DISTANCES = ["sqeuclidean", "euclidean", "cosine"]


def _episode(X, y, n_way=5, n_shot=1, n_query=15, seed=0):
    cv = EpisodicSplit(n_way, n_shot, n_query, n_episodes=1, random_state=seed)
    support, query = next(cv.split(X, y))
    return X[support], y[support], X[query], y[query]


def _distance(Q, P, distance):
    """Distances (n_query, n_class) in numpy, written out from their definitions."""
    if distance == "cosine":
        Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
        Pn = P / np.linalg.norm(P, axis=1, keepdims=True)
        return 1 - Qn @ Pn.T
    sq = ((Q[:, None, :] - P[None, :, :]) ** 2).sum(-1)
    return np.sqrt(sq) if distance == "euclidean" else sq


def _softmax(a):
    e = np.exp(a - a.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _refined(S, labels, Q, steps, distance):
    """The prototypes after ``steps`` soft k-means refinements, in plain numpy."""
    classes = np.unique(labels)
    sums = np.stack([S[labels == c].sum(0) for c in classes])
    counts = np.array([(labels == c).sum() for c in classes], dtype=float)
    P = sums / counts[:, None]
    for _ in range(steps):
        W = _softmax(-_distance(Q, P, distance))  # (n_query, n_class) soft assignments
        P = (sums + W.T @ Q) / (counts + W.sum(0))[:, None]
    return P


def _soft_kmeans_proba(S, labels, Q, steps, distance):
    """Class probabilities of the queries after ``steps`` refinements."""
    return _softmax(-_distance(Q, _refined(S, labels, Q, steps, distance), distance))


@pytest.mark.parametrize("distance", DISTANCES)
def test_default_is_unchanged(digits, distance):
    X, y = digits
    S, ys, Q, _ = _episode(X, y, n_shot=2)
    # The computation before transduction existed, bit for bit.
    labels = torch.as_tensor(np.unique(ys, return_inverse=True)[1])
    prototypes = class_means(torch.as_tensor(S), labels, 5)
    before = torch.softmax(-pairwise_distance(torch.as_tensor(Q), prototypes, distance), 1)
    default = PrototypicalClassifier(distance=distance).fit(S, ys)
    assert default.get_params()["transductive"] is False
    np.testing.assert_array_equal(default.predict_proba(Q), before.numpy())
    # transductive_steps is unused without transductive=True.
    off = PrototypicalClassifier(distance=distance, transductive=False, transductive_steps=4)
    np.testing.assert_array_equal(off.fit(S, ys).predict_proba(Q), before.numpy())
    np.testing.assert_allclose(
        default.predict_proba(Q), _soft_kmeans_proba(S, ys, Q, 0, distance), rtol=1e-4
    )


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("steps", [1, 2])
def test_matches_soft_kmeans_written_in_numpy(digits, distance, steps):
    X, y = digits
    S, ys, Q, _ = _episode(X.astype(np.float64), y, n_shot=2, n_query=10)
    clf = PrototypicalClassifier(distance=distance, transductive=True, transductive_steps=steps)
    proba = clf.fit(S, ys).predict_proba(Q)
    expected = _soft_kmeans_proba(S, ys, Q, steps, distance)
    np.testing.assert_allclose(proba, expected, rtol=1e-9, atol=1e-12)
    # The refinement moves the probabilities, and a second step moves them again.
    assert not np.allclose(expected, _soft_kmeans_proba(S, ys, Q, steps - 1, distance))
    # decision_function and predict follow the same refined prototypes.
    np.testing.assert_allclose(
        clf.decision_function(Q), -_distance(Q, _refined(S, ys, Q, steps, distance), distance)
    )
    np.testing.assert_array_equal(clf.predict(Q), clf.classes_[expected.argmax(1)])


def test_the_refinement_uses_every_query_of_the_call_whatever_batch_size(digits, mlp):
    X, y = digits
    S, ys, Q, _ = _episode(X, y, n_shot=1, n_query=15)  # 75 queries
    with torch.no_grad():
        Zs, Zq = (mlp.eval()(torch.as_tensor(A)).double().numpy() for A in (S, Q))
    expected = _soft_kmeans_proba(Zs, ys, Zq, 2, "sqeuclidean")
    for batch_size in (1, 7, 256):
        clf = PrototypicalClassifier(
            mlp, transductive=True, transductive_steps=2, batch_size=batch_size
        ).fit(S, ys)
        np.testing.assert_allclose(clf.predict_proba(Q), expected, rtol=1e-4, atol=1e-6)


def test_transductive_predictions_depend_on_the_batch(digits):
    X, y = digits
    S, ys, Q, _ = _episode(X, y)
    plain = PrototypicalClassifier().fit(S, ys)
    transductive = PrototypicalClassifier(transductive=True).fit(S, ys)
    for clf, depends in ((plain, False), (transductive, True)):
        alone = clf.predict_proba(Q[:1])[0]
        with_others = clf.predict_proba(Q)[0]
        assert np.allclose(alone, with_others, rtol=1e-5, atol=1e-7) != depends
    # The order of the queries does not matter: the refinement sees them as a set.
    np.testing.assert_allclose(
        transductive.predict_proba(Q[::-1])[::-1],
        transductive.predict_proba(Q),
        rtol=1e-5,
        atol=1e-6,
    )


def test_predict_leaves_the_fitted_prototypes_unchanged(digits):
    X, y = digits
    S, ys, Q, _ = _episode(X, y)
    clf = PrototypicalClassifier(transductive=True, transductive_steps=3).fit(S, ys)
    prototypes = clf.prototypes_.copy()
    first = clf.predict_proba(Q)
    clf.predict(Q[:5])
    clf.decision_function(Q[5:])
    np.testing.assert_array_equal(clf.prototypes_, prototypes)
    np.testing.assert_array_equal(clf.prototypes_, PrototypicalClassifier().fit(S, ys).prototypes_)
    np.testing.assert_array_equal(clf.predict_proba(Q), first)  # nothing carried over


def test_transductive_is_more_accurate_on_digits(digits):
    X, y = digits
    episodes = dict(n_way=5, n_shot=1, n_query=15, n_episodes=100, random_state=0)
    plain = evaluate_episodes(PrototypicalClassifier(), X, y, **episodes)
    transductive = evaluate_episodes(PrototypicalClassifier(transductive=True), X, y, **episodes)
    # 5-way 1-shot, 100 episodes: 0.725 ± 0.020 without, 0.790 ± 0.021 with one step.
    assert transductive["accuracy"] > plain["accuracy"] + 0.03, (plain, transductive)
    assert (transductive["scores"] - plain["scores"]).mean() > 0


def test_clone_and_grid_search_over_transductive(digits):
    X, y = digits
    clf = PrototypicalClassifier(transductive=True, transductive_steps=2)
    assert clone(clf).get_params() == clf.get_params()
    cv = EpisodicSplit(n_way=5, n_shot=1, n_query=15, n_episodes=20, random_state=0)
    search = GridSearchCV(
        PrototypicalClassifier(), {"transductive": [False, True]}, cv=cv, refit=False
    ).fit(X, y)
    for value, score in zip([False, True], search.cv_results_["mean_test_score"]):
        alone = cross_val_score(PrototypicalClassifier(transductive=value), X, y, cv=cv)
        assert score == pytest.approx(alone.mean())
    assert search.best_params_ == {"transductive": True}


@pytest.mark.parametrize(
    "params", [{}, {"transductive_steps": 3, "distance": "cosine"}], ids=["1-step", "3-cosine"]
)
def test_public_contract_on_digits(digits, params):
    check_classifier(PrototypicalClassifier(transductive=True, **params), *digits)


def test_two_classes_decision_function(digits):
    X, y = digits
    S, ys, Q, _ = _episode(X, y, n_way=2, n_shot=1)
    clf = PrototypicalClassifier(transductive=True).fit(S, ys)
    proba = clf.predict_proba(Q)
    np.testing.assert_allclose(
        clf.decision_function(Q), np.log(proba[:, 1]) - np.log(proba[:, 0]), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize(
    "params, message",
    [
        ({"transductive": "yes"}, "transductive must be True or False, got 'yes'"),
        ({"transductive": 1}, "transductive must be True or False, got 1"),
        ({"transductive_steps": 0}, "transductive_steps must be an integer >= 1, got 0"),
        ({"transductive_steps": 1.5}, "transductive_steps must be an integer >= 1, got 1.5"),
        ({"transductive_steps": True}, "transductive_steps must be an integer >= 1, got True"),
    ],
)
def test_bad_values_name_the_parameter(digits, params, message):
    X, y = digits
    clf = PrototypicalClassifier(**params)
    with pytest.raises(ValueError, match=re.escape(f"PrototypicalClassifier: {message}")):
        clf.fit(X[:20], y[:20])
