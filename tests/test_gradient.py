"""Optimization-based family: MAML (both orders), ANIL, Meta-SGD, Reptile, learned optimizers."""

import numpy as np
import pytest
import torch
from conftest import TinyEncoder, check_bad_input
from methods import tiny_learner
from sklearn.model_selection import GridSearchCV
from torch import nn
from torch.nn import functional as F

from skfewshot import (
    ANILClassifier,
    LearnedOptimizerClassifier,
    MAMLClassifier,
    MetaSGDClassifier,
    ReptileClassifier,
)
from skfewshot.meta._episodes import Episode
from skfewshot.model_selection import EpisodicSplit
from skfewshot.nn import (
    MLP,
    Conv4,
    GradientAdaptation,
    GradientStep,
    LSTMOptimizer,
    MetaLearnerLSTM,
    ReptileAdaptation,
    batch_statistics_from,
    lstm_cell,
)
from skfewshot.nn._fast_derivatives import fast_second_derivatives

# scikit-learn's checks run over these in test_common.py.
ESTIMATORS = [
    MAMLClassifier(),
    MAMLClassifier(TinyEncoder(), head_init="prototypes"),
    ANILClassifier(),
    ANILClassifier(TinyEncoder(), inner_steps=3),
    ReptileClassifier(),
    MetaSGDClassifier(),
    LearnedOptimizerClassifier(),
]


# -- the adaptation's math ---------------------------------------------------------------


def _episode(n_way=3, n_shot=2, n_query=4, dim=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    support = torch.randn(n_way * n_shot, dim, generator=g, dtype=torch.float64)
    query = torch.randn(n_way * n_query, dim, generator=g, dtype=torch.float64)
    return (support, torch.arange(n_way).repeat(n_shot), query, torch.arange(n_way).repeat(n_query))


def _tiny_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 4), nn.Tanh()).double()


def _maml_by_hand(w, b, support, ys, query, yq, lr, steps):
    """Second-order MAML with torch.autograd.grad(create_graph=True), zero head."""
    n_way = int(ys.max()) + 1
    head = [
        torch.zeros(n_way, w.shape[0], dtype=w.dtype, requires_grad=True),
        torch.zeros(n_way, dtype=w.dtype, requires_grad=True),
    ]
    params = [w, b, *head]

    def logits(params, x):
        return torch.tanh(x @ params[0].T + params[1]) @ params[2].T + params[3]

    for _ in range(steps):
        loss = F.cross_entropy(logits(params, support), ys)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        params = [p - lr * g for p, g in zip(params, grads)]
    return F.cross_entropy(logits(params, query), yq)


def _query_loss(net, episode, first_order=False, head_init="zero", lr=0.5, steps=2):
    support, ys, query, yq = episode
    model = GradientAdaptation(
        net,
        GradientStep(inner_lr=lr),
        inner_steps=steps,
        first_order=first_order,
        head_init=head_init,
    )
    return F.cross_entropy(model(support, ys, query), yq)


def _meta_gradient(net, episode, **options):
    net.zero_grad()
    _query_loss(net, episode, **options).backward()
    return torch.cat([p.grad.flatten() for p in net.parameters()])


def test_second_order_gradient_matches_an_independent_autograd_computation():
    episode = _episode()
    net = _tiny_net()
    w, b = (p.detach().clone().requires_grad_() for p in net.parameters())
    by_hand = torch.autograd.grad(_maml_by_hand(w, b, *episode, lr=0.5, steps=2), [w, b])
    torch.testing.assert_close(
        _meta_gradient(net, episode),
        torch.cat([g.flatten() for g in by_hand]),
        rtol=1e-9,
        atol=1e-12,
    )


