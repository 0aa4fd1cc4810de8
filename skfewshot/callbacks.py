"""Callbacks for meta-training (skorch callbacks): :class:`TimeBudget`, to train for a set
time, :class:`ResumableCheckpoint`, to resume a killed run where it stopped, and
:class:`DistributedMetaBatch`, to split the meta-batches across processes."""

import copy
import hashlib
import json
import math
import os
import re
import time
import warnings

import numpy as np
import torch
from skorch.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    EpochTimer,
    LRScheduler,
    PassthroughScoring,
    ProgressBar,
)
from skorch.callbacks.scoring import ScoringBase
from skorch.history import History
from skorch.utils import noop

from . import _distributed
from ._files import remove, remove_abandoned_temporaries, temporary_path, write_atomically
from ._param_validation import Instance, Integer, Options, Positive
from ._validation import check_params

__all__ = ["DistributedMetaBatch", "ResumableCheckpoint", "TimeBudget"]

# The callbacks whose epoch end only sums up, or closes, the epoch's batches: safe to
# run on an epoch cut short (a validation PassthroughScoring finds no validation
# batches and records nothing).
_BATCH_SUMMARIES = (EpochTimer, PassthroughScoring, ProgressBar)


class TimeBudget(Callback):
    r"""Stop meta-training once a wall-clock time budget is spent.

    The clock starts when training starts (``on_train_begin``, at every
    ``fit`` and ``partial_fit``) and is read after every training
    meta-batch, so a budget shorter than an epoch is honoured: training
    stops after the first meta-batch that ends with ``seconds`` or more
    elapsed. It stops the way skorch's
    :class:`~skorch.callbacks.EarlyStopping` does, by raising
    :class:`KeyboardInterrupt`, which ``fit`` catches: the learner is then
    fitted, with the weights of the last meta-update, and ``on_train_end``
    callbacks run as usual.

    The epoch cut short keeps its row in the history, summed up over the
    meta-batches it trained: ``train_loss`` and ``train_acc`` (their
    batch-size-weighted means, as at a full epoch's end), ``dur`` and
    ``train_batch_count``, and ``time_budget_stopped=True``. Its validation
    does not run, so that row has no ``valid_loss`` or ``valid_acc``. Each
    row's ``batches`` are the meta-batches it trained, and ``episodes_``
    counts their episodes.

    ``max_epochs`` still sets the number of epochs (training ends there if
    the budget lasts). A learning-rate schedule over the epochs, e.g.
    ``LRScheduler("CosineAnnealingLR", T_max=max_epochs)``, knows nothing of
    the budget: a stop leaves the learning rate partway down its curve. With
    ``lr_schedule="cosine"`` the budget sets the learning rate itself: after
    every meta-batch, each optimizer parameter group's rate is its rate at
    the start times :math:`(1 + \cos(\pi t / T)) / 2`, where :math:`t` is
    the time spent and :math:`T` the budget, so training ends annealed to
    zero whenever the budget stops it (give a large ``max_epochs``). The
    schedule follows the clock, so two runs on machines of different speeds
    (or one machine under different loads) train different numbers of
    steps: for results that repeat exactly, set the number of epochs and an
    epoch schedule instead.

    Parameters
    ----------
    seconds : float
        The budget, in seconds of wall-clock time (a positive number),
        checked when training starts.
    sink : callable, default=print
        Where the one-line message of a stop goes, when the learner's
        ``verbose`` is not 0.
    lr_schedule : {None, "cosine"}, default=None
        None leaves the learning rate alone; ``"cosine"`` anneals it to zero
        over the budget.

    Attributes
    ----------
    seconds_ : float
        The checked budget of the last training run.
    stopped_ : bool
        Whether the budget stopped the last training run.
    elapsed_ : float
        Seconds from the start to the end of the last training run.
    initial_lrs_ : list of float
        With ``lr_schedule="cosine"``, the learning rates of the optimizers'
        parameter groups when the last training run started.
    episodes_ : int
        Episodes trained in the last training run (the meta-batches' episodes).

    See Also
    --------
    skorch.callbacks.EarlyStopping : Stop once a score stops improving.

    Examples
    --------
    >>> from skfewshot.callbacks import TimeBudget
    >>> from skfewshot.meta import PrototypicalLearner
    >>> learner = PrototypicalLearner(max_epochs=1000, callbacks=[TimeBudget(30 * 60)])

    Half an hour, the learning rate annealed over it:

    >>> budget = TimeBudget(30 * 60, lr_schedule="cosine")
    """

    _parameter_constraints = {
        "seconds": Positive(),
        "lr_schedule": Options(None, "cosine"),
    }

    def __init__(self, seconds, sink=print, lr_schedule=None):
        self.seconds = seconds
        self.sink = sink
        self.lr_schedule = lr_schedule

    def on_train_begin(self, net, **kwargs):
        self.seconds_ = float(check_params(self)["seconds"])
        self.stopped_ = False
        self.elapsed_ = 0.0
        self.episodes_ = 0
        if self.lr_schedule == "cosine":
            self.initial_lrs_ = [group["lr"] for group in self._param_groups(net)]
        self._start = time.perf_counter()

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if not training:
            return
        self.episodes_ += len(batch[0])
        elapsed = time.perf_counter() - self._start
        if self.lr_schedule == "cosine":
            factor = (1 + math.cos(math.pi * min(elapsed / self.seconds_, 1.0))) / 2
            for group, lr in zip(self._param_groups(net), self.initial_lrs_):
                group["lr"] = lr * factor
        if elapsed < self.seconds_:
            return
        self.stopped_ = True
        self._close_epoch(net)
        if net.verbose:
            self.sink(
                f"Stopping since the time budget of {self.seconds_:g} s is spent "
                f"({elapsed:.1f} s): {self.episodes_} episodes trained, in epoch "
                f"{net.history[-1, 'epoch']} of {net.max_epochs}."
            )
        raise KeyboardInterrupt

    def on_train_end(self, net, **kwargs):
        self.elapsed_ = time.perf_counter() - self._start

    @staticmethod
    def _param_groups(net):
        """The parameter groups of all the net's optimizers, in a fixed order."""
        return [
            group for name in net._optimizers for group in getattr(net, name + "_").param_groups
        ]

    @staticmethod
    def _close_epoch(net):
        """Sum up the meta-batches of the epoch being cut short in its history row."""
        history = net.history
        for _, callback in net.callbacks_:
            if isinstance(callback, _BATCH_SUMMARIES):
                callback.on_epoch_end(net)
        history.record("train_batch_count", len(history[-1, "batches"]))
        history.record("time_budget_stopped", True)


