"""Matching Networks: the comparator's math, the meta-learner and the few-shot classifier."""

import numpy as np
import pytest
import torch
from conftest import TinyEncoder
from methods import tiny_learner
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from torch import nn

from skfewshot import MatchingClassifier
from skfewshot.model_selection import EpisodicSplit
from skfewshot.nn import MatchingAttention


class FoldEncoder(nn.Module):
    """A tiny encoder giving ``width`` features whatever the input's width.

    Feature j is added into output j % width (so 2-feature inputs keep their
    values), then scaled: the fixed width that full context embeddings need.
    """

    def __init__(self, width=4):
        super().__init__()
        self.width = width
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, x):
        x = x.flatten(1)
        bins = torch.arange(x.shape[1], device=x.device) % self.width
        return self.scale * x.new_zeros(len(x), self.width).index_add_(1, bins, x)


def _fce(width=4, **params):
    torch.manual_seed(0)
    return MatchingAttention(width, fce=True, **params)


# -- scikit-learn's estimator checks -------------------------------------------------

# scikit-learn's checks run over these in test_common.py.
ESTIMATORS = [
    MatchingClassifier(),
    MatchingClassifier(TinyEncoder()),
    MatchingClassifier(FoldEncoder(4), _fce(4, read_steps=2)),
]


# -- the method's math against direct computations ----------------------------------


