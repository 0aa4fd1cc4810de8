"""Accuracy of a saved gradient-based classifier over a grid of its test-time parameters.

Loads a classifier saved by ``skfewshot benchmark --output`` (a
``MAMLClassifier``, ``ReptileClassifier``, ...), and evaluates it on the
Omniglot evaluation alphabets for every combination of ``--grid`` values
(e.g. the number of adaptation steps ``inner_steps`` and their rate
``inner_lr``), on the same episodes for every combination. An
embed-then-compare classifier (e.g. a ``PrototypicalClassifier``) has the
data embedded once, unless the grid changes its encoder. Besides the mean
query accuracy and its 95% interval it reports the support-set accuracy
after adaptation and the share of episodes under 50% query accuracy: a
failing adaptation (diverging or stalled) shows in these first.

Run::

    SKFEWSHOT_DATA=../shared/data python benchmarks/adaptation_steps.py \\
        benchmarks/results/maml.joblib --grid inner_steps=1,2,5,10 --shots 1,5 \\
        --out benchmarks/results/maml_steps.json
"""

import argparse
import ast
import json
import time

import joblib
import numpy as np
from sklearn.model_selection import ParameterGrid

from skfewshot.datasets import fetch_omniglot
from skfewshot.model_selection import evaluate_episodes
from skfewshot.model_selection._evaluate import _embedded_once


def _value(text):
    """A Python literal, or else the text itself (e.g. a distance's name)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _grid(text):
    name, _, values = text.partition("=")
    return name, [_value(v) for v in values.split(",")]


def sweep(clf, X, y, grid, ways, shots, n_episodes, random_state):
    if "encoder" not in grid:  # a fixed encoder (of an embed-then-compare classifier): embed once
        clf, X = _embedded_once(clf, X)
    rows = []
    for n_way in ways:
        for n_shot in shots:
            for params in ParameterGrid(grid):
                start = time.perf_counter()
                result = evaluate_episodes(
                    clf.set_params(**params),
                    X,
                    y,
                    n_way=n_way,
                    n_shot=n_shot,
                    n_query=15,
                    n_episodes=n_episodes,
                    random_state=random_state,
                    return_support_score=True,
                )
                query = result["scores"]
                rows.append(
                    {
                        "n_way": n_way,
                        "n_shot": n_shot,
                        **params,
                        "accuracy": 100 * result["accuracy"],
                        "ci95": 100 * result["ci95"],
                        "support_accuracy": 100 * float(result["support_scores"].mean()),
                        "episodes_under_50": float(np.mean(query < 0.5)),
                        "worst_episode": 100 * float(query.min()),
                        "seconds": time.perf_counter() - start,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a classifier saved with joblib")
    parser.add_argument(
        "--grid",
        type=_grid,
        action="append",
        default=[],
        metavar="NAME=V1,V2",
        help="values of a classifier parameter (repeatable; default: inner_steps=1,2,5,10)",
    )
    parser.add_argument("--ways", default="5")
    parser.add_argument("--shots", default="1,5")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    grid = dict(args.grid) or {"inner_steps": [1, 2, 5, 10]}
    clf = joblib.load(args.model)
    X, y = fetch_omniglot("evaluation", data_home=args.data_home, return_X_y=True)
    rows = sweep(
        clf,
        X,
        y,
        grid,
        [int(w) for w in args.ways.split(",")],
        [int(s) for s in args.shots.split(",")],
        args.episodes,
        args.random_state,
    )
    result = {
        "benchmark": "adaptation_steps",
        "model": args.model,
        "classifier": repr(clf),
        "episodes": args.episodes,
        "results": rows,
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
