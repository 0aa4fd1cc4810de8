"""Callbacks for meta-training (skorch callbacks): :class:`TimeBudget`, to train for a set time."""

import math
import time

from skorch.callbacks import Callback, EpochTimer, PassthroughScoring, ProgressBar

from ._param_validation import Options, Positive
from ._validation import check_params

__all__ = ["TimeBudget"]

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
