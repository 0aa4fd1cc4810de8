"""ProtoNet speed: skfewshot against a minimal hand-written PyTorch loop.

Two measurements, written as JSON:

1. Meta-training throughput (episodes/s) of ``ProtoNetLearner`` and of a
   minimal hand-written loop, on the same Conv4, the same initial weights and
   the same 20-way 5-shot 5-query Omniglot episodes, run in turns in one
   process so that all see the same machine state. ``ratio`` is the median
   over rounds of skfewshot's speed over the plain loop's (target >= 0.95);
   ``ratio_same_layout`` compares with the hand-written loop given the
   channels-last convolution layout skfewshot uses, i.e. the framework's
   own overhead.
2. 600-episode evaluations with ``cross_val_score`` in each protocol setting
   (5-/20-way, 1-/5-shot, 15 queries): a ``PrototypicalClassifier`` that
   re-embeds each episode's images, against a ``PrototypicalClassifier`` on
   embeddings precomputed once by ``EmbeddingTransformer``. Target: >= 10x
   faster, identical scores. The one-time embedding is timed apart.

Run::

    SKFEWSHOT_DATA=../shared/data python benchmarks/protonet_speed.py --out benchmarks/results/protonet_speed.json
"""

import argparse
import json
import platform
import time

import numpy as np
import torch
from sklearn.model_selection import cross_val_score

import skfewshot
from skfewshot import EmbeddingTransformer, PrototypicalClassifier
from skfewshot.datasets import fetch_omniglot, rotate_classes
from skfewshot.meta import ProtoNetLearner
from skfewshot.model_selection import EpisodeSampler, EpisodicSplit
from skfewshot.nn import Conv4


def handwritten_loop(X, y, n_episodes, seed, n_way=20, n_shot=5, n_query=5,
                     channels_last=False):
    """The minimal loop a practitioner writes by hand: no framework."""
    torch.manual_seed(seed)
    model = Conv4()
    if channels_last:  # the memory layout skfewshot uses for convolutions
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    sampler = EpisodeSampler(y, n_way, n_shot, n_query)
    rng = np.random.RandomState(seed)
    X = torch.from_numpy(X)
    model.train()
    for _ in range(n_episodes):
        support, query, _, query_labels = sampler.sample(rng)
        z = model(X[torch.from_numpy(np.concatenate([support, query]))])
        prototypes = z[: len(support)].view(n_way, n_shot, -1).mean(1)
        logits = -torch.cdist(z[len(support):], prototypes).pow(2)
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(query_labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def skfewshot_loop(X, y, n_episodes, seed):
    learner = ProtoNetLearner(Conv4, n_way=20, n_shot=5, n_query=5, max_epochs=1,
                              episodes_per_epoch=n_episodes, random_state=seed, verbose=0)
    return learner.fit(X, y)


def handwritten_channels_last(X, y, n_episodes, seed):
    return handwritten_loop(X, y, n_episodes, seed, channels_last=True)


LOOPS = {
    "handwritten": handwritten_loop,
    "handwritten_channels_last": handwritten_channels_last,
    "skfewshot": skfewshot_loop,
}


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def training_throughput(X, y, episodes, rounds):
    for fn in LOOPS.values():  # warm-up
        timed(fn, X, y, 5, 0)
    seconds = {name: [] for name in LOOPS}
    for r in range(rounds):  # rotate the order so that no loop always runs first
        names = list(LOOPS)[r % len(LOOPS):] + list(LOOPS)[: r % len(LOOPS)]
        for name in names:
            seconds[name].append(timed(LOOPS[name], X, y, episodes, r))
    rate = {name: episodes * rounds / sum(s) for name, s in seconds.items()}

    def paired_ratio(baseline):  # median over rounds of the in-round speed ratio
        ratios = np.divide(seconds[baseline], seconds["skfewshot"])
        return float(np.median(ratios))

    return {
        "episodes": "20-way 5-shot 5-query, Conv4, 28x28",
        "episodes_per_round": episodes,
        "rounds": rounds,
        "seconds": seconds,
        "episodes_per_s": rate,
        "ratio": paired_ratio("handwritten"),
        "ratio_same_layout": paired_ratio("handwritten_channels_last"),
        "target_ratio": 0.95,
    }


def evaluation_speed(X, y, n_episodes, settings):
    torch.manual_seed(0)
    encoder = Conv4().eval()
    start = time.perf_counter()
    Z = EmbeddingTransformer(encoder).fit_transform(X)
    embed_s = time.perf_counter() - start
    rows = []
    for n_way, n_shot in settings:
        cv = EpisodicSplit(n_way, n_shot, n_query=15, n_episodes=n_episodes, random_state=0)
        start = time.perf_counter()
        direct = cross_val_score(PrototypicalClassifier(encoder), X, y, cv=cv)
        direct_s = time.perf_counter() - start
        start = time.perf_counter()
        precomputed = cross_val_score(PrototypicalClassifier(), Z, y, cv=cv)
        precomputed_s = time.perf_counter() - start
        rows.append({
            "n_way": n_way,
            "n_shot": n_shot,
            "reembed_each_episode_s": direct_s,
            "precomputed_embeddings_s": precomputed_s,
            "speedup": direct_s / precomputed_s,
            "speedup_including_embedding": direct_s / (embed_s + precomputed_s),
            "identical_scores": bool(np.array_equal(direct, precomputed)),
            "mean_accuracy": float(precomputed.mean()),
        })
    return {
        "episodes": "15 queries per class, Conv4 (untrained), 28x28, Omniglot evaluation",
        "n_episodes": n_episodes,
        "embed_once_s": embed_s,
        "n_samples_embedded_once": len(X),
        "target_speedup": 10,
        "settings": rows,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--episodes", type=int, default=25, help="training episodes per round")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--eval-episodes", type=int, default=600)
    parser.add_argument("--out", default=None, help="write the JSON here too")
    args = parser.parse_args()

    X, y = rotate_classes(*fetch_omniglot("background", data_home=args.data_home,
                                          return_X_y=True))
    X_eval, y_eval = fetch_omniglot("evaluation", data_home=args.data_home, return_X_y=True)
    result = {
        "benchmark": "protonet_speed",
        "skfewshot": skfewshot.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.platform(),
        "training": training_throughput(X, y, args.episodes, args.rounds),
        "evaluation": evaluation_speed(X_eval, y_eval, args.eval_episodes,
                                       [(5, 1), (5, 5), (20, 1), (20, 5)]),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
