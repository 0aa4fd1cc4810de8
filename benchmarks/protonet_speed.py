"""ProtoNet speed: skfewshot against a minimal hand-written PyTorch loop.

Two measurements, written as JSON:

1. Meta-training throughput (episodes/s) of ``ProtoNetLearner`` and of a
   minimal hand-written loop, on the same Conv4, the same initial weights and
   the same 20-way 5-shot 5-query Omniglot episodes, run alternately in one
   process so that both see the same machine state. Target: ratio >= 0.95.
2. A 600-episode 5-way 1-shot evaluation with ``cross_val_score``: a
   ``PrototypicalClassifier`` that re-embeds each episode's images, against
   ``EmbeddingTransformer`` once plus a ``PrototypicalClassifier`` on the
   embeddings. Target: >= 10x faster, identical scores.

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


def handwritten_loop(X, y, n_episodes, seed, n_way=20, n_shot=5, n_query=5):
    """The minimal loop a practitioner writes by hand: no framework."""
    torch.manual_seed(seed)
    model = Conv4()
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


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def training_throughput(X, y, episodes, rounds):
    timed(handwritten_loop, X, y, 5, 0)  # warm-up both paths
    timed(skfewshot_loop, X, y, 5, 0)
    seconds = {"handwritten": [], "skfewshot": []}
    for r in range(rounds):
        order = ("handwritten", "skfewshot") if r % 2 == 0 else ("skfewshot", "handwritten")
        for name in order:
            fn = handwritten_loop if name == "handwritten" else skfewshot_loop
            seconds[name].append(timed(fn, X, y, episodes, r))
    rate = {name: episodes * rounds / sum(s) for name, s in seconds.items()}
    return {
        "episodes_per_round": episodes,
        "rounds": rounds,
        "seconds": seconds,
        "episodes_per_s": rate,
        "ratio": rate["skfewshot"] / rate["handwritten"],
        "target_ratio": 0.95,
    }


def evaluation_speed(X, y, n_episodes):
    torch.manual_seed(0)
    encoder = Conv4().eval()
    cv = EpisodicSplit(n_way=5, n_shot=1, n_query=15, n_episodes=n_episodes, random_state=0)
    start = time.perf_counter()
    direct = cross_val_score(PrototypicalClassifier(encoder), X, y, cv=cv)
    direct_s = time.perf_counter() - start
    start = time.perf_counter()
    Z = EmbeddingTransformer(encoder).fit_transform(X)
    precomputed = cross_val_score(PrototypicalClassifier(), Z, y, cv=cv)
    precomputed_s = time.perf_counter() - start
    return {
        "n_episodes": n_episodes,
        "n_samples_embedded_once": len(X),
        "reembed_each_episode_s": direct_s,
        "precomputed_embeddings_s": precomputed_s,
        "speedup": direct_s / precomputed_s,
        "target_speedup": 10,
        "identical_scores": bool(np.array_equal(direct, precomputed)),
        "mean_accuracy": float(precomputed.mean()),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--episodes", type=int, default=40, help="training episodes per round")
    parser.add_argument("--rounds", type=int, default=4)
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
        "evaluation": evaluation_speed(X_eval, y_eval, args.eval_episodes),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
