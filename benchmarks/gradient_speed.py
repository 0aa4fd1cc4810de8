"""Meta-training speed of the gradient-based learners against hand-written loops and ProtoNet.

For each configuration, a method (``maml``, ``fomaml``, ``anil``,
``metasgd``, ``reptile``) with a meta-batch size, a number of inner steps and
a head initialisation, these loops train a Conv4 on Omniglot
``images_background_small1`` with rotations as classes (5-way 5-shot 5-query
episodes unless ``--shape``), timed in turns in one process, each warmed up
first (as ``training_speed.in_process_seconds`` times them):

* ``skfewshot``: the learner (``MAMLLearner``, ``ANILLearner``, ...);
* ``handwritten``: the minimal ``torch.func`` loop of
  ``benchmarks/handwritten_<method>.py``: same episodes, initial weights and
  inner loop as the learner, and the same trained weights
  (``tests/test_handwritten_loops.py`` checks it);
* ``handwritten_autograd``: that loop with its inner gradients from
  ``torch.autograd.grad(..., create_graph=True)``, as learn2learn computes them;
* ``protonet``: ``PrototypicalLearner`` with Conv4 on episodes of the same
  shape (one episode per meta-update): the yardstick of an episode's cost;
* ``handwritten_no_queries`` (Reptile only, when listed in ``--loops``): the
  Reptile loop without the query pass that the learner makes for its
  training accuracy.

Each loop runs ``--episodes`` episodes per round, with seed ``r`` in round
``r`` (the same episodes for every loop of a round). ``speed_ratio`` is
skfewshot's speed over each hand loop's and ``cost_vs_protonet`` each loop's
time per episode over ProtoNet's, medians over the rounds of the per-round
ratios. The configurations are the first value of each of ``--meta-batch``,
``--inner-steps`` and ``--head-init`` (the base, by default MAMLLearner's:
meta-batch 1, one inner step, prototype head), then each other value of one
option with the others at the base; ``--grid full`` takes every
combination.

``--memory base`` (the default) also measures the peak memory of
second-order MAML in the base configuration, the learner against the
plain-autograd loop, with ``training_speed.measure``: each run in a fresh
process, the peak resident memory above the loaded data (which is the Lake
background set there, ``training_speed._base_data``), compared between the
median runs. ``--memory all`` measures every configuration of MAML's.

Run (the defaults take several minutes on a 2-core machine; ``--methods``
and the configuration flags make it shorter)::

    SKFEWSHOT_DATA=../shared/data python benchmarks/gradient_speed.py \\
        --out benchmarks/results/gradient_speed.json
    python benchmarks/gradient_speed.py --markdown benchmarks/results/gradient_speed.json
"""

import argparse
import importlib
import itertools
import json
import os
import platform
import sys
import time
from functools import partial

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

#: method -> (the module of its learner and its torch.func loop, the module whose
#: ``autograd_gradients`` its plain-autograd loop takes)
METHODS = {
    "maml": ("handwritten_maml", "handwritten_maml_autograd"),
    "fomaml": ("handwritten_fomaml", "handwritten_maml_autograd"),
    "anil": ("handwritten_anil", "handwritten_anil_autograd"),
    "metasgd": ("handwritten_metasgd", "handwritten_maml_autograd"),
    "reptile": ("handwritten_reptile", "handwritten_maml_autograd"),
}
METHOD_TITLES = {
    "maml": "MAML, second order",
    "fomaml": "MAML, first order",
    "anil": "ANIL",
    "metasgd": "Meta-SGD",
    "reptile": "Reptile",
}
LOOPS = ("skfewshot", "handwritten", "handwritten_autograd", "protonet")
LOOP_TITLES = {
    "skfewshot": "skfewshot",
    "handwritten": "torch.func loop",
    "handwritten_autograd": "autograd loop",
    "handwritten_no_queries": "loop without query pass",
    "protonet": "ProtoNet",
}
OPTIONS = ("meta_batch_size", "inner_steps", "head_init")
WARMUP_EPISODES = 3
TARGETS = {
    "speed_ratio": "skfewshot / each hand loop >= 1.0",
    "cost_vs_protonet": "second-order MAML <= 3.0",
    "memory_ratio": "second-order MAML / plain-autograd loop <= 1.1",
}


