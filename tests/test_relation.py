"""Relation Networks: the relation module, the meta-learner and the few-shot classifier."""

import numpy as np
import pytest
import torch
from conftest import TinyEncoder, check_bad_input
from methods import tiny_learner
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from torch import nn
from torch.nn import functional as F

from skfewshot import EmbeddingTransformer, RelationClassifier
from skfewshot.meta import RelationLearner
from skfewshot.model_selection import EpisodicSplit
from skfewshot.nn import Conv4, OneHotLoss, RelationModule

# -- test modules -----------------------------------------------------------


class HashFeatures(nn.Module):
    """Parameter-free: samples of any width -> ``width`` features (feature hashing)."""

    def __init__(self, width=8):
        super().__init__()
        self.width = width

    def forward(self, x):
        x = x.flatten(1)
        slots = torch.arange(x.shape[1], device=x.device) % self.width
        return x.new_zeros(len(x), self.width).index_add(1, slots, x)


def distance_relation(width, aggregation="mean", scale=1.0):
    """A relation module with hand-set weights scoring sigmoid(-scale * L1(class, query)).

    Conv1's centre tap computes (class - query) and (query - class), the ReLU
    keeps their positive parts, conv2 adds them up: the L1 distance at each
    location (batch norms on default running statistics are the identity up
    to their eps), max-pooled over locations. It classifies like a nearest
    class-mean rule, so scikit-learn's accuracy checks can pass.
    """
    rel = RelationModule(
        embedding_dim=width, hidden_channels=2 * width, hidden_features=2, aggregation=aggregation
    )
    eye = torch.eye(width)
    with torch.no_grad():
        for p in rel.parameters():
            p.zero_()
        rel.conv1.weight[:, :, 1, 1] = torch.cat(
            [torch.cat([eye, -eye], 1), torch.cat([-eye, eye], 1)]
        )
        rel.conv2.weight[0, :, 1, 1] = 1
        rel.bn1.weight.fill_(1)
        rel.bn2.weight.fill_(1)
        rel.fc1.weight[0, 0] = 1
        rel.fc2.weight[0, 0] = -scale
    return rel.eval()


class AnyWidthRelation(nn.Module):
    """A comparator for feature vectors of any width: hashing, then a relation module."""

    def __init__(self, width=8):
        super().__init__()
        self.hash = HashFeatures(width)
        self.relation = distance_relation(width)

    def forward(self, support, support_labels, query):
        return self.relation(self.hash(support), support_labels, self.hash(query))


def _direct_scores(rel, support, support_labels, query):
    """Relation scores pair by pair, as the paper writes them: the concatenation
    (class map, query map) through conv-BN-ReLU-pool blocks and two FC layers.
    The module must be in evaluation mode (batch norm on running statistics)."""
    assert not rel.training

    def bn(x, layer):
        return F.batch_norm(
            x,
            layer.running_mean,
            layer.running_var,
            layer.weight,
            layer.bias,
            False,
            0.0,
            layer.eps,
        )

    if support.ndim == 2:
        support, query = support[:, :, None, None], query[:, :, None, None]
    n_way = int(support_labels.max()) + 1
    scores = torch.empty(len(query), n_way)
    for i, q in enumerate(query):
        for c in range(n_way):
            members = support[support_labels == c]
            cls = members.sum(0) if rel.aggregation == "sum" else members.mean(0)
            x = torch.cat([cls, q])[None]
            for conv, norm in ((rel.conv1, rel.bn1), (rel.conv2, rel.bn2)):
                x = torch.relu(bn(F.conv2d(x, conv.weight, conv.bias, padding=1), norm))
                if x.shape[-1] >= 2 and x.shape[-2] >= 2:
                    x = F.max_pool2d(x, 2)
            x = x.mean((2, 3))
            scores[i, c] = torch.sigmoid(rel.fc2(torch.relu(rel.fc1(x))))[0, 0]
    return scores


