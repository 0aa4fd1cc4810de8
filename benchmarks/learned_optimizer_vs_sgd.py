"""Does a learned optimizer beat gradient descent with a tuned rate, on held-out classes?

A :class:`~skfewshot.meta.LearnedOptimizerLearner` (``--rule``) is
meta-trained on the Lake protocol's base classes without a fifth of the
background characters (the validation classes, held out as ``skfewshot
benchmark --tune`` holds them out): first ``--imitation-episodes`` episodes
of the imitation phase (the rule learns to reproduce ``-alpha * grad``,
``alpha = imitation_inner_lr``), then meta-training up to ``--episodes``
in all, with the CLI's recipe (Adam at ``lr``, cosine annealing over the
run). Its state is kept at two points:

* ``imitation``: after the imitation phase (the encoder is still its random
  initialisation: the imitation trains the rule alone);
* ``meta-trained``: at the end.

At each point, on the evaluation alphabets (``--settings``, the same
``--test-episodes`` episodes for every classifier), from the same
initialisation (the learner's ``encoder_``) and with the same number of
steps (``inner_steps``):

* ``learned``: the learned rule as meta-trained (``learner.to_classifier()``);
* ``learned tuned scale``: the learned rule with its steps scaled by
  ``lr_scale``, chosen per setting among ``--scales`` on the validation
  classes, as the rate of gradient descent is;
* ``sgd imitated rate``: gradient descent at the rate the rule imitated
  (:class:`~skfewshot.MAMLClassifier`, ``inner_lr = imitation_inner_lr``);
* ``sgd tuned rate``: gradient descent with its rate chosen per setting
  among ``--rates`` on ``--tune-episodes`` episodes of the validation
  classes (:func:`~skfewshot.model_selection.tune_per_setting`).

``difference`` is the learned rule with its tuned scale minus gradient
descent with its tuned rate, the mean of per-episode differences (paired:
the same episodes) with its 95% interval. ``--save FILE`` keeps the two
states (joblib); ``--load FILE`` evaluates them again without training;
``--points`` evaluates only some of them.

Run (on a 2-core machine, training takes 22 minutes for the meta-learner
LSTM and 31 for the LSTM optimizer; evaluating one point of the LSTM
optimizer took 35)::

    SKFEWSHOT_DATA=../shared/data python benchmarks/learned_optimizer_vs_sgd.py \\
        --rule meta-lstm --out benchmarks/results/learned_vs_sgd_meta-lstm.json
"""

import argparse
import copy
import json
import os
import platform
import time

import joblib
import numpy as np
from skorch.callbacks import Callback, LRScheduler

from skfewshot._cli._params import LEARNED_RULES


def split(data_home, random_state):
    """Base classes without the validation classes, the validation classes, the test classes."""
    from skfewshot._cli._benchmark import load_data

    args = argparse.Namespace(
        dataset="omniglot",
        protocol="lake",
        data_home=data_home,
        image_size=28,
        no_download=False,
        random_state=random_state,
        validation=True,
    )
    X_base, y_base, X_val, y_val, _ = load_data(args)
    args.validation = False
    X_test, y_test = load_data(args, base=False)[2:4]
    return X_base, y_base, X_val, y_val, X_test, y_test


def compare(snapshot, args, X_val, y_val, X_test, y_test, settings):
    """The learned rule and gradient descent from the snapshot's initialisation."""
    from skfewshot import LearnedOptimizerClassifier, MAMLClassifier
    from skfewshot.metrics import mean_confidence_interval
    from skfewshot.model_selection import evaluate_episodes, tune_per_setting

    encoder, rule = snapshot
    common = {"inner_steps": args.inner_steps}
    tuning = {
        "settings": settings,
        "n_episodes": args.tune_episodes,
        "random_state": args.random_state,
    }
    tuned = tune_per_setting(
        MAMLClassifier(encoder, **common), X_val, y_val, {"inner_lr": args.rates}, **tuning
    )
    tuned_scale = tune_per_setting(
        LearnedOptimizerClassifier(encoder, rule, **common),
        X_val,
        y_val,
        {"lr_scale": args.scales},
        **tuning,
    )
    rows = []
    for n_way, n_shot in settings:
        scale = tuned_scale[n_way, n_shot]["params"]["lr_scale"]
        classifiers = {
            "learned": LearnedOptimizerClassifier(encoder, rule, **common),
            "learned tuned scale": LearnedOptimizerClassifier(
                encoder, rule, lr_scale=scale, **common
            ),
            "sgd imitated rate": MAMLClassifier(
                encoder, inner_lr=args.imitation_inner_lr, **common
            ),
            "sgd tuned rate": MAMLClassifier(
                encoder, inner_lr=tuned[n_way, n_shot]["params"]["inner_lr"], **common
            ),
        }
        row = {
            "n_way": n_way,
            "n_shot": n_shot,
            "tuned_rate": tuned[n_way, n_shot]["params"]["inner_lr"],
            "tuned_rate_validation_accuracy": 100 * tuned[n_way, n_shot]["accuracy"],
            "tuned_scale": scale,
            "tuned_scale_validation_accuracy": 100 * tuned_scale[n_way, n_shot]["accuracy"],
        }
        scores = {}
        for name, classifier in classifiers.items():
            result = evaluate_episodes(
                classifier,
                X_test,
                y_test,
                n_way=n_way,
                n_shot=n_shot,
                n_episodes=args.test_episodes,
                random_state=args.random_state,
            )
            scores[name] = np.asarray(result["scores"])
            row[name] = {"accuracy": 100 * result["accuracy"], "ci95": 100 * result["ci95"]}
        mean, half_width = mean_confidence_interval(
            scores["learned tuned scale"] - scores["sgd tuned rate"]
        )
        row["difference"] = {"accuracy": 100 * mean, "ci95": 100 * half_width}
        rows.append(row)
        print(
            f"  {n_way}-way {n_shot}-shot: learned {row['learned']['accuracy']:.2f}, "
            f"scaled by {scale} (tuned) {row['learned tuned scale']['accuracy']:.2f}, "
            f"sgd at {args.imitation_inner_lr} {row['sgd imitated rate']['accuracy']:.2f}, "
            f"sgd at {row['tuned_rate']} (tuned) {row['sgd tuned rate']['accuracy']:.2f}; "
            f"difference {100 * mean:+.2f} +- {100 * half_width:.2f}",
            flush=True,
        )
    return rows