def _module(name):
    """A module of ``benchmarks/`` (which it puts on the import path)."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    return importlib.import_module(name)


def method_loops(method):
    """The learner factory of ``method`` and its hand loops, by loop name.

    Each is called as ``learner(n_episodes, seed, n_way, n_shot, n_query,
    **options)`` or ``loop(X, y, n_episodes, seed, n_way, n_shot, n_query,
    **options)``, with the options of :func:`configurations`.
    """
    module_name, autograd_name = METHODS[method]
    module, autograd = _module(module_name), _module(autograd_name)
    loops = {
        "handwritten": module.handwritten_loop,
        "handwritten_autograd": partial(
            module.handwritten_loop, gradients=autograd.autograd_gradients
        ),
    }
    if method == "reptile":
        loops["handwritten_no_queries"] = partial(module.handwritten_loop, query_pass=False)
    return module.learner, loops


def load_data(subset, data_home):
    """Omniglot ``subset`` with its rotations as classes (28x28 float32 images)."""
    from skfewshot.datasets import fetch_omniglot, rotate_classes

    return rotate_classes(*fetch_omniglot(subset, data_home=data_home, return_X_y=True))


def configurations(meta_batches, inner_steps, heads, grid="one-at-a-time"):
    """The options of every configuration: the base (first values), then one change at a time."""
    if grid == "full":
        combos = list(itertools.product(meta_batches, inner_steps, heads))
    else:
        base = (meta_batches[0], inner_steps[0], heads[0])
        combos = [base]
        for i, values in enumerate((meta_batches, inner_steps, heads)):
            combos += [base[:i] + (value,) + base[i + 1 :] for value in values[1:]]
    unique = list(dict.fromkeys(combos))
    return [dict(zip(OPTIONS, combo)) for combo in unique]


def _fit(learner, X, y, shape, options, n_episodes, seed):
    learner(n_episodes, seed, *shape, **options).fit(X, y)


def _hand(loop, X, y, shape, options, n_episodes, seed):
    loop(X, y, n_episodes, seed, *shape, **options)


def runners(method, loops, X, y, shape, options):
    """Functions ``(n_episodes, seed) -> None``, by loop name, of the loops ``method`` has."""
    learner, hand = method_loops(method)
    out = {}
    for loop in loops:
        if loop == "skfewshot":
            out[loop] = partial(_fit, learner, X, y, shape, options)
        elif loop == "protonet":
            out[loop] = partial(_fit, _module("handwritten_protonet").learner, X, y, shape, {})
        elif loop in hand:
            out[loop] = partial(_hand, hand[loop], X, y, shape, options)
    return out


def time_in_turns(runs, episodes, rounds):
    """Seconds of each run over the rounds: all warmed up, then in turns (the order rotates)."""
    names = list(runs)
    for run in runs.values():
        run(WARMUP_EPISODES, 0)
    seconds = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            runs[name](episodes, r)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def _median_ratio(numerators, denominators):
    return float(np.median(np.divide(numerators, denominators)))


def summarize(method, options, seconds, episodes, rounds):
    """A configuration's record: speeds, skfewshot's speed ratios, costs against ProtoNet's."""
    result = {
        "method": method,
        "options": options,
        "seconds": seconds,
        "episodes_per_s": {loop: episodes * rounds / sum(s) for loop, s in seconds.items()},
    }
    if "skfewshot" in seconds:  # > 1: skfewshot is faster
        result["speed_ratio"] = {
            loop: _median_ratio(s, seconds["skfewshot"])
            for loop, s in seconds.items()
            if loop.startswith("handwritten")
        }
    if "protonet" in seconds:  # time per episode over ProtoNet's
        result["cost_vs_protonet"] = {
            loop: _median_ratio(s, seconds["protonet"])
            for loop, s in seconds.items()
            if loop != "protonet"
        }
    return result


