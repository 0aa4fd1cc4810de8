"""The choice of each method's defaults, on validation classes carved from the base classes.

Each candidate setting of a method is meta-trained from the library's
defaults plus the candidate's flags, for ``--episodes`` episodes (1,000) on
the Omniglot background characters but a held-out fifth
(``skfewshot benchmark --validation``, Lake protocol), and scored on 600
episodes of 5-way and 20-way 1-shot and 5-way 5-shot of those held-out
characters. The evaluation alphabets are never used. The candidates are the
settings the paper uses and the alternatives that fix what goes wrong with
it (see ``CANDIDATES``); the default of each method is the best candidate
here, the paper's setting stays reachable by parameter.

A candidate's result is saved as JSON in ``--out-dir`` as soon as it is
measured, and results already there are not run again. The runs are
accuracies after a fixed number of episodes, not timings: they may share
the machine.

Run::

    SKFEWSHOT_DATA=../shared/data python benchmarks/default_choices.py \\
        --out-dir benchmarks/results/defaults
"""

import argparse
import json
from pathlib import Path

from skfewshot._cli import benchmark, build_parser

#: method -> candidate -> its ``skfewshot benchmark`` flags (beside the library's defaults)
CANDIDATES = {
    "relation": {
        "aggregation=sum": ["--param", "comparator__aggregation=sum"],
        "aggregation=mean": ["--param", "comparator__aggregation=mean"],
    },
    "matching": {
        "scale=1": ["--param", "scale=1.0"],
        "scale=10": ["--param", "scale=10.0"],
    },
    "siamese": {
        "lr=0.001": ["--lr", "1e-3"],
        "lr=0.003": ["--lr", "3e-3"],
    },
    **{
        method: {
            "5w1s15q": ["--train-way", "5", "--train-shot", "1", "--train-query", "15"],
            "20w1s5q": ["--train-way", "20", "--train-shot", "1", "--train-query", "5"],
        }
        for method in ("anil", "metasgd", "fomaml")
    },
    # MAML's episodes from a zero head with steps of 0.4 (the paper's head and rate), then its
    # head: the prototype head, whose first step adapts the encoder, with either rate.
    "maml": {
        **{
            episodes: [*flags, "--param", "head_init=zero", "--param", "inner_lr=0.4"]
            for episodes, flags in (
                ("5w1s15q", ["--train-way", "5", "--train-shot", "1", "--train-query", "15"]),
                ("20w1s5q", ["--train-way", "20", "--train-shot", "1", "--train-query", "5"]),
            )
        },
        **{
            f"20w1s5q_prototypes_lr{lr}": [
                *["--train-way", "20", "--train-shot", "1", "--train-query", "5"],
                *["--param", "head_init=prototypes", "--param", f"inner_lr={lr}"],
            ]
            for lr in ("0.4", "0.05")
        },
    },
}
SETTINGS = ((5, 1), (20, 1), (5, 5))


def run_candidate(method, name, episodes, data_home=None):
    """Meta-train candidate ``name`` of ``method`` and score it on the validation classes."""
    flags = ["benchmark", "--method", method, "--validation", "--episodes", str(episodes)]
    flags += ["--ways", "5,20", "--shots", "1,5", "--quiet", "--output", "none"]
    flags += [] if data_home is None else ["--data-home", data_home]
    flags += CANDIDATES[method][name]
    result = benchmark(build_parser().parse_args(flags))
    accuracy = {
        f"{r['n_way']}w{r['n_shot']}s": (r["accuracy"], r["ci95"])
        for r in result["results"]
        if (r["n_way"], r["n_shot"]) in SETTINGS
    }
    return {
        "method": method,
        "candidate": name,
        "flags": CANDIDATES[method][name],
        "episodes": episodes,
        "train_seconds": result["train_seconds"],
        "accuracy": accuracy,
    }


def table(records):
    """The results as a Markdown table, a row per candidate."""
    keys = [f"{w}w{s}s" for w, s in SETTINGS]
    lines = [
        "| method | candidate | " + " | ".join(f"{w}-way {s}-shot" for w, s in SETTINGS) + " |",
        "| --- | --- |" + " --- |" * len(SETTINGS),
    ]
    for r in records:
        cells = [f"{r['accuracy'][k][0]:.2f} ± {r['accuracy'][k][1]:.2f}" for k in keys]
        lines.append(f"| {r['method']} | {r['candidate']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(CANDIDATES))
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--out-dir", default="benchmarks/results/defaults")
    parser.add_argument("--data-home", default=None)
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for method in args.methods.split(","):
        if method not in CANDIDATES:
            parser.error(f"no candidates for method {method!r}; choose from {list(CANDIDATES)}")
        for name in CANDIDATES[method]:
            path = out_dir / f"{method}_{name}_{args.episodes}.json"
            if not path.exists():
                record = run_candidate(method, name, args.episodes, args.data_home)
                path.write_text(json.dumps(record, indent=2))
            records.append(json.loads(path.read_text()))
    print(table(records))
    return records


if __name__ == "__main__":
    main()
