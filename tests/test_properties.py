"""Property-based tests (issue 14): random input to every public estimator and to
``EpisodicSplit``.

Hypothesis draws the data: shapes (1 to 3 dimensions, 1 to 5 features, another width
for the queries), dtypes (float32, float64, int64, bool), labels (ints, strings,
floats, in any order), NaN, inf, -inf or a huge finite value at any place of the
support or the queries, a label that names no class (NaN, None), and tiny or
degenerate classes (one class, one sample per class, fewer samples than an episode
needs, no queries). The property, for every classifier configuration of
``methods.classifiers()``, the transformers, every meta-learner of
``methods.LEARNERS`` (tiny: an MLP, 1 epoch of 1 or 2 episodes) and
``EpisodicSplit``: either a result that passes sanity checks (probabilities finite,
rows summing to 1, predictions among ``classes_``, a finite loss and score, split
indices in range, disjoint, with the episode's classes and counts), or a ValueError or
TypeError with a message, raised by skfewshot or scikit-learn -- never an error from
inside torch, numpy or skorch (the traceback's last frame is not in their code), never
another exception type, never a NaN result, never a label that names no class
accepted.

Settings, so that CI is deterministic and quick (about 2 minutes for the whole file
on 2 slow cores):

- ``derandomize=True`` and ``database=None``: the same examples at every run, nothing
  written to disk;
- ``deadline=None``: a first call builds torch modules, slower than the next ones;
- ``max_examples``: 15 per classifier configuration and per transformer, 5 per
  meta-learner, 150 for ``EpisodicSplit``.
"""

import os
import traceback

import numpy as np
import pytest
import skorch
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from methods import LEARNERS, TRANSFORMERS, classifiers, tiny_learner
from sklearn.base import clone

from skfewshot.model_selection import EpisodicSplit

COMMON = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)

# -- the property ------------------------------------------------------------------------

#: The code an error must not come from: the frameworks skfewshot builds on.
FRAMEWORKS = tuple(
    os.path.dirname(os.path.abspath(module.__file__)) + os.sep for module in (torch, np, skorch)
)

#: What a refused input gives instead of a result.
REFUSED = object()


def _assert_ours(exc):
    """``exc`` (a ValueError or TypeError) has a message and was raised by skfewshot or
    scikit-learn: the last frame of its traceback is not inside torch, numpy or skorch."""
    assert str(exc).strip(), f"{type(exc).__name__} without a message"
    frames = traceback.extract_tb(exc.__traceback__)
    where = os.path.abspath(frames[-1].filename) if frames else "?"
    assert not where.startswith(FRAMEWORKS), (
        f"{type(exc).__name__} raised inside {where} (line {frames[-1].lineno}), not by "
        f"skfewshot or scikit-learn: {exc}"
    )


def _outcome(call):
    """``call()``, or REFUSED if it raised a ValueError or TypeError of ours (checked).
    Any other exception propagates: the property fails."""
    try:
        return call()
    except (ValueError, TypeError) as exc:  # NotFittedError is a ValueError
        _assert_ours(exc)
        return REFUSED


def _check_classifier(estimator, X, y, X_query, bad_labels):
    """Fit a clone of ``estimator`` on ``(X, y)`` and predict ``X_query``: sane or refused."""
    clf = clone(estimator)
    if _outcome(lambda: clf.fit(X, y)) is REFUSED:
        return
    assert not bad_labels, "fit accepted a label that names no class (NaN or None)"
    assert len(clf.classes_) == len(np.unique(y)) >= 2
    proba = _outcome(lambda: clf.predict_proba(X_query))
    if proba is not REFUSED:
        assert proba.shape == (len(X_query), len(clf.classes_))
        assert np.isfinite(proba).all(), "predict_proba gave non-finite probabilities"
        assert (proba >= 0).all() and (proba <= 1 + 1e-5).all()
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-4)
    predicted = _outcome(lambda: clf.predict(X_query))
    if predicted is not REFUSED:
        assert predicted.shape == (len(X_query),)
        assert np.isin(predicted, clf.classes_).all(), "a prediction is not among classes_"


# -- the data ----------------------------------------------------------------------------


def _strings():
    # Characters drawn from a fixed alphabet (no Unicode tables: nothing cached on disk).
    return st.lists(st.sampled_from("abé_"), max_size=3).map("".join)