def peak_memory(options, shape, episodes, rounds, data_home):
    """Peak memory of second-order MAML: the learner against the plain-autograd loop.

    Each run in a fresh process (``training_speed.measure``), in turns.
    """
    training_speed = _module("training_speed")
    loops = {
        "skfewshot": ("maml", "skfewshot"),
        "handwritten_autograd": ("maml_autograd", "handwritten"),
    }
    names = list(loops)
    runs = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            method, loop = loops[name]
            runs[name].append(
                training_speed.measure(method, loop, episodes, r, shape, options, data_home)
            )
    peaks = {name: [run["peak_over_data_mb"] for run in rs] for name, rs in runs.items()}
    median = {name: float(np.median(p)) for name, p in peaks.items()}
    hand = median["handwritten_autograd"]
    return {
        "method": "maml",
        "options": options,
        "data": "Omniglot background with rotations (training_speed._base_data)",
        "episodes_per_run": episodes,
        "rounds": rounds,
        "peak_over_data_mb": peaks,
        "peak_rss_mb": {name: [run["peak_rss_mb"] for run in rs] for name, rs in runs.items()},
        "seconds": {name: [run["seconds"] for run in rs] for name, rs in runs.items()},
        "median_peak_over_data_mb": median,
        # None when loading the data peaked above the hand loop's training.
        "memory_ratio": median["skfewshot"] / hand if hand > 0 else None,
    }


def _cell(value, ratio=None):
    if value is None:
        return "-"
    return f"{value:.2f}" if ratio is None else f"{value:.2f} ({ratio:.2f})"


