"""The ``skfewshot`` command: meta-train a few-shot method and print the benchmark table."""

import argparse
import sys

from ._benchmark import benchmark
from ._console import Interrupted
from ._params import METHODS, UsageError, check_minutes, grid_param, ints, param

__all__ = ["benchmark", "build_parser", "main"]


def build_parser():
    parser = argparse.ArgumentParser(prog="skfewshot", description=__doc__)
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        help="the command; skfewshot COMMAND --help lists its flags",
    )
    bench = sub.add_parser(
        "benchmark",
        help="meta-train a few-shot method and print the N-way K-shot accuracy table",
        description="Meta-train a few-shot method (Prototypical Networks by default) on the "
        "base classes (Omniglot background + rotations, Lake protocol), evaluate N-way "
        "K-shot episodes on the novel classes (Omniglot evaluation alphabets) and save the "
        "classifier. Ctrl+C stops the run (exit status 130) and saves nothing; with "
        "--checkpoint-dir DIR, the same command run again resumes it.",
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
        metavar="DIR",
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
    bench.add_argument(
        "--image-size",
        type=int,
        default=28,
        metavar="PIXELS",
        help="side of the Omniglot images once resized (default 28); the digits keep their 8",
    )
    bench.add_argument(
        "--episodes",
        type=int,
        default=None,
        help="meta-training episodes (default 3000, or no limit with --max-time); batches "
        "of samples for --method pretraining",
    )
    bench.add_argument(
        "--max-time",
        type=check_minutes,
        default=None,
        metavar="MINUTES",
        help="meta-train for MINUTES minutes (a number, e.g. 30 or 0.5) of wall-clock "
        "time, checked after every meta-batch; the cosine learning-rate schedule then "
        "follows the clock, annealed to zero when the time is spent, and --episodes (no "
        "limit by default) only caps the episodes (default: no time limit)",
    )
    bench.add_argument(
        "--episodes-per-epoch",
        type=int,
        default=100,
        help="meta-training episodes (batches for --method pretraining) per epoch: the "
        "epoch log prints a line and the cosine schedule steps once per epoch (default 100)",
    )
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
        type=param,
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
        type=ints,
        default=None,
        help="comma-separated test ways (default 5,20; 5,10 on digits)",
    )
    bench.add_argument(
        "--shots", type=ints, default=[1, 5], help="comma-separated test shots (default 1,5)"
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
        type=param,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter of the classifier evaluated and saved (the learner's "
        "to_classifier), e.g. --classifier-param distance=cosine (repeatable)",
    )
    bench.add_argument(
        "--tune",
        type=grid_param,
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="choose a classifier parameter per setting of --ways and --shots among "
        "candidate values, e.g. --tune inner_steps=0,1,2,5 --tune inner_lr=0.1,0.4 (repeatable; "
        "the grid is their product): meta-training holds out the validation classes of "
        "--validation, a grid search over --tune-episodes episodes of each setting on them "
        "chooses the values, and the test classes are evaluated with them. The saved "
        "classifier keeps the learner's values and --classifier-param (default: no tuning)",
    )
    bench.add_argument(
        "--tune-episodes",
        type=int,
        default=100,
        help="validation episodes of each setting per candidate of --tune (default 100)",
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
    bench.add_argument(
        "--test-episodes",
        type=int,
        default=600,
        help="evaluation episodes of each setting of --ways and --shots (default 600)",
    )
    bench.add_argument(
        "--test-query",
        type=int,
        default=15,
        help="queries per class of an evaluation episode (default 15)",
    )
    bench.add_argument(
        "--device",
        default="cpu",
        help="torch device to train and evaluate on, e.g. cuda or cuda:1 (default cpu)",
    )
    bench.add_argument(
        "--random-state",
        type=int,
        default=0,
        help="seed of the meta-training, the evaluation episodes and the validation "
        "classes (default 0)",
    )
    bench.add_argument(
        "--checkpoint-dir",
        default=None,
        metavar="DIR",
        help="make the run resumable: checkpoint meta-training in DIR at every epoch "
        "(weights, optimizer, learning-rate schedule, history, episode stream; each "
        "checkpoint written whole or not at all) with the run's training settings. After "
        "an interruption (Ctrl+C, a kill, a crash), the same command with the same DIR "
        "resumes from the last complete checkpoint and ends with the weights of an "
        "uninterrupted run (bit for bit on CPU). If meta-training had ended, it evaluates "
        "the trained learner without training again (the evaluation and output flags may "
        "then differ). The training flags must match the run DIR holds, or the command "
        "stops with an error; delete DIR, or pass another, to start over. Not with "
        "--max-time (default: no checkpoints)",
    )
    bench.add_argument(
        "--output",
        default=None,
        help="where to save the classifier with joblib "
        "(default <method>_<dataset>.joblib; 'none' to skip)",
    )
    bench.add_argument("--json", default=None, help="also write the results as JSON here")
    bench.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars (on stderr) and no epoch log: only the results",
    )
    return parser


def _subparser(parser, command):
    """The parser of ``command`` (``skfewshot benchmark``), for its error messages."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "benchmark":
        try:
            benchmark(args)
        except UsageError as exc:
            command = _subparser(parser, args.command)
            if exc.usage:
                command.error(str(exc))
            command.exit(2, f"{command.prog}: error: {exc}\n")
        except KeyboardInterrupt as exc:
            # The message says how far the run went, and how to resume it (--checkpoint-dir).
            message = str(exc) if isinstance(exc, Interrupted) else ""
            print(message or "skfewshot: interrupted; nothing was saved.", file=sys.stderr)
            return 130
    return 0
