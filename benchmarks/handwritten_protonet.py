"""ProtoNet: a minimal hand-written PyTorch training loop, and the skfewshot learner.

Both train the same Conv4 from the same initial weights on the same episodes;
``training_speed.py`` times them side by side.
"""

import itertools
import time

import numpy as np
import torch

from skfewshot._torch_utils import channels_last
from skfewshot.meta import PrototypicalLearner
from skfewshot.model_selection import EpisodeSampler
from skfewshot.nn import Conv4


def handwritten_loop(
    X, y, n_episodes, seed, n_way, n_shot, n_query, layout="channels_last", seconds=None
):
    """The loop a practitioner writes by hand: no framework.

    With ``seconds``, it stops after the first episode that ends with that
    much wall-clock time spent (``n_episodes`` None: no other limit).
    """
    torch.manual_seed(seed)
    model = Conv4()
    if layout == "channels_last":  # the memory layout skfewshot uses for convolutions
        channels_last(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    sampler = EpisodeSampler(y, n_way, n_shot, n_query)
    rng = np.random.RandomState(seed)
    X = torch.from_numpy(X)
    model.train()
    start = time.perf_counter()
    for _ in itertools.count() if n_episodes is None else range(n_episodes):
        if seconds is not None and time.perf_counter() - start >= seconds:
            break
        support, query, _, query_labels = sampler.sample(rng)
        z = model(X[torch.from_numpy(np.concatenate([support, query]))])
        prototypes = z[: len(support)].view(n_way, n_shot, -1).mean(1)
        logits = -torch.cdist(z[len(support) :], prototypes).pow(2)
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(query_labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def learner(n_episodes, seed, n_way, n_shot, n_query):
    return PrototypicalLearner(
        Conv4,
        n_way=n_way,
        n_shot=n_shot,
        n_query=n_query,
        max_epochs=1,
        episodes_per_epoch=n_episodes,
        random_state=seed,
        verbose=0,
    )