class _Snapshot(Callback):
    """Keeps copies of the learner's encoder and rule after epoch ``epoch``."""

    def __init__(self, epoch):
        self.epoch = epoch
        self.state = None

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            self.state = (copy.deepcopy(net.encoder_), copy.deepcopy(net.rule_))


def train(args, X_base, y_base):
    """Meta-train; the (encoder, rule) states after the imitation and at the end."""
    import skfewshot.nn
    from skfewshot.meta import LearnedOptimizerLearner

    n_epochs = args.episodes // args.episodes_per_epoch
    snapshot = _Snapshot(args.imitation_episodes // args.episodes_per_epoch)
    learner = LearnedOptimizerLearner(
        rule=getattr(skfewshot.nn, LEARNED_RULES[args.rule]),
        inner_steps=args.inner_steps,
        imitation_episodes=args.imitation_episodes,
        imitation_inner_lr=args.imitation_inner_lr,
        episodes_per_epoch=args.episodes_per_epoch,
        max_epochs=n_epochs,
        callbacks=[LRScheduler("CosineAnnealingLR", T_max=n_epochs), snapshot],
        random_state=args.random_state,
        verbose=0,
    )
    start = time.perf_counter()
    learner.fit(X_base, y_base)
    minutes = (time.perf_counter() - start) / 60
    print(f"{args.rule}: meta-trained {args.episodes} episodes in {minutes:.1f} min", flush=True)
    points = {"meta-trained": (learner.encoder_, learner.rule_)}
    if snapshot.state is not None:
        points = {"imitation": snapshot.state, **points}
    return points, minutes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rule", default="meta-lstm", choices=sorted(LEARNED_RULES))
    parser.add_argument("--episodes", type=int, default=3000, help="meta-training, in all")
    parser.add_argument("--imitation-episodes", type=int, default=1000)
    parser.add_argument("--imitation-inner-lr", type=float, default=0.4)
    parser.add_argument("--inner-steps", type=int, default=5)
    parser.add_argument("--episodes-per-epoch", type=int, default=100)
    parser.add_argument("--settings", default="5x1,20x1", help="N-way x K-shot, comma-separated")
    parser.add_argument("--rates", default="0.0125,0.025,0.05,0.1,0.2,0.4,0.8")
    parser.add_argument("--scales", default="0.0625,0.125,0.25,0.5,1,2")
    parser.add_argument("--save", default=None, help="keep the states (joblib)")
    parser.add_argument("--load", default=None, help="evaluate saved states, no training")
    parser.add_argument(
        "--points", default=None, help="the states to evaluate, comma-separated (default: all)"
    )
    parser.add_argument("--tune-episodes", type=int, default=100)
    parser.add_argument("--test-episodes", type=int, default=300)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]
    args.scales = [float(r) for r in args.scales.split(",")]
    settings = [tuple(int(v) for v in s.split("x")) for s in args.settings.split(",")]
    if args.imitation_episodes % args.episodes_per_epoch or args.episodes % args.episodes_per_epoch:
        parser.error("--episodes and --imitation-episodes must be multiples of the epoch")

    chosen = args.points.split(",") if args.points else ["imitation", "meta-trained"]
    if set(chosen) - {"imitation", "meta-trained"}:  # before training, not after it
        parser.error(f"--points: the states are imitation and meta-trained; got {args.points}")
    if args.points and "imitation" in chosen and not args.load and not args.imitation_episodes:
        parser.error("--points imitation: --imitation-episodes 0 leaves no imitation state")

    X_base, y_base, X_val, y_val, X_test, y_test = split(args.data_home, args.random_state)
    if args.load:
        points, minutes = joblib.load(args.load)
    else:
        points, minutes = train(args, X_base, y_base)
    if args.save:
        joblib.dump((points, minutes), args.save)
    results = {}
    if args.points and set(chosen) - set(points):
        parser.error(f"--points imitation: {args.load} has no imitation state")
    for point in (p for p in chosen if p in points):
        state = points[point]
        print(f"{point}:", flush=True)
        results[point] = compare(state, args, X_val, y_val, X_test, y_test, settings)
    out = {
        "benchmark": "learned_optimizer_vs_sgd",
        "args": vars(args),
        "training_minutes": minutes,
        "n_validation_classes": int(len(np.unique(y_val))),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "results": results,
    }
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
