"""Meta-training speed of the learned optimizers: this checkout against an earlier revision.

``LearnedOptimizerLearner`` with each rule (``--rules``: ``lstm-optimizer``,
Andrychowicz et al.'s two-layer coordinate-wise LSTM; ``meta-lstm``, Ravi &
Larochelle's meta-learner LSTM) meta-trains a Conv4 at its defaults
(5-way 1-shot 15-query episodes in meta-batches of 4, 5 unrolled inner
steps over the ~112,000 coordinates of the encoder and head) on Omniglot
``images_background_small1`` with rotations as classes, from the random
rule (``imitation_episodes=0``, so both revisions do the same work).

Each timing runs in a fresh process: one warm-up fit of 4 episodes, then
one timed fit of ``--episodes`` episodes. The current checkout and
``--baseline`` (a git revision, extracted with ``git archive`` into a
temporary folder and put first on ``PYTHONPATH``) are timed in turns over
``--rounds`` rounds; ``speedup`` is the median over rounds of the
baseline's time per episode over this checkout's. ``--precision`` sets the
learner's ``precision`` and ``--compile`` its ``rule__compile=True`` (the
LSTM's elementwise kernels made by ``torch.compile``, compiled during the
warm-up) for this checkout; the baseline always runs in float32, uncompiled.
Run on an otherwise idle machine::

    SKFEWSHOT_DATA=../shared/data python benchmarks/learned_optimizer_speed.py \\
        --baseline 36f4625 --out benchmarks/results/learned_optimizer_speed.json
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np

from skfewshot._cli._params import LEARNED_RULES

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

_CHILD = """
import sys, time
import torch
from skfewshot.datasets import fetch_omniglot, rotate_classes
from skfewshot.meta import LearnedOptimizerLearner
import skfewshot
import skfewshot.nn

rule, episodes, precision, data_home, compile = sys.argv[1:6]
episodes = int(episodes)
X, y = rotate_classes(
    *fetch_omniglot("background_small1", data_home=data_home or None, return_X_y=True)
)
options = dict(rule=getattr(skfewshot.nn, rule), max_epochs=1, random_state=0, verbose=0)
if "imitation_episodes" in LearnedOptimizerLearner().get_params():
    options.update(imitation_episodes=0, precision=precision)
if compile == "1":
    options.update(rule__compile=True)
LearnedOptimizerLearner(episodes_per_epoch=4, **options).fit(X, y)
learner = LearnedOptimizerLearner(episodes_per_epoch=episodes, **options)
start = time.perf_counter()
learner.fit(X, y)
print((time.perf_counter() - start) / episodes, torch.get_num_threads(), skfewshot.__file__)
"""


def seconds_per_episode(source, rule, episodes, precision, data_home, compile=False):
    """Time one fit in a fresh process importing skfewshot from ``source``."""
    env = {**os.environ, "PYTHONPATH": source}
    out = subprocess.run(  # in ``source``, which ``python -c`` puts first on sys.path
        [
            sys.executable,
            "-c",
            _CHILD,
            LEARNED_RULES[rule],
            str(episodes),
            precision,
            data_home or "",
            str(int(compile)),
        ],
        env=env,
        cwd=source,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, threads, location = out.stdout.split()[-3:]
    if not location.startswith(os.path.join(os.path.abspath(source), "skfewshot")):
        raise RuntimeError(f"imported skfewshot from {location}, not from {source}")
    return float(seconds), int(threads)


def extract(revision, folder):
    """The ``skfewshot`` package of ``revision``, extracted into ``folder``."""
    archive = subprocess.run(
        ["git", "-C", ROOT, "archive", revision, "skfewshot"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", default="lstm-optimizer,meta-lstm")
    parser.add_argument("--baseline", required=True, help="git revision to compare with")
    parser.add_argument("--episodes", type=int, default=8, help="timed episodes per fit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument(
        "--compile", action="store_true", help="rule__compile=True for this checkout"
    )
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    # The fits run in the sources' folders: a relative data home must not move with them.
    data_home = args.data_home or os.environ.get("SKFEWSHOT_DATA")
    data_home = os.path.abspath(data_home) if data_home else None
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        baseline = extract(args.baseline, folder)
        for rule in args.rules.split(","):
            times = {"baseline": [], "current": []}
            for _ in range(args.rounds):
                for name, source, precision, compile in (
                    ("baseline", baseline, "float32", False),
                    ("current", ROOT, args.precision, args.compile),
                ):
                    seconds, threads = seconds_per_episode(
                        source, rule, args.episodes, precision, data_home, compile
                    )
                    times[name].append(seconds)
            ratios = np.array(times["baseline"]) / np.array(times["current"])
            rows.append(
                {
                    "rule": rule,
                    "precision": args.precision,
                    "compile": args.compile,
                    "threads": threads,
                    "baseline_s_per_episode": times["baseline"],
                    "current_s_per_episode": times["current"],
                    "speedup": float(np.median(ratios)),
                }
            )
            print(
                f"{rule} ({args.precision}{', compiled' if args.compile else ''}, "
                f"{threads} threads): "
                f"{np.median(times['baseline']):.3f} s -> {np.median(times['current']):.3f} s "
                f"per episode, {rows[-1]['speedup']:.2f}x",
                flush=True,
            )
    result = {
        "benchmark": "learned_optimizer_speed",
        "baseline": args.baseline,
        "episodes": args.episodes,
        "rounds": args.rounds,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "rows": rows,
    }
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
