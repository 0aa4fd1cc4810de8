"""Relation Networks: a minimal hand-written PyTorch loop and the skfewshot learner.

``handwritten_loop`` meta-trains the same model as
:class:`skfewshot.meta.RelationLearner` with plain torch: the same
embedding (``Conv4(flatten=False, pooled_blocks=2)``, 64x7x7 maps of 28x28
images), the same relation module (two conv-BN-ReLU-max-pool blocks on the
128-channel (class map, query map) concatenation, FC 8 with ReLU, FC 1 with
sigmoid, class map = sum of the shots' maps), the same loss (MSE against
one-hot targets), Adam at 1e-3, the same episodes (``EpisodeSampler`` drawn
from ``np.random.RandomState(seed)``) and the channels-last convolution
layout skfewshot uses, so that timing it against ``learner(...).fit`` isolates
the framework's overhead.

By default the hand loop computes the first relation convolution the way
skfewshot does, on the class maps and the query maps separately, added per
pair (the same function: a convolution of a channel concatenation is the
sum of the convolutions of its parts). ``concat=True`` convolves each
concatenated pair instead, as the paper's reference code does; timing both
shows what that saves.

Run a quick side-by-side timing::

    SKFEWSHOT_DATA=../shared/data python benchmarks/handwritten_relation.py --episodes 10
"""

import argparse
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from skfewshot.meta import RelationLearner
from skfewshot.model_selection import EpisodeSampler
from skfewshot.nn import Conv4


class HandRelation(nn.Module):
    """The paper's relation module for 7x7 maps (7 -> 3 -> 1 after the two poolings)."""

    def __init__(self, channels=64, hidden=64, features=8):
        super().__init__()
        self.channels = channels
        self.conv1 = nn.Conv2d(2 * channels, hidden, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.fc1 = nn.Linear(hidden, features)
        self.fc2 = nn.Linear(features, 1)

    def forward(self, class_maps, query_maps, concat=False):
        n_query, n_way = len(query_maps), len(class_maps)
        if concat:
            pairs = torch.cat(
                [
                    class_maps[None].expand(n_query, -1, -1, -1, -1),
                    query_maps[:, None].expand(-1, n_way, -1, -1, -1),
                ],
                2,
            )
            x = self.conv1(pairs.flatten(0, 1))
        else:
            c = self.channels
            a = F.conv2d(class_maps, self.conv1.weight[:, :c], self.conv1.bias, padding=1)
            b = F.conv2d(query_maps, self.conv1.weight[:, c:], None, padding=1)
            x = (b[:, None] + a[None]).flatten(0, 1)
        x = F.max_pool2d(F.relu(self.bn1(x)), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return torch.sigmoid(self.fc2(x)).view(n_query, n_way)


def handwritten_loop(X, y, n_episodes, seed, n_way=20, n_shot=5, n_query=5, *, concat=False):
    """Meta-train Relation Networks with plain torch; returns the trained modules.

    Parameters
    ----------
    X : ndarray of shape (n_samples, 1, 28, 28), float32
        Base images.
    y : ndarray of shape (n_samples,)
        Their classes.
    n_episodes, seed, n_way, n_shot, n_query : int
        Training episodes, drawn by ``EpisodeSampler`` from
        ``np.random.RandomState(seed)``; ``seed`` also seeds the weights.
    concat : bool, default=False
        Convolve each concatenated (class, query) pair (the paper's code)
        rather than the class and query maps separately (skfewshot's way).

    Returns
    -------
    torch.nn.ModuleDict
        ``{"encoder": ..., "comparator": ...}``, like ``learner.module_``.
    """
    torch.manual_seed(seed)
    model = nn.ModuleDict(
        {
            "encoder": Conv4(flatten=False, pooled_blocks=2),
            "comparator": HandRelation(),
        }
    ).to(memory_format=torch.channels_last)  # skfewshot's convolution layout
    encoder, relation = model["encoder"], model["comparator"]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    sampler = EpisodeSampler(y, n_way, n_shot, n_query)
    rng = np.random.RandomState(seed)
    X = torch.from_numpy(X)
    model.train()
    for _ in range(n_episodes):
        support, query, _, query_labels = sampler.sample(rng)
        z = encoder(X[torch.from_numpy(np.concatenate([support, query]))])
        # The sampler groups the support by class, in label order.
        class_maps = z[: len(support)].view(n_way, n_shot, *z.shape[1:]).sum(1)
        scores = relation(class_maps, z[len(support) :], concat=concat)
        target = F.one_hot(torch.from_numpy(query_labels), n_way).float()
        loss = F.mse_loss(scores, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def learner(n_episodes, seed, n_way=20, n_shot=5, n_query=5):
    """The skfewshot learner of the same model, for ``n_episodes`` episodes in one epoch."""
    return RelationLearner(
        n_way=n_way,
        n_shot=n_shot,
        n_query=n_query,
        max_epochs=1,
        episodes_per_epoch=n_episodes,
        random_state=seed,
        verbose=0,
    )


def main(argv=None):
    from skfewshot.datasets import fetch_omniglot, rotate_classes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--n-query", type=int, default=5)
    args = parser.parse_args(argv)
    X, y = rotate_classes(*fetch_omniglot("background", return_X_y=True))
    shape = dict(n_way=20, n_shot=5, n_query=args.n_query)
    runs = {
        "handwritten": lambda: handwritten_loop(X, y, args.episodes, 0, **shape),
        "handwritten_concat": lambda: handwritten_loop(
            X, y, args.episodes, 0, concat=True, **shape
        ),
        "skfewshot": lambda: learner(args.episodes, 0, **shape).fit(X, y),
    }
    for name, run in runs.items():
        start = time.perf_counter()
        run()
        seconds = (time.perf_counter() - start) / args.episodes
        print(f"{name:>20}: {seconds:.3f} s/episode")


if __name__ == "__main__":
    main()