def _randomised(rel):
    """``rel`` in evaluation mode with non-trivial batch-norm statistics."""
    torch.manual_seed(1)
    for layer in (rel.bn1, rel.bn2):
        layer.running_mean.uniform_(-0.5, 0.5)
        layer.running_var.uniform_(0.5, 2.0)
        nn.init.uniform_(layer.weight, 0.5, 1.5)
        nn.init.uniform_(layer.bias, -0.2, 0.2)
    return rel.eval()


# -- scikit-learn's estimator checks ---------------------------------------

# The comparators are float64 (the classifier casts the embeddings to their dtype):
# float32 matrix products round a row differently (by 1 ulp, ~6e-8) depending on its
# position in the batch, above the 1e-9 tolerance of check_methods_sample_order_invariance;
# test_predictions_do_not_depend_on_the_batch checks float32 batch independence.
# scikit-learn's checks run over these in test_common.py.
ESTIMATORS = [
    # No encoder: feature vectors of any width, hashed by the comparator.
    RelationClassifier(comparator=AnyWidthRelation().double()),
    # A tiny parametric encoder of fixed width: vectors, taken as 1x1 maps.
    RelationClassifier(
        nn.Sequential(HashFeatures(8), TinyEncoder()), distance_relation(8).double()
    ),
    # An encoder of 2x2 feature maps: the relation blocks pool them.
    RelationClassifier(
        nn.Sequential(HashFeatures(8), nn.Unflatten(1, (2, 2, 2))), distance_relation(2).double()
    ),
]


# -- the relation module ----------------------------------------------------


@pytest.mark.parametrize("aggregation", ["sum", "mean"])
@pytest.mark.parametrize("map_size", [(7, 7), (5, 3), (2, 2), (1, 1), None])
def test_relation_scores_match_direct_computation(aggregation, map_size):
    torch.manual_seed(0)
    rel = _randomised(
        RelationModule(
            embedding_dim=3, hidden_channels=4, hidden_features=5, aggregation=aggregation
        )
    )
    shape = (3,) if map_size is None else (3, *map_size)
    support, query = torch.randn(7, *shape), torch.randn(4, *shape)
    labels = torch.tensor([0, 1, 2, 0, 1, 0, 2])  # unbalanced: 3, 2 and 2 shots
    with torch.no_grad():
        scores = rel(support, labels, query)
        expected = _direct_scores(rel, support, labels, query)
    assert scores.shape == (4, 3)
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-6)
    assert ((scores > 0) & (scores < 1)).all()


def test_class_map_is_the_mean_or_sum_of_its_shots_and_vectors_are_1x1_maps():
    rel = RelationModule(embedding_dim=2)
    support = torch.arange(12.0).view(3, 2, 1, 2)
    labels = torch.tensor([1, 0, 1])
    maps = rel.class_maps(support, labels)
    torch.testing.assert_close(maps, torch.stack([support[1], (support[0] + support[2]) / 2]))
    rel.aggregation = "sum"
    torch.testing.assert_close(rel.class_maps(support, labels)[1], support[0] + support[2])
    rel.eval()
    vectors = torch.randn(4, 2)
    with torch.no_grad():
        torch.testing.assert_close(
            rel(vectors, labels[:2].repeat(2), vectors[:1]),
            rel(vectors[..., None, None], labels[:2].repeat(2), vectors[:1, :, None, None]),
        )


def test_weights_do_not_depend_on_map_size():
    rel = RelationModule()
    assert rel.fc1.in_features == 64 and rel.conv1.in_channels == 128
    labels = torch.arange(3)
    for size in (1, 4, 7, 19):
        with torch.no_grad():
            out = rel.eval()(torch.randn(3, 64, size, size), labels, torch.randn(2, 64, size, size))
        assert out.shape == (2, 3)