LABEL_VALUES = {
    "int": st.integers(-1000, 1000),
    "str": _strings(),
    "float": st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
}


@st.composite
def labelled(draw, *, max_classes, max_per_class):
    """``(y, bad)``: the labels of 1 to ``max_classes`` classes of 1 to ``max_per_class``
    samples, in a random order; ``bad``: whether one of them was made NaN or None."""
    n_classes = draw(st.integers(1, max_classes))
    kind = draw(st.sampled_from(sorted(LABEL_VALUES)))
    values = draw(st.lists(LABEL_VALUES[kind], min_size=n_classes, max_size=n_classes, unique=True))
    sizes = draw(st.lists(st.integers(1, max_per_class), min_size=n_classes, max_size=n_classes))
    y = np.repeat(np.array(values), sizes)
    y = y[draw(st.permutations(range(len(y))))]
    bad = draw(st.sampled_from([None, None, None, "nan", "none"]))
    if bad is not None:
        y = y.astype(float if bad == "nan" and y.dtype.kind in "if" else object)
        y[draw(st.integers(0, len(y) - 1))] = np.nan if bad == "nan" else None
    return y, bad is not None


def _array(rng, n_samples, shape, dtype, scale):
    if dtype is np.bool_:
        return rng.rand(n_samples, *shape) > 0.5
    if np.issubdtype(dtype, np.integer):
        return rng.randint(-3, 4, size=(n_samples, *shape)).astype(dtype)
    return (scale * rng.randn(n_samples, *shape)).astype(dtype)


def _poisoned(draw, arrays):
    """``arrays`` with, maybe, one value of one of them NaN, infinite or huge."""
    poison = draw(st.sampled_from([None, None, "nan", "inf", "-inf", "huge"]))
    candidates = [i for i, array in enumerate(arrays) if array.size]
    if poison is None or not candidates:
        return arrays
    arrays = list(arrays)
    i = draw(st.sampled_from(candidates))
    array = arrays[i]
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    huge = 1e30 if array.dtype == np.float32 else 1e300
    value = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "huge": huge}[poison]
    array = array.copy()
    array.flat[draw(st.integers(0, array.size - 1))] = value
    arrays[i] = array
    return arrays


@st.composite
def support_and_queries(draw):
    """``(X, y, X_query, bad_labels)`` for a classifier: a tiny support set of any shape and
    dtype, 0 to 4 queries (sometimes of another width), maybe a bad value or label."""
    y, bad_labels = draw(labelled(max_classes=4, max_per_class=3))
    ndim = draw(st.sampled_from([2, 2, 2, 1, 3]))
    width = draw(st.integers(1, 5))
    shape = {1: (), 2: (width,), 3: (2, width)}[ndim]
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int64, np.bool_]))
    scale = draw(st.sampled_from([1.0, 1e-3, 1e3]))
    rng = np.random.RandomState(draw(st.integers(0, 2**16)))
    X = _array(rng, len(y), shape, dtype, scale)
    query_shape = (width + 1,) if ndim == 2 and draw(st.integers(0, 5)) == 0 else shape
    X_query = _array(rng, draw(st.integers(0, 4)), query_shape, dtype, scale)
    X, X_query = _poisoned(draw, [X, X_query])
    return X, y, X_query, bad_labels


@st.composite
def base_data(draw):
    """``(X, y, params, bad_labels)`` for a tiny meta-learner (an MLP of 64 features):
    a tiny base set, sometimes of another width, and the episodes' shape."""
    y, bad_labels = draw(labelled(max_classes=5, max_per_class=6))
    width = draw(st.sampled_from([64, 64, 64, 63]))
    dtype = draw(st.sampled_from([np.float32, np.float32, np.float64, np.int64]))
    rng = np.random.RandomState(draw(st.integers(0, 2**16)))
    if dtype is np.int64:
        X = rng.randint(0, 17, size=(len(y), width)).astype(dtype)  # digits' gray levels
    else:
        X = rng.rand(len(y), width).astype(dtype)
    (X,) = _poisoned(draw, [X])
    params = {
        "n_way": draw(st.integers(1, 3)),
        "n_query": draw(st.sampled_from([1, 3, None])),
        "episodes_per_epoch": draw(st.integers(1, 2)),
    }
    return X, y, params, bad_labels


# -- the classifiers and the transformers ------------------------------------------------


