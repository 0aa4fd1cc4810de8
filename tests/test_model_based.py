"""Model-based methods: MANN, SNAIL and the in-context transformer.

The networks' maths against direct computations (the LRUA equations in
numpy, SNAIL's whole sequence per query, one masked transformer sequence),
query independence, the support order, the label width (``max_ways``), the
gradients, and the learners and classifiers on digits.
"""

import numpy as np
import pytest
import torch
from methods import LEARNERS, tiny_learner
from sklearn.base import clone
from torch import nn
from torch.nn import functional as F

from skfewshot import InContextClassifier, MANNClassifier, SNAILClassifier
from skfewshot.meta import InContextLearner, MANNLearner, SNAILLearner
from skfewshot.nn import MANN, MLP, SNAIL, EpisodeModel, InContextTransformer
from skfewshot.nn._sequence import canonical_order, content_key
from skfewshot.nn._snail import DenseBlock

# -- test modules ---------------------------------------------------------------------


class FoldFeatures(nn.Module):
    """Parameter-free: samples of any width -> ``width`` float64 features.

    Feature j is added into output j % width: the fixed width the networks
    need, whatever the width of scikit-learn's test data. Float64, so that
    the networks (built in float64 below) compute in float64.
    """

    def __init__(self, width=8):
        super().__init__()
        self.width = width

    def forward(self, x):
        x = x.flatten(1).double()
        bins = torch.arange(x.shape[1], device=x.device) % self.width
        return x.new_zeros(len(x), self.width).index_add_(1, bins, x)


#: name -> (network class, tiny parameters beyond embedding_dim and max_ways)
NETWORKS = {
    "mann": (MANN, {"hidden_size": 16, "memory_slots": 8, "memory_size": 4, "read_heads": 2}),
    "snail": (SNAIL, {"attention": ((8, 4), (8, 4)), "filters": 4, "dense_blocks": 2}),
    "in-context": (
        InContextTransformer,
        {"model_dim": 8, "num_heads": 2, "num_layers": 2, "feedforward_dim": 16},
    ),
}

CLASSIFIERS = {"mann": MANNClassifier, "snail": SNAILClassifier, "in-context": InContextClassifier}

LEARNER_CLASSES = {"mann": MANNLearner, "snail": SNAILLearner, "in-context": InContextLearner}


