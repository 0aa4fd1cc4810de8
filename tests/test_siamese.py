"""Siamese networks: the kernel comparator, SiameseLearner and SiameseClassifier."""

import numpy as np
import pytest
import torch
from conftest import TinyEncoder, check_bad_input
from methods import tiny_learner

from skfewshot import SiameseClassifier
from skfewshot.nn import Conv4, OneHotLoss, Prototypes, SiameseKernel

# -- scikit-learn's checks --------------------------------------------------------------

# Without a comparator the kernel is built at fit for the data's width, so the checks'
# many feature counts all work; TinyEncoder keeps the width.
# scikit-learn's checks run over these in test_common.py.
ESTIMATORS = [
    SiameseClassifier(),
    SiameseClassifier(aggregation="max"),
    SiameseClassifier(TinyEncoder()),
]


# -- the kernel's math, against direct computations on tiny tensors ---------------------


def _kernel(dim=3, seed=0, **params):
    torch.manual_seed(seed)
    return SiameseKernel(dim, **params)


def _direct_pair_logits(kernel, support, query):
    w, b = kernel.linear.weight[0].detach(), kernel.linear.bias[0].detach()
    return torch.tensor([[float(w @ (q - s).abs() + b) for s in support] for q in query])


@pytest.fixture
def episode():
    gen = torch.Generator().manual_seed(0)
    support = torch.randn(5, 3, generator=gen)
    labels = torch.tensor([1, 0, 2, 1, 0])  # unordered, two classes with two shots
    query = torch.randn(4, 3, generator=gen)
    return support, labels, query


def test_pair_logits_are_weighted_l1_distances(episode):
    support, _, query = episode
    kernel = _kernel()
    expected = _direct_pair_logits(kernel, support, query)
    torch.testing.assert_close(kernel.pair_logits(support, query), expected)
    # Feature maps are flattened first.
    maps = _kernel(dim=12)
    torch.testing.assert_close(
        maps.pair_logits(
            support.repeat(1, 4).view(5, 3, 2, 2), query.repeat(1, 4).view(4, 3, 2, 2)
        ),
        maps.pair_logits(support.repeat(1, 4), query.repeat(1, 4)),
    )


@pytest.mark.parametrize("aggregation", ["max", "sum", "log_sum"])
def test_aggregations_match_the_direct_formulas(episode, aggregation):
    support, labels, query = episode
    kernel = _kernel(aggregation=aggregation)
    logits = _direct_pair_logits(kernel, support, query)
    per_class = [logits[:, labels == c] for c in range(3)]
    expected = {
        "max": torch.stack([lg.max(1).values for lg in per_class], 1),
        "sum": torch.stack([torch.sigmoid(lg).sum(1) for lg in per_class], 1),
        "log_sum": torch.stack([torch.sigmoid(lg).sum(1).log() for lg in per_class], 1),
    }[aggregation]
    torch.testing.assert_close(kernel(support, labels, query), expected)


def test_log_sum_does_not_underflow():
    # Pair logits of -1000 and -1001: every kernel value is 0 in float32, yet the
    # normalised kernel sums are e^-1000 / (e^-1000 + e^-1001) and the rest.
    kernel = SiameseKernel(1, aggregation="log_sum")
    with torch.no_grad():
        kernel.linear.weight.fill_(-1.0)
        kernel.linear.bias.zero_()
    support, labels = torch.tensor([[1000.0], [1001.0], [1001.0]]), torch.tensor([0, 1, 1])
    scores = kernel(support, labels, torch.zeros(1, 1))
    expected = torch.tensor([[1.0, 2 * np.exp(-1.0)]], dtype=torch.float32)
    expected /= 1 + 2 * np.exp(-1.0)
    torch.testing.assert_close(torch.softmax(scores, 1), expected)
    kernel.aggregation = "sum"
    assert torch.equal(kernel(support, labels, torch.zeros(1, 1)), torch.zeros(1, 2))


def test_max_gradient_reaches_the_closest_pairs_only(episode):
    support, labels, query = episode
    support.requires_grad_(True)
    _kernel(aggregation="max")(support, labels, query[:1]).sum().backward()
    logits = _direct_pair_logits(_kernel(), support.detach(), query[:1])[0]
    winners = {int(torch.argmax(torch.where(labels == c, logits, -np.inf))) for c in range(3)}
    touched = {i for i in range(5) if support.grad[i].abs().sum() > 0}
    assert touched == winners


