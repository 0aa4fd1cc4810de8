"""Few-shot evaluation on precomputed embeddings against re-embedding each episode.

600-episode evaluations with ``cross_val_score`` in each protocol setting
(5-/20-way, 1-/5-shot, 15 queries): a ``PrototypicalClassifier`` that
re-embeds each episode's images, against a ``PrototypicalClassifier`` on
embeddings precomputed once by ``EmbeddingTransformer``. Target: >= 10x
faster, identical scores. The one-time embedding is timed apart.

Run::

    SKFEWSHOT_DATA=../shared/data python benchmarks/evaluation_speed.py \\
        --out benchmarks/results/evaluation_speed.json
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
from skfewshot.datasets import fetch_omniglot
from skfewshot.model_selection import EpisodicSplit
from skfewshot.nn import Conv4


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
        rows.append(
            {
                "n_way": n_way,
                "n_shot": n_shot,
                "reembed_each_episode_s": direct_s,
                "precomputed_embeddings_s": precomputed_s,
                "speedup": direct_s / precomputed_s,
                "speedup_including_embedding": direct_s / (embed_s + precomputed_s),
                "identical_scores": bool(np.array_equal(direct, precomputed)),
                "mean_accuracy": float(precomputed.mean()),
            }
        )
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
    parser.add_argument("--eval-episodes", type=int, default=600)
    parser.add_argument("--out", default=None, help="write the JSON here too")
    args = parser.parse_args()

    X_eval, y_eval = fetch_omniglot("evaluation", data_home=args.data_home, return_X_y=True)
    result = {
        "benchmark": "evaluation_speed",
        "skfewshot": skfewshot.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.platform(),
        "evaluation": evaluation_speed(
            X_eval, y_eval, args.eval_episodes, [(5, 1), (5, 5), (20, 1), (20, 5)]
        ),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
