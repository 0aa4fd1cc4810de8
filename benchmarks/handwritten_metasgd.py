"""Meta-SGD: a minimal hand-written ``torch.func`` training loop, and the skfewshot learner.

Meta-SGD (Li et al. 2017) is MAML whose inner step is ``p - rates * grad``
with meta-learned rates. As :class:`~skfewshot.meta.MetaSGDLearner`
(``GradientStep(learn_lr=True)`` with ``adapted_shapes``): one rate per
coordinate of every encoder tensor, one rate shared by the head's weights
(shape ``(1, 1)``) and one by its biases (shape ``(1,)``), the head being new
for each episode; all start at ``INNER_LR`` and Adam at 1e-3 meta-trains
them with the encoder's initial weights. Everything else is
``handwritten_maml.py``'s loop: same episodes and initial weights
(``random_state=seed``), Conv4 with the support set's batch-norm statistics,
a zero or prototype head, second order unless ``first_order``, inner
gradients from ``torch.func.grad`` (``gradients=`` takes
``handwritten_maml_autograd.autograd_gradients`` for plain autograd, as
``gradient_speed.py`` does).

``handwritten_loop`` returns the Conv4 and the dict of rates
(``"blocks.0.0.weight"``, ..., ``"head.weight"``, ``"head.bias"``).
"""

from functools import partial

import handwritten_maml
import numpy as np
import torch
from handwritten_maml import (
    HEAD_INIT,
    INNER_LR,
    INNER_STEPS,
    META_BATCH,
    SHAPE,
    features,
    func_gradients,
    head,
)
from torch.nn import functional as F

from skfewshot._torch_utils import channels_last
from skfewshot.meta import MetaSGDLearner
from skfewshot.model_selection import EpisodeSampler
from skfewshot.nn import Conv4

__all__ = ["SHAPE", "handwritten_loop", "learner", "initial_rates"]  # SHAPE: training_speed.py

FIRST_ORDER = False


def initial_rates(meta_params):
    """The meta-learned rates at ``INNER_LR``: per coordinate, but shared within the head."""
    rates = {
        name: torch.full(p.shape, INNER_LR, requires_grad=True) for name, p in meta_params.items()
    }
    rates["head.weight"] = torch.full((1, 1), INNER_LR, requires_grad=True)
    rates["head.bias"] = torch.full((1,), INNER_LR, requires_grad=True)
    return rates


def handwritten_loop(
    X,
    y,
    n_episodes,
    seed,
    n_way,
    n_shot,
    n_query,
    first_order=FIRST_ORDER,
    inner_steps=INNER_STEPS,
    meta_batch_size=META_BATCH,
    head_init=HEAD_INIT,
    optimizer=torch.optim.Adam,
    gradients=func_gradients,
):
    # The seeds the learner derives from random_state=seed: same episodes, same weights.
    episode_seed, _, torch_seed = np.random.RandomState(seed).randint(2**31 - 1, size=3)
    torch.manual_seed(int(torch_seed))
    model = channels_last(Conv4())  # only for its initial weights, as the learner's
    meta_params = dict(model.named_parameters())
    rates = initial_rates(meta_params)
    optimizer = optimizer([*meta_params.values(), *rates.values()], lr=1e-3)
    sampler = EpisodeSampler(y, n_way, n_shot, n_query)
    rng = np.random.RandomState(episode_seed)
    X = torch.from_numpy(X)
    for start in range(0, n_episodes, meta_batch_size):
        optimizer.zero_grad()
        batch = min(meta_batch_size, n_episodes - start)
        for _ in range(batch):
            s, q, s_labels, q_labels = sampler.sample(rng)
            support, query = X[torch.from_numpy(s)], X[torch.from_numpy(q)]
            s_labels = torch.from_numpy(s_labels)
            weight, bias = head(meta_params, support, s_labels, n_way, head_init)
            params = {**meta_params, "head.weight": weight, "head.bias": bias}
            for _ in range(inner_steps):
                grads = gradients(params, support, s_labels, first_order)
                params = {k: v - rates[k] * grads[k] for k, v in params.items()}
            z = features(params, torch.cat([support, query]), len(support))[len(support) :]
            logits = F.linear(z, params["head.weight"], params["head.bias"])
            (F.cross_entropy(logits, torch.from_numpy(q_labels)) / batch).backward()
        optimizer.step()
    return model, rates


learner = partial(handwritten_maml.learner, learner_class=MetaSGDLearner)