def _tiny_conv_net(seed=0):
    """Conv4's block in small: convolution, batch norm, max-pooling, ReLU."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten()
    ).double()


def _image_episode(n_way=3, n_shot=2, n_query=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    support = torch.randn(n_way * n_shot, 1, 4, 4, generator=g, dtype=torch.float64)
    query = torch.randn(n_way * n_query, 1, 4, 4, generator=g, dtype=torch.float64)
    return (support, torch.arange(n_way).repeat(n_shot), query, torch.arange(n_way).repeat(n_query))


@pytest.mark.parametrize("head_init", ["zero", "prototypes"])
@pytest.mark.parametrize(
    "net, episode",
    [(_tiny_net, _episode), (_tiny_conv_net, _image_episode)],
    ids=["mlp", "conv-batch-norm"],
)
def test_second_order_gradient_matches_finite_differences(head_init, net, episode):
    episode = episode()
    net = net()
    second = _meta_gradient(net, episode, head_init=head_init)
    first = _meta_gradient(net, episode, head_init=head_init, first_order=True)
    direction = torch.randn(
        second.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    origin = [p.detach().clone() for p in net.parameters()]
    steps = direction.split([p.numel() for p in origin])

    def loss_at(t):
        with torch.no_grad():
            for p, p0, d in zip(net.parameters(), origin, steps):
                p.copy_(p0 + t * d.view_as(p))
        return _query_loss(net, episode, head_init=head_init).item()

    eps = 1e-6
    numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    assert numeric == pytest.approx(float(second @ direction), rel=1e-6)
    # The second-order term is really there: first-order MAML is measurably off.
    assert abs(float(first @ direction) - numeric) > 1e3 * abs(float(second @ direction) - numeric)


def test_zero_head_single_step_leaves_the_encoder_unadapted():
    # With a zero head the support loss has no gradient w.r.t. the encoder at step one:
    # one-step MAML from a zero head adapts the head only, exactly like ANIL.
    support, ys, query, _ = _episode()
    net = _tiny_net()
    maml = GradientAdaptation(net, GradientStep(inner_lr=0.5), inner_steps=1)
    params = maml.adapt_to(support, ys)
    for name, p in net.named_parameters():
        torch.testing.assert_close(params[f"encoder.{name}"], p)
    anil = GradientAdaptation(net, GradientStep(inner_lr=0.5), inner_steps=1, adapt="head")
    torch.testing.assert_close(maml(support, ys, query), anil(support, ys, query))


def test_meta_sgd_rates_scale_each_coordinate():
    support, ys, _, _ = _episode()
    net = _tiny_net()
    shapes = {
        "encoder.0.weight": (4, 5),
        "encoder.0.bias": (4,),
        "head.weight": (1, 1),
        "head.bias": (1,),
    }
    rule = GradientStep(shapes, inner_lr=0.3, learn_lr=True).double()
    with torch.no_grad():
        rule.rates["encoder__0__bias"].copy_(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    model = GradientAdaptation(net, rule, inner_steps=2, head_init="prototypes")
    plain = GradientAdaptation(
        net, GradientStep(inner_lr=1.0), inner_steps=1, head_init="prototypes"
    )
    params = model.adapt_to(support, ys, inner_steps=1)
    step = net[0].bias - plain.adapt_to(support, ys)["encoder.0.bias"]  # the gradient itself
    torch.testing.assert_close(
        net[0].bias - params["encoder.0.bias"],
        torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64) * step,
    )


def test_reptile_gradient_is_the_difference_to_the_adapted_weights():
    support, ys, query, _ = _episode()
    net = _tiny_net()
    model = ReptileAdaptation(
        net, GradientStep(inner_lr=0.5), inner_steps=3, head_init="prototypes"
    )
    logits, distance = model(support, ys, query)
    distance.backward()
    adapted = model.adapt_to(support, ys)
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.grad, p.detach() - adapted[f"encoder.{name}"].detach())
    model.eval()
    torch.testing.assert_close(model(support, ys, query), logits)


@pytest.mark.parametrize("inner_queries", [False, True])
def test_reptile_inner_loop_fits_the_queries_too_as_the_reference(inner_queries):
    support, ys, query, yq = _episode(dim=64)
    learner = tiny_learner(
        "reptile", inner_steps=3, inner_queries=inner_queries, meta_batch_size=1, max_epochs=0
    )
    learner.fit(np.random.RandomState(0).rand(30, 64), np.arange(30) % 3)
    learner.module_.double()
    episode = Episode(support, ys, query)
    learner.train_step_single(([episode], [yq]))
    fitted = (torch.cat([support, query]), torch.cat([ys, yq])) if inner_queries else (support, ys)
    adapted = learner.module_.adapt_to(*fitted)
    for name, p in learner.encoder_.named_parameters():
        torch.testing.assert_close(p.grad, p.detach() - adapted[f"encoder.{name}"].detach())


@pytest.mark.parametrize("rule", [LSTMOptimizer, MetaLearnerLSTM])
def test_learned_rules_update_every_coordinate_and_receive_gradients(rule):
    support, ys, query, yq = _episode()
    net = _tiny_net()
    torch.manual_seed(0)
    rule = rule().double()
    model = GradientAdaptation(net, rule, inner_steps=3, first_order=True)
    params = model.adapt_to(support, ys)
    assert not torch.equal(params["encoder.0.weight"], net[0].weight)
    F.cross_entropy(model.query_logits(params, support, query), yq).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in rule.parameters())


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_fused_lstm_cell_computes_what_nn_lstm_cell_computes(compile):
    # Values and every gradient, with and without a gradient for the cell state and for
    # the input, from both implementations of the elementwise part (in place, and fused
    # by torch.compile).
    torch.manual_seed(0)
    cell = nn.LSTMCell(3, 5).double()
    x_, h, c = (torch.randn(7, k, dtype=torch.double, requires_grad=True) for k in (3, 5, 5))
    weights = torch.randn(2, 7, 5, dtype=torch.double)
    for use_c, x in ((True, x_), (False, x_), (True, x_.detach())):
        inputs = [x, h, c, *cell.parameters()][0 if x.requires_grad else 1 :]
        expected = cell(x, (h, c))
        fused = [out.t() for out in lstm_cell(cell, x.t(), (h.t(), c.t()), compile=compile)]
        for ours, theirs in zip(fused, expected):
            torch.testing.assert_close(ours, theirs)

        def loss(outs, use_c=use_c):
            return (outs[0] * weights[0]).sum() + use_c * (outs[1] * weights[1]).sum()

        for ours, theirs in zip(
            torch.autograd.grad(loss(fused), inputs), torch.autograd.grad(loss(expected), inputs)
        ):
            torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("rule_class", [LSTMOptimizer, MetaLearnerLSTM])
def test_learned_rules_compiled_adapt_and_train_as_eager(rule_class, monkeypatch):
    # rule(compile=True) reaches lstm_cell's compiled kernels, for the same adaptation
    # and the same meta-gradient.
    from skfewshot.nn import _adaptation

    calls = []
    kernels = _adaptation._compiled_kernels
    monkeypatch.setattr(_adaptation, "_compiled_kernels", lambda: calls.append(1) or kernels())
    support, ys, query, yq = _episode()
    grads = []
    for compile in (False, True):
        torch.manual_seed(0)
        rule = rule_class(compile=compile).double()
        model = GradientAdaptation(_tiny_net(), rule, inner_steps=3, first_order=True)
        params = model.adapt_to(support, ys)
        F.cross_entropy(model.query_logits(params, support, query), yq).backward()
        grads.append([p.grad for p in rule.parameters()])
        assert bool(calls) == compile
    for eager, compiled in zip(*grads):
        torch.testing.assert_close(compiled, eager)


def test_learned_rules_run_in_bfloat16_under_autocast():
    support, ys, _, _ = _episode()
    net = _tiny_net().float()
    for rule in (LSTMOptimizer(), MetaLearnerLSTM()):
        model = GradientAdaptation(net, rule, inner_steps=2, first_order=True)
        exact = model.adapt_to(support.float(), ys)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert rule.init_state(exact)[0].dtype == torch.bfloat16
            mixed = model.adapt_to(support.float(), ys)
        for name, p in exact.items():
            assert mixed[name].dtype == torch.float32
            torch.testing.assert_close(mixed[name], p, rtol=0.05, atol=2e-3)


def test_meta_learner_lstm_cell_state_is_the_parameters():
    # With constant gates (zero gate weights) the update is p <- f p - i grad, exactly.
    support, ys, _, _ = _episode()
    net = _tiny_net()
    rule = MetaLearnerLSTM().double()
    with torch.no_grad():
        for gate, bias in ((rule.forget_gate, 5.0), (rule.input_gate, -4.5)):
            gate.weight.zero_()
            gate.bias.fill_(bias)
    lstm = GradientAdaptation(net, rule, inner_steps=1, head_init="prototypes")
    sgd = GradientAdaptation(net, GradientStep(inner_lr=1.0), inner_steps=1, head_init="prototypes")
    gradient = net[0].weight - sgd.adapt_to(support, ys)["encoder.0.weight"]
    f, i = torch.sigmoid(torch.tensor(5.0)), torch.sigmoid(torch.tensor(-4.5))
    torch.testing.assert_close(
        lstm.adapt_to(support, ys)["encoder.0.weight"], f * net[0].weight - i * gradient
    )


def test_learned_rule_steps_scale_like_a_learning_rate():
    # A meta-learner LSTM with constant gates f = 1, i = alpha is gradient descent at alpha:
    # lr_scale s must make it gradient descent at s * alpha.
    support, ys, query, _ = _episode()
    net = _tiny_net().float()
    rule = MetaLearnerLSTM()
    alpha = 0.3
    with torch.no_grad():
        for gate, bias in (
            (rule.forget_gate, 50.0),
            (rule.input_gate, np.log(alpha / (1 - alpha))),
        ):
            gate.weight.zero_()
            gate.bias.fill_(bias)
    X, Xq = support.float().numpy(), query.float().numpy()
    for scale in (0.5, 2.0):
        learned = LearnedOptimizerClassifier(net, rule, lr_scale=scale, inner_steps=3).fit(X, ys)
        sgd = MAMLClassifier(net, inner_lr=scale * alpha, inner_steps=3).fit(X, ys)
        np.testing.assert_allclose(learned.predict_proba(Xq), sgd.predict_proba(Xq), atol=1e-5)


def _exact_derivatives(net, inputs, context):
    """Whether ``net``'s first and second derivatives, computed in ``context``, are exact."""
    names = [name for name, _ in net.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in net.parameters()]

    def forward(x, *params):
        with context():
            return torch.func.functional_call(net, dict(zip(names, params)), (x,))

    arguments = (inputs.requires_grad_(), *params)
    return torch.autograd.gradcheck(forward, arguments) and torch.autograd.gradgradcheck(
        forward, arguments
    )