class DistributedMetaBatch(Callback):
    """Split each training meta-batch across the processes of :mod:`torch.distributed`.

    Meta-training data-parallel, over processes on one machine or many
    (started by ``torchrun``, see :doc:`/scaling`), as one process would
    train with the same meta-batch:

    * every process draws the whole meta-batch from the same episode
      stream (rank 0's random generator, sent to the others when training
      begins, as are rank 0's weights), then trains on its share of the
      episodes: process ``r`` of ``W`` takes episodes ``r``, ``r + W``, ...;
    * each episode's gradient is divided by the size of the whole
      meta-batch, and the gradients are summed over the processes
      (``all_reduce``) before the meta-update: every process takes the
      step a single process takes with the mean over the meta-batch (equal
      to float rounding, the sums being made in another order; an adaptive
      optimizer such as Adam may turn the rounding noise of a coordinate
      whose gradient is nearly zero into a step of another size), and the
      weights stay the same on every process;
    * the episodes' losses and outputs are gathered, so that every
      process records the same ``train_loss`` and ``train_acc`` as a
      single process, and callbacks see the whole meta-batch;
    * buffers (batch-norm running statistics) are set to rank 0's after
      every meta-update, as :class:`~torch.nn.parallel.DistributedDataParallel`
      does: a process updates them with its share of the episodes only, so
      they differ from a single process's (the gradients do not);
    * only rank 0 prints: the other processes train with ``verbose=0``.

    Validation (``train_split``) is not split: every process scores all
    the validation episodes, with the same weights, so that decisions made
    on them (:class:`~skorch.callbacks.EarlyStopping`, checkpoints) are the
    same everywhere. Without an initialised process group (a plain
    ``python script.py``), the callback does nothing: the learner trains
    in this process as without it, bit for bit.

    Every process must fit the same data, with the same learner parameters
    and callbacks. The processes check, when training begins, that their
    learners and labels agree, and at the first meta-batch of every epoch,
    that they drew the same episodes, and raise a ValueError naming the
    difference rather than wait for each other forever.
    :class:`TimeBudget` is refused (each process would stop by its own
    clock). Random numbers drawn by the module in training (dropout) come
    from each process's own torch generator, so a module that draws them
    trains as well, but not to a single process's weights.

    See Also
    --------
    torch.nn.parallel.DistributedDataParallel : Data parallelism for
        mini-batches of samples.

    Notes
    -----
    Every process reads the samples of the whole meta-batch and computes
    the forward and backward passes of its share: the split pays when the
    episodes' computation dominates (a convolutional encoder, MAML's inner
    loop), not the reading of their samples.

    Examples
    --------
    >>> from skfewshot.callbacks import DistributedMetaBatch
    >>> from skfewshot.meta import MAMLLearner
    >>> learner = MAMLLearner(meta_batch_size=32, random_state=0,
    ...                       callbacks=[DistributedMetaBatch()])

    Run the script that fits it with ``torchrun --nproc-per-node=4 train.py``,
    after ``torch.distributed.init_process_group()``; see :doc:`/scaling`.
    """

    def initialize(self):
        self.active_ = False
        self.rank_, self.world_size_ = 0, 1
        self.verbose_ = None  # the learner's verbose, on the processes silenced in training
        self.epoch_checked_ = False
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        from .meta import EpisodicLearner  # here: the meta-learners import this module

        owner = type(self).__name__
        if not isinstance(net, EpisodicLearner):
            raise TypeError(
                f"{owner} splits the meta-batches of a meta-learner (skfewshot.meta); it "
                f"cannot train a {type(net).__name__}. Use torch's DistributedDataParallel "
                "for other nets."
            )
        self.active_ = False
        if not _distributed.initialized():
            launched = _distributed.launched_world_size()
            if launched > 1:
                raise RuntimeError(
                    f"{owner}: this process is one of WORLD_SIZE={launched} processes (as "
                    "torchrun starts them), but torch.distributed is not initialised, so "
                    "each process would train alone. Call torch.distributed."
                    "init_process_group() before fit (backend 'gloo' on CPUs, 'nccl' on "
                    "GPUs), and destroy_process_group() at the end."
                )
            return
        self.rank_, self.world_size_ = _distributed.rank_and_world_size()
        summaries = _distributed.all_gather(self._summary(net, y))
        if any(summary.pop("TimeBudget") for summary in summaries):
            raise ValueError(
                f"{owner} cannot be used with TimeBudget: each process would stop by its own "
                "clock, after a different meta-batch, and the others would wait for it "
                "forever. Bound the training with max_epochs (and episodes_per_epoch) instead."
            )
        differing = [key for key in summaries[0] if len({repr(s[key]) for s in summaries}) > 1]
        if differing:
            detail = "; ".join(
                f"{key}: " + ", ".join(f"rank {r}: {s[key]!r}" for r, s in enumerate(summaries))
                for key in differing
            )
            raise ValueError(
                f"{owner}: the processes do not train the same learner on the same data "
                f"({detail}). Run the same script, with the same data and parameters, in "
                "every process."
            )
        # Rank 0's episode stream and weights, on every process.
        rng = getattr(net, "_train_rng_", None)
        seeds = _distributed.broadcast_object(
            {
                "train_rng": rng.get_state() if isinstance(rng, np.random.RandomState) else None,
                "valid_seed": getattr(net, "_valid_seed_", None),
            }
        )
        if seeds["train_rng"] is not None:
            rng.set_state(seeds["train_rng"])
        if seeds["valid_seed"] is not None:
            net._valid_seed_ = seeds["valid_seed"]
        _distributed.broadcast_state(net)
        if self.rank_ != 0:
            self.verbose_, net.verbose = net.verbose, 0
        self.active_ = True
        self.epoch_checked_ = False

    def on_epoch_begin(self, net, **kwargs):
        self.epoch_checked_ = False

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if not (self.active_ and training) or self.epoch_checked_:
            return
        self.epoch_checked_ = True
        episodes = batch[0]
        digest = hashlib.sha256()
        for episode in episodes:
            for tensor in (episode.support, episode.support_labels, episode.query):
                tensor = tensor.detach().cpu().contiguous()
                digest.update(repr((tuple(tensor.shape), str(tensor.dtype))).encode())
                digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
        drawn = _distributed.all_gather((len(net.history), len(episodes), digest.hexdigest()))
        if len(set(drawn)) > 1:
            detail = ", ".join(
                f"rank {r}: epoch {epoch}, {n} episodes, sha256 {fingerprint[:12]}"
                for r, (epoch, n, fingerprint) in enumerate(drawn)
            )
            raise ValueError(
                f"{type(self).__name__}: the processes drew different training episodes "
                f"({detail}). Every process must fit the same X and y with the same "
                "parameters; a run resumed from checkpoints needs the same checkpoint in "
                "every process (a ResumableCheckpoint folder per process)."
            )

    def on_train_end(self, net, **kwargs):
        if self.verbose_ is not None:
            net.verbose, self.verbose_ = self.verbose_, None
        self.active_ = False

    # -- the meta-learner's side (EpisodicLearner's training step) ---------------------------

    def _share(self, episodes, targets):
        """This process's ``(episode, query_labels)`` pairs of a training meta-batch."""
        return _distributed.share(zip(episodes, targets), self.rank_, self.world_size_)

    def _gather(self, losses, y_preds, device):
        """Every process's episode losses and outputs, in the meta-batch's order, on
        ``device``."""
        mine = [
            (_distributed.to_device(loss, "cpu"), _distributed.to_device(y_pred, "cpu"))
            for loss, y_pred in zip(losses, y_preds)
        ]
        gathered = _distributed.interleave(_distributed.all_gather(mine))
        device = losses[0].device if losses else torch.device(device or "cpu")
        return (
            [_distributed.to_device(loss, device) for loss, _ in gathered],
            [_distributed.to_device(y_pred, device) for _, y_pred in gathered],
        )

    def _synchronize(self, net):
        """Sum the gradients over the processes and take rank 0's buffers, before the
        meta-update."""
        _distributed.sum_gradients(net)
        _distributed.broadcast_buffers(net)

    @staticmethod
    def _summary(net, y):
        """What must agree between the processes, when training begins."""
        labels = None
        if y is not None:
            classes, counts = np.unique(np.asarray(y), return_counts=True)
            text = repr((classes.tolist(), counts.tolist())).encode()
            labels = f"{len(y)} labels, sha256 {hashlib.sha256(text).hexdigest()[:12]}"
        weights = sum(p.numel() for p in _distributed.learnable(net))
        return {
            "learner": type(net).__name__,
            "meta_batch_size": net.meta_batch_size,
            "episodes_per_epoch": net.episodes_per_epoch,
            "max_epochs": net.max_epochs,
            "labels": labels,
            "weights": weights,
            "TimeBudget": any(isinstance(c, TimeBudget) for _, c in net.callbacks_),
        }


