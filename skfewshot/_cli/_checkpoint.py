"""``skfewshot benchmark --checkpoint-dir``: an interrupted meta-training resumes.

The command's meta-training checkpoints to the folder at every epoch with a
:class:`~skfewshot.callbacks.ResumableCheckpoint`, and the folder records the
settings the training depends on (``benchmark-settings.json``): the same
command run again with the same folder resumes from the last complete
checkpoint, or goes straight to the evaluation when meta-training had ended.
A folder holding the checkpoints of a run with other settings is refused.
"""

import json
import os
import re
import sys

from .._files import write_atomically
from ..callbacks import ResumableCheckpoint
from ._params import UsageError

#: The file of a run's training settings, in its checkpoint folder.
SETTINGS = "benchmark-settings.json"

#: The checkpoint folders a ResumableCheckpoint (no fn_prefix) writes: epoch-000012.
_CHECKPOINT = re.compile(r"epoch-(\d+)")


def training_settings(args, learner, n_epochs):
    """The flags meta-training depends on, by flag, as the checkpoint folder records them.

    The values are those the learner trains with (a flag left to its default
    and the same value given explicitly are the same setting). The evaluation
    flags (``--ways``, ``--shots``, ``--test-*``, ``--classifier-param``), the
    output files, ``--quiet``, ``--device`` and where the data live are not
    among them: a resumed or finished run may be evaluated with other values.
    ``--tune`` is among them only as whether it was given (it holds the
    validation classes out of meta-training), not its grid.
    """
    settings = {
        "--method": args.method,
        "--dataset": args.dataset,
        "--validation": args.validation,
        "--episodes": n_epochs * args.episodes_per_epoch,
        "--episodes-per-epoch": args.episodes_per_epoch,
        "--train-way": getattr(learner, "n_way", None),
        "--train-shot": getattr(learner, "n_shot", None),
        "--train-query": getattr(learner, "n_query", None),
        "--encoder-from": args.encoder_from,
        "--param": {name: _jsonable(value) for name, value in sorted(dict(args.param).items())},
        "--precision": args.precision,
        "--lr": learner.lr,
        "--lr-schedule": args.lr_schedule,
        "--random-state": args.random_state,
    }
    if args.tune:  # meta-training without the validation classes, which --tune holds out
        settings["--tune"] = True
    if args.dataset == "omniglot":
        settings["--protocol"] = args.protocol
        settings["--image-size"] = args.image_size
    return {flag: _jsonable(value) for flag, value in settings.items()}


def _jsonable(value):
    """``value`` as JSON reads it back (a tuple as a list, ...); its repr if JSON cannot
    hold it (a set, bytes, a dict with tuple keys, ...)."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return repr(value)


def _shown(value):
    """A setting's value in a message, as it is written on the command line."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def latest_checkpoint(dirname):
    """The epochs of the latest checkpoint in ``dirname`` (None if it holds none).

    A checkpoint folder appears whole (written, then renamed into place), so
    its presence is enough; whether its files are intact is checked when it
    is restored.
    """
    try:
        entries = os.listdir(dirname)
    except OSError:
        return None
    epochs = [int(match.group(1)) for entry in entries if (match := _CHECKPOINT.fullmatch(entry))]
    return max(epochs, default=None)


def prepare_checkpoint_dir(dirname, settings):
    """Make ``dirname`` ready for a run with ``settings``, or refuse it.

    The folder is created if needed. A folder that holds checkpoints must
    hold the settings of the same run: others (or none, a folder that
    ``skfewshot benchmark`` did not write) are a :class:`UsageError`, never a
    silent mix of two runs. The settings are then recorded in the folder.

    Returns
    -------
    epochs : int or None
        The epochs of the latest checkpoint in the folder (None if it holds none).
    """
    flag = "argument --checkpoint-dir"
    if os.path.exists(dirname) and not os.path.isdir(dirname):
        raise UsageError(f"{flag}: {dirname} is a file, not a folder.", usage=False)
    try:
        os.makedirs(dirname, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"{flag}: cannot create the folder {dirname} ({exc.strerror or exc}).", usage=False
        ) from None
    path = os.path.join(dirname, SETTINGS)
    saved = None
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                saved = json.load(f)["settings"]
            if not isinstance(saved, dict):
                raise TypeError(f"the settings are a {type(saved).__name__}, not an object")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"{flag}: cannot read the settings of the run in {dirname} ({path}: "
                f"{type(exc).__name__}: {exc}). Delete {dirname}, or pass another "
                "--checkpoint-dir, to start a new run.",
                usage=False,
            ) from None
    epochs = latest_checkpoint(dirname)
    if epochs is not None:
        if saved is None:
            raise UsageError(
                f"{flag}: {dirname} holds checkpoints but not the settings of their run "
                f"({SETTINGS}): skfewshot benchmark did not write them. Pass another "
                "--checkpoint-dir to start a new run.",
                usage=False,
            )
        differences = [
            f"{name} {_shown(saved.get(name))} there, {_shown(settings.get(name))} here"
            for name in sorted(set(saved) | set(settings))
            if saved.get(name) != settings.get(name)
        ]
        if differences:
            raise UsageError(
                f"{flag}: {dirname} holds the checkpoints of a run with other settings "
                f"({'; '.join(differences)}). Rerun with that run's settings to resume it, "
                f"or pass another --checkpoint-dir (or delete {dirname}) to start a new run.",
                usage=False,
            )
    if saved != settings:

        def write(temporary):
            with open(temporary, "w", encoding="utf-8") as f:
                json.dump({"settings": settings}, f, indent=1)

        write_atomically(path, write)
    return epochs


class BenchmarkCheckpoint(ResumableCheckpoint):
    """The checkpoints of ``skfewshot benchmark --checkpoint-dir``.

    A :class:`~skfewshot.callbacks.ResumableCheckpoint` that says on stderr
    where a run resumes and reports an unreadable folder as the command's
    error. An interrupted run (Ctrl+C) resumes from its last checkpoint, as
    with any ResumableCheckpoint.

    Attributes
    ----------
    resumed_epochs_ : int or None
        The epochs restored from the folder when training began (None when
        there was no checkpoint to resume).
    """

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        try:
            super().on_train_begin(net, X=X, y=y, **kwargs)
        except ValueError as exc:  # no checkpoint of the folder can be read, ...
            raise UsageError(f"argument --checkpoint-dir: {exc}", usage=False) from exc
        self.resumed_epochs_ = None if self.resumed_from_ is None else len(net.history)
        if self.resumed_epochs_ is not None:
            done, total = self.resumed_epochs_, net.max_epochs
            ended = ": meta-training has ended, on to the evaluation" if done >= total else ""
            print(
                f"skfewshot: resuming from epoch {done} of {total} in {self._dirname()}{ended}.",
                file=sys.stderr,
                flush=True,
            )