@pytest.mark.parametrize("rows", [None, 3])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_statistics_from_the_first_rows_have_exact_second_derivatives(rows, affine):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3, affine=affine)).double()
    x = torch.randn(5, 2, 4, 4, dtype=torch.float64)
    assert _exact_derivatives(net, x, lambda: batch_statistics_from(net, rows))
    flat = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
    assert _exact_derivatives(
        flat, torch.randn(6, 3, dtype=torch.float64), lambda: batch_statistics_from(flat, rows)
    )


@pytest.mark.parametrize(
    "options",
    [{"padding": 1}, {"stride": 2}, {"dilation": 2, "groups": 2}, {"padding": 1, "bias": False}],
)
def test_convolutions_keep_exact_second_derivatives_on_the_fast_kernels(options):
    torch.manual_seed(0)
    net = nn.Conv2d(2, 4, 3, **options).double()
    x = torch.randn(3, 2, 7, 7, dtype=torch.float64)
    assert _exact_derivatives(net, x, fast_second_derivatives)


@pytest.mark.parametrize(
    "options",
    [
        {"kernel_size": 2},
        {"kernel_size": 2, "ceil_mode": True},
        {"kernel_size": 3, "stride": 3, "padding": 1},
        {"kernel_size": 3, "stride": 1},  # overlapping windows: torch's own
    ],
)
def test_max_pooling_keeps_exact_second_derivatives_from_its_indices(options):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.MaxPool2d(**options), nn.ReLU()).double()
    x = torch.randn(3, 2, 9, 9, dtype=torch.float64)
    assert _exact_derivatives(net, x, fast_second_derivatives)
    with fast_second_derivatives():
        y = net(x)
    pooling = y.grad_fn.next_functions[0][0]
    assert (type(pooling).__name__ == "MaxPool2dBackward") == (options.get("stride") != 1)