def _network(name, embedding_dim=8, max_ways=10, **params):
    """A seeded float64 network (torch's global random state is left as it was)."""
    cls, own = NETWORKS[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return cls(embedding_dim, max_ways, **{**own, **params}).double()


def _episode(n_way=3, n_shot=2, n_query=5, width=8, seed=0):
    """Random float64 embeddings: support (labels 0, 1, ..., n_way - 1, 0, 1, ...) and queries."""
    rng = np.random.RandomState(seed)
    support = torch.as_tensor(rng.randn(n_way * n_shot, width))
    labels = torch.as_tensor(np.tile(np.arange(n_way), n_shot))
    return support, labels, torch.as_tensor(rng.randn(n_query, width))


# scikit-learn's checks (test_common.py) run over these: untrained float64 networks on a
# parameter-free encoder that takes any width. The classifiers report the poor_score tag.
ESTIMATORS = [CLASSIFIERS[name](FoldFeatures(8), _network(name)) for name in NETWORKS]


# -- the canonical order of the support set -------------------------------------------


def test_canonical_order_is_round_robin_over_the_classes_by_content_key():
    rng = np.random.RandomState(0)
    support = torch.as_tensor(rng.randn(7, 4))
    labels = torch.tensor([2, 0, 1, 0, 2, 0, 1])
    order = canonical_order(support, labels)
    assert sorted(order.tolist()) == list(range(7))
    # The classes take turns in label order; class 0 has a third sample, read last.
    np.testing.assert_array_equal(labels[order].numpy(), [0, 1, 2, 0, 1, 2, 0])
    key = content_key(support)[order]
    for c in range(3):
        ours = key[labels[order] == c]
        assert torch.all(ours[1:] > ours[:-1])  # a class's samples by increasing key
    # The same set given in another order is read as the same sequence.
    perm = torch.as_tensor(rng.permutation(7))
    again = canonical_order(support[perm], labels[perm])
    assert torch.equal(support[perm][again], support[order])
    assert torch.equal(labels[perm][again], labels[order])


@pytest.mark.parametrize("name", ["mann", "snail"])
def test_a_sequence_model_depends_on_the_support_order_unless_read_canonically(name):
    network = _network(name)
    support, labels, query = _episode(n_shot=3)
    perm = torch.as_tensor(np.random.RandomState(1).permutation(len(support)))
    with torch.no_grad():
        # Read in the order given, the same support set in another order scores differently ...
        as_given = network.scores_in_order(support, labels, query)
        shuffled = network.scores_in_order(support[perm], labels[perm], query)
        assert (as_given - shuffled).abs().max() > 1e-6
        # ... read in the canonical order (forward, hence fit and predict), identically.
        torch.testing.assert_close(
            network(support[perm], labels[perm], query), network(support, labels, query)
        )


def test_the_in_context_transformer_does_not_depend_on_the_support_order():
    network = _network("in-context")
    support, labels, query = _episode(n_shot=3)
    perm = torch.as_tensor(np.random.RandomState(1).permutation(len(support)))
    with torch.no_grad():  # no reordering: no positional encoding, attention over a set
        torch.testing.assert_close(
            network(support[perm], labels[perm], query),
            network(support, labels, query),
            rtol=1e-10,
            atol=1e-12,
        )


@pytest.mark.parametrize("name", NETWORKS)
def test_classifiers_predict_the_same_for_the_support_set_in_any_order(name, digits):
    X, y = digits
    index = np.flatnonzero(y < 4)
    support, query = index[:20], index[20:40]
    clf = CLASSIFIERS[name](FoldFeatures(8), _network(name))
    ours = clf.fit(X[support], y[support]).predict_proba(X[query])
    shuffled = np.random.RandomState(0).permutation(support)
    theirs = clone(clf).fit(X[shuffled], y[shuffled]).predict_proba(X[query])
    np.testing.assert_allclose(theirs, ours, rtol=1e-10, atol=1e-12)


# -- query independence ---------------------------------------------------------------


@pytest.mark.parametrize("name", NETWORKS)
def test_each_query_is_scored_on_its_own(name):
    network = _network(name)
    support, labels, query = _episode()
    with torch.no_grad():
        together = network(support, labels, query)
        alone = torch.cat([network(support, labels, q[None]) for q in query])
        reverse = network(support, labels, query.flip(0)).flip(0)
        changed = query.clone()
        changed[0] += 1.0
        other = network(support, labels, changed)
    assert together.shape == (5, 3)
    torch.testing.assert_close(alone, together, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(reverse, together, rtol=1e-10, atol=1e-12)
    # Changing one query changes its own scores only.
    torch.testing.assert_close(other[1:], together[1:], rtol=1e-10, atol=1e-12)
    assert not torch.allclose(other[0], together[0])


@pytest.mark.parametrize("classifier", ESTIMATORS, ids=lambda c: type(c).__name__)
def test_classifiers_score_queries_one_by_one_as_together(classifier, digits):
    X, y = digits
    clf = clone(classifier).fit(X[:30], y[:30])
    together = clf.predict_proba(X[30:50])
    alone = np.vstack([clf.predict_proba(X[i : i + 1]) for i in range(30, 50)])
    np.testing.assert_allclose(alone, together, rtol=1e-10, atol=1e-12)


# -- the networks against direct computations -----------------------------------------


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _unit_rows(a):
    """Rows scaled to norm 1 (zero rows stay zero), as torch.nn.functional.normalize."""
    return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)


def _mann_direct(network, support, labels, query):
    """Santoro et al.'s MANN with LRUA writes, step by step, each query alone, in numpy."""
    p = {k: v.detach().numpy() for k, v in network.state_dict().items()}
    heads, m, slots = network.read_heads, network.memory_size, network.memory_slots
    order = canonical_order(support, labels).numpy()
    x = support.numpy()[order]
    y = np.eye(network.max_ways)[labels.numpy()[order]]
    if network.label_offset:  # each sample with the previous sample's label
        shown, query_label = np.vstack([np.zeros((1, network.max_ways)), y[:-1]]), y[-1]
    else:
        shown, query_label = y, np.zeros(network.max_ways)

    def step(u, state):
        h, c, memory, reads, read_weights, usage = state
        gates = (
            p["controller.weight_ih"] @ np.concatenate([u, reads])
            + p["controller.bias_ih"]
            + p["controller.weight_hh"] @ h
            + p["controller.bias_hh"]
        )
        i, f, g, o = np.split(gates, 4)  # torch's order: input, forget, cell, output
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        out = (p["heads.weight"] @ h + p["heads.bias"]).reshape(heads, 2 * m + 2)
        key, add = np.tanh(out[:, :m]), np.tanh(out[:, m : 2 * m])
        gate = _sigmoid(out[:, 2 * m : 2 * m + 1])
        strength = 1 + np.logaddexp(0, out[:, 2 * m + 1 :])  # 1 + softplus
        ranked = np.argsort(usage, kind="stable")
        least_used = np.zeros(slots)
        least_used[ranked[:heads]] = 1
        memory = memory.copy()
        memory[ranked[0]] = 0  # the least-used slot is erased before the write
        write_weights = gate * read_weights + (1 - gate) * least_used
        memory = memory + write_weights.T @ add
        logits = strength * (_unit_rows(key) @ _unit_rows(memory).T)
        read_weights = np.exp(logits - logits.max(1, keepdims=True))
        read_weights /= read_weights.sum(1, keepdims=True)
        reads = (read_weights @ memory).ravel()
        usage = network.usage_decay * usage + (read_weights + write_weights).sum(0)
        return h, c, memory, reads, read_weights, usage

    state = (
        np.zeros(network.hidden_size),
        np.zeros(network.hidden_size),
        np.zeros((slots, m)),
        np.zeros(heads * m),
        np.zeros((heads, slots)),
        np.zeros(slots),
    )
    for u in np.hstack([x, shown]):
        state = step(u, state)
    scores = []
    for q in query.numpy():
        h, _, _, reads, _, _ = step(np.concatenate([q, query_label]), state)
        scores.append(p["readout.weight"] @ np.concatenate([h, reads]) + p["readout.bias"])
    return np.array(scores)[:, : int(labels.max()) + 1]


@pytest.mark.parametrize("label_offset", [False, True])
def test_mann_follows_the_lrua_equations(label_offset):
    network = _network("mann", label_offset=label_offset)
    support, labels, query = _episode(n_shot=3)  # 9 steps: the 8 memory slots are reused
    with torch.no_grad():
        scores = network(support, labels, query).numpy()
    expected = _mann_direct(network, support, labels, query)
    np.testing.assert_allclose(scores, expected, rtol=1e-9, atol=1e-12)


def _snail_layers(network):
    """The dense blocks and attention blocks of a SNAIL network, in order."""
    for block in network.blocks:
        yield from getattr(block, "blocks", [block])


def _snail_direct(network, support, labels, query):
    """SNAIL as the paper runs it: for each query, the whole sequence (support, query)
    through causal dilated convolutions (conv1d, padded on the left) and masked attention."""
    order = canonical_order(support, labels)
    sequence = torch.cat([support[order], F.one_hot(labels[order], network.max_ways).double()], 1)
    rows = []
    for q in query:
        x = torch.cat([sequence, torch.cat([q, q.new_zeros(network.max_ways)])[None]])
        length = len(x)
        for block in _snail_layers(network):
            if isinstance(block, DenseBlock):
                channels, dilation = x.shape[1], block.dilation
                weight = block.conv.weight  # columns: x_{t-d}, then x_t
                kernel = torch.stack([weight[:, :channels], weight[:, channels:]], dim=2)
                padded = F.pad(x.T[None], (dilation, 0))
                out = F.conv1d(padded, kernel, block.conv.bias, dilation=dilation)[0].T
                values, gates = out.chunk(2, 1)
                x = torch.cat([x, torch.tanh(values) * torch.sigmoid(gates)], 1)
            else:
                keys, queries, values = block.key(x), block.query(x), block.value(x)
                logits = queries @ keys.T / keys.shape[1] ** 0.5
                later = torch.ones(length, length, dtype=torch.bool).triu(1)
                weights = torch.softmax(logits.masked_fill(later, float("-inf")), 1)
                x = torch.cat([x, weights @ values], 1)
        rows.append(network.readout(x[-1]))
    return torch.stack(rows)[:, : int(labels.max()) + 1]


@pytest.mark.parametrize("n_support", [3, 7])
def test_snail_scores_the_last_position_of_each_querys_whole_sequence(n_support):
    # dense_blocks=3: dilations 1, 2 and 4; with 3 support samples the query's 4-step
    # tap falls before the sequence starts.
    network = _network("snail", dense_blocks=3)
    rng = np.random.RandomState(n_support)
    support = torch.as_tensor(rng.randn(n_support, 8))
    labels = torch.as_tensor(np.arange(n_support) % 3)
    query = torch.as_tensor(rng.randn(4, 8))
    with torch.no_grad():
        torch.testing.assert_close(
            network(support, labels, query),
            _snail_direct(network, support, labels, query),
            rtol=1e-10,
            atol=1e-12,
        )


def _transformer_direct(network, support, labels, query):
    """One sequence of all tokens through the blocks, with an attention mask: the support
    tokens see the support tokens, each query token the support tokens and itself."""
    tokens = torch.cat(
        [
            network.embed(support) + network.labels(labels),
            network.embed(query) + network.labels.weight[network.max_ways],
        ]
    )
    n_support, n = len(support), len(tokens)
    allowed = torch.zeros(n, n, dtype=torch.bool)
    allowed[:, :n_support] = True
    allowed[torch.arange(n), torch.arange(n)] = True
    for block in network.blocks:
        q, k, v = (
            t.unflatten(1, (block.num_heads, -1)).transpose(0, 1)
            for t in block.projection(block.norm1(tokens)).chunk(3, 1)
        )
        read = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        tokens = tokens + block.out(read.transpose(0, 1).flatten(1))
        tokens = tokens + block.feedforward(block.norm2(tokens))
    return network.readout(network.norm(tokens[n_support:]))[:, : int(labels.max()) + 1]


def test_in_context_transformer_is_one_masked_sequence():
    network = _network("in-context")
    support, labels, query = _episode()
    with torch.no_grad():
        torch.testing.assert_close(
            network(support, labels, query),
            _transformer_direct(network, support, labels, query),
            rtol=1e-10,
            atol=1e-12,
        )


@pytest.mark.parametrize("name", NETWORKS)
def test_gradients_reach_the_encoder_and_every_weight(name):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        encoder = MLP(8, hidden_features=(16,), out_features=8).double()
    model = EpisodeModel(encoder, _network(name))
    support, labels, query = _episode()
    scores = model(support, labels, query)
    F.cross_entropy(scores, torch.tensor([0, 1, 2, 0, 1])).backward()
    for parameter, value in model.named_parameters():
        assert value.grad is not None, parameter
        assert torch.isfinite(value.grad).all(), parameter
        assert value.grad.abs().sum() > 0, parameter


# -- the label width: max_ways --------------------------------------------------------


@pytest.mark.parametrize("name", NETWORKS)
def test_up_to_max_ways_classes_and_a_clear_error_beyond(name, digits):
    X, y = digits
    network = _network(name, max_ways=5)
    clf = CLASSIFIERS[name](FoldFeatures(8), network)
    five, six = np.flatnonzero(y < 5), np.flatnonzero(y < 6)
    proba = clf.fit(X[five[:50]], y[five[:50]]).predict_proba(X[five[50:60]])
    assert proba.shape == (10, 5)
    with pytest.raises(
        ValueError,
        match=(
            rf"^{CLASSIFIERS[name].__name__}: the support set has 6 classes, but the comparator "
            rf"{type(network).__name__} reads labels as one-hot vectors of max_ways=5"
        ),
    ):
        clone(clf).fit(X[six[:60]], y[six[:60]])
    support, labels, query = _episode(n_way=6)
    with pytest.raises(
        ValueError,
        match=(
            rf"^{type(network).__name__}: the support set has 6 classes, but the labels are "
            r"read as one-hot vectors of max_ways=5"
        ),
    ):
        network(support, labels, query)


@pytest.mark.parametrize("name", LEARNER_CLASSES)
def test_learners_refuse_more_ways_than_max_ways(name, base_novel):
    X_base, y_base, _, _ = base_novel
    with pytest.raises(
        ValueError,
        match=(
            rf"^{LEARNER_CLASSES[name].__name__}: episodes of n_way=5 classes need 5 label "
            r"slots, but the comparator reads labels as one-hot vectors of max_ways=4\. "
            r"Set max_ways=5 or more"
        ),
    ):
        tiny_learner(name, n_way=5, max_ways=4).fit(X_base, y_base)


# -- the learners ---------------------------------------------------------------------


def test_the_registry_builds_the_model_based_learners():
    from skfewshot._cli._params import METHODS

    for name, cls in LEARNER_CLASSES.items():
        assert LEARNERS[name][0] is cls
        assert METHODS[name][0] == cls.__name__


@pytest.mark.parametrize("name", LEARNER_CLASSES)
def test_shuffled_labels_train_every_label_slot(name, base_novel):
    # 3-way episodes, 5 label slots: slots 3 and 4 are a class of some training episodes
    # only when the labels are shuffled; otherwise their output weights never move.
    X_base, y_base, _, _ = base_novel

    def readout(**params):
        learner = tiny_learner(name, **params).fit(X_base, y_base)
        return learner.comparator_.readout.weight.detach()

    initial = readout(max_epochs=0)
    fixed, shuffled = readout(max_epochs=1, shuffle_labels=False), readout(max_epochs=1)
    assert torch.equal(fixed[3:], initial[3:])
    assert not torch.equal(fixed[:3], initial[:3])
    assert not torch.equal(shuffled[3:], initial[3:])


def test_learner_options_reach_the_network_and_the_classifier(base_novel):
    X_base, y_base, _, _ = base_novel
    learner = tiny_learner("mann", max_ways=7, label_offset=True, max_epochs=0)
    learner.fit(X_base, y_base)
    network = learner.comparator_
    assert (network.max_ways, network.label_offset, network.embedding_dim) == (7, True, 16)
    clf = learner.to_classifier()
    assert isinstance(clf, MANNClassifier)
    assert (clf.comparator.max_ways, clf.comparator.label_offset) == (7, True)
    # Explicit comparator__* parameters win over the learner's.
    snail = tiny_learner("snail", comparator__max_ways=6, max_epochs=0).fit(X_base, y_base)
    assert snail.comparator_.max_ways == 6
    assert isinstance(snail.to_classifier(), SNAILClassifier)
    in_context = tiny_learner("in-context", max_epochs=0).fit(X_base, y_base)
    assert isinstance(in_context.to_classifier(), InContextClassifier)


#: name -> what the short meta-training needs beyond the tiny settings
TRAINING = {
    "mann": {
        "max_epochs": 12,
        "comparator__hidden_size": 32,
        "comparator__memory_slots": 16,
        "comparator__memory_size": 8,
    },
    "snail": {"max_epochs": 6, "max_ways": 5},
    "in-context": {"max_epochs": 12, "max_ways": 5},
}


@pytest.mark.parametrize("name", TRAINING)
def test_meta_training_beats_chance_on_held_out_digits(name, base_novel):
    X_base, y_base, X_novel, y_novel = base_novel  # digits 0-5, then 6-9
    params = {
        "n_way": 3,
        "n_shot": 2,
        "n_query": 5,
        "episodes_per_epoch": 50,
        "lr": 3e-3,
        **TRAINING[name],
    }
    untrained = tiny_learner(name, **{**params, "max_epochs": 0}).fit(X_base, y_base)
    trained = tiny_learner(name, **params).fit(X_base, y_base)
    assert np.isfinite(trained.history[:, "train_loss"]).all()
    score = {"n_way": 3, "n_shot": 2, "n_query": 5, "n_episodes": 60}
    before = untrained.score(X_novel, y_novel, **score)
    after = trained.score(X_novel, y_novel, **score)
    assert after > max(before, 1 / 3) + 0.1, (before, after)  # chance is 1/3


@pytest.mark.parametrize("name", LEARNER_CLASSES)
def test_joblib_round_trip_predicts_the_same(name, base_novel, tmp_path):
    import joblib

    X_base, y_base, X_novel, y_novel = base_novel
    learner = tiny_learner(name).fit(X_base, y_base)
    clf = learner.to_classifier().fit(X_novel[:30], y_novel[:30])
    joblib.dump(clf, tmp_path / "classifier.joblib")
    loaded = joblib.load(tmp_path / "classifier.joblib")
    np.testing.assert_array_equal(
        loaded.predict_proba(X_novel[30:60]), clf.predict_proba(X_novel[30:60])
    )
    joblib.dump(learner, tmp_path / "learner.joblib")
    again = joblib.load(tmp_path / "learner.joblib").to_classifier()
    np.testing.assert_array_equal(
        again.fit(X_novel[:30], y_novel[:30]).predict_proba(X_novel[30:60]),
        clf.predict_proba(X_novel[30:60]),
    )


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NETWORKS)
def test_a_classifier_needs_a_meta_trained_network(name, digits):
    X, y = digits
    with pytest.raises(TypeError, match=r"needs a meta-trained \w+: pass comparator="):
        CLASSIFIERS[name]().fit(X[:20], y[:20])


