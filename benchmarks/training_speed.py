"""Meta-training throughput and peak memory: skfewshot against hand-written loops.

For each method, ``benchmarks/handwritten_<method>.py`` holds a minimal
hand-written PyTorch loop and the matching skfewshot learner: same
architecture, same initial weights, same Omniglot episodes (20-way 5-shot
5-query unless ``--shape`` says otherwise). Each measurement runs in a fresh
process (so that peak memory is its own), in turns, over several rounds;
``ratio`` is the median over rounds of skfewshot's speed over the hand loop's,
``memory_ratio`` that of the median runs' peak memory above the loaded data.
The same loops are then timed in turns in one process, each warmed up first
(``in_process``): short runs in fresh processes carry start-up and
first-touch costs that the in-process figures do not.
MAML and first-order MAML (``maml``, ``fomaml``) time 5-way 1-shot
15-query episodes in meta-batches of 4 (``--option inner_steps=5`` for five
inner steps in both loops). For ProtoNet the plain NCHW hand loop (what a
practitioner writes) is timed too; all other hand loops use the
channels-last convolution layout that skfewshot uses, so that the ratio is
the framework's own overhead.

Run::

    SKFEWSHOT_DATA=../shared/data python benchmarks/training_speed.py \
        --out benchmarks/results/training_speed.json
"""

import argparse
import importlib
import json
import multiprocessing
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _memory_mb(field):
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def _base_data(data_home):
    """The meta-training set: Omniglot's background alphabets with rotations as classes."""
    from skfewshot.datasets import fetch_omniglot, rotate_classes

    return rotate_classes(*fetch_omniglot("background", data_home=data_home, return_X_y=True))