def test_one_shot_bce_is_balanced_pairwise_bce():
    """With one shot, OneHotLoss(bce, pos_weight=n_way-1) on the max scores is Koch's
    pairwise binary cross-entropy with same and different pairs weighted equally."""
    n_way, n_query = 4, 6
    gen = torch.Generator().manual_seed(1)
    support, query = torch.randn(n_way, 3, generator=gen), torch.randn(n_query, 3, generator=gen)
    support_labels = torch.randperm(n_way, generator=gen)
    query_labels = torch.randint(n_way, (n_query,), generator=gen)
    kernel = _kernel()
    loss = OneHotLoss("bce_with_logits", pos_weight=n_way - 1)(
        kernel(support, support_labels, query), query_labels
    )

    logits = _direct_pair_logits(kernel, support, query)  # (query, support sample)
    same = query_labels[:, None] == support_labels[None, :]
    same_pairs = -torch.log(torch.sigmoid(logits[same]))
    different_pairs = -torch.log(1 - torch.sigmoid(logits[~same]))
    assert len(same_pairs) == n_query and len(different_pairs) == n_query * (n_way - 1)
    balanced = (n_way - 1) / n_way * (same_pairs.mean() + different_pairs.mean())
    torch.testing.assert_close(loss, balanced)


def test_kernel_errors():
    with pytest.raises(ValueError, match="SiameseKernel: aggregation must be one of"):
        SiameseKernel(3, aggregation="mean")
    with pytest.raises(ValueError, match="SiameseKernel: embedding_dim must be an integer"):
        SiameseKernel(0)


# -- the classifier ---------------------------------------------------------------------


def _trained_like_kernel(dim=16, seed=0):
    kernel = _kernel(dim, seed)
    with torch.no_grad():
        kernel.linear.weight.copy_(-torch.rand(1, dim) * 2)
    return kernel