def test_batch_statistics_come_from_the_first_rows_only():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).train()
    x = torch.randn(10, 3)
    expected = net(x[:6])  # training-mode batch norm on the support alone
    running = net[1].running_mean.clone()
    with batch_statistics_from(net, 6):
        out = net(x)
    torch.testing.assert_close(out[:6], expected)
    torch.testing.assert_close(net[1].running_mean, running)  # untouched
    assert net[1].training  # mode restored
    with batch_statistics_from(net, 6):
        alone = net(torch.cat([x[:6], x[8:9]]))
    torch.testing.assert_close(alone[6], out[8])


def test_recorded_support_statistics_score_queries_alone_like_the_joint_pass():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 4), nn.BatchNorm1d(4)
    ).double()
    support, ys, query, _ = _episode()
    model = GradientAdaptation(
        net, GradientStep(inner_lr=0.5), inner_steps=2, head_init="prototypes"
    )
    params = model.adapt_to(support, ys)
    statistics = model.support_statistics(params, support)
    assert sorted(statistics) == [0, 1]
    torch.testing.assert_close(
        model.query_logits(params, support, query, statistics),
        model.query_logits(params, support, query),
    )


# -- the estimators ------------------------------------------------------------------------


@pytest.fixture
def images(digits):
    X, y = digits
    return np.repeat(np.repeat(X.reshape(-1, 1, 8, 8), 2, 2), 2, 3), y  # 16x16


