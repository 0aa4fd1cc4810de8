"""The imitation phase of the learned optimizers: first gradient descent, then meta-training."""

import warnings

import joblib
import numpy as np
import pytest
import torch
from methods import MLP16, TINY, tiny_learner
from sklearn.base import clone
from skorch.callbacks import Callback, Checkpoint, LoadInitState
from torch.func import functional_call
from torch.nn import functional as F

from skfewshot.base import GradientLearner
from skfewshot.nn import GradientAdaptation, GradientStep, LSTMOptimizer, MetaLearnerLSTM

RULES = {"meta-lstm": MetaLearnerLSTM, "lstm-optimizer": LSTMOptimizer}


def _learner(name="meta-lstm", **params):
    episodes = {"n_way": 3, "n_shot": 2, "n_query": 3, "meta_batch_size": 3}
    return tiny_learner(name, **{**episodes, **params})


def _weights(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _episode(n_way=3, n_shot=2, dim=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    support = torch.randn(n_way * n_shot, dim, generator=g, dtype=torch.float64)
    return support, torch.arange(n_way).repeat(n_shot)


def _tiny_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh()).double()


# -- the loss ------------------------------------------------------------------------------


def test_gradient_descent_imitates_itself_exactly_and_standing_still_scores_one():
    support, labels = _episode()
    net = _tiny_net()
    sgd = GradientAdaptation(net, GradientStep(inner_lr=0.3), inner_steps=3)
    loss, params = sgd.imitation_loss(support, labels, 0.3)
    assert loss.item() < 1e-24
    # Teacher forcing: the trajectory is gradient descent's, whatever the rule.
    for name, p in sgd.adapt_to(support, labels).items():
        torch.testing.assert_close(params[name], p.detach())
    still = GradientAdaptation(net, GradientStep(inner_lr=1e-12), inner_steps=3)
    assert still.imitation_loss(support, labels, 0.3)[0].item() == pytest.approx(1.0, abs=1e-9)
    head = GradientAdaptation(net, GradientStep(inner_lr=0.3), inner_steps=3, adapt="head")
    assert head.imitation_loss(support, labels, 0.3)[0].item() < 1e-24


def test_meta_learner_lstm_represents_gradient_descent_exactly():
    # Forget gate 1 and input gate alpha: p <- p - alpha grad.
    support, labels = _episode()
    rule = MetaLearnerLSTM().double()
    with torch.no_grad():
        for gate, bias in ((rule.forget_gate, 50.0), (rule.input_gate, np.log(0.3 / 0.7))):
            gate.weight.zero_()
            gate.bias.fill_(bias)
    model = GradientAdaptation(_tiny_net(), rule, inner_steps=3, head_init="prototypes")
    assert model.imitation_loss(support, labels, 0.3)[0].item() < 1e-20


@pytest.mark.parametrize("rule", list(RULES.values()), ids=list(RULES))
def test_the_imitation_loss_trains_the_rule_only(rule):
    support, labels = _episode()
    net = _tiny_net()
    torch.manual_seed(0)
    model = GradientAdaptation(net, rule().double(), inner_steps=3, head_init="prototypes")
    loss, params = model.imitation_loss(support, labels, 0.3)
    assert loss.item() > 0.5  # an untrained rule is far from gradient descent
    loss.backward()
    assert all(p.grad is None for p in net.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.rule.parameters())
    assert not any(p.requires_grad for p in params.values())

    logits, same = model(support, labels, support, imitation_inner_lr=0.3)
    assert logits.shape == (6, 3) and not logits.requires_grad
    torch.testing.assert_close(same, loss)
    with pytest.raises(ValueError, match="needs at least one inner step"):
        model.imitation_loss(support, labels, 0.3, inner_steps=0)


@pytest.mark.parametrize("rule", list(RULES.values()), ids=list(RULES))
def test_steps_with_nothing_to_imitate_are_left_out(rule):
    # One shot from the prototype head: each prototype is its support sample and, with
    # embeddings far apart, the support loss and its gradients are 0. Gradient descent stands
    # still: no ratio to a zero step (it once made the loss 1e30).
    support, labels = _episode(n_shot=1)
    net = _tiny_net()[0]
    with torch.no_grad():
        net.weight.mul_(1000)
    torch.manual_seed(0)
    model = GradientAdaptation(net, rule().double(), inner_steps=3, head_init="prototypes")
    loss, _ = model.imitation_loss(support, labels, 0.3)
    assert loss.item() == 0.0
    loss.backward()  # still differentiable: a meta-batch mixing such episodes trains alike
    assert all(p.grad is not None for p in model.rule.parameters())
    # Two shots: something to imitate, every step counted.
    support, labels = _episode(n_shot=2)
    assert model.imitation_loss(support, labels, 0.3)[0].item() > 0.5


# -- the learner ---------------------------------------------------------------------------


def _relative_error(encoder, rule, X, y, lr, steps=3, n_episodes=10):
    """Mean |u + lr g|^2 / |lr g|^2 of the rule's updates u along gradient descent, by hand.

    Fresh 3-way 2-shot episodes of ``(X, y)``, a zero head, gradients from
    ``torch.autograd.grad``: independent of the library's imitation loss.
    """
    rng = np.random.RandomState(7)
    errors = []
    for _ in range(n_episodes):
        classes = rng.choice(np.unique(y), 3, replace=False)
        rows = np.concatenate([rng.choice(np.flatnonzero(y == c), 2, False) for c in classes])
        support = torch.from_numpy(X[rows])
        labels = torch.arange(3).repeat_interleave(2)
        params = {f"encoder.{k}": p.detach().clone() for k, p in encoder.named_parameters()}
        params["head.weight"] = torch.zeros(3, encoder(support[:1]).shape[1])
        params["head.bias"] = torch.zeros(3)
        state = rule.init_state(params)
        for _ in range(steps):
            leaves = {k: p.requires_grad_() for k, p in params.items()}
            encoder_params = {k[8:]: p for k, p in leaves.items() if k.startswith("encoder.")}
            z = functional_call(encoder, encoder_params, (support,))
            loss = F.cross_entropy(F.linear(z, leaves["head.weight"], leaves["head.bias"]), labels)
            grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
            with torch.no_grad():
                params = {k: p.detach() for k, p in leaves.items()}
                updated, state = rule(params, grads, loss, state)
                sgd = {k: p - lr * grads[k] for k, p in params.items()}
                error = sum((updated[k] - sgd[k]).pow(2).sum() for k in params)
                errors.append(float(error / sum((lr * g).pow(2).sum() for g in grads.values())))
                params = sgd
    return float(np.mean(errors))


@pytest.mark.parametrize("name", list(RULES), ids=list(RULES))
def test_the_imitation_phase_alone_brings_the_rule_to_gradient_descent(base_novel, name):
    X_base, y_base, X_novel, y_novel = base_novel
    params = {
        "inner_steps": 3,
        "meta_batch_size": 1,
        "episodes_per_epoch": 200,
        "max_epochs": 1,
        "imitation_episodes": 200,  # imitation only
        "imitation_inner_lr": 0.3,
        "imitation_lr": 1e-2,
    }
    untrained = _learner(name, **{**params, "max_epochs": 0}).fit(X_base, y_base)
    imitated = _learner(name, **params).fit(X_base, y_base)
    assert imitated.history[:, "batches", :, "imitation"] == [[1] * 200]
    # The imitation trains the rule only: the initialisation is the untrained one's.
    for k, v in _weights(untrained.encoder_).items():
        assert torch.equal(v, imitated.encoder_.state_dict()[k])
    before = _relative_error(untrained.encoder_, untrained.rule_, X_novel, y_novel, 0.3)
    after = _relative_error(imitated.encoder_, imitated.rule_, X_novel, y_novel, 0.3)
    assert before > 1.0  # the untrained rule: worse than standing still
    # The meta-learner LSTM represents gradient descent exactly (1.3 -> 1e-4 here); the
    # LSTM optimizer approximates it from log-magnitudes and signs (1.06 -> 0.27).
    assert after < (0.01 if name == "meta-lstm" else 0.4 * before), (before, after)


class _RecordRate(Callback):
    """The meta-optimizer's rate at each meta-update."""

    def initialize(self):
        self.rates = []
        return self

    def on_grad_computed(self, net, named_parameters, **kwargs):
        self.rates.append(net.optimizer_.param_groups[0]["lr"])


def test_the_phase_changes_after_imitation_episodes_rounded_up_to_meta_batches(base_novel):
    X_base, y_base, _, _ = base_novel
    # 8 episodes an epoch in meta-batches of 3, 3 and 2; 7 imitation episodes: 3 batches.
    rate = _RecordRate()
    learner = _learner(imitation_episodes=7, lr=1e-3, imitation_lr=5e-3, callbacks=[rate])
    learner.fit(X_base, y_base)
    assert learner.history[:, "batches", :, "imitation"] == [[3, 3, 2], [0, 0, 0]]
    assert rate.rates == pytest.approx([5e-3] * 3 + [1e-3] * 3, rel=1e-12)
    assert learner.optimizer_.param_groups[0]["lr"] == 1e-3  # restored

    # The count carries on with partial_fit: 8 done, 4 to go, one more meta-batch of 3.
    learner = _learner(imitation_episodes=12, max_epochs=1).fit(X_base, y_base)
    learner.partial_fit(X_base, y_base)
    assert learner.history[:, "batches", :, "imitation"] == [[3, 3, 2], [3, 3, 0]]


def test_the_count_survives_a_checkpoint(tmp_path, base_novel):
    X_base, y_base, _, _ = base_novel
    checkpoint = Checkpoint(monitor=None, dirname=str(tmp_path))
    _learner(imitation_episodes=12, max_epochs=1, callbacks=[checkpoint]).fit(X_base, y_base)
    resumed = _learner(
        imitation_episodes=12,
        max_epochs=1,
        callbacks=[LoadInitState(Checkpoint(monitor=None, dirname=str(tmp_path)))],
    ).fit(X_base, y_base)
    assert resumed.history[:, "batches", :, "imitation"] == [[3, 3, 2], [3, 3, 0]]


@pytest.mark.parametrize("name", list(RULES), ids=list(RULES))
def test_same_random_state_same_weights_through_both_phases(base_novel, name):
    X_base, y_base, _, _ = base_novel
    a = _weights(_learner(name, imitation_episodes=10).fit(X_base, y_base).module_)
    b = _weights(_learner(name, imitation_episodes=10).fit(X_base, y_base).module_)
    c = _weights(_learner(name, imitation_episodes=10, random_state=1).fit(X_base, y_base).module_)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("name", list(RULES), ids=list(RULES))
def test_no_imitation_is_plain_meta_training(base_novel, name):
    # imitation_episodes=0 trains as the learner did before the phase existed: a
    # GradientLearner with the rule and first-order inner gradients.
    X_base, y_base, _, _ = base_novel
    learner = _learner(name, imitation_episodes=0).fit(X_base, y_base)
    plain = GradientLearner(
        **MLP16,
        **{**TINY, "n_way": 3, "n_shot": 2, "n_query": 3, "meta_batch_size": 3},
        rule=RULES[name],
        inner_steps=2,
        module__first_order=True,
    ).fit(X_base, y_base)
    a, b = _weights(learner.module_), _weights(plain.module_)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert learner.history[:, "train_loss"] == plain.history[:, "train_loss"]
    assert learner.history[:, "batches", :, "imitation"] == [[0, 0, 0], [0, 0, 0]]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"imitation_episodes": -1}, "imitation_episodes must be an integer >= 0"),
        ({"imitation_episodes": 2.5}, "imitation_episodes must be an integer >= 0"),
        ({"imitation_inner_lr": 0.0}, "imitation_inner_lr must be a positive number"),
        ({"imitation_lr": -1e-3}, "imitation_lr must be a positive number"),
        (
            {"imitation_episodes": 5, "inner_steps": 0},
            "imitation_episodes=5 needs inner_steps >= 1",
        ),
    ],
)
def test_parameter_errors(base_novel, params, message):
    X_base, y_base, _, _ = base_novel
    with pytest.raises(ValueError, match=f"LearnedOptimizerLearner.*{message}"):
        _learner(**params).fit(X_base, y_base)


