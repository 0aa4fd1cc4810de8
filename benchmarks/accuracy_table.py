"""Print the markdown accuracy table of the ``skfewshot benchmark --json`` results.

Run::

    python benchmarks/accuracy_table.py benchmarks/results/*_omniglot.json

A run with ``--tune`` shows, after each accuracy, the values chosen for that
setting on the validation classes: ``[inner_steps=2, inner_lr=0.1]``.
"""

import json
import sys

PUBLISHED = {  # Omniglot 5w1s, 5w5s, 20w1s, 20w5s as published
    "protonet": ("ProtoNet (Snell et al. 2017)", (98.8, 99.7, 96.0, 98.9)),
    "matching": ("Matching Networks (Vinyals et al. 2016)", (98.1, 98.9, 93.8, 98.5)),
    "relation": ("Relation Networks (Sung et al. 2018)", (99.6, 99.8, 97.6, 99.1)),
    "siamese": (
        "Siamese Networks (Koch et al. 2015, as reported by Vinyals)",
        (97.3, 98.4, 88.2, 97.0),
    ),
    "maml": ("MAML (Finn et al. 2017)", (98.7, 99.9, 95.8, 98.9)),
    "fomaml": ("First-order MAML (Finn et al. 2017)", (98.3, 99.2, 89.4, 97.9)),
    # ANIL's paper reports Omniglot at 20 ways only.
    "anil": ("ANIL (Raghu et al. 2020)", ("n/a", "n/a", 96.2, 98.0)),
    "metasgd": ("Meta-SGD (Li et al. 2017)", (99.53, 99.93, 95.93, 98.97)),
    # Reptile's non-transductive figures (the transductive ones are higher).
    "reptile": ("Reptile (Nichol et al. 2018)", (95.39, 98.90, 88.14, 96.65)),
    # The learned optimizers' papers report no Omniglot figures.
    "meta-lstm": ("Meta-learner LSTM (Ravi & Larochelle 2017)", ("n/a",) * 4),
    "lstm-optimizer": ("LSTM optimizer (Andrychowicz et al. 2016)", ("n/a",) * 4),
    "snail": ("SNAIL (Mishra et al. 2018)", (99.07, 99.78, 97.64, 99.36)),
    # Santoro et al. report accuracy by instance in an online protocol, not N-way K-shot.
    "mann": ("MANN (Santoro et al. 2016)", ("n/a",) * 4),
    # An in-context transformer in the spirit of CAML (Fifty et al. 2024), not its recipe.
    "in-context": ("In-context transformer", ("n/a",) * 4),
    # Chen et al. 2019 and Tian et al. 2020 report no figures on Omniglot's Lake protocol.
    "pretraining": ("Pre-training (Chen et al. 2019; Tian et al. 2020)", ("n/a",) * 4),
}
SETTINGS = [(5, 1), (5, 5), (20, 1), (20, 5)]


def cell(row, published):
    """A result's cell: accuracy ± half-width (published), then the values ``--tune`` chose."""
    text = f"{row['accuracy']:.2f} ± {row['ci95']:.2f} ({published})"
    if row.get("params"):  # chosen for this setting on validation classes
        text += " [" + ", ".join(f"{k}={v}" for k, v in row["params"].items()) + "]"
    return text


def main(paths):
    print("| method | training | " + " | ".join(f"{w}-way {s}-shot" for w, s in SETTINGS) + " |")
    print("| --- | --- |" + " --- |" * len(SETTINGS))
    for path in paths:
        with open(path) as f:
            result = json.load(f)
        method = result.get("method", "protonet")
        name, published = PUBLISHED.get(method, (method, ("n/a",) * len(SETTINGS)))
        params = [f"{k}={v}" for k, v in result.get("args", {}).get("param", [])]
        if result.get("args", {}).get("lr") not in (None, 1e-3):
            params.append(f"lr={result['args']['lr']}")
        for flag in ("train_way", "train_shot", "train_query"):
            if result.get("args", {}).get(flag) is not None:
                params.append(f"--{flag.replace('_', '-')} {result['args'][flag]}")
        if result.get("args", {}).get("test_inner_steps") is not None:
            params.append(f"inner_steps={result['args']['test_inner_steps']} at test")
        if params:
            name += " (" + ", ".join(f"`{p}`" for p in params) + ")"
        rows = {(r["n_way"], r["n_shot"]): r for r in result["results"]}
        cells = [cell(rows[s], p) if s in rows else "-" for s, p in zip(SETTINGS, published)]
        steps = "batches" if method == "pretraining" else "episodes"
        train = f"{result['train_episodes']} {steps}, {result['train_seconds'] / 60:.1f} min"
        print(f"| {name} | {train} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