# What a checkpoint holds besides the weights: the file names, and its format.
_MANIFEST = "manifest.json"
_STATE = "state.pt"
_FORMAT = 1

# The state of skorch's own callbacks that the next epochs read (besides the
# schedules of LRScheduler callbacks, saved whole): by callback type.
_CALLBACK_STATE = (
    (PassthroughScoring, ("best_score_",)),
    (ScoringBase, ("best_score_",)),
    (EarlyStopping, ("misses_", "dynamic_threshold_", "best_epoch_")),
    (LRScheduler, ("batch_idx_",)),
)


class ResumableCheckpoint(Checkpoint):
    """Checkpoint everything meta-training needs, and resume from it: kill-and-resume.

    A skorch :class:`~skorch.callbacks.Checkpoint` that is also its own
    :class:`~skorch.callbacks.LoadInitState`. At the end of every epoch (or
    of the epochs ``monitor`` picks) and at the end of training it saves the
    run to ``dirname``; when training starts, it restores the latest
    complete checkpoint found there. Run the same script again after a kill
    (a crash, an out-of-memory kill, a pre-empted machine, Ctrl+C) and
    ``fit`` continues where the run stopped: the learner ends with the
    weights an uninterrupted run with the same ``random_state`` ends with,
    bit for bit on CPU, and a history of ``max_epochs`` epochs.

    **What is saved.** A checkpoint is a folder, ``dirname/epoch-000012``
    (``fn_prefix`` before ``epoch``), with the weights (``params.pt``), the
    optimizer's state, with its learning rates (``optimizer.pt``), the
    criterion (``criterion.pt``), the history (``history.json``) and, in
    ``state.pt``, the state of the episode stream (the random generator the
    training episodes, batches and augmentations are drawn with, and the
    seed of the validation episodes), torch's random state (dropout, ...),
    the schedules of :class:`~skorch.callbacks.LRScheduler` callbacks and
    the counters of skorch's scoring callbacks and
    :class:`~skorch.callbacks.EarlyStopping`. It is taken between two
    epochs, once every callback has ended the epoch, so that it holds
    exactly the state the next epoch starts from.

    **Atomic.** Each checkpoint is written to a temporary folder beside it
    (``.tmp-<process id>-epoch-000012``), then renamed into place, so a
    checkpoint folder is always complete; a kill while writing leaves the
    temporary folder, which the next run deletes. ``manifest.json``,
    written last, holds the SHA-256 checksum of every file. The ``keep``
    most recent checkpoints are kept.

    **Resuming.** When training starts (at the first ``fit`` or
    ``partial_fit`` after the learner's initialisation, as with skorch's
    ``LoadInitState``), the latest checkpoint whose files match their
    checksums is restored, and ``max_epochs`` counts its epochs: a run
    saved after 3 epochs of 5 trains 2 more. A corrupt latest checkpoint (a
    truncated or changed file) is moved aside to ``.corrupt-epoch-000012``
    with a warning, and the one before it is restored; if checkpoints exist
    but none can be read, ``fit`` raises a ValueError rather than start
    from scratch. With no checkpoint in ``dirname``, training starts from
    scratch.

    So ``fit`` *continues* the run saved in ``dirname`` (where it would
    normally start over): calling it again after a run has ended returns
    the trained learner without training, or trains the epochs that a
    larger ``max_epochs`` adds. A run that
    :class:`~skorch.callbacks.EarlyStopping` stopped is over: ``fit``
    restores it and trains no further; a run interrupted otherwise (Ctrl+C,
    a kill, an exception) resumes from its last checkpoint. To start over, delete ``dirname`` or
    pass another one. Use one ``dirname`` per run (not one for the clones
    of a grid search), with the learner's parameters unchanged: restoring
    weights of another shape raises a ValueError.

    Parameters
    ----------
    dirname : str or path-like
        The folder of the run's checkpoints (created if needed).
    monitor : None, str or callable, default=None
        When to checkpoint, as in :class:`~skorch.callbacks.Checkpoint`:
        None at the end of every epoch, a history key (e.g.
        ``"valid_acc_best"``) at the epochs where it is true, or a callable
        ``monitor(net) -> bool``, e.g. every 5 epochs: ``lambda net:
        len(net.history) % 5 == 0``. The end of training is always
        checkpointed. A kill loses the epochs since the last checkpoint,
        which the resumed run trains again (to the same weights).
    keep : int, default=2
        Checkpoints kept (the most recent ones; at least 1). With 2 or more,
        a corrupt latest checkpoint falls back to an earlier one.
    fn_prefix : str, default=""
        Prefix of the checkpoint folders' names.
    event_name : str or None, default="event_cp"
        The history column recording, at every epoch, whether it was
        checkpointed (as in :class:`~skorch.callbacks.Checkpoint`).
    sink : callable, default=skorch.utils.noop
        Where the messages on saving and resuming go (e.g. ``print``).

    Attributes
    ----------
    resumed_from_ : str or None
        The checkpoint folder restored by the last training run, or None.

    See Also
    --------
    skorch.callbacks.Checkpoint : Save the weights, optimizer and history.
    skorch.callbacks.LoadInitState : Load a checkpoint when training starts.

    Notes
    -----
    skorch's ``net.load_params(checkpoint=cp)`` and ``LoadInitState(cp)``
    also read the latest complete checkpoint of a ResumableCheckpoint
    ``cp`` (its weights, optimizer, criterion and history, not the rest).

    State that skorch's callbacks keep outside the history and the list
    above is not saved: e.g. the best weights that
    ``EarlyStopping(load_best=True)`` holds in memory, and the clock of
    :class:`TimeBudget`, which starts a new budget at every ``fit`` (a run
    it stopped in the middle of an epoch resumes from the last complete
    epoch).

    Examples
    --------
    >>> from skfewshot.callbacks import ResumableCheckpoint
    >>> from skfewshot.meta import PrototypicalLearner
    >>> learner = PrototypicalLearner(max_epochs=30, random_state=0,
    ...                               callbacks=[ResumableCheckpoint("run1")])

    Run ``learner.fit(X, y)``; after a kill, the same two lines and
    ``fit(X, y)`` again continue the run from its last checkpoint in
    ``run1/``.
    """

    # skorch's file names inside a checkpoint folder (class attributes: not
    # parameters of this callback).
    f_params = "params.pt"
    f_optimizer = "optimizer.pt"
    f_criterion = "criterion.pt"
    f_history = "history.json"
    f_pickle = None
    load_best = False
    use_safetensors = False

    _parameter_constraints = {
        "dirname": Instance((str, os.PathLike), label="str or path-like"),
        "keep": Integer(1),
        "fn_prefix": Instance(str),
    }

    def __init__(
        self, dirname, *, monitor=None, keep=2, fn_prefix="", event_name="event_cp", sink=noop
    ):
        # Not Checkpoint.__init__: its f_* and other arguments are fixed here.
        self.dirname = dirname
        self.monitor = monitor
        self.keep = keep
        self.fn_prefix = fn_prefix
        self.event_name = event_name
        self.sink = sink

    # -- skorch's hooks -----------------------------------------------------

    def initialize(self):
        check_params(self)
        if not os.fspath(self.dirname):
            raise ValueError(
                f"{type(self).__name__}: dirname must name a folder, got {self.dirname!r}."
            )
        super().initialize()  # creates the folder
        self.loaded_ = False  # as LoadInitState: restore once per initialisation
        self.resumed_from_ = None
        self.restore_ = None  # what is restored once every callback has begun training
        self.pending_ = None  # the epochs of the checkpoint due at the next epoch's begin
        self.ended_ = None  # the epochs at the end of the last epoch this callback ended
        self.deferring_ = False
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        vars(net).pop("_epochs_left_", None)  # left by a run that failed to start
        self.pending_ = self.ended_ = None  # left by a run that ended in an error
        if self.loaded_:
            return
        self.loaded_ = True
        self.resumed_from_ = None
        remove_abandoned_temporaries(self._dirname(), self._names())
        found, unreadable = self._find()
        if found is None:
            if unreadable:
                reasons = "; ".join(f"{os.path.basename(f)}: {reason}" for f, reason in unreadable)
                raise ValueError(
                    f"{type(self).__name__}: no checkpoint in {self._dirname()!r} can be read, "
                    f"so the run cannot resume ({reasons}). Delete the folder, or pass another "
                    "dirname, to start over."
                )
            return
        folder = found[0]
        for bad, reason in unreadable:
            aside = self._move_aside(bad)
            warnings.warn(
                f"{type(self).__name__}: the checkpoint {bad} is corrupt ({reason}); resuming "
                f"from the one before it, {folder}, instead. The corrupt checkpoint was moved "
                f"to {aside}.",
                UserWarning,
                stacklevel=2,
            )
        self._restore(net, *found)

    def on_epoch_begin(self, net, **kwargs):
        if self.restore_ is not None:
            self._finish_restore(net)
        if self.pending_ is not None:
            epochs, self.pending_ = self.pending_, None
            self._save(net, epochs)

    def on_epoch_end(self, net, **kwargs):
        # skorch's Checkpoint decides (monitor) and records event_name, then calls
        # save_model, which only notes the checkpoint as due: it is taken when the next
        # epoch begins (or training ends), once every callback has ended this epoch
        # (a learning-rate schedule after this callback has stepped, ...).
        self.deferring_ = True
        try:
            super().on_epoch_end(net, **kwargs)
        finally:
            self.deferring_ = False
        self.ended_ = len(net.history)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        if self.restore_ is not None:  # nothing was left to train
            self._finish_restore(net)
        self.pending_ = None
        epochs, self.ended_ = self.ended_, None
        if epochs is None or epochs != len(net.history):
            return
        stopped = epochs < net.max_epochs
        # skorch ends training the same way for an early stop and for Ctrl+C (both are a
        # KeyboardInterrupt): the end is checkpointed as final only when an early stopping
        # callback stopped the run. An interrupted run resumes from its last checkpoint (its
        # end may have missed some callbacks' epoch end, e.g. a learning-rate step).
        if not stopped or _stopped_early(net):
            self._save(net, epochs, stopped=stopped)

    def save_model(self, net):
        """Save a checkpoint of ``net`` now, atomically, as of its ``len(net.history)`` epochs.

        Parameters
        ----------
        net : skfewshot.meta.EpisodicLearner
            The learner (initialised).
        """
        if getattr(self, "deferring_", False):
            self.pending_ = len(net.history)
            return
        self._save(net, len(net.history))

    # skorch's load_params(checkpoint=...) and LoadInitState read these.

    @property
    def f_history_(self):
        return os.path.join(self._latest_folder(), self.f_history)

    def get_formatted_files(self, net):
        folder = self._latest_folder()
        return {
            key: None if name is None else os.path.join(folder, name)
            for key, name in self._f_kwargs().items()
        }

    # -- the checkpoints of the folder --------------------------------------

    def _dirname(self):
        return os.fspath(self.dirname)

    def _names(self):
        """The regular expression of the checkpoint folders' names."""
        return re.escape(self.fn_prefix) + r"epoch-(\d+)"

    def _checkpoints(self):
        """The checkpoint folders, as (epochs, path), oldest first."""
        try:
            entries = os.listdir(self._dirname())
        except OSError:
            return []
        names = re.compile(self._names())
        return sorted(
            (int(match.group(1)), os.path.join(self._dirname(), entry))
            for entry in entries
            if (match := names.fullmatch(entry))
        )

    def _find(self):
        """The latest readable checkpoint ``(folder, manifest, history, state)`` (or None),
        and the ``(folder, reason)`` of the later ones that cannot be read."""
        unreadable = []
        for _, folder in reversed(self._checkpoints()):
            try:
                return (folder, *_read(folder)), unreadable
            except Exception as exc:  # whatever a damaged file raises
                unreadable.append((folder, f"{type(exc).__name__}: {exc}"))
        return None, unreadable

    def _latest_folder(self):
        found, _ = self._find()
        if found is None:  # where skorch then finds no file
            return os.path.join(self._dirname(), f"{self.fn_prefix}epoch-none")
        return found[0]

    def _move_aside(self, folder):
        parent, name = os.path.split(folder)
        aside = os.path.join(parent, f".corrupt-{name}")
        remove(aside)
        os.replace(folder, aside)
        return aside

    @staticmethod
    def _discard(folder):
        """Delete a checkpoint folder: renamed away first, so that it never is half there."""
        doomed = temporary_path(folder)
        remove(doomed)
        os.replace(folder, doomed)
        remove(doomed)

    # -- saving -------------------------------------------------------------

    def _modules(self, net):
        """skorch's ``f_*`` arguments for the net's modules, criteria and optimizers."""
        files = {}
        for name in [*net._modules, *net._criteria, *net._optimizers]:
            key = "f_params" if name == "module" else f"f_{name}"
            files[key] = getattr(self, key, None) or f"{name}.pt"
        return files

    def _save(self, net, epochs, *, stopped=False):
        """Write the checkpoint of the first ``epochs`` epochs: a folder, renamed into place."""
        target = os.path.join(self._dirname(), f"{self.fn_prefix}epoch-{epochs:06d}")
        modules = self._modules(net)

        def write(folder):
            os.mkdir(folder)
            net.save_params(**{key: os.path.join(folder, name) for key, name in modules.items()})
            with open(os.path.join(folder, self.f_history), "w", encoding="utf-8") as f:
                json.dump(list(net.history)[:epochs], f)
            torch.save(self._state(net), os.path.join(folder, _STATE))
            files = [*modules.values(), self.f_history, _STATE]
            manifest = {
                "format": _FORMAT,
                "learner": type(net).__name__,
                "epochs": epochs,
                "stopped": bool(stopped),
                "modules": modules,
                "history": self.f_history,
                "state": _STATE,
                "files": {name: _sha256(os.path.join(folder, name)) for name in files},
            }
            with open(os.path.join(folder, _MANIFEST), "w", encoding="utf-8") as f:
                json.dump(manifest, f, indent=1)

        try:
            if os.path.lexists(target):  # a checkpoint of a run resumed from before it
                self._discard(target)
            write_atomically(target, write)
        except Exception as exc:  # a full disk must not end a long training
            warnings.warn(
                f"{type(self).__name__}: could not save the checkpoint of epoch {epochs} to "
                f"{target} ({type(exc).__name__}: {exc}); the previous checkpoint stays the "
                "latest.",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        for _, folder in self._checkpoints()[: -self.keep]:
            try:
                self._discard(folder)
            except OSError:
                pass
        self._sink(f"Saved the checkpoint of epoch {epochs} to {target}.", net.verbose)

    def _state(self, net):
        """The random states and the callbacks' counters, as torch.load reads them back with
        ``weights_only=True``."""
        rng = getattr(net, "_train_rng_", None)
        train_rng = None
        if isinstance(rng, np.random.RandomState):
            _, keys, position, has_gauss, cached_gaussian = rng.get_state()
            train_rng = {
                "keys": torch.from_numpy(keys.astype(np.int64)),
                "position": int(position),
                "has_gauss": int(has_gauss),
                "cached_gaussian": float(cached_gaussian),
            }
        valid_seed = getattr(net, "_valid_seed_", None)
        callbacks = {}
        for name, callback in net.callbacks_:
            state = {
                attribute: _plain(getattr(callback, attribute))
                for types, attributes in _CALLBACK_STATE
                if isinstance(callback, types)
                for attribute in attributes
                if hasattr(callback, attribute)
            }
            schedule = getattr(callback, "lr_scheduler_", None)
            if hasattr(schedule, "state_dict"):
                state["lr_scheduler_"] = _plain(schedule.state_dict())
            if state and callback is not self:
                callbacks[name] = {"type": type(callback).__name__, "state": state}
        return {
            "train_rng": train_rng,
            "valid_seed": None if valid_seed is None else int(valid_seed),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if _on_cuda(net) else None,
            "callbacks": callbacks,
        }

    # -- restoring ----------------------------------------------------------

    def _restore(self, net, folder, manifest, history, state):
        """Restore the weights, optimizer, history and seeds now (training begins), and
        note what the first epoch's begin restores (the rest)."""
        owner = type(self).__name__
        if manifest["learner"] != type(net).__name__:
            raise ValueError(
                f"{owner}: the checkpoint {folder} is of a {manifest['learner']}, not of this "
                f"{type(net).__name__}; pass another dirname to start a new run."
            )
        net.history = History(history)
        try:
            net.load_params(
                **{key: os.path.join(folder, name) for key, name in manifest["modules"].items()}
            )
        except Exception as exc:
            raise ValueError(
                f"{owner}: the checkpoint {folder} does not fit this {type(net).__name__} "
                f"({type(exc).__name__}: {exc}). A run resumes with the parameters it was "
                "started with; pass another dirname to start a new run."
            ) from exc
        if state["valid_seed"] is not None and hasattr(net, "_valid_seed_"):
            net._valid_seed_ = state["valid_seed"]  # read when the validation loader is made
        epochs = len(history)
        left = 0 if manifest["stopped"] else max(net.max_epochs - epochs, 0)
        if epochs > net.max_epochs and not manifest["stopped"]:
            warnings.warn(
                f"{owner}: the checkpoint {folder} holds {epochs} epochs, more than "
                f"max_epochs={net.max_epochs}: the learner is restored without training.",
                UserWarning,
                stacklevel=2,
            )
        # Read by EpisodicLearner.fit_loop: max_epochs counts the restored epochs.
        net._epochs_left_ = left
        # The optimizer again when the first epoch begins: a learning-rate schedule made
        # after this callback began training has set its rates from the history.
        optimizers = {
            name: copy.deepcopy(getattr(net, name + "_").state_dict()) for name in net._optimizers
        }
        self.restore_ = {"optimizers": optimizers, "state": state}
        self.resumed_from_ = folder
        self._sink(f"Resuming from {folder}: {epochs} epochs done, {left} to train.", net.verbose)

    def _finish_restore(self, net):
        """Restore what the next epoch starts from, once every callback has begun training."""
        restore, self.restore_ = self.restore_, None
        for name, state_dict in restore["optimizers"].items():
            getattr(net, name + "_").load_state_dict(state_dict)
        state = restore["state"]
        rng = getattr(net, "_train_rng_", None)
        if state["train_rng"] is not None and isinstance(rng, np.random.RandomState):
            saved = state["train_rng"]
            rng.set_state(
                (
                    "MT19937",
                    saved["keys"].numpy().astype(np.uint32),
                    saved["position"],
                    saved["has_gauss"],
                    saved["cached_gaussian"],
                )
            )
        torch.set_rng_state(state["torch_rng"])
        cuda_rng = state["cuda_rng"]
        if cuda_rng is not None and _on_cuda(net) and len(cuda_rng) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_rng)
        saved_callbacks = state["callbacks"]
        for name, callback in net.callbacks_:
            saved = saved_callbacks.get(name)
            if saved is None or saved["type"] != type(callback).__name__:
                continue
            for attribute, value in saved["state"].items():
                if attribute == "lr_scheduler_":
                    if getattr(callback, "lr_scheduler_", None) is not None:
                        callback.lr_scheduler_.load_state_dict(value)
                else:
                    setattr(callback, attribute, value)