def _small_conv(seed=0):
    torch.manual_seed(seed)
    return Conv4(hidden_channels=8, out_channels=8)


@pytest.mark.parametrize(
    "cls", [MAMLClassifier, ANILClassifier, MetaSGDClassifier, LearnedOptimizerClassifier]
)
def test_queries_are_scored_independently_unless_transductive(images, cls):
    X, y = images
    clf = cls(_small_conv(), inner_steps=2, head_init="prototypes", batch_size=7)
    clf.fit(X[:30], y[:30])
    together = clf.predict_proba(X[30:50])
    alone = np.vstack([clf.predict_proba(X[i : i + 1]) for i in range(30, 50)])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-6)

    clf.set_params(transductive=True).fit(X[:30], y[:30])
    together = clf.predict_proba(X[30:50])
    pairs = np.vstack([clf.predict_proba(X[i : i + 2]) for i in range(30, 50, 2)])
    assert not np.allclose(together, pairs, atol=1e-3)


def _fit_learner(name, X, y, **params):
    episodes = {"n_way": 5, "n_shot": 1, "n_query": 5, "meta_batch_size": 2}
    return tiny_learner(name, **{**episodes, **params}).fit(X, y)


def test_meta_batches_group_episodes_into_one_update(digits):
    X, y = digits
    learner = _fit_learner(
        "maml", X[y < 6], y[y < 6], episodes_per_epoch=7, meta_batch_size=3, max_epochs=1
    )
    assert len(learner.history[-1, "batches"]) == 3  # 3 + 3 + 1 episodes


def test_meta_training_is_what_moves_the_rates_and_the_rule(digits):
    X, y = digits
    sgd = _fit_learner("metasgd", X[y < 6], y[y < 6], inner_lr=0.3)
    rates = torch.cat([r.flatten() for r in sgd.rule_.parameters()])
    assert rates.shape[0] > 1000 and not torch.allclose(rates, torch.full_like(rates, 0.3))
    lstm = _fit_learner("meta-lstm", X[y < 6], y[y < 6], rule=LSTMOptimizer)
    assert isinstance(lstm.rule_, LSTMOptimizer)
    clf = lstm.to_classifier()
    assert isinstance(clf, LearnedOptimizerClassifier) and clf.inner_steps == lstm.inner_steps


def test_grid_search_over_inner_steps_and_inner_lr(digits):
    # Per-setting tuning of the adaptation, the library's way: GridSearchCV over episodes.
    X, y = digits
    torch.manual_seed(0)
    clf = MAMLClassifier(MLP(64, (32,), 16), inner_lr=0.2, inner_steps=3)
    cv = EpisodicSplit(n_way=5, n_shot=1, n_query=10, n_episodes=20, random_state=0)
    grid = {"inner_steps": [1, 5], "inner_lr": [0.05, 0.5]}
    search = GridSearchCV(clf, grid, cv=cv, refit=False).fit(X, y)
    assert search.cv_results_["mean_test_score"].shape == (4,)
    assert set(search.best_params_) == {"inner_steps", "inner_lr"}


