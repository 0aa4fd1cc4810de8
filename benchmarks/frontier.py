"""Few-shot accuracy against training time: the frontier of Omniglot recipes on a CPU.

Every recipe trains for each time budget (``--budgets``, minutes of
wall-clock training on this machine, by ``skfewshot benchmark --max-time``:
the cosine learning-rate schedule follows the clock) on the Omniglot
background alphabets, and is scored on 600 episodes of 5-way and 20-way
1-shot on the evaluation alphabets (Lake protocol). A point's result is
saved as JSON in ``--out-dir`` as soon as it is measured, and points already
there are not run again, so the runs can be spread over sessions; run the
points one at a time on an otherwise idle machine (they are timings).

Recipes:

* ``protonet``: episodic Prototypical Networks with the CLI's defaults.
* ``pretraining``: supervised pre-training of a Conv4 of 128 channels over
  the 3,856 base classes with ``RandomAffine()`` augmentation and bfloat16
  mixed precision (:class:`~skfewshot.meta.PretrainingLearner`), plain
  prototypes.
* ``pretraining+finetune``: the same for 80% of the budget, then episodic
  ProtoNet fine-tuning of the pre-trained encoder (``--encoder-from``) at a
  tenth of ProtoNet's default learning rate for the remaining 20%.
* ``best``: the best recipe found on validation classes (see
  ``docs/benchmarks.md``): pre-training a Conv4 of 128 channels with
  stronger affine augmentation and bfloat16 mixed precision, then test-time
  augmentation (8 views) and cosine prototypes.
* ``plain-loop``: the reference, a hand-written PyTorch ProtoNet loop
  (``handwritten_protonet.py``), same episodes shape, constant learning rate.

Run (about 3 hours for every point; ``--plot-only`` redraws the figure and
``--markdown`` prints the table of the docs)::

    SKFEWSHOT_DATA=../shared/data python benchmarks/frontier.py \\
        --out-dir benchmarks/results/frontier --figure docs/images/frontier.png
"""

import argparse
import json
import os
import time
from pathlib import Path

from skfewshot import PrototypicalClassifier
from skfewshot._cli import benchmark, build_parser
from skfewshot.datasets import fetch_omniglot, rotate_classes
from skfewshot.model_selection import evaluate_episodes

#: recipe -> the ``skfewshot benchmark`` flags of its training
RECIPES = {
    "protonet": [],
    "pretraining": [
        *("--method", "pretraining", "--param", "augmentation=RandomAffine"),
        *("--param", "encoder__hidden_channels=128", "--param", "encoder__out_channels=128"),
        *("--precision", "bfloat16"),
    ],
    "best": [
        *("--method", "pretraining", "--precision", "bfloat16"),
        *("--param", "augmentation=RandomAffine(rotation=15, translate=0.1)"),
        *("--param", "encoder__hidden_channels=128", "--param", "encoder__out_channels=128"),
        *("--test-time-augmentation", "8", "--classifier-param", "distance=cosine"),
    ],
}
FINETUNE_SHARE = 0.2
NAMES = ("protonet", "pretraining", "pretraining+finetune", "best", "plain-loop")
WAYS = (5, 20)


def _run_cli(flags, minutes, json_path, data_home=None, output="none"):
    home = [] if data_home is None else ["--data-home", data_home]
    args = build_parser().parse_args(
        ["benchmark", *flags, *home, "--max-time", f"{minutes:g}", "--shots", "1"]
        + ["--ways", ",".join(map(str, WAYS)), "--quiet", "--output", output]
        + ["--json", str(json_path)]
    )
    return benchmark(args)


def _rows(result):
    return {f"{r['n_way']}w1s": (r["accuracy"], r["ci95"]) for r in result["results"]}


def run_point(name, minutes, out_dir, data_home=None):
    """Train and score recipe ``name`` with a budget of ``minutes``; return its record."""
    record = {"recipe": name, "minutes": minutes}
    tmp = Path(out_dir) / f".{name}_{minutes:g}min"
    if name in RECIPES:
        result = _run_cli(RECIPES[name], minutes, f"{tmp}.json", data_home)
        record.update(train_seconds=result["train_seconds"], accuracy=_rows(result))
    elif name == "pretraining+finetune":
        first = _run_cli(
            RECIPES["pretraining"],
            (1 - FINETUNE_SHARE) * minutes,
            f"{tmp}_pre.json",
            data_home,
            output=f"{tmp}_pre.joblib",
        )
        second = _run_cli(
            ["--encoder-from", f"{tmp}_pre.joblib", "--lr", "1e-4", "--precision", "bfloat16"],
            FINETUNE_SHARE * minutes,
            f"{tmp}_ft.json",
            data_home,
        )
        os.remove(f"{tmp}_pre.joblib")
        record.update(
            train_seconds=first["train_seconds"] + second["train_seconds"],
            accuracy=_rows(second),
        )
    elif name == "plain-loop":
        record.update(_plain_loop(minutes, data_home))
    else:
        raise ValueError(f"unknown recipe {name!r}; choose from {NAMES}")
    for suffix in (".json", "_pre.json", "_ft.json"):
        if os.path.exists(f"{tmp}{suffix}"):
            os.remove(f"{tmp}{suffix}")
    return record


