"""The console of ``skfewshot benchmark``: progress bars, the epoch log, and Ctrl+C."""

import contextlib
import signal
import sys
import threading
import time

from skorch.callbacks import Callback, PrintLog
from tqdm import tqdm

from ._checkpoint import latest_checkpoint

#: The progress bar of a time budget: its ETA is the time left.
TIMED_BAR = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}"


class Interrupted(KeyboardInterrupt):
    """Ctrl+C stopped the run; nothing was saved (but the checkpoints of
    ``--checkpoint-dir``). The message says how far it went."""


class Run:
    """Where a run of ``skfewshot benchmark`` stands, for the message of an interruption."""

    def __init__(self):
        self.phase = "loading"  # then "training", "tuning" (--tune), "evaluating", "saving"
        self.interrupted = False  # a SIGINT arrived
        self.defer = False  # the results are complete: a SIGINT is noted, not raised
        self.progress = None  # the TrainingProgress callback
        self.n_epochs = None  # None: as many as a time budget allows
        self.evaluated = 0
        self.test_episodes = 0
        self.tuned = 0  # validation episodes of --tune
        self.tune_episodes = 0
        self.checkpoint_dir = None  # --checkpoint-dir

    def interruption(self):
        """The one line that says what the interruption stopped, and how to resume."""
        if self.phase == "training":
            epochs = getattr(self.progress, "epochs_", 0)
            total = epochs if self.n_epochs is None else self.n_epochs
            noun = "epoch" if total == 1 else "epochs"
            done = f"{epochs} {noun}" if self.n_epochs is None else f"{epochs} of {total} {noun}"
            what = f"interrupted after {done} of meta-training"
        elif self.phase == "tuning":
            what = (
                f"interrupted while tuning on the validation classes, after {self.tuned} of "
                f"{self.tune_episodes} validation episodes"
            )
        elif self.phase == "evaluating":
            what = (
                f"interrupted while evaluating, after {self.evaluated} of "
                f"{self.test_episodes} test episodes"
            )
        elif self.phase == "saving":
            return "skfewshot: interrupted while writing the results."
        else:
            what = "interrupted before meta-training"
        if self.checkpoint_dir is None:
            return f"skfewshot: {what}; nothing was saved."
        return f"skfewshot: {what}; {self._resume()}"

    def _resume(self):
        """How the same command resumes from the checkpoints of --checkpoint-dir."""
        folder = self.checkpoint_dir
        epochs = latest_checkpoint(folder)
        if epochs is None:
            return (
                "no epoch was checkpointed yet, so the same command with --checkpoint-dir "
                f"{folder} starts over."
            )
        again = f"run the same command again (with --checkpoint-dir {folder})"
        if self.phase in ("tuning", "evaluating"):
            return (
                "the results were not saved, but the checkpoint of meta-training is in "
                f"{folder}: {again} to evaluate it without training again."
            )
        return f"the last checkpoint, of epoch {epochs}, is in {folder}: {again} to resume it."


@contextlib.contextmanager
def noting_sigint(run):
    """Note a Ctrl+C (SIGINT) in ``run.interrupted``, then raise KeyboardInterrupt as Python does.

    skorch's ``fit`` catches a KeyboardInterrupt (callbacks stop training
    with one) and returns a half-trained learner: the note tells the command
    that training was cut short. While ``run.defer`` is set (the results are
    complete and being written), a SIGINT is only noted, so no file is left
    half-written. Nothing is installed outside the main thread, or where
    SIGINT does not have Python's default handler (e.g. ignored by nohup).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    def on_sigint(signum, frame):
        run.interrupted = True
        if not run.defer:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def is_terminal(stream):
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def progress_bar(total, desc, *, quiet, **kwargs):
    """A tqdm bar on stderr (none with --quiet); redrawn at most every 10 s into a file or pipe."""
    return tqdm(
        total=total,
        desc=desc,
        disable=quiet,
        file=sys.stderr,
        mininterval=0.1 if is_terminal(sys.stderr) else 10.0,
        **kwargs,
    )


class TrainingProgress(Callback):
    """One progress bar over all of meta-training, with its ETA.

    skorch's :class:`~skorch.callbacks.ProgressBar` shows one epoch at a
    time; this bar counts the episodes (batches with pretraining) of all the
    epochs, or, under a time budget (``seconds``), the seconds of the budget.
    It also counts the epochs that ran to their end (``epochs_``), which
    tells a finished training from one that a KeyboardInterrupt cut short.
    A training resumed from a checkpoint (restored by a callback that comes
    before this one) starts with the epochs it restored, done.
    """

    def __init__(self, n_epochs=None, episodes=None, seconds=None, unit="episodes", quiet=False):
        self.n_epochs = n_epochs
        self.episodes = episodes
        self.seconds = seconds
        self.unit = unit
        self.quiet = quiet

    def on_train_begin(self, net, **kwargs):
        self.epochs_ = len(net.history)  # 0, unless resumed
        self.episodes_ = 0
        self._start = time.perf_counter()
        if self.seconds is None:
            done = self.epochs_ * getattr(net, "episodes_per_epoch", 0)
            self.bar_ = progress_bar(
                self.episodes,
                "meta-training",
                quiet=self.quiet,
                unit=f" {self.unit}",
                initial=done if self.episodes is None else min(done, self.episodes),
            )
        else:
            self.bar_ = progress_bar(
                self.seconds, "meta-training", quiet=self.quiet, bar_format=TIMED_BAR
            )
        self._show()

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if not training:
            return
        self.episodes_ += len(batch[0])
        if self.seconds is None:
            self.bar_.update(len(batch[0]))
        else:
            elapsed = min(time.perf_counter() - self._start, self.seconds)
            self.bar_.update(elapsed - self.bar_.n)
            self._show()

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1
        self._show()

    def on_train_end(self, net, **kwargs):
        self.close()

    def close(self):
        bar = getattr(self, "bar_", None)
        if bar is not None:
            bar.close()

    def _show(self):
        epoch = self.epochs_ + 1
        if self.n_epochs is not None:
            epoch = f"{min(epoch, self.n_epochs)}/{self.n_epochs}"
        text = f"epoch {epoch}"
        if self.seconds is not None:
            text += f", {self.episodes_} {self.unit}"
        self.bar_.set_postfix_str(text, refresh=False)


class EpochLog(PrintLog):
    """skorch's epoch log, without its ANSI colours unless ``colors``
    (they mark the best scores so far; use them on a terminal only)."""

    def __init__(
        self,
        keys_ignored=None,
        sink=print,
        tablefmt="simple",
        floatfmt=".4f",
        stralign="right",
        colors=False,
    ):
        super().__init__(
            keys_ignored=keys_ignored,
            sink=sink,
            tablefmt=tablefmt,
            floatfmt=floatfmt,
            stralign=stralign,
        )
        self.colors = colors

    def format_row(self, row, key, color):
        if not self.colors:  # without the "<key>_best" flag, skorch adds no colour
            row = {k: v for k, v in row.items() if k != f"{key}_best"}
        return super().format_row(row, key, color)


def line_writer(out):
    """Write lines to ``out`` between the redraws of the progress bars, at once."""

    def write(text):
        tqdm.write(text, file=out)
        out.flush()

    return write
