"""MAML: a minimal hand-written ``torch.func`` training loop, and the skfewshot learner.

Both meta-train the same Conv4 (batch norm with the support set's statistics,
a zero-initialised or prototype head per episode) from the same initial
weights on the same episodes, with the same inner loop (``inner_steps`` steps
of rate ``inner_lr``) and meta-batches of ``meta_batch_size`` episodes;
``training_speed.py`` times them side by side (``--option inner_steps=5``
changes the step count of both, ``--option head_init=prototypes`` the head).
Second order unless ``first_order`` (see ``handwritten_fomaml.py``).
``handwritten_maml_autograd.py`` is the same loop with
``torch.autograd.grad(..., create_graph=True)`` instead of ``torch.func``.
"""

import numpy as np
import torch
from torch.func import grad
from torch.nn import functional as F

from skfewshot._torch_utils import channels_last
from skfewshot.meta import MAMLLearner
from skfewshot.model_selection import EpisodeSampler
from skfewshot.nn import Conv4

SHAPE = (5, 1, 15)  # n_way, n_shot, n_query of the timed episodes
META_BATCH = 4
INNER_LR = 0.4
INNER_STEPS = 1
FIRST_ORDER = False
HEAD_INIT = "zero"


def features(params, x, n_stats):
    """Conv4 written out: conv, batch norm from the first n_stats rows, max-pool, ReLU."""
    for i in range(4):
        x = F.conv2d(x, params[f"blocks.{i}.0.weight"], params[f"blocks.{i}.0.bias"], padding=1)
        mean = x[:n_stats].mean((0, 2, 3), keepdim=True)
        var = x[:n_stats].var((0, 2, 3), unbiased=False, keepdim=True)
        x = (x - mean) * torch.rsqrt(var + 1e-5)
        x = x * params[f"blocks.{i}.1.weight"].view(1, -1, 1, 1) + params[
            f"blocks.{i}.1.bias"
        ].view(1, -1, 1, 1)
        x = F.relu(F.max_pool2d(x, 2))
    return x.flatten(1)


def head(params, support, labels, n_way, head_init):
    """The episode's head: zero, or from the support set's class means (Proto-MAML)."""
    if head_init == "zero":
        return torch.zeros(n_way, 64), torch.zeros(n_way)
    z = features(params, support, len(support))
    means = torch.zeros(n_way, z.shape[1]).index_add(0, labels, z) / torch.bincount(labels)[:, None]
    return 2 * means, -(means * means).sum(1)


def support_loss(params, x, labels):
    logits = F.linear(features(params, x, len(x)), params["head.weight"], params["head.bias"])
    return F.cross_entropy(logits, labels)


def func_gradients(params, support, labels, first_order):
    """The inner gradients with ``torch.func.grad``."""
    at = {k: v.detach() for k, v in params.items()} if first_order else params
    return grad(support_loss)(at, support, labels)


def handwritten_loop(
    X,
    y,
    n_episodes,
    seed,
    n_way,
    n_shot,
    n_query,
    first_order=None,
    inner_steps=INNER_STEPS,
    meta_batch_size=META_BATCH,
    head_init=HEAD_INIT,
    optimizer=torch.optim.Adam,
    gradients=func_gradients,
):
    first_order = FIRST_ORDER if first_order is None else first_order
    # The seeds the learner derives from random_state=seed: same episodes, same weights.
    episode_seed, _, torch_seed = np.random.RandomState(seed).randint(2**31 - 1, size=3)
    torch.manual_seed(int(torch_seed))
    model = channels_last(Conv4())  # only for its initial weights, as the learner's
    meta_params = dict(model.named_parameters())
    optimizer = optimizer(meta_params.values(), lr=1e-3)
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
                params = {k: v - INNER_LR * grads[k] for k, v in params.items()}
            z = features(params, torch.cat([support, query]), len(support))[len(support) :]
            logits = F.linear(z, params["head.weight"], params["head.bias"])
            (F.cross_entropy(logits, torch.from_numpy(q_labels)) / batch).backward()
        optimizer.step()
    return model


def learner(
    n_episodes,
    seed,
    n_way,
    n_shot,
    n_query,
    first_order=None,
    inner_steps=INNER_STEPS,
    meta_batch_size=META_BATCH,
    head_init=HEAD_INIT,
    optimizer=torch.optim.Adam,
    learner_class=MAMLLearner,
):
    """The learner of these loops' settings (``learner_class``: ANIL's, Meta-SGD's, ...)."""
    first_order = FIRST_ORDER if first_order is None else first_order
    return learner_class(
        Conv4,
        n_way=n_way,
        n_shot=n_shot,
        n_query=n_query,
        meta_batch_size=meta_batch_size,
        inner_lr=INNER_LR,
        inner_steps=inner_steps,
        first_order=first_order,
        head_init=head_init,
        optimizer=optimizer,
        max_epochs=1,
        episodes_per_epoch=n_episodes,
        random_state=seed,
        verbose=0,
    )
