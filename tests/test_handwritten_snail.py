"""The hand-written SNAIL loop that ``training_speed.py`` times trains the learner's weights.

``benchmarks/training_speed.py --methods snail`` times
``benchmarks/handwritten_snail.py`` against :class:`SNAILLearner`: a speed
ratio compares the same computation only if both train the same weights.
Each case runs the loop, exactly as the benchmark calls it, and the learner
for two episodes on tiny random images from the same seed, and compares the
initial and the trained weights of the encoder and the network.
"""

import numpy as np
import pytest
import torch
from benchmark_scripts import load_script

handwritten_snail = load_script("handwritten_snail")

SHAPE = (3, 2, 2)  # n_way, n_shot, n_query
N_EPISODES = 2
SEED = 7
RTOL, ATOL = 1e-4, 1e-5

CASES = [
    # The timed configuration (the paper's architecture, shuffled label slots), one
    # episode per meta-update.
    {},
    # Class c in slot c, both episodes in one meta-batch, a smaller network.
    {"meta_batch_size": 2, "shuffle_labels": False, "filters": 16, "dense_blocks": 3},
]


@pytest.fixture(scope="module")
def images():
    """10 classes of 6 random 28x28 images."""
    rng = np.random.RandomState(0)
    return rng.rand(60, 1, 28, 28).astype(np.float32), np.repeat(np.arange(10), 6)


def _weights(encoder, snail):
    """The hand loop's weights, named as the learner's ``module_`` names them."""
    return {
        **{f"encoder.{k}": v.detach() for k, v in encoder.named_parameters()},
        **{f"comparator.{k}": v.detach() for k, v in snail.named_parameters()},
    }


def _assert_alike(actual, expected):
    """The same tensors, to float32 rounding."""
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        a, e = actual[name].detach(), value.detach()
        assert a.shape == e.shape, name
        torch.testing.assert_close(
            a, e, rtol=RTOL, atol=ATOL, msg=lambda message, name=name: f"{name}: {message}"
        )


@pytest.mark.parametrize("case", CASES, ids=["defaults", "meta_batch-no_shuffle-small"])
def test_hand_loop_trains_the_learners_weights(case, images):
    X, y = images
    # Plain SGD (at a rate that moves the weights well beyond rounding in two steps): Adam's
    # first steps move every coordinate by about its rate whatever the gradient's size, so
    # that gradients equal to rounding but near zero (e.g. the convolution biases', which
    # batch norm cancels) would move apart by the rate.
    options = {**case, "optimizer": torch.optim.SGD, "lr": 1e-2}
    learner, loop = handwritten_snail.learner, handwritten_snail.handwritten_loop
    initial = learner(N_EPISODES, SEED, *SHAPE, **options).set_params(max_epochs=0).fit(X, y)
    fitted = learner(N_EPISODES, SEED, *SHAPE, **options).fit(X, y)
    start = {k: v.detach() for k, v in initial.module_.named_parameters()}
    weights = {k: v.detach() for k, v in fitted.module_.named_parameters()}
    # The same initial weights (no episode: the loop returns the network it built) ...
    _assert_alike(start, _weights(*loop(X, y, 0, SEED, *SHAPE, **options)))
    # ... and the same trained ones.
    _assert_alike(weights, _weights(*loop(X, y, N_EPISODES, SEED, *SHAPE, **options)))
    # Not vacuous: the training moved the weights, of the encoder and of the network.
    for part in ("encoder.", "comparator."):
        moved = max(
            float((weights[name] - p).abs().max())
            for name, p in start.items()
            if name.startswith(part)
        )
        assert moved > 10 * ATOL, part
