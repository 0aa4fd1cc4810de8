"""The ``skfewshot`` command: meta-train a few-shot method and print the benchmark table."""

import argparse
import ast
import json
import sys
import time

import joblib
import numpy as np
import torch
from skorch.callbacks import LRScheduler, ProgressBar

from . import meta, nn
from .callbacks import TimeBudget
from .model_selection import evaluate_episodes
from .model_selection._evaluate import _embedded_once

#: --method -> (meta-learner class name in skfewshot.meta, its parameters)
METHODS = {
    "protonet": ("PrototypicalLearner", {}),
    "matching": ("MatchingLearner", {}),
    "relation": ("RelationLearner", {}),
    "siamese": ("SiameseLearner", {}),
    "maml": ("MAMLLearner", {}),
    "fomaml": ("MAMLLearner", {"first_order": True}),
    "anil": ("ANILLearner", {}),
    "metasgd": ("MetaSGDLearner", {}),
    "reptile": ("ReptileLearner", {}),
    "meta-lstm": ("LearnedOptimizerLearner", {}),
    "lstm-optimizer": ("LearnedOptimizerLearner", {"rule": "LSTMOptimizer"}),
    "pretraining": ("PretrainingLearner", {}),
}


#: Learner parameters given as a class name of skfewshot.nn (or skfewshot.datasets) in --param.
COMPONENTS = ("encoder", "comparator", "rule", "head", "augmentation")


def _named_class(value):
    """``value``, or the class of skfewshot.nn / skfewshot.datasets it names.

    An augmentation is named with its parameters' defaults (``RandomAffine``).
    A name with keyword arguments of literal values, ``RandomAffine(translate=0.1)``
    or ``CosineHead(scale=5.0)``, is an instance built with them.
    """
    from . import datasets

    if not isinstance(value, str):
        return value
    name, kwargs = value, None
    if "(" in value:
        try:
            call = ast.parse(value.strip(), mode="eval").body
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)) or call.args:
                raise ValueError
            name = call.func.id
            kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
            if None in kwargs:
                raise ValueError
        except (SyntaxError, ValueError):
            raise ValueError(
                f"--param: cannot read {value!r}; write a class name, alone or with keyword "
                "arguments of literal values, e.g. RandomAffine(rotation=15, translate=0.1)."
            ) from None
    for module in (nn, datasets):
        if hasattr(module, name) and name[:1].isupper():
            cls = getattr(module, name)
            if kwargs is not None:
                return cls(**kwargs)
            # An augmentation is an instance with its defaults; a module, the class.
            return cls() if module is datasets else cls
    raise ValueError(f"--param: {name!r} is not a class of skfewshot.nn or skfewshot.datasets.")