@pytest.mark.parametrize("aggregation", ["sum", "max"])
def test_probabilities_are_normalised_aggregated_kernel_values(digits, mlp, aggregation):
    X, y = digits
    kernel = _trained_like_kernel()
    clf = SiameseClassifier(mlp, kernel, aggregation=aggregation).fit(X[:60], y[:60])
    with torch.no_grad():
        Z = mlp.eval()(torch.as_tensor(X[:80])).double()
        w, b = kernel.linear.weight[0].double(), kernel.linear.bias.double()
        k = torch.sigmoid((Z[60:, None, :] - Z[None, :60, :]).abs() @ w + b).numpy()
    columns = [k[:, y[:60] == c] for c in clf.classes_]
    agg = np.stack([c.sum(1) if aggregation == "sum" else c.max(1) for c in columns], 1)
    proba = clf.predict_proba(X[60:80])
    np.testing.assert_allclose(proba, agg / agg.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(clf.decision_function(X[60:80]), np.log(agg), rtol=1e-4)
    np.testing.assert_array_equal(clf.predict(X[60:80]), clf.classes_[agg.argmax(1)])


def test_default_kernel_is_minus_l1_and_built_for_the_width(digits):
    X, y = digits
    X = X.astype(np.float64)
    clf = SiameseClassifier().fit(X[:40], y[:40])
    assert clf.embedding_dim_ == 64 and clf.comparator_.embedding_dim == 64
    assert clf.comparator_.linear.weight.dtype == torch.float64  # fitted on float64
    k = 1 / (1 + np.exp(np.abs(X[40:50, None, :] - X[None, :40, :]).sum(-1)))
    agg = np.stack([k[:, y[:40] == c].sum(1) for c in clf.classes_], 1)
    np.testing.assert_allclose(
        clf.predict_proba(X[40:50]), agg / agg.sum(1, keepdims=True), rtol=1e-10
    )
    # float32 queries on a float64 fit, and another width at the next fit.
    assert clf.predict(X[40:50].astype(np.float32)).shape == (10,)
    assert SiameseClassifier().fit(X[:40, :5], y[:40]).comparator_.embedding_dim == 5


def test_raw_pixels_do_not_underflow(omniglot_small):
    # L1 distances of raw 28x28 images are in the hundreds: every kernel value is 0 in
    # float32, yet the probabilities are the normalised kernel sums.
    X, y = omniglot_small.data.reshape(len(omniglot_small.data), -1), omniglot_small.target
    support, query = np.flatnonzero(y < 5)[::4], np.flatnonzero(y < 5)[1::4]
    clf = SiameseClassifier().fit(X[support], y[support])
    proba = clf.predict_proba(X[query])
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    assert (clf.predict(X[query]) == y[query]).mean() > 0.4  # chance is 0.2


X_IMG = np.random.RandomState(0).rand(20, 1, 28, 28).astype(np.float32)
Y_IMG = np.arange(20) % 4
X_NAN = X_IMG.copy()
X_NAN[0, 0, 0, 0] = np.nan
BAD_INPUT = {
    "unknown aggregation": (
        SiameseClassifier(aggregation="mean"),
        np.ones((4, 2)),
        [0, 0, 1, 1],
        None,
        ValueError,
        "aggregation must be one of",
    ),
    "comparator that is not a SiameseKernel": (
        SiameseClassifier(comparator=Prototypes()),
        np.ones((4, 2)),
        [0, 0, 1, 1],
        None,
        TypeError,
        "comparator must be a SiameseKernel instance or None",
    ),
    "comparator width differs from the features": (
        SiameseClassifier(comparator=SiameseKernel(64)),
        np.ones((4, 3)),
        [0, 0, 1, 1],
        None,
        ValueError,
        (
            r"SiameseKernel was built for embeddings of 64 features \(embedding_dim=64\), but "
            r"X holds embeddings of shape \(3,\).*Set the comparator's embedding_dim=3"
        ),
    ),
    "comparator width differs from the encoder's": (
        SiameseClassifier(Conv4(out_channels=16), SiameseKernel(64)),
        X_IMG,
        Y_IMG,
        None,
        ValueError,
        r"the encoder gives embeddings of shape \(16,\).*Set the comparator's embedding_dim=16",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT), ids=list(BAD_INPUT))
def test_bad_input_table(case):
    check_bad_input(BAD_INPUT[case])


# -- the learner ------------------------------------------------------------------------


def _learner(**params):
    return tiny_learner("siamese", **params)


def test_criterion_is_balanced_pairwise_bce_from_n_way(base_novel):
    X_base, y_base, _, _ = base_novel
    learner = _learner(n_way=4).fit(X_base, y_base)
    assert learner.criterion_.loss == "bce_with_logits" and learner.criterion_.pos_weight == 3
    learner.set_params(n_way=5)  # re-initialises the criterion of the fitted learner
    assert learner.criterion_.pos_weight == 4
    learner.partial_fit(X_base, y_base)
    assert learner.criterion_.pos_weight == 4
    explicit = _learner(criterion__pos_weight=1.0).fit(X_base, y_base)
    assert explicit.criterion_.pos_weight == 1.0


def test_several_shots_train_on_the_closest_pairs(base_novel):
    X_base, y_base, X_novel, y_novel = base_novel
    learner = _learner(n_shot=3, max_epochs=3).fit(X_base, y_base)
    losses = learner.history_[:, "train_loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert 0 <= learner.score(X_novel, y_novel, n_episodes=20) <= 1


def test_meta_learner_errors(base_novel):
    X_base, y_base, _, _ = base_novel
    with pytest.raises(
        ValueError,
        match=r"SiameseLearner: .* embeddings of shape \(16,\), i.e. 16 features. "
        r"Set comparator__embedding_dim=16",
    ):
        _learner(comparator__embedding_dim=64).fit(X_base, y_base)
    with pytest.raises(ValueError, match="aggregation must be 'max', got 'sum'"):
        _learner(comparator__aggregation="sum").fit(X_base, y_base)
    with pytest.raises(ValueError, match=r"training set.*only 6 of the 6 classes qualify"):
        _learner(n_way=7).fit(X_base, y_base)
    with pytest.raises(TypeError, match="meta-learner: it does not label samples"):
        _learner().fit(X_base, y_base).predict(X_base)