def test_relation_module_parameter_errors():
    with pytest.raises(ValueError, match="RelationModule: aggregation must be one of"):
        RelationModule(aggregation="max")
    with pytest.raises(ValueError, match="RelationModule: embedding_dim must be an integer"):
        RelationModule(embedding_dim=0)


# -- the classifier ---------------------------------------------------------


@pytest.fixture
def relation16():
    torch.manual_seed(0)
    return _randomised(RelationModule(16, hidden_channels=8))


def test_classifier_scores_are_the_relation_scores(digits, mlp, relation16):
    X, y = digits
    clf = RelationClassifier(mlp, relation16).fit(X[:40], y[:40])
    with torch.no_grad():
        z = mlp.eval()(torch.as_tensor(X))
        labels = torch.as_tensor(np.searchsorted(clf.classes_, y[:40]))
        expected = relation16(z[:40], labels, z[40:60]).numpy()
    scores = clf.decision_function(X[40:60])
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    assert scores.min() >= 0 and scores.max() <= 1
    proba = clf.predict_proba(X[40:60])
    np.testing.assert_allclose(proba, expected / expected.sum(1, keepdims=True), rtol=1e-5)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(1)], clf.predict(X[40:60]))


def test_proba_of_all_zero_scores_is_uniform():
    clf = RelationClassifier(comparator=distance_relation(2))
    proba = clf._proba(torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.6, 0.2]]))
    torch.testing.assert_close(proba, torch.tensor([[1 / 3] * 3, [0.2, 0.6, 0.2]]))
    # Far-away queries saturate the sigmoid: every score is 0.
    clf = RelationClassifier(comparator=distance_relation(2, scale=1e4))
    clf.fit(np.array([[0.0, 0], [1, 1], [2, 2]]), [0, 1, 2])
    assert not clf.decision_function([[50.0, 50]]).any()
    np.testing.assert_allclose(clf.predict_proba([[50.0, 50]]), [[1 / 3] * 3])


def _train_mode_stats(encoder, X):
    """Give the encoder's batch norms non-trivial running statistics."""
    with torch.no_grad():
        encoder.train()(torch.as_tensor(X))
    return encoder.eval()


def test_precomputed_feature_maps_give_identical_scores(omniglot_small):
    X, y = omniglot_small.data[:200], omniglot_small.target[:200]
    torch.manual_seed(0)
    encoder = _train_mode_stats(
        Conv4(hidden_channels=8, out_channels=8, flatten=False, pooled_blocks=2), X
    )
    rel = _randomised(RelationModule(8, hidden_channels=8))
    cv = EpisodicSplit(n_way=5, n_shot=1, n_query=3, n_episodes=10, random_state=0)
    direct = cross_val_score(RelationClassifier(encoder, rel), X, y, cv=cv)
    Z = EmbeddingTransformer(encoder).fit_transform(X)  # flattened 8x7x7 maps
    assert Z.shape == (200, 8 * 7 * 7)
    unflatten = RelationClassifier(nn.Unflatten(1, (8, 7, 7)), rel)
    np.testing.assert_allclose(cross_val_score(unflatten, Z, y, cv=cv), direct)
    # 4-D maps need an encoder (only then are n-D samples accepted): the identity.
    identity = RelationClassifier(nn.Identity(), rel)
    np.testing.assert_allclose(cross_val_score(identity, Z.reshape(-1, 8, 7, 7), y, cv=cv), direct)
    with pytest.raises(ValueError, match="Found array with dim 4"):
        RelationClassifier(comparator=rel).fit(Z.reshape(-1, 8, 7, 7)[:10], y[:10])