def _plain_loop(minutes, data_home):
    from handwritten_protonet import handwritten_loop

    X, y = rotate_classes(*fetch_omniglot("background", data_home=data_home, return_X_y=True))
    start = time.perf_counter()
    model = handwritten_loop(X, y, None, 0, 20, 5, 5, seconds=60 * minutes)
    seconds = time.perf_counter() - start
    X_new, y_new = fetch_omniglot("evaluation", data_home=data_home, return_X_y=True)
    clf = PrototypicalClassifier(model)
    accuracy = {}
    for n_way in WAYS:
        result = evaluate_episodes(clf, X_new, y_new, n_way=n_way, n_shot=1, random_state=0)
        accuracy[f"{n_way}w1s"] = (100 * result["accuracy"], 100 * result["ci95"])
    return {"train_seconds": seconds, "accuracy": accuracy}


def plot(records, figure):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(WAYS), figsize=(10, 4), sharex=True)
    for ax, n_way in zip(axes, WAYS):
        for name in NAMES:
            points = sorted((r for r in records if r["recipe"] == name), key=lambda r: r["minutes"])
            if not points:
                continue
            key = f"{n_way}w1s"
            ax.errorbar(
                [r["minutes"] for r in points],
                [r["accuracy"][key][0] for r in points],
                yerr=[r["accuracy"][key][1] for r in points],
                marker="o",
                capsize=3,
                linestyle="--" if name == "plain-loop" else "-",
                label=name,
            )
        ax.set_xscale("log")
        ax.set_xticks([1, 3, 10, 30], ["1", "3", "10", "30"])
        ax.set_xlabel("training time (minutes, 2 CPU cores)")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"Omniglot (Lake), {n_way}-way 1-shot")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    Path(figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=120)


#: How the table names each recipe.
LABELS = {
    "protonet": "episodic ProtoNet (CLI defaults)",
    "pretraining": "pre-training (128 channels, bf16, `RandomAffine()`)",
    "pretraining+finetune": "pre-training, then ProtoNet fine-tuning (last 20%)",
    "best": "best recipe (stronger distortions, test-time augmentation, cosine prototypes)",
    "plain-loop": "plain loop (reference)",
}


def table(records, budgets=(1, 3, 10, 30)):
    """The points as a Markdown table: 5-way / 20-way 1-shot accuracy per recipe and budget."""
    at = {(r["recipe"], r["minutes"]): r for r in records}
    lines = [
        "| recipe (5-way / 20-way 1-shot) | " + " | ".join(f"{m:g} min" for m in budgets) + " |",
        "| --- |" + " --- |" * len(budgets),
    ]
    for name in NAMES:
        cells = []
        for minutes in budgets:
            record = at.get((name, minutes))
            if record is None:
                cells.append("")
            else:
                accuracy = record["accuracy"]
                cells.append(" / ".join(f"{accuracy[f'{n}w1s'][0]:.2f}" for n in WAYS))
        if any(cells):
            lines.append(f"| {LABELS[name]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=",".join(NAMES))
    parser.add_argument("--budgets", default="1,3,10,30", help="minutes, comma-separated")
    parser.add_argument("--out-dir", default="benchmarks/results/frontier")
    parser.add_argument("--figure", default=None, help="draw the figure here (png)")
    parser.add_argument("--plot-only", action="store_true", help="no training: draw the figure")
    parser.add_argument(
        "--markdown", action="store_true", help="print the points as a Markdown table"
    )
    parser.add_argument("--data-home", default=None)
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not args.plot_only:
        for minutes in map(float, args.budgets.split(",")):
            for name in args.recipes.split(","):
                path = out_dir / f"{name}_{minutes:g}min.json"
                if path.exists():
                    continue
                record = run_point(name, minutes, out_dir, args.data_home)
                path.write_text(json.dumps(record, indent=2))
                print(json.dumps(record), flush=True)
    records = [json.loads(p.read_text()) for p in sorted(out_dir.glob("*min.json"))]
    if args.figure:
        plot(records, args.figure)
    if args.markdown:
        print(table(records, tuple(map(float, args.budgets.split(",")))))
    return records


if __name__ == "__main__":
    main()
