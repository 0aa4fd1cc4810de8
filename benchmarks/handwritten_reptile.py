"""Reptile: a minimal hand-written training loop, and the skfewshot learner.

Reptile (Nichol et al. 2018), as :class:`~skfewshot.meta.ReptileLearner`
computes it with its defaults: per episode, a zero (or prototype) head is
put on a copy of the encoder and both are adapted to the support set by
``inner_steps`` plain gradient steps of rate ``INNER_LR`` (first order: the
gradients are constants; ``inner_queries=True`` fits the support set and the
queries together, as the reference implementation); the meta-gradient is
``theta - theta_adapted`` over the encoder's tensors, averaged over
meta-batches of ``meta_batch_size`` episodes, and SGD at rate ``LR``
(epsilon) takes the step ``theta <- theta + LR * mean(theta_adapted - theta)``.
Same episodes and initial weights as the learner with ``random_state=seed``,
Conv4 with the support set's batch-norm statistics
(``handwritten_maml.features``). Inner gradients from ``torch.func.grad``;
``gradients=handwritten_maml_autograd.autograd_gradients`` for plain
autograd, as ``gradient_speed.py`` does.

The learner also scores each episode's queries with the adapted weights
(without a graph) for its training accuracy; ``query_pass=True``, the
default, does the same work here, and ``query_pass=False`` leaves it out
(the minimal Reptile loop: the queries play no part in the update).
"""

import numpy as np
import torch
from handwritten_maml import HEAD_INIT, SHAPE, features, func_gradients, head
from torch.nn import functional as F

from skfewshot._torch_utils import channels_last
from skfewshot.meta import ReptileLearner
from skfewshot.model_selection import EpisodeSampler
from skfewshot.nn import Conv4

__all__ = ["SHAPE", "handwritten_loop", "learner"]  # SHAPE is read by training_speed.py

# ReptileLearner's defaults.
INNER_LR = 0.1
INNER_STEPS = 5
META_BATCH = 5
LR = 1.0
INNER_QUERIES = False


def handwritten_loop(
    X,
    y,
    n_episodes,
    seed,
    n_way,
    n_shot,
    n_query,
    inner_steps=INNER_STEPS,
    meta_batch_size=META_BATCH,
    head_init=HEAD_INIT,
    inner_queries=INNER_QUERIES,
    query_pass=True,
    gradients=func_gradients,
):
    # The seeds the learner derives from random_state=seed: same episodes, same weights.
    episode_seed, _, torch_seed = np.random.RandomState(seed).randint(2**31 - 1, size=3)
    torch.manual_seed(int(torch_seed))
    model = channels_last(Conv4())  # only for its initial weights, as the learner's
    meta_params = dict(model.named_parameters())
    optimizer = torch.optim.SGD(meta_params.values(), lr=LR)
    sampler = EpisodeSampler(y, n_way, n_shot, n_query)
    rng = np.random.RandomState(episode_seed)
    X = torch.from_numpy(X)
    for start in range(0, n_episodes, meta_batch_size):
        optimizer.zero_grad()
        batch = min(meta_batch_size, n_episodes - start)
        for _ in range(batch):
            s, q, s_labels, q_labels = sampler.sample(rng)
            support, query = X[torch.from_numpy(s)], X[torch.from_numpy(q)]
            labels = torch.from_numpy(s_labels)
            if inner_queries:
                support = torch.cat([support, query])
                labels = torch.cat([labels, torch.from_numpy(q_labels)])
            params = {k: v.detach() for k, v in meta_params.items()}  # no meta-graph
            weight, bias = head(params, support, labels, n_way, head_init)
            params = {**params, "head.weight": weight, "head.bias": bias}
            for _ in range(inner_steps):
                grads = gradients(params, support, labels, True)
                params = {k: v - INNER_LR * grads[k] for k, v in params.items()}
            if query_pass:  # the learner's training accuracy scores the queries
                with torch.no_grad():
                    z = features(params, torch.cat([support, query]), len(support))
                    F.linear(z[len(support) :], params["head.weight"], params["head.bias"])
            for name, p in meta_params.items():  # the Reptile direction, theta - theta_adapted
                step = (p.detach() - params[name]) / batch
                p.grad = step if p.grad is None else p.grad + step
        optimizer.step()
    return model


def learner(
    n_episodes,
    seed,
    n_way,
    n_shot,
    n_query,
    inner_steps=INNER_STEPS,
    meta_batch_size=META_BATCH,
    head_init=HEAD_INIT,
    inner_queries=INNER_QUERIES,
):
    return ReptileLearner(
        Conv4,
        n_way=n_way,
        n_shot=n_shot,
        n_query=n_query,
        inner_lr=INNER_LR,
        inner_steps=inner_steps,
        inner_queries=inner_queries,
        meta_batch_size=meta_batch_size,
        head_init=head_init,
        lr=LR,
        max_epochs=1,
        episodes_per_epoch=n_episodes,
        random_state=seed,
        verbose=0,
    )