def markdown(results):
    """The tables of a run (the output of :func:`main`), in Markdown."""
    configs = results["configurations"]
    order = [*LOOPS[:-1], "handwritten_no_queries", "protonet"]
    loops = [loop for loop in order if any(loop in c["episodes_per_s"] for c in configs)]
    header = ["method", "meta-batch", "inner steps", "head"]
    header += [
        f"{LOOP_TITLES[loop]} ep/s" + (" (ratio)" if loop.startswith("handwritten") else "")
        for loop in loops
    ]
    header.append("cost / ProtoNet")
    lines = [
        f"{results['episodes']} episodes, {results['data']}; {results['rounds']} rounds of "
        f"{results['episodes_per_round']} episodes per loop, in turns in one process, "
        f"{results['threads']} threads. Ratio: skfewshot's speed over the loop's "
        "(target >= 1.0); cost / ProtoNet: skfewshot's time per episode over ProtoNet's "
        "(target <= 3 for second-order MAML).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
    ]
    for c in configs:
        options = c["options"]
        cells = [METHOD_TITLES.get(c["method"], c["method"])]
        cells += [str(options[name]) for name in OPTIONS]
        for loop in loops:
            ratio = c.get("speed_ratio", {}).get(loop)
            cells.append(_cell(c["episodes_per_s"].get(loop), ratio))
        cells.append(_cell(c.get("cost_vs_protonet", {}).get("skfewshot")))
        lines.append("| " + " | ".join(cells) + " |")
    if results.get("memory"):
        lines += [
            "",
            "Peak memory of second-order MAML, MB above the loaded data (fresh process per "
            "run; median runs; target <= 1.1):",
            "",
            "| meta-batch | inner steps | head | skfewshot | autograd loop | ratio |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for m in results["memory"]:
            median = m["median_peak_over_data_mb"]
            ratio = m["memory_ratio"]
            cells = [str(m["options"][name]) for name in OPTIONS]
            cells += [f"{median['skfewshot']:.0f}", f"{median['handwritten_autograd']:.0f}"]
            cells.append("-" if ratio is None else f"{ratio:.3f}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _save(results, path):
    if path:
        with open(path, "w") as f:
            f.write(json.dumps(results, indent=2) + "\n")


def _values(text, kind=str):
    return [kind(value) for value in text.split(",") if value]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument("--shape", default="5,5,5", help="n_way,n_shot,n_query")
    parser.add_argument("--meta-batch", default="1,4", help="meta-batch sizes (first: the base)")
    parser.add_argument("--inner-steps", default="1,5", help="inner steps (first: the base)")
    parser.add_argument(
        "--head-init", default="prototypes,zero", help="head initialisations (first: the base)"
    )
    parser.add_argument(
        "--grid",
        choices=("one-at-a-time", "full"),
        default="one-at-a-time",
        help="the base and one change at a time, or every combination",
    )
    parser.add_argument(
        "--loops",
        default=",".join(LOOPS),
        help=f"loops to time (default {','.join(LOOPS)}; also handwritten_no_queries)",
    )
    parser.add_argument("--episodes", type=int, default=12, help="episodes per loop and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--memory",
        choices=("none", "base", "all"),
        default="base",
        help="peak memory of second-order MAML: none, the base configuration, or every one",
    )
    parser.add_argument("--memory-episodes", type=int, default=8, help="episodes per run")
    parser.add_argument("--memory-rounds", type=int, default=2)
    parser.add_argument("--subset", default="background_small1", help="Omniglot subset")
    parser.add_argument("--data-home", default=None, help="default: $SKFEWSHOT_DATA")
    parser.add_argument("--out", default=None, help="write the JSON here (after each step)")
    parser.add_argument(
        "--markdown", metavar="JSON", default=None, help="print the tables of a saved run; no run"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        with open(args.markdown) as f:
            text = markdown(json.load(f))
        print(text)
        return text

    import torch

    import skfewshot

    data_home = args.data_home or os.environ.get("SKFEWSHOT_DATA")
    shape = tuple(_values(args.shape, int))
    methods = _values(args.methods)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose among {sorted(METHODS)}")
    loops = _values(args.loops)
    configs = configurations(
        _values(args.meta_batch, int),
        _values(args.inner_steps, int),
        _values(args.head_init),
        args.grid,
    )
    X, y = load_data(args.subset, data_home)
    results = {
        "benchmark": "gradient_speed",
        "skfewshot": skfewshot.__version__,
        "torch": torch.__version__,
        "machine": platform.platform(),
        "threads": torch.get_num_threads(),
        "data": f"Omniglot {args.subset} with rotations, 28x28",
        "shape": list(shape),
        "episodes": f"{shape[0]}-way {shape[1]}-shot {shape[2]}-query",
        "episodes_per_round": args.episodes,
        "rounds": args.rounds,
        "warmup_episodes": WARMUP_EPISODES,
        "targets": TARGETS,
        "configurations": [],
        "memory": [],
    }
    for method in methods:
        for options in configs:
            seconds = time_in_turns(
                runners(method, loops, X, y, shape, options), args.episodes, args.rounds
            )
            record = summarize(method, options, seconds, args.episodes, args.rounds)
            results["configurations"].append(record)
            _save(results, args.out)
            speeds = ", ".join(f"{k} {v:.2f}" for k, v in record["episodes_per_s"].items())
            print(f"{method} {options}: episodes/s {speeds}", file=sys.stderr, flush=True)
    if args.memory != "none":
        del X, y  # the fresh processes load their own data
        for options in configs if args.memory == "all" else configs[:1]:
            record = peak_memory(
                options, shape, args.memory_episodes, args.memory_rounds, data_home
            )
            results["memory"].append(record)
            _save(results, args.out)
            print(
                f"maml {options}: peak memory ratio {record['memory_ratio']}",
                file=sys.stderr,
                flush=True,
            )
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
