"""SNAIL: a minimal hand-written PyTorch training loop, and the skfewshot learner.

Both meta-train the same Conv4 encoder and SNAIL network (the library's
:class:`~skfewshot.nn.SNAIL` blocks, the paper's Omniglot architecture) from
the same initial weights on the same episodes, with the same label slots,
the same reading order of the support set, the same loss and the same
meta-optimizer; ``training_speed.py --methods snail`` times them side by
side. The hand loop builds the sequences itself: each episode's support and
query images are embedded together (batch norm sees the whole episode), the
support set is read round-robin over the classes, each class's samples by
their projection on a fixed random direction (the order the learner reads
in), as (embedding, one-hot label) pairs, each query as one more position
with a zero label; the loss is the cross-entropy of the queries' outputs.

Options of both loops (``--option NAME=VALUE``): ``meta_batch_size``,
``max_ways``, ``shuffle_labels`` (0 or 1: each training episode's classes in
a random subset of the ``max_ways`` label slots, drawn from the episodes'
random stream after the meta-batch's episodes, as the learner draws them),
``filters`` and ``dense_blocks`` (the TC blocks), and, from Python,
``optimizer`` (a ``torch.optim`` class; the tests pass plain SGD) and ``lr``.
"""

import numpy as np
import torch
from torch.nn import functional as F

from skfewshot._torch_utils import channels_last
from skfewshot.meta import SNAILLearner
from skfewshot.model_selection import EpisodeSampler
from skfewshot.nn import SNAIL, Conv4

SHAPE = (20, 5, 5)  # n_way, n_shot, n_query of the timed episodes: the learner's defaults
META_BATCH = 1  # the learner's default
MAX_WAYS = 20
SHUFFLE_LABELS = True
FILTERS = 128
DENSE_BLOCKS = 7
LR = 1e-3
ORDER_SEED = 0  # the seed of the direction the support samples are ordered by


def reading_order(z, labels, n_way, n_shot, direction):
    """Round-robin over the classes (in label order), each class's samples by key."""
    key = (z.detach() * direction).sum(1)
    order = torch.argsort(key, stable=True)
    order = order[torch.argsort(labels[order], stable=True)]  # by label, then by key
    return order.view(n_way, n_shot).t().reshape(-1)  # one of each class, then again


def handwritten_loop(
    X,
    y,
    n_episodes,
    seed,
    n_way,
    n_shot,
    n_query,
    meta_batch_size=META_BATCH,
    max_ways=MAX_WAYS,
    shuffle_labels=SHUFFLE_LABELS,
    filters=FILTERS,
    dense_blocks=DENSE_BLOCKS,
    optimizer=torch.optim.Adam,
    lr=LR,
):
    """The loop a practitioner writes by hand. Returns ``(encoder, snail)``."""
    # The seeds the learner derives from random_state=seed: same episodes, same weights.
    episode_seed, _, torch_seed = np.random.RandomState(seed).randint(2**31 - 1, size=3)
    torch.manual_seed(int(torch_seed))
    encoder = channels_last(Conv4())  # built first, as the learner builds it
    snail = SNAIL(max_ways=max_ways, filters=filters, dense_blocks=dense_blocks)
    optimizer = optimizer([*encoder.parameters(), *snail.parameters()], lr=lr)
    direction = torch.randn(
        snail.embedding_dim, generator=torch.Generator().manual_seed(ORDER_SEED)
    )
    sampler = EpisodeSampler(y, n_way, n_shot, n_query)
    rng = np.random.RandomState(episode_seed)
    X = torch.from_numpy(X)
    zeros = torch.zeros(1, max_ways)
    for start in range(0, n_episodes, meta_batch_size):
        batch = min(meta_batch_size, n_episodes - start)
        episodes = [sampler.sample(rng) for _ in range(batch)]
        optimizer.zero_grad()
        for s, q, s_labels, q_labels in episodes:
            slots = rng.choice(max_ways, n_way, replace=False) if shuffle_labels else None
            labels = torch.from_numpy(s_labels if slots is None else slots[s_labels])
            z = encoder(X[torch.from_numpy(np.concatenate([s, q]))])
            support, query = z[: len(s)], z[len(s) :]
            order = reading_order(support, labels, n_way, n_shot, direction)
            sequence = torch.cat([support[order], F.one_hot(labels[order], max_ways).float()], 1)
            queries = torch.cat([query, zeros.expand(len(query), -1)], 1)
            for block in snail.blocks:
                sequence, queries = block(sequence, queries)
            logits = snail.readout(queries)
            logits = logits[:, :n_way] if slots is None else logits[:, torch.from_numpy(slots)]
            (F.cross_entropy(logits, torch.from_numpy(q_labels)) / batch).backward()
        optimizer.step()
    return encoder, snail


def learner(
    n_episodes,
    seed,
    n_way,
    n_shot,
    n_query,
    meta_batch_size=META_BATCH,
    max_ways=MAX_WAYS,
    shuffle_labels=SHUFFLE_LABELS,
    filters=FILTERS,
    dense_blocks=DENSE_BLOCKS,
    optimizer=torch.optim.Adam,
    lr=LR,
):
    return SNAILLearner(
        Conv4,
        n_way=n_way,
        n_shot=n_shot,
        n_query=n_query,
        meta_batch_size=meta_batch_size,
        max_ways=max_ways,
        shuffle_labels=bool(shuffle_labels),
        comparator__filters=filters,
        comparator__dense_blocks=dense_blocks,
        optimizer=optimizer,
        lr=lr,
        max_epochs=1,
        episodes_per_epoch=n_episodes,
        random_state=seed,
        verbose=0,
    )