def test_imitation_with_nothing_to_imitate_warns(base_novel):
    X_base, y_base, _, _ = base_novel
    one_shot = {"head_init": "prototypes", "n_shot": 1, "max_epochs": 1}
    with pytest.warns(UserWarning, match="no gradient step to imitate.*imitation_episodes=0"):
        _learner(**one_shot, imitation_episodes=3).fit(X_base, y_base)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _learner(**one_shot, imitation_episodes=0).fit(X_base, y_base)
        _learner(head_init="prototypes", max_epochs=1, imitation_episodes=3).fit(X_base, y_base)


@pytest.mark.parametrize("name", list(RULES), ids=list(RULES))
def test_compiled_rule_trains_as_eager_and_round_trips(base_novel, name, tmp_path):
    # rule__compile=True through the public API: the same training (up to rounding), a
    # clone that keeps it, and a fitted learner that pickles and classifies.
    X_base, y_base, X_novel, y_novel = base_novel
    eager = _weights(_learner(name, imitation_episodes=3).fit(X_base, y_base).module_)
    learner = _learner(name, imitation_episodes=3, rule__compile=True)
    assert clone(learner).get_params()["rule__compile"] is True
    learner.fit(X_base, y_base)
    assert learner.rule_.compile is True
    compiled = _weights(learner.module_)
    for key in eager:
        torch.testing.assert_close(compiled[key], eager[key], rtol=1e-4, atol=1e-4)
    joblib.dump(learner, tmp_path / "learner.joblib")
    loaded = joblib.load(tmp_path / "learner.joblib")
    assert loaded.rule_.compile is True
    support = np.concatenate([np.flatnonzero(y_novel == c)[:2] for c in np.unique(y_novel)[:3]])
    classifier = loaded.to_classifier().fit(X_novel[support], y_novel[support])
    assert set(classifier.predict(X_novel[:5])) <= set(y_novel[support])