def _stopped_early(net):
    """Whether an :class:`~skorch.callbacks.EarlyStopping` of ``net`` has stopped its training."""
    return any(
        isinstance(callback, EarlyStopping) and getattr(callback, "misses_", 0) >= callback.patience
        for _, callback in getattr(net, "callbacks_", [])
    )


def _read(folder):
    """The manifest, history and state of a checkpoint folder, its files checked first."""
    with open(os.path.join(folder, _MANIFEST), encoding="utf-8") as f:
        manifest = json.load(f)
    if manifest.get("format") != _FORMAT:
        raise ValueError(f"unknown checkpoint format {manifest.get('format')!r}")
    for name, digest in manifest["files"].items():
        if _sha256(os.path.join(folder, name)) != digest:
            raise ValueError(f"{name} does not match its checksum (truncated or changed)")
    with open(os.path.join(folder, manifest["history"]), encoding="utf-8") as f:
        history = json.load(f)
    if len(history) != manifest["epochs"]:
        raise ValueError(f"the history has {len(history)} epochs, not {manifest['epochs']}")
    path = os.path.join(folder, manifest["state"])
    state = torch.load(path, map_location="cpu", weights_only=True)
    return manifest, history, state


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain(value):
    """``value`` with NumPy scalars as Python numbers (torch.load with ``weights_only``)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_plain(item) for item in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _on_cuda(net):
    device = getattr(net, "device", None)
    return device is not None and torch.device(device).type == "cuda" and torch.cuda.is_available()