def _load(args):
    """Base (meta-training) and novel (test) data, and encoder parameters.

    With ``--validation`` the novel classes are validation classes carved
    from the base classes (never the test classes): held-out background
    characters (Lake protocol), the published validation split (Vinyals).
    """
    from .datasets import fetch_omniglot, fetch_omniglot_vinyals, rotate_classes

    common = dict(
        data_home=args.data_home,
        image_size=args.image_size,
        download_if_missing=not args.no_download,
        return_X_y=True,
    )
    if args.dataset == "omniglot" and args.protocol == "vinyals":
        base, novel = ("train", "val") if args.validation else ("trainval", "test")
        return (
            *fetch_omniglot_vinyals(base, **common),
            *fetch_omniglot_vinyals(novel, **common),
            {},
        )
    if args.dataset == "omniglot":
        X, y = fetch_omniglot("background", **common)
        if not args.validation:
            return (*rotate_classes(X, y), *fetch_omniglot("evaluation", **common), {})
        # A fifth of the background characters, all their rotations held out.
        rng = np.random.RandomState(args.random_state)
        held_out = np.isin(y, rng.permutation(np.unique(y))[: len(np.unique(y)) // 5])
        return (*rotate_classes(X[~held_out], y[~held_out]), X[held_out], y[held_out], {})
    from sklearn.datasets import load_digits

    from .nn import MLP

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    X, y = rotate_classes(X, y)  # 40 classes: digit x rotation
    base = (y % 10) < (4 if args.validation else 6)
    novel = ~base & ((y % 10) < 6) if args.validation else ~base
    return X[base], y[base], X[novel], y[novel], {"encoder": MLP, "encoder__in_features": 64}


def _param(text):
    """``name=value`` of --param, the value read as a Python literal when it is one."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    try:
        value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        pass  # a plain string
    return name, value


def _ints(text):
    return [int(v) for v in text.split(",")]


def _minutes(text):
    """A positive number of minutes, for --max-time."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of minutes, got {text!r}")
    return value


def _saved_encoder(path):
    """The trained encoder of the classifier saved at ``path``."""
    clf = joblib.load(path)
    encoder = getattr(clf, "encoder", None)
    if not isinstance(encoder, torch.nn.Module):
        raise ValueError(
            f"--encoder-from: {path} holds a {type(clf).__name__} without a trained encoder; "
            "give a classifier saved by skfewshot benchmark --output."
        )
    return encoder


def _trained_episodes(learner):
    """Episodes meta-trained, counted from the history's training meta-batches."""
    return sum(
        min(len(losses) * learner.meta_batch_size, learner.episodes_per_epoch)
        for losses in learner.history[:, "batches", :, "train_loss"]
    )


def build_parser():
    parser = argparse.ArgumentParser(prog="skfewshot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser(
        "benchmark",
        help="meta-train a few-shot method and print the N-way K-shot accuracy table",
        description="Meta-train a few-shot method (Prototypical Networks by default) on the "
        "base classes (Omniglot background + rotations, Lake protocol), evaluate N-way "
        "K-shot episodes on the novel classes (Omniglot evaluation alphabets) and save the "
        "classifier.",
    )
    bench.add_argument(
        "--method",
        choices=sorted(METHODS),
        default="protonet",
        help="the meta-learner (default protonet)",
    )
    bench.add_argument(
        "--dataset",
        choices=["omniglot", "digits"],
        default="omniglot",
        help="omniglot (default) or scikit-learn's bundled digits, offline "
        "(a quick look: MLP encoder, rotations as classes, digits 0-5 to "
        "train, 6-9 to test)",
    )
    bench.add_argument(
        "--data-home",
        default=None,
        help="folder holding omniglot/ (default: $SKFEWSHOT_DATA, else ~/skfewshot_data)",
    )
    bench.add_argument(
        "--no-download", action="store_true", help="fail instead of downloading missing archives"
    )
    bench.add_argument(
        "--protocol",
        choices=["lake", "vinyals"],
        default="lake",
        help="omniglot's split: lake (default; meta-train on the background alphabets with "
        "rotations as classes, test on the evaluation alphabets) or vinyals (the 1,200 / 423 "
        "characters of Vinyals et al., rotations as classes in both)",
    )
    bench.add_argument(
        "--validation",
        action="store_true",
        help="evaluate on validation classes carved from the base classes instead of the "
        "test classes, to choose a recipe: a fifth of the background characters (lake), the "
        "published validation split (vinyals), digits 4-5 (digits)",
    )
    bench.add_argument("--image-size", type=int, default=28)
    bench.add_argument(
        "--episodes",
        type=int,
        default=None,
        help="meta-training episodes (default 3000, or no limit with --max-time); batches "
        "of samples for --method pretraining",
    )
    bench.add_argument(
        "--max-time",
        type=_minutes,
        default=None,
        metavar="MINUTES",
        help="meta-train for MINUTES minutes (a number, e.g. 30 or 0.5) of wall-clock "
        "time, checked after every meta-batch; the cosine learning-rate schedule then "
        "follows the clock, annealed to zero when the time is spent, and --episodes (no "
        "limit by default) only caps the episodes (default: no time limit)",
    )
    bench.add_argument("--episodes-per-epoch", type=int, default=100)
    bench.add_argument(
        "--train-way",
        type=int,
        default=None,
        help="training episodes' ways (default: the method's, 20 for protonet)",
    )
    bench.add_argument(
        "--train-shot",
        type=int,
        default=None,
        help="training episodes' shots (default: the method's, 5 for protonet)",
    )
    bench.add_argument(
        "--train-query",
        type=int,
        default=None,
        help="training episodes' queries (default: the method's, 5 for protonet)",
    )
    bench.add_argument(
        "--encoder-from",
        default=None,
        metavar="PATH",
        help="start from the encoder of a classifier saved by an earlier run (joblib), "
        "e.g. to fine-tune a pre-trained encoder episodically: --method protonet "
        "--encoder-from pretraining_omniglot.joblib",
    )
    bench.add_argument(
        "--param",
        type=_param,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other learner parameter, e.g. --param scale=10, "
        "--param encoder__hidden_channels=32, --param head=CosineHead or "
        "--param augmentation=RandomAffine, with keyword arguments as in "
        "--param 'augmentation=RandomAffine(translate=0.1)' (repeatable)",
    )
    bench.add_argument(
        "--precision",
        choices=["float32", "bfloat16"],
        default="float32",
        help="arithmetic of the training forward passes: float32 (default) or bfloat16 "
        "mixed precision (about twice as fast on CPUs with AMX or AVX-512 BF16 units)",
    )
    bench.add_argument(
        "--lr",
        type=float,
        default=None,
        help="the meta-optimizer's learning rate (default: the learner's own, e.g. 1e-3 "
        "for Adam, 1.0 for Reptile's outer SGD step)",
    )
    bench.add_argument(
        "--lr-schedule",
        choices=["cosine", "constant"],
        default="cosine",
        help="cosine annealing of the learning rate over the epochs, or over the time "
        "budget with --max-time (default), or a constant learning rate",
    )
    bench.add_argument(
        "--ways",
        type=_ints,
        default=None,
        help="comma-separated test ways (default 5,20; 5,10 on digits)",
    )
    bench.add_argument(
        "--shots", type=_ints, default=[1, 5], help="comma-separated test shots (default 1,5)"
    )
    bench.add_argument(
        "--test-inner-steps",
        type=int,
        default=None,
        help="inner_steps of the gradient-based classifiers at test time "
        "(default: the learner's inner_steps)",
    )
    bench.add_argument(
        "--classifier-param",
        type=_param,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter of the classifier evaluated and saved (the learner's "
        "to_classifier), e.g. --classifier-param distance=cosine (repeatable)",
    )
    bench.add_argument(
        "--test-time-augmentation",
        type=int,
        default=0,
        metavar="N_VIEWS",
        help="embed each test image as the mean over itself and N_VIEWS fixed random affine "
        "distortions of it (skfewshot.nn.TestTimeAugmentation; still inductive); "
        "default 0: off",
    )
    bench.add_argument("--test-episodes", type=int, default=600)
    bench.add_argument("--test-query", type=int, default=15)
    bench.add_argument("--device", default="cpu")
    bench.add_argument("--random-state", type=int, default=0)
    bench.add_argument(
        "--output",
        default=None,
        help="where to save the classifier with joblib "
        "(default <method>_<dataset>.joblib; 'none' to skip)",
    )
    bench.add_argument("--json", default=None, help="also write the results as JSON here")
    bench.add_argument("--quiet", action="store_true", help="no progress bar or epoch log")
    return parser


def benchmark(args, out=None):
    out = sys.stdout if out is None else out
    name, method_params = METHODS[args.method]
    if args.test_time_augmentation < 0:
        raise ValueError(
            f"--test-time-augmentation takes a number of views >= 0 (0: off), "
            f"got {args.test_time_augmentation}."
        )
    learner_class = getattr(meta, name)
    classifier_params = dict(args.classifier_param)
    unknown = sorted(set(classifier_params) - set(learner_class.classifier_class().get_params()))
    if unknown:
        raise ValueError(
            f"--classifier-param: {learner_class.classifier_class.__name__} (the classifier of "
            f"--method {args.method}) has no parameter {', '.join(map(repr, unknown))}."
        )
    if args.test_time_augmentation and not issubclass(learner_class, meta.ComparatorLearner):
        raise ValueError(
            f"--test-time-augmentation averages embeddings, and --method {args.method} does "
            "not classify by embeddings: use it with protonet, matching, relation, siamese "
            "or pretraining."
        )
    X_base, y_base, X_novel, y_novel, encoder_params = _load(args)
    ways = args.ways or ([5, 20] if args.dataset == "omniglot" else [5, 10])
    # Under a time budget without --episodes, the budget alone stops training.
    unlimited = args.episodes is None and args.max_time is not None
    episodes = 10**9 if unlimited else 3000 if args.episodes is None else args.episodes
    n_epochs = max(1, round(episodes / args.episodes_per_epoch))
    shape = {"n_way": args.train_way, "n_shot": args.train_shot, "n_query": args.train_query}
    if args.encoder_from is not None:  # a trained instance replaces the encoder class
        encoder_params = {"encoder": _saved_encoder(args.encoder_from)}
    # Torch modules and augmentations are named by their class: --param head=CosineHead.
    params = {
        key: _named_class(value) if key in COMPONENTS else value
        for key, value in {**method_params, **dict(args.param)}.items()
    }
    learner = learner_class(
        episodes_per_epoch=args.episodes_per_epoch,
        max_epochs=n_epochs,
        precision=args.precision,
        device=args.device,
        random_state=args.random_state,
        verbose=0 if args.quiet else 1,
        **{k: v for k, v in shape.items() if v is not None},
        **encoder_params,
        **({} if args.lr is None else {"lr": args.lr}),
        **params,
    )
    callbacks = (
        []
        if args.quiet
        else [ProgressBar(batches_per_epoch=-(-args.episodes_per_epoch // learner.meta_batch_size))]
    )
    budget = None
    if args.max_time is not None:  # the budget anneals the learning rate over the time
        schedule = "cosine" if args.lr_schedule == "cosine" else None
        budget = TimeBudget(60 * args.max_time, lr_schedule=schedule)
        callbacks.append(budget)
    elif args.lr_schedule == "cosine":
        callbacks.append(LRScheduler("CosineAnnealingLR", T_max=n_epochs))
    learner.set_params(callbacks=callbacks)
    planned_episodes = None if unlimited else n_epochs * args.episodes_per_epoch
    steps = (
        f"batches of {learner.batch_size} samples"
        if isinstance(learner, meta.PretrainingLearner)
        else f"episodes of {learner.n_way}-way {learner.n_shot}-shot {learner.n_query}-query"
    )
    print(
        f"Meta-training {type(learner).__name__} on {len(np.unique(y_base))} base classes "
        f"({len(y_base)} samples): "
        + (steps if planned_episodes is None else f"{planned_episodes} {steps}")
        + f", {args.lr_schedule} learning rate from {learner.lr:g}"
        + ("" if args.precision == "float32" else f", {args.precision} mixed precision")
        + (
            ""
            if budget is None
            else f", within a {args.max_time:g}-minute time budget"
            + (" (the schedule over the time)" if budget.lr_schedule else "")
        ),
        file=out,
    )
    start = time.perf_counter()
    learner.fit(X_base, y_base)
    train_seconds = time.perf_counter() - start
    train_episodes = _trained_episodes(learner)
    stopped_early = budget is not None and budget.stopped_

    test_steps = {} if args.test_inner_steps is None else {"inner_steps": args.test_inner_steps}
    clf = learner.to_classifier(**{**test_steps, **classifier_params})
    if args.test_time_augmentation:
        clf.set_params(
            encoder=nn.TestTimeAugmentation(
                clf.encoder, n_views=args.test_time_augmentation, random_state=args.random_state
            )
        )
    rows = []
    test_start = time.perf_counter()
    # An embed-then-compare classifier has the novel classes embedded once, for every setting.
    scored, X_scored = _embedded_once(clf, X_novel)
    for n_way in ways:
        for n_shot in args.shots:
            result = evaluate_episodes(
                scored,
                X_scored,
                y_novel,
                n_way=n_way,
                n_shot=n_shot,
                n_query=args.test_query,
                n_episodes=args.test_episodes,
                random_state=args.random_state,
            )
            rows.append(
                {
                    "n_way": n_way,
                    "n_shot": n_shot,
                    "accuracy": 100 * result["accuracy"],
                    "ci95": 100 * result["ci95"],
                }
            )

    test_seconds = time.perf_counter() - test_start
    print(
        f"\n{args.method}, {args.dataset}"
        + (f" ({args.protocol} protocol)" if args.dataset == "omniglot" else "")
        + f": {len(np.unique(y_novel))} "
        + ("validation" if args.validation else "novel")
        + " classes, "
        f"{args.test_episodes} episodes of {args.test_query} queries per class "
        f"(mean ± 95% CI)"
        + (
            f", test-time augmentation over {args.test_time_augmentation} views"
            if args.test_time_augmentation
            else ""
        )
        + f"; meta-training took {train_seconds:.0f} s"
        + (
            ""
            if budget is None
            else f", {train_episodes} "
            + ("" if planned_episodes is None else f"of {planned_episodes} ")
            + f"episodes: the {args.max_time:g}-minute time budget "
            + ("stopped it early" if stopped_early else "was not reached")
        ),
        file=out,
    )
    print(f"{'setting':>14}  accuracy (%)", file=out)
    for row in rows:
        print(
            f"{row['n_way']:>5}-way {row['n_shot']}-shot  "
            f"{row['accuracy']:.2f} ± {row['ci95']:.2f}",
            file=out,
        )

    output = args.output or f"{args.method}_{args.dataset}.joblib"
    if output.lower() != "none":
        joblib.dump(clf, output)
        print(
            f"\nSaved the classifier to {output}: joblib.load it, fit it on a support set, "
            "predict queries.",
            file=out,
        )
    result = {
        "method": args.method,
        "dataset": args.dataset,
        "train_episodes": train_episodes,
        "planned_episodes": planned_episodes,
        "max_time_minutes": args.max_time,
        "stopped_early": stopped_early,
        "train_seconds": train_seconds,
        "test_seconds": test_seconds,
        "results": rows,
        "args": vars(args),
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "benchmark":
        benchmark(args)
    return 0