def _cosine_attention_proba(query, support, labels, n_way, scale=1.0):
    """P(y|x,S) = sum_i softmax_i(scale cos(x, x_i)) onehot(y_i), in numpy."""
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    s = support / np.linalg.norm(support, axis=1, keepdims=True)
    logits = scale * q @ s.T
    attention = np.exp(logits - logits.max(1, keepdims=True))
    attention /= attention.sum(1, keepdims=True)
    return attention @ np.eye(n_way)[labels]


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _lstm_step(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One LSTM step written out: gates (input, forget, cell, output) as torch orders them."""
    i, f, g, o = np.split(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh, 4, axis=-1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


def _fce_direct(module, support, labels, query):
    """Vinyals et al.'s full context embeddings, step by step, in numpy."""
    p = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    order = np.argsort(labels, kind="stable")
    x, labels = support[order], labels[order]
    d = x.shape[1]

    def run(sequence, suffix):
        h, c, states = np.zeros(d), np.zeros(d), []
        for item in sequence:
            h, c = _lstm_step(
                item,
                h,
                c,
                p[f"support_lstm.weight_ih_l0{suffix}"],
                p[f"support_lstm.weight_hh_l0{suffix}"],
                p[f"support_lstm.bias_ih_l0{suffix}"],
                p[f"support_lstm.bias_hh_l0{suffix}"],
            )
            states.append(h)
        return np.array(states)

    g = x + run(x, "") + run(x[::-1], "_reverse")[::-1]
    f = []
    for q in query:  # each query alone
        h, c = q, np.zeros(d)
        for _ in range(module.read_steps):
            a = np.exp(g @ h - (g @ h).max())
            r = (a / a.sum()) @ g
            h_hat, c = _lstm_step(
                np.concatenate([q, r]),
                h,
                c,
                p["query_lstm.weight_ih"],
                p["query_lstm.weight_hh"],
                p["query_lstm.bias_ih"],
                p["query_lstm.bias_hh"],
            )
            h = h_hat + q
        f.append(h)
    return np.array(f), g, labels


def test_cosine_attention_matches_direct_computation():
    rng = np.random.RandomState(0)
    support, query = rng.randn(7, 5), rng.randn(4, 5)
    labels = np.array([2, 0, 1, 0, 2, 1, 1])
    for scale in (1.0, 7.5):
        scores = MatchingAttention(scale=scale)(
            torch.as_tensor(support), torch.as_tensor(labels), torch.as_tensor(query)
        )
        assert scores.dtype == torch.float64 and scores.shape == (4, 3)
        expected = _cosine_attention_proba(query, support, labels, 3, scale)
        np.testing.assert_allclose(scores.exp().numpy(), expected, rtol=1e-12)
    assert not list(MatchingAttention().parameters())  # parameter-free without FCE


def test_full_context_embeddings_match_direct_computation():
    rng = np.random.RandomState(1)
    support, query = rng.randn(6, 3), rng.randn(4, 3)
    labels = np.array([1, 0, 2, 1, 0, 2])
    module = _fce(3, read_steps=3).double()
    scores = module(torch.as_tensor(support), torch.as_tensor(labels), torch.as_tensor(query))
    f, g, sorted_labels = _fce_direct(module, support, labels, query)
    np.testing.assert_allclose(
        scores.detach().exp().numpy(), _cosine_attention_proba(f, g, sorted_labels, 3), rtol=1e-10
    )
    # The LSTMs change the result: FCE is not the plain cosine attention.
    plain = _cosine_attention_proba(query, support, labels, 3)
    assert not np.allclose(scores.detach().exp().numpy(), plain, atol=1e-3)


def test_log_probabilities_stay_finite_and_exact_at_large_scales():
    rng = np.random.RandomState(2)
    support, query = rng.randn(6, 4), rng.randn(3, 4)
    labels = np.array([0, 1, 2, 0, 1, 2])
    scores = MatchingAttention(scale=2000.0)(
        torch.as_tensor(support), torch.as_tensor(labels), torch.as_tensor(query)
    ).numpy()
    assert np.isfinite(scores).all() and scores.min() < -100  # no underflow to log(0)
    # log P_c = log sum_{i in c} exp(l_i) - log sum_i exp(l_i), evaluated stably
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    s = support / np.linalg.norm(support, axis=1, keepdims=True)
    logits = 2000.0 * q @ s.T

    def lse(a):
        return a.max(1) + np.log(np.exp(a - a.max(1, keepdims=True)).sum(1))

    expected = np.stack([lse(logits[:, labels == c]) for c in range(3)], 1)
    np.testing.assert_allclose(scores, expected - lse(logits)[:, None], rtol=1e-9)


def test_large_scale_becomes_cosine_nearest_neighbour(digits):
    X, y = digits
    clf = MatchingClassifier(comparator=MatchingAttention(scale=1e4)).fit(X[:300], y[:300])
    knn = KNeighborsClassifier(1, metric="cosine").fit(X[:300], y[:300])
    np.testing.assert_array_equal(clf.predict(X[300:600]), knn.predict(X[300:600]))


def test_classifier_probabilities_are_the_attention_over_labels(digits):
    X, y = digits
    clf = MatchingClassifier().fit(X[:60], y[:60])
    expected = _cosine_attention_proba(
        X[60:90].astype(np.float64), X[:60].astype(np.float64), y[:60], 10
    )
    np.testing.assert_allclose(clf.predict_proba(X[60:90]), expected, rtol=1e-5)
    np.testing.assert_allclose(np.exp(clf.decision_function(X[60:90])), expected, rtol=1e-5)
    np.testing.assert_array_equal(clf.predict(X[60:90]), clf.classes_[expected.argmax(1)])


def test_support_order_full_context_embeddings_and_plain_attention():
    rng = np.random.RandomState(4)
    X, y = rng.randn(12, 4).astype(np.float32), np.repeat([0, 1, 2], 4)
    query = rng.randn(5, 4).astype(np.float32)
    interleaved = np.argsort(np.tile(np.arange(4), 3), kind="stable")  # keeps each class's order
    within = np.concatenate([np.roll(np.flatnonzero(y == c), 1) for c in range(3)])
    reversed_all = np.arange(12)[::-1]

    fce = MatchingClassifier(comparator=_fce(4))
    base = fce.fit(X, y).predict_proba(query)
    # The BiLSTM reads the support set sorted by class: interleaving does not matter ...
    np.testing.assert_allclose(
        fce.fit(X[interleaved], y[interleaved]).predict_proba(query), base, rtol=1e-5
    )
    # ... but the order within a class does (a sequence model, as in the paper).
    assert not np.allclose(fce.fit(X[within], y[within]).predict_proba(query), base, rtol=1e-4)

    plain = MatchingClassifier()
    base = plain.fit(X, y).predict_proba(query)
    np.testing.assert_allclose(
        plain.fit(X[reversed_all], y[reversed_all]).predict_proba(query), base, rtol=1e-5
    )


def test_float64_features_with_full_context_embeddings():
    rng = np.random.RandomState(5)
    X, y = rng.randn(20, 4), np.arange(20) % 4
    clf = MatchingClassifier(comparator=_fce(4)).fit(X[:12], y[:12])
    proba64 = clf.predict_proba(X[12:])
    proba32 = clf.fit(X[:12].astype(np.float32), y[:12]).predict_proba(X[12:].astype(np.float32))
    np.testing.assert_allclose(proba64, proba32, rtol=1e-5)


# -- the classifier with scikit-learn tools ------------------------------------------


@pytest.fixture(scope="module")
def trained():
    """A MatchingLearner (FCE) meta-trained briefly on digits 0-5, its novel classes."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32) / 16
    base = y < 6
    learner = _learner().fit(X[base], y[base])
    return learner, X[~base], y[~base]


def _learner(**params):
    return tiny_learner("matching", **params)


def test_without_fce_the_classifier_scores_the_learners_episodes(digits):
    X, y = digits
    base = y < 6
    learner = _learner(fce=False).fit(X[base], y[base])
    assert not list(learner.comparator_.parameters())
    cv = EpisodicSplit(n_way=3, n_shot=2, n_query=3, n_episodes=30, random_state=0)
    scores = cross_val_score(learner.to_classifier(), X[~base], y[~base], cv=cv)
    assert learner.score(X[~base], y[~base], n_episodes=30) == pytest.approx(scores.mean())


# -- the meta-learner ----------------------------------------------------------------


def test_learner_options_reach_the_comparator_and_classifier(digits):
    X, y = digits
    learner = _learner(read_steps=2, scale=7.0, max_epochs=0).fit(X, y)
    comparator = learner.comparator_
    assert (comparator.fce, comparator.read_steps, comparator.scale) == (True, 2, 7.0)
    assert comparator.embedding_dim == 16
    clf = learner.to_classifier()
    assert (clf.comparator.read_steps, clf.comparator.scale) == (2, 7.0)
    assert not _learner(fce=False, max_epochs=0).fit(X, y).comparator_.fce


def test_learner_errors(digits):
    X, y = digits
    with pytest.raises(
        ValueError,
        match=r"MatchingLearner: the comparator MatchingAttention was built for embeddings "
        r"of 64 features \(embedding_dim=64\), but the encoder gives embeddings of shape "
        r"\(16,\), i.e. 16 features. Set comparator__embedding_dim=16",
    ):
        _learner(comparator__embedding_dim=64).fit(X, y)
    with pytest.raises(ValueError, match="MatchingLearner: fce must be True or False"):
        _learner(fce="yes").fit(X, y)
    with pytest.raises(ValueError, match="MatchingLearner: read_steps must be an integer"):
        _learner(read_steps=0).fit(X, y)
    with pytest.raises(ValueError, match="MatchingLearner: scale must be a positive"):
        _learner(scale=0).fit(X, y)
    with pytest.raises(ValueError, match="MatchingAttention: embedding_dim must be an"):
        _learner(comparator__embedding_dim=0).fit(X, y)
    with pytest.raises(TypeError, match="meta-learner: it does not label samples"):
        _learner(max_epochs=0).fit(X, y).predict(X)
    # fce=False takes embeddings of any width, unless an embedding_dim is declared.
    learner = _learner(fce=False, max_epochs=1)
    del learner.comparator__embedding_dim
    assert learner.fit(X, y).comparator_.embedding_dim is None
    with pytest.raises(ValueError, match="Set comparator__embedding_dim=16"):
        _learner(fce=False, comparator__embedding_dim=64, max_epochs=1).fit(X, y)


BAD_INPUT = {
    "embedding width the LSTMs were not built for": (
        MatchingClassifier(comparator=_fce(8)),
        np.ones((4, 5)),
        [0, 0, 1, 1],
        ValueError,
        (
            r"MatchingClassifier: the comparator MatchingAttention was built for embeddings "
            r"of 8 features \(embedding_dim=8\), but X holds embeddings of shape \(5,\).*"
            r"Set the comparator's embedding_dim=5"
        ),
    ),
    "comparator that is not a module": (
        MatchingClassifier(comparator="fce"),
        np.ones((4, 2)),
        [0, 0, 1, 1],
        TypeError,
        "comparator must be a torch.nn.Module instance",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT), ids=list(BAD_INPUT))
def test_bad_input_table(case):
    est, X, y, error, message = BAD_INPUT[case]
    with pytest.raises(error, match=message):
        clone(est).fit(X, y)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(fce=1), "fce must be True or False"),
        (dict(fce=True, embedding_dim=0), "embedding_dim must be an integer >= 1"),
        (dict(read_steps=2.5), "read_steps must be an integer >= 1"),
        (dict(scale=-1.0), "scale must be a positive number"),
        (dict(scale=float("inf")), "scale must be a positive number"),
    ],
)
def test_comparator_option_errors(params, message):
    with pytest.raises(ValueError, match=f"MatchingAttention: {message}"):
        MatchingAttention(**params)
