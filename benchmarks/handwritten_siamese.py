"""Siamese networks: a minimal hand-written PyTorch training loop, and the skfewshot learner.

Both train the same Conv4 branch and weighted-L1 kernel head with the same
loss, Koch et al.'s pairwise binary cross-entropy on the episodes' (query,
support sample) pairs, with same and different pairs balanced
(``pos_weight = n_way - 1``); with several shots, on each class's
closest pair (the max-aggregated logit). The episodes come from the same
sampler; ``training_speed.py`` times the two side by side.
"""

import numpy as np
import torch

from skfewshot._torch_utils import channels_last
from skfewshot.meta import SiameseLearner
from skfewshot.model_selection import EpisodeSampler
from skfewshot.nn import Conv4


def handwritten_loop(X, y, n_episodes, seed, n_way, n_shot, n_query):
    """The loop a practitioner writes by hand: no framework."""
    torch.manual_seed(seed)
    encoder = channels_last(Conv4())  # the memory layout skfewshot uses for convolutions
    head = torch.nn.Linear(64, 1)  # k(x, x') = sigmoid(w . |f(x) - f(x')| + b)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-3)
    sampler = EpisodeSampler(y, n_way, n_shot, n_query)
    rng = np.random.RandomState(seed)
    X = torch.from_numpy(X)
    pos_weight = torch.tensor(float(n_way - 1))
    encoder.train()
    for _ in range(n_episodes):
        support, query, _, query_labels = sampler.sample(rng)
        z = encoder(X[torch.from_numpy(np.concatenate([support, query]))])
        z_support, z_query = z[: len(support)], z[len(support) :]
        logits = head((z_query[:, None, :] - z_support[None, :, :]).abs()).squeeze(-1)
        logits = logits.view(len(query), n_way, n_shot).amax(2)  # support grouped by class
        target = torch.nn.functional.one_hot(torch.from_numpy(query_labels), n_way).float()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, target, pos_weight=pos_weight
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return encoder, head


def learner(n_episodes, seed, n_way, n_shot, n_query):
    return SiameseLearner(
        Conv4,
        n_way=n_way,
        n_shot=n_shot,
        n_query=n_query,
        max_epochs=1,
        episodes_per_epoch=n_episodes,
        random_state=seed,
        verbose=0,
    )