def _loops_module(method):
    """``benchmarks/handwritten_<method>.py``: the hand loop and the matching learner."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    return importlib.import_module(f"handwritten_{method}")


def _measure(method, loop, n_episodes, seed, shape, options, data_home, queue):
    """In a fresh process: load the data, warm up, time one run, report peak RSS."""
    import torch

    X, y = _base_data(data_home)
    run = _runner(method, loop, X, y, shape, options)
    # Peak memory of the training alone: reset the kernel's high-water mark after
    # loading the data (whose temporaries may peak higher than training does).
    rss_data = _memory_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    run(3, seed)  # warm-up
    start = time.perf_counter()
    run(n_episodes, seed)
    seconds = time.perf_counter() - start
    peak = _memory_mb("VmHWM")
    queue.put(
        {
            "seconds": seconds,
            "peak_rss_mb": peak,
            "peak_over_data_mb": peak - rss_data,
            "threads": torch.get_num_threads(),
        }
    )


def measure(method, loop, n_episodes, seed, shape, options, data_home):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(
        target=_measure, args=(method, loop, n_episodes, seed, shape, options, data_home, queue)
    )
    proc.start()
    result = queue.get()
    proc.join()
    return result


def _runner(method, loop, X, y, shape, options):
    """A function (n_episodes, seed) -> None running one of the loops of ``method``.

    ``options`` (a dict) go to both the hand loop and the learner."""
    module = _loops_module(method)
    n_way, n_shot, n_query = shape
    if loop == "skfewshot":
        return lambda n, s: module.learner(n, s, n_way, n_shot, n_query, **options).fit(X, y)
    kwargs = (
        {**options, "layout": "nchw" if loop == "handwritten_nchw" else "channels_last"}
        if method == "protonet"
        else options
    )
    return lambda n, s: module.handwritten_loop(X, y, n, s, n_way, n_shot, n_query, **kwargs)


def in_process_seconds(method, loops, episodes, rounds, shape, options, data_home):
    """Time the loops in turns in this process, each warmed up first (speed only)."""
    X, y = _base_data(data_home)
    runners = {loop: _runner(method, loop, X, y, shape, options) for loop in loops}
    for run in runners.values():
        run(3, 0)  # warm-up
    seconds = {loop: [] for loop in loops}
    for r in range(rounds):
        for loop in loops[r % len(loops) :] + loops[: r % len(loops)]:
            start = time.perf_counter()
            runners[loop](episodes, r)
            seconds[loop].append(time.perf_counter() - start)
    return seconds


def benchmark(method, episodes, rounds, shape, data_home, options=None):
    options = options or {}
    if shape is None:  # the method's own episodes, else 20-way 5-shot 5-query
        shape = getattr(_loops_module(method), "SHAPE", (20, 5, 5))
    loops = ["handwritten", "skfewshot"]
    if method == "protonet":
        loops.insert(0, "handwritten_nchw")
    runs = {loop: [] for loop in loops}
    for r in range(rounds):
        order = loops[r % len(loops) :] + loops[: r % len(loops)]
        for loop in order:
            runs[loop].append(measure(method, loop, episodes, r, shape, options, data_home))
    seconds = {loop: [run["seconds"] for run in runs[loop]] for loop in loops}
    # The same loops timed in turns in one process, after a warm-up of each: no
    # process start-up or first-touch effects in the figures.
    warm = in_process_seconds(method, loops, episodes, rounds, shape, options, data_home)
    result = {
        "method": method,
        "episodes": f"{shape[0]}-way {shape[1]}-shot {shape[2]}-query, Omniglot 28x28",
        "options": options,
        "episodes_per_round": episodes,
        "rounds": rounds,
        "seconds": seconds,
        "episodes_per_s": {loop: episodes * rounds / sum(s) for loop, s in seconds.items()},
        "peak_rss_mb": {loop: max(run["peak_rss_mb"] for run in runs[loop]) for loop in loops},
        "peak_over_data_mb": {
            loop: max(run["peak_over_data_mb"] for run in runs[loop]) for loop in loops
        },
        "target_ratio": 0.95 if method == "protonet" else 0.9,
    }
    # Each run's peak varies by tens of MB (the allocator's heap layout): the
    # ratio compares the median runs; the largest peaks are reported too.
    result["peak_over_data_mb_runs"] = {
        loop: [run["peak_over_data_mb"] for run in runs[loop]] for loop in loops
    }
    median = {
        loop: float(np.median(peaks)) for loop, peaks in result["peak_over_data_mb_runs"].items()
    }
    # None when loading the data peaked above the hand loop's training.
    for key, peaks in (
        ("memory_ratio", median),
        ("memory_ratio_of_largest_peaks", result["peak_over_data_mb"]),
    ):
        result[key] = (
            peaks["skfewshot"] / peaks["handwritten"] if peaks["handwritten"] > 0 else None
        )
    result["in_process"] = {
        "seconds": warm,
        "episodes_per_s": {loop: episodes * rounds / sum(s) for loop, s in warm.items()},
    }
    for loop in loops[:-1]:
        key = "ratio" if loop == "handwritten" else f"ratio_vs_{loop}"
        result[key] = float(np.median(np.divide(seconds[loop], seconds["skfewshot"])))
        result["in_process"][key] = float(np.median(np.divide(warm[loop], warm["skfewshot"])))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="protonet,matching,relation,siamese")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per run")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--shape",
        default=None,
        help="n_way,n_shot,n_query (default: the method's SHAPE, else 20,5,5)",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a keyword argument of both loops, e.g. inner_steps=5 or head_init=prototypes "
        "for MAML (integers or strings; repeatable)",
    )
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.shape.split(",")) if args.shape else None
    options = {
        name: int(value) if value.lstrip("-").isdigit() else value
        for name, value in (option.split("=", 1) for option in args.option)
    }
    import torch

    import skfewshot

    results = {
        "benchmark": "training_speed",
        "skfewshot": skfewshot.__version__,
        "torch": torch.__version__,
        "machine": platform.platform(),
        "methods": [
            benchmark(m, args.episodes, args.rounds, shape, args.data_home, options)
            for m in args.methods.split(",")
        ],
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