@pytest.mark.parametrize("estimator", classifiers(), ids=lambda c: repr(c)[:60])
@settings(max_examples=15, **COMMON)
@given(data=support_and_queries())
def test_a_classifier_answers_sanely_or_refuses_clearly(estimator, data):
    X, y, X_query, bad_labels = data
    _check_classifier(estimator, X, y, X_query, bad_labels)


@pytest.mark.parametrize("transformer", TRANSFORMERS, ids=lambda t: repr(t)[:60])
@settings(max_examples=15, **COMMON)
@given(data=support_and_queries())
def test_a_transformer_embeds_sanely_or_refuses_clearly(transformer, data):
    X, _, X_query, _ = data
    fitted = clone(transformer)
    if _outcome(lambda: fitted.fit(X)) is REFUSED:
        return
    embeddings = _outcome(lambda: fitted.transform(X_query))
    if embeddings is not REFUSED:
        assert embeddings.shape[0] == len(X_query)
        assert np.isfinite(embeddings).all(), "transform gave non-finite embeddings"


# -- the meta-learners -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LEARNERS))
@settings(max_examples=5, **COMMON)
@given(data=base_data())
def test_a_meta_learner_trains_sanely_or_refuses_clearly(name, data):
    X, y, params, bad_labels = data
    learner = tiny_learner(name, max_epochs=1, **params)
    if _outcome(lambda: learner.fit(X, y)) is REFUSED:
        return
    assert not bad_labels, "fit accepted a label that names no class (NaN or None)"
    losses = learner.history[:, "train_loss"]
    assert len(losses) == 1 and np.isfinite(losses).all(), f"training losses {losses}"
    score = _outcome(lambda: learner.score(X, y, n_episodes=1))
    if score is not REFUSED:
        assert np.isfinite(score) and 0 <= score <= 1, f"score {score}"
    _check_classifier(learner.to_classifier(), X, y, X[:3], bad_labels)


# -- EpisodicSplit -----------------------------------------------------------------------

ODD_VALUES = st.sampled_from([2.5, "3", None, np.int64(2)])


@st.composite
def split_case(draw):
    """``(params, X, y, bad_labels)``: EpisodicSplit's parameters (odd ones among them)
    and data of tiny classes, sometimes one sample more in X than in y."""
    y, bad_labels = draw(labelled(max_classes=6, max_per_class=5))
    params = {
        "n_way": draw(st.one_of(st.integers(-1, 7), ODD_VALUES)),
        "n_shot": draw(st.one_of(st.integers(0, 4), ODD_VALUES)),
        "n_query": draw(st.one_of(st.none(), st.integers(0, 4), ODD_VALUES)),
        "n_episodes": draw(st.one_of(st.integers(0, 3), ODD_VALUES)),
        "random_state": draw(st.integers(0, 1000)),
    }
    X = np.zeros((len(y) + draw(st.sampled_from([0, 0, 0, 1])), 1))
    return params, X, y, bad_labels


@settings(max_examples=150, **COMMON)
@given(case=split_case())
def test_episodic_split_draws_sane_episodes_or_refuses_clearly(case):
    params, X, y, bad_labels = case
    cv = EpisodicSplit(**params)
    n_splits = _outcome(cv.get_n_splits)
    episodes = _outcome(lambda: list(cv.split(X, y)))
    if episodes is REFUSED:
        return
    assert not bad_labels, "split accepted a label that names no class (NaN or None)"
    assert n_splits is not REFUSED and n_splits == len(episodes) == params["n_episodes"]
    n_way, n_shot, n_query = params["n_way"], params["n_shot"], params["n_query"]
    for support, query in episodes:
        for indices in (support, query):
            assert indices.ndim == 1 and np.issubdtype(indices.dtype, np.integer)
            assert ((0 <= indices) & (indices < len(y))).all(), "an index out of range"
            assert len(np.unique(indices)) == len(indices), "an index twice"
        assert not np.intersect1d(support, query).size, "a sample in support and query"
        classes, counts = np.unique(y[support], return_counts=True)
        assert len(classes) == n_way and (counts == n_shot).all()
        assert np.isin(y[query], classes).all(), "a query of a class not in the support"
        if n_query is not None:
            query_classes, query_counts = np.unique(y[query], return_counts=True)
            assert len(query_classes) == n_way and (query_counts == n_query).all()