def test_to_classifier_mirrors_the_learner():
    X = np.random.RandomState(0).rand(60, 64).astype(np.float32)
    y = np.arange(60) % 6
    learner = _fit_learner(
        "reptile", X, y, inner_lr=0.05, inner_steps=4, head_init="prototypes", max_epochs=1
    )
    clf = learner.to_classifier(inner_steps=30)
    assert isinstance(clf, ReptileClassifier)
    assert (clf.inner_lr, clf.inner_steps, clf.head_init) == (0.05, 30, "prototypes")
    assert clf.encoder is not learner.encoder_ and not clf.encoder.training


X_IMG = np.random.RandomState(0).rand(8, 1, 16, 16).astype(np.float32)
Y_IMG = np.arange(8) % 4
X_NAN = X_IMG.copy()
X_NAN[0, 0, 0, 0] = np.nan
OK = (np.ones((4, 2)), [0, 0, 1, 1])
BAD_INPUT = {
    "negative inner_steps": (
        MAMLClassifier(inner_steps=-1),
        *OK,
        None,
        ValueError,
        "inner_steps must be an integer >= 0",
    ),
    "unknown head_init": (
        ANILClassifier(head_init="random"),
        *OK,
        None,
        ValueError,
        "head_init must be one of",
    ),
    "zero inner_lr": (
        MAMLClassifier(inner_lr=0),
        *OK,
        None,
        ValueError,
        "inner_lr must be a positive number",
    ),
    "zero lr_scale": (
        MetaSGDClassifier(lr_scale=0.0),
        *OK,
        None,
        ValueError,
        "lr_scale must be a positive number",
    ),
    "rule that is not a module": (
        LearnedOptimizerClassifier(rule="lstm"),
        *OK,
        None,
        TypeError,
        "rule must be a torch.nn.Module instance",
    ),
    "rates learned for another encoder": (
        MetaSGDClassifier(
            Conv4(),
            GradientStep(
                {"encoder.x": (1,), "head.weight": (1, 1), "head.bias": (1,)}, learn_lr=True
            ),
        ),
        X_IMG,
        Y_IMG,
        None,
        ValueError,
        "meta-learned with another encoder",
    ),
    "images the encoder cannot take": (
        MAMLClassifier(Conv4(in_channels=3)),
        X_IMG,
        Y_IMG,
        None,
        ValueError,
        "the encoder Conv4 failed on a batch",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT), ids=list(BAD_INPUT))
def test_bad_input_table(case):
    check_bad_input(BAD_INPUT[case])


def test_learner_errors(digits):
    X, y = digits
    base = y < 6
    with pytest.raises(ValueError, match="head_init must be one of"):
        _fit_learner("maml", X[base], y[base], head_init="learned")
    with pytest.raises(ValueError, match="inner_steps must be an integer >= 0"):
        _fit_learner("anil", X[base], y[base], inner_steps=1.5)
    with pytest.raises(ValueError, match="meta_batch_size must be an integer >= 1"):
        _fit_learner("maml", X[base], y[base], meta_batch_size=0)
    with pytest.raises(ValueError, match="MetaSGDLearner: .*uninitialised \\(lazy\\)"):
        _fit_learner("metasgd", X[base], y[base], encoder__in_features=None)
    with pytest.raises(ValueError, match="more ways than classes|n_way"):
        _fit_learner("maml", X[base], y[base], n_way=7)
    with pytest.raises(ValueError, match="ReptileLearner does not take first_order: Reptile is"):
        _fit_learner("reptile", X[base], y[base], first_order=True)
    with pytest.raises(ValueError, match="LearnedOptimizerLearner does not take inner_lr: the"):
        _fit_learner("meta-lstm", X[base], y[base], inner_lr=0.1)
    with pytest.raises(TypeError, match="to_classifier"):
        _fit_learner("maml", X[base], y[base]).predict(X[:3])
