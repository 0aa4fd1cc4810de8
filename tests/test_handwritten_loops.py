"""The hand-written loops that the benchmarks time train the learners' weights.

``benchmarks/gradient_speed.py`` (and ``training_speed.py``) time each
gradient-based learner against minimal hand-written loops
(``benchmarks/handwritten_<method>.py``, with ``torch.func`` or plain-autograd
inner gradients): a speed ratio compares the same computation only if both
train the same weights. Each case runs a loop, exactly as the benchmark calls
it, and the matching learner for two episodes on tiny random images from the
same seed, and compares the trained weights (and Meta-SGD's rates).
"""

import numpy as np
import pytest
import torch
from benchmark_scripts import BENCHMARKS, load_script

gradient_speed = load_script("gradient_speed")

SHAPE = (3, 2, 2)  # n_way, n_shot, n_query
N_EPISODES = 2
SEED = 7
RTOL, ATOL = 1e-4, 1e-5

ZERO_1 = {"head_init": "zero", "inner_steps": 1, "meta_batch_size": 2}
ZERO_2 = {"head_init": "zero", "inner_steps": 2, "meta_batch_size": 1}
PROTO_1 = {"head_init": "prototypes", "inner_steps": 1, "meta_batch_size": 2}
PROTO_2 = {"head_init": "prototypes", "inner_steps": 2, "meta_batch_size": 1}

CASES = [
    ("maml", "handwritten", ZERO_1),
    ("maml", "handwritten", ZERO_2),
    ("maml", "handwritten", PROTO_1),
    ("maml", "handwritten_autograd", ZERO_2),
    ("maml", "handwritten_autograd", PROTO_2),
    ("fomaml", "handwritten", ZERO_2),
    ("fomaml", "handwritten", PROTO_1),
    ("fomaml", "handwritten_autograd", PROTO_2),
    ("anil", "handwritten", ZERO_2),
    ("anil", "handwritten", PROTO_1),
    ("anil", "handwritten", {**PROTO_2, "first_order": True}),
    ("anil", "handwritten_autograd", ZERO_2),
    ("anil", "handwritten_autograd", PROTO_2),
    ("metasgd", "handwritten", ZERO_1),
    ("metasgd", "handwritten", ZERO_2),
    ("metasgd", "handwritten", PROTO_1),
    ("metasgd", "handwritten_autograd", PROTO_2),
    ("reptile", "handwritten", {}),  # its defaults: 5 steps, meta-batches of 5
    ("reptile", "handwritten", {"inner_queries": True, "inner_steps": 2}),
    ("reptile", "handwritten_autograd", {"inner_steps": 2, "meta_batch_size": 1}),
    ("reptile", "handwritten_no_queries", {}),
]


def _case_id(method, loop, options):
    return "-".join([method, loop, *(f"{k}={v}" for k, v in options.items())])


@pytest.fixture(scope="module")
def images():
    """10 classes of 6 random 28x28 images."""
    rng = np.random.RandomState(0)
    return rng.rand(60, 1, 28, 28).astype(np.float32), np.repeat(np.arange(10), 6)


def _rate_key(name):
    """The key of a tensor's rate in ``MetaSGDLearner``'s ``rule_.rates``."""
    return (name if name.startswith("head.") else f"encoder.{name}").replace(".", "__")


def _assert_trained_alike(actual, expected):
    """The same tensors, to float32 rounding."""
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        a, e = actual[name].detach(), value.detach()
        assert a.shape == e.shape, name
        torch.testing.assert_close(
            a, e, rtol=RTOL, atol=ATOL, msg=lambda message, name=name: f"{name}: {message}"
        )


@pytest.mark.parametrize(
    ("method", "loop", "options"), CASES, ids=[_case_id(*case) for case in CASES]
)
def test_hand_loop_trains_the_learners_weights(method, loop, options, images, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the loops import each other
    learner, loops = gradient_speed.method_loops(method)
    X, y = images
    if method != "reptile":
        # Plain SGD as the meta-optimizer (Reptile's already): Adam's first steps move every
        # coordinate by about its rate whatever the gradient's size, so that gradients equal
        # to rounding but near zero (e.g. the convolution biases', which batch norm cancels)
        # would move apart by the rate.
        options = {**options, "optimizer": torch.optim.SGD}
    initial = learner(N_EPISODES, SEED, *SHAPE, **options).set_params(max_epochs=0).fit(X, y)
    fitted = learner(N_EPISODES, SEED, *SHAPE, **options).fit(X, y)
    trained = loops[loop](X, y, N_EPISODES, SEED, *SHAPE, **options)
    model, rates = trained if isinstance(trained, tuple) else (trained, None)
    weights = {k: v.detach() for k, v in fitted.module_.encoder.named_parameters()}
    _assert_trained_alike(weights, dict(model.named_parameters()))
    if method == "metasgd":
        learned = {name: fitted.module_.rule.rates[_rate_key(name)] for name in rates}
        _assert_trained_alike(learned, rates)
    # Not vacuous: the training moved the weights.
    start = dict(initial.module_.encoder.named_parameters())
    moved = max(float((weights[name] - p).abs().max()) for name, p in start.items())
    assert moved > 10 * ATOL
