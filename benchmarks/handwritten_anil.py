"""ANIL: a minimal hand-written ``torch.func`` training loop, and the skfewshot learner.

ANIL (Raghu et al. 2020) is MAML whose inner loop adapts the per-episode
linear head only. Both loops meta-train the same Conv4 from the same initial
weights on the same episodes (``random_state=seed``), in meta-batches of
``meta_batch_size`` episodes with Adam at 1e-3. Per episode, the hand loop
embeds the support set and the queries once, in one pass (the queries
normalised with the support set's batch-norm statistics, as
``handwritten_maml.features`` does), puts a zero or prototype head on the
support embeddings, takes ``inner_steps`` gradient steps of rate
``INNER_LR`` on the head alone, and differentiates the query cross-entropy of
the adapted head into the encoder: through the inner steps (second order)
unless ``first_order``. ``handwritten_anil_autograd.py`` is the same loop with
``torch.autograd.grad(..., create_graph=True)`` instead of ``torch.func``.
``gradient_speed.py`` and ``training_speed.py --methods anil`` time them.
"""

from functools import partial

import handwritten_maml
import numpy as np
import torch
from handwritten_maml import HEAD_INIT, INNER_LR, INNER_STEPS, META_BATCH, SHAPE, features
from torch.func import grad
from torch.nn import functional as F

from skfewshot._torch_utils import channels_last
from skfewshot.meta import ANILLearner
from skfewshot.model_selection import EpisodeSampler
from skfewshot.nn import Conv4

__all__ = [  # SHAPE is read by training_speed.py
    "SHAPE",
    "func_gradients",
    "handwritten_loop",
    "head_from",
    "head_loss",
    "learner",
]

FIRST_ORDER = False


def head_from(z, labels, n_way, head_init):
    """The episode's head on the support embeddings ``z``: zero, or from the class means."""
    if head_init == "zero":
        return {"head.weight": z.new_zeros(n_way, z.shape[1]), "head.bias": z.new_zeros(n_way)}
    means = torch.zeros(n_way, z.shape[1]).index_add(0, labels, z) / torch.bincount(labels)[:, None]
    return {"head.weight": 2 * means, "head.bias": -(means * means).sum(1)}


def head_loss(head, z, labels):
    """The support cross-entropy of the head ``{"head.weight", "head.bias"}`` on embeddings."""
    return F.cross_entropy(F.linear(z, head["head.weight"], head["head.bias"]), labels)


def func_gradients(head, z, labels, first_order):
    """The head's inner gradients with ``torch.func.grad`` (the embeddings held fixed)."""
    if first_order:
        head, z = {k: v.detach() for k, v in head.items()}, z.detach()
    return grad(head_loss)(head, z, labels)


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
    optimizer = optimizer(meta_params.values(), lr=1e-3)
    sampler = EpisodeSampler(y, n_way, n_shot, n_query)
    rng = np.random.RandomState(episode_seed)
    X = torch.from_numpy(X)
    for start in range(0, n_episodes, meta_batch_size):
        optimizer.zero_grad()
        batch = min(meta_batch_size, n_episodes - start)
        for _ in range(batch):
            s, q, s_labels, q_labels = sampler.sample(rng)
            s_labels = torch.from_numpy(s_labels)
            # One pass over the episode: support embeddings for the inner loop, queries
            # normalised with the support set's statistics for the outer loss.
            z = features(meta_params, X[torch.from_numpy(np.concatenate([s, q]))], len(s))
            z_support, z_query = z[: len(s)], z[len(s) :]
            head = head_from(z_support, s_labels, n_way, head_init)
            for _ in range(inner_steps):
                grads = gradients(head, z_support, s_labels, first_order)
                head = {k: v - INNER_LR * grads[k] for k, v in head.items()}
            logits = F.linear(z_query, head["head.weight"], head["head.bias"])
            (F.cross_entropy(logits, torch.from_numpy(q_labels)) / batch).backward()
        optimizer.step()
    return model


learner = partial(handwritten_maml.learner, learner_class=ANILLearner)