@pytest.mark.parametrize(
    "cls, params, message",
    [
        (MANN, {"max_ways": 1}, r"MANN: max_ways must be an integer >= 2, got 1"),
        (MANN, {"usage_decay": 1.5}, r"MANN: usage_decay must be a number in \(0, 1\], got 1.5"),
        (MANN, {"usage_decay": 0}, r"MANN: usage_decay must be a positive number, got 0"),
        (MANN, {"read_heads": 5, "memory_slots": 4}, r"MANN: read_heads=5 must not exceed"),
        (MANN, {"label_offset": 1}, r"MANN: label_offset must be True or False"),
        (SNAIL, {"attention": ()}, r"SNAIL: attention must be a non-empty sequence"),
        (SNAIL, {"attention": (8, 4)}, r"SNAIL: attention must be a non-empty sequence"),
        (SNAIL, {"attention": ((8, 0),)}, r"SNAIL: attention must be a non-empty sequence"),
        (SNAIL, {"dense_blocks": 0}, r"SNAIL: dense_blocks must be an integer >= 1, got 0"),
        (
            InContextTransformer,
            {"model_dim": 10, "num_heads": 4},
            r"InContextTransformer: num_heads=4 must divide model_dim=10",
        ),
        (
            InContextTransformer,
            {"num_layers": 0},
            r"InContextTransformer: num_layers must be an integer >= 1, got 0",
        ),
    ],
)
def test_network_parameter_errors(cls, params, message):
    with pytest.raises(ValueError, match=message):
        cls(**params)
