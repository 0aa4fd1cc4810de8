"""Matching Networks: the comparator's math, the meta-learner and the few-shot classifier."""

import joblib
import numpy as np
import pytest
import torch
from conftest import TinyEncoder
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelEncoder, StandardScaler
from torch import nn

from skfewshot import MatchingClassifier
from skfewshot.meta import MatchingNetLearner
from skfewshot.model_selection import EpisodicSplit
from skfewshot.nn import MLP, Conv4, MatchingAttention


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


@pytest.mark.parametrize("fce", [False, True])
def test_queries_are_scored_independently(fce):
    rng = np.random.RandomState(3)
    support = torch.as_tensor(rng.randn(8, 4), dtype=torch.float32)
    labels = torch.as_tensor([0, 1, 2, 3] * 2)
    query = torch.as_tensor(rng.randn(6, 4), dtype=torch.float32)
    module = (_fce(4) if fce else MatchingAttention()).eval()
    with torch.no_grad():
        together = module(support, labels, query)
        alone = torch.cat([module(support, labels, query[i : i + 1]) for i in range(6)])
        torch.testing.assert_close(together, alone)

    X, y = rng.randn(30, 4).astype(np.float32), np.arange(30) % 3
    clf = MatchingClassifier(comparator=module).fit(X[:12], y[:12])
    batched = clf.predict_proba(X[12:])
    one_by_one = clf.set_params(batch_size=1).fit(X[:12], y[:12]).predict_proba(X[12:])
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-5, atol=1e-7)


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
    """A MatchingNetLearner (FCE) meta-trained briefly on digits 0-5, its novel classes."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32) / 16
    base = y < 6
    learner = _learner().fit(X[base], y[base])
    return learner, X[~base], y[~base]


def _learner(**params):
    defaults = dict(
        encoder=MLP,
        encoder__in_features=64,
        encoder__hidden_features=(32,),
        encoder__out_features=16,
        comparator__embedding_dim=16,
        n_way=3,
        n_shot=2,
        n_query=3,
        episodes_per_epoch=10,
        max_epochs=2,
        verbose=0,
        random_state=0,
    )
    return MatchingNetLearner(**{**defaults, **params})


def test_to_classifier_scores_like_the_meta_trained_model(trained):
    learner, X, y = trained
    clf = learner.to_classifier()
    assert isinstance(clf, MatchingClassifier)
    assert clf.comparator is not learner.comparator_ and clf.comparator.fce
    support, query = next(EpisodicSplit(3, 2, 4, n_episodes=1, random_state=0).split(X, y))
    proba = clf.fit(X[support], y[support]).predict_proba(X[query])
    module = learner.module_.eval()
    with torch.no_grad():
        scores = module(
            torch.as_tensor(X[support]),
            torch.as_tensor(LabelEncoder().fit_transform(y[support])),
            torch.as_tensor(X[query]),
        )
    np.testing.assert_allclose(proba, scores.exp().numpy(), rtol=1e-5, atol=1e-7)


def test_without_fce_the_classifier_scores_the_learners_episodes(digits):
    X, y = digits
    base = y < 6
    learner = _learner(fce=False).fit(X[base], y[base])
    assert not list(learner.comparator_.parameters())
    cv = EpisodicSplit(n_way=3, n_shot=2, n_query=3, n_episodes=30, random_state=0)
    scores = cross_val_score(learner.to_classifier(), X[~base], y[~base], cv=cv)
    assert learner.score(X[~base], y[~base], n_episodes=30) == pytest.approx(scores.mean())


def test_fit_leaves_encoder_and_comparator_untouched(trained):
    learner, X, y = trained
    encoder, comparator = learner.encoder_.train(), learner.comparator_.train()
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in (encoder, comparator)]
    clf = MatchingClassifier(encoder, comparator).fit(X[:30], y[:30])
    clf.predict(X[30:60])
    for module, state in zip((encoder, comparator), before, strict=True):
        assert module.training
        for key, value in module.state_dict().items():
            assert torch.equal(value, state[key])
    assert clf.comparator_ is not comparator and not clf.comparator_.training


def test_clone_pipeline_cross_val_and_grid_search(digits, trained):
    learner, _, _ = trained
    X, y = digits
    clf = learner.to_classifier()
    cloned = clone(clf)
    assert cloned.comparator is not clf.comparator and cloned.comparator.read_steps == 5

    cv = EpisodicSplit(n_way=5, n_shot=1, n_query=10, n_episodes=30, random_state=0)
    pipe = make_pipeline(
        StandardScaler(), MatchingClassifier(comparator=MatchingAttention(scale=10.0))
    )
    scores = cross_val_score(pipe, X, y, cv=cv)
    assert scores.shape == (30,) and scores.mean() > 0.6

    # With one shot the scale cannot change a prediction; with five it sharpens the vote.
    search = GridSearchCV(
        MatchingClassifier(),
        {"comparator": [MatchingAttention(scale=1.0), MatchingAttention(scale=20.0)]},
        cv=EpisodicSplit(n_way=5, n_shot=5, n_query=10, n_episodes=30, random_state=0),
        refit=False,
    ).fit(X, y)
    means = search.cv_results_["mean_test_score"]
    assert means.shape == (2,) and search.best_index_ == 1 and means[1] > means[0]


def test_joblib_round_trip_identical_predictions(tmp_path, trained):
    learner, X, y = trained
    clf = learner.to_classifier().fit(X[:40], y[:40])
    path = tmp_path / "matching.joblib"
    joblib.dump(clf, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict(X[40:]), clf.predict(X[40:]))
    np.testing.assert_array_equal(loaded.predict_proba(X[40:]), clf.predict_proba(X[40:]))


def test_any_number_of_ways_and_shots_at_test_time(trained):
    learner, X, y = trained
    clf = learner.to_classifier()
    for n_way, n_shot in [(2, 1), (4, 5)]:
        cv = EpisodicSplit(n_way=n_way, n_shot=n_shot, n_query=5, n_episodes=5, random_state=0)
        assert cross_val_score(clf, X, y, cv=cv).shape == (5,)
    uneven = np.r_[np.flatnonzero(y == 6)[:1], np.flatnonzero(y == 7)[:7]]
    assert clf.fit(X[uneven], y[uneven]).predict_proba(X[:3]).shape == (3, 2)


# -- the meta-learner ----------------------------------------------------------------


def test_meta_training_improves_novel_class_accuracy(omniglot_small):
    X, y = omniglot_small.data, omniglot_small.target
    base = y < 100  # meta-train on 100 characters, test on the 36 others
    params = dict(
        encoder__hidden_channels=16,
        encoder__out_channels=16,
        comparator__embedding_dim=16,
        n_way=10,
        n_shot=1,
        n_query=5,
        episodes_per_epoch=50,
        verbose=0,
        random_state=0,
    )
    untrained = MatchingNetLearner(Conv4, max_epochs=0, **params).fit(X[base], y[base])
    trained = MatchingNetLearner(Conv4, max_epochs=4, **params).fit(X[base], y[base])
    score = dict(n_way=5, n_shot=1, n_query=5, n_episodes=100)
    before = untrained.score(X[~base], y[~base], **score)
    after = trained.score(X[~base], y[~base], **score)
    assert after > before + 0.1, (before, after)
    assert trained.history_[-1, "train_loss"] < trained.history_[0, "train_loss"]
    lstm = "comparator.query_lstm.weight_ih"
    assert not torch.equal(
        trained.module_.state_dict()[lstm], untrained.module_.state_dict()[lstm]
    )  # FCE is trained too


def test_same_random_state_same_weights_and_different_seed_differs(digits):
    X, y = digits
    a = _learner(random_state=3).fit(X, y).module_.state_dict()
    b = _learner(random_state=3).fit(X, y).module_.state_dict()
    c = _learner(random_state=4).fit(X, y).module_.state_dict()
    assert any(key.startswith("comparator.") for key in a)
    for key in a:
        assert torch.equal(a[key], b[key])
    assert any(not torch.equal(a[key], c[key]) for key in a)


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
        match=r"encoder gives embeddings of 16 features.*"
        r"comparator__embedding_dim=64.*"
        r"Set comparator__embedding_dim=16",
    ):
        _learner(comparator__embedding_dim=64).fit(X, y)
    with pytest.raises(ValueError, match="MatchingNetLearner: fce must be True or False"):
        _learner(fce="yes").fit(X, y)
    with pytest.raises(ValueError, match="MatchingNetLearner: read_steps must be an integer"):
        _learner(read_steps=0).fit(X, y)
    with pytest.raises(ValueError, match="MatchingNetLearner: scale must be a positive"):
        _learner(scale=0).fit(X, y)
    with pytest.raises(ValueError, match="MatchingAttention: embedding_dim must be an"):
        _learner(comparator__embedding_dim=0).fit(X, y)
    with pytest.raises(TypeError, match="meta-learner: it does not label samples"):
        _learner(max_epochs=0).fit(X, y).predict(X)
    # fce=False takes embeddings of any width.
    _learner(fce=False, comparator__embedding_dim=64, max_epochs=1).fit(X, y)


BAD_INPUT = {
    "embedding width the LSTMs were not built for": (
        MatchingClassifier(comparator=_fce(8)),
        np.ones((4, 5)),
        [0, 0, 1, 1],
        ValueError,
        (
            r"MatchingClassifier: MatchingAttention was built with embedding_dim=8.*"
            r"received embeddings of 5 features; build it with embedding_dim=5"
        ),
    ),
    "comparator that is not a module": (
        MatchingClassifier(comparator="fce"),
        np.ones((4, 2)),
        [0, 0, 1, 1],
        TypeError,
        "comparator must be a torch.nn.Module instance",
    ),
    "one-class support set": (
        MatchingClassifier(),
        np.ones((4, 2)),
        [1, 1, 1, 1],
        ValueError,
        "only 1 class",
    ),
    "NaN in support": (
        MatchingClassifier(),
        np.array([[np.nan, 1.0], [0.0, 1.0]]),
        [0, 1],
        ValueError,
        "Input X contains NaN",
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