X_IMG = np.random.RandomState(0).rand(12, 1, 28, 28).astype(np.float32)
Y_IMG = np.arange(12) % 3
BAD_INPUT = {
    "no comparator": (
        RelationClassifier(),
        np.ones((4, 2)),
        [0, 0, 1, 1],
        None,
        TypeError,
        "needs a meta-trained relation module: pass comparator=learner.",
    ),
    "comparator that is not a module": (
        RelationClassifier(comparator="relation"),
        np.ones((4, 2)),
        [0, 0, 1, 1],
        None,
        TypeError,
        "comparator must be a torch.nn.Module instance",
    ),
    "embedding channels differ from embedding_dim (at fit)": (
        RelationClassifier(Conv4(flatten=False, pooled_blocks=2), RelationModule(32)),
        X_IMG,
        Y_IMG,
        None,
        ValueError,
        r"RelationModule was built for embeddings of 32 channels \(embedding_dim=32\), but "
        r"the encoder gives embeddings of shape \(64, 7, 7\), i.e. 64 channels. Set the "
        r"comparator's embedding_dim=64",
    ),
    "vector width differs from embedding_dim": (
        RelationClassifier(comparator=RelationModule(3)),
        np.ones((4, 2)),
        [0, 0, 1, 1],
        None,
        ValueError,
        r"built for embeddings of 3 channels .* X holds embeddings of shape \(2,\), i.e. 2 ch",
    ),
    "3-D X without encoder": (
        RelationClassifier(comparator=RelationModule(28)),
        X_IMG[:, 0],
        Y_IMG,
        None,
        ValueError,
        "Found array with dim 3",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT), ids=list(BAD_INPUT))
def test_bad_input_table(case):
    check_bad_input(BAD_INPUT[case])


# -- the meta-learner ---------------------------------------------------------


def _learner(**params):
    return tiny_learner("relation", **params)


def test_defaults_are_the_papers_but_the_mean_over_shots():
    learner = RelationLearner().initialize()
    maps = learner.encoder_(torch.zeros(2, 1, 28, 28))
    assert maps.shape == (2, 64, 7, 7)  # Conv4 with only two pooled blocks
    rel = learner.comparator_
    assert isinstance(rel, RelationModule) and rel.aggregation == "mean"
    assert (rel.conv1.in_channels, rel.conv1.out_channels, rel.fc1.out_features) == (128, 64, 8)
    assert isinstance(learner.criterion_, OneHotLoss) and learner.criterion_.loss == "mse"
    assert (learner.n_way, learner.n_shot, learner.n_query, learner.lr) == (20, 5, 5, 1e-3)
    # Explicit encoder parameters win over the defaults; other encoders get none.
    pooled = RelationLearner(encoder__pooled_blocks=4).initialize()
    assert pooled.encoder_(torch.zeros(2, 1, 28, 28)).shape == (2, 64, 1, 1)
    vectors = RelationLearner(Conv4(), comparator__embedding_dim=64).initialize()
    assert vectors.encoder_(torch.zeros(2, 1, 28, 28)).shape == (2, 64)
    assert _learner().initialize().encoder_(torch.zeros(2, 64)).shape == (2, 16)


def test_learner_clone_and_set_params(base_novel):
    X_base, y_base, _, _ = base_novel
    cloned = clone(_learner())
    assert cloned.get_params()["comparator__hidden_channels"] == 16
    cloned.set_params(comparator__hidden_features=4).fit(X_base, y_base)
    assert cloned.comparator_.fc1.out_features == 4
    cloned.set_params(comparator__aggregation="sum")  # re-initialises the fitted net
    assert cloned.comparator_.aggregation == "sum"


def test_meta_learner_errors(base_novel):
    X_base, y_base, _, _ = base_novel
    with pytest.raises(
        ValueError,
        match=r"RelationLearner: .* embeddings of shape \(16,\), i.e. 16 channels. "
        r"Set comparator__embedding_dim=16",
    ):
        _learner(comparator__embedding_dim=64).fit(X_base, y_base)
    with pytest.raises(ValueError, match="aggregation must be one of"):
        _learner(comparator__aggregation="max").fit(X_base, y_base)
    with pytest.raises(TypeError, match="meta-learner: it does not label samples"):
        _learner().fit(X_base, y_base).predict(X_base)
