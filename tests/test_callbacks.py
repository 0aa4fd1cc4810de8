"""TimeBudget: meta-training stops once its wall-clock budget is spent."""

import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from methods import tiny_learner
from skorch.callbacks import ProgressBar

import skfewshot.callbacks as callbacks_module
from skfewshot import PrototypicalClassifier
from skfewshot.callbacks import TimeBudget
from skfewshot.meta import ValidClassSplit


@pytest.fixture
def fake_clock(monkeypatch):
    """A clock that advances by one second at every reading, in the callbacks' module."""
    readings = iter(range(10**6))
    monkeypatch.setattr(
        callbacks_module, "time", SimpleNamespace(perf_counter=lambda: float(next(readings)))
    )


def budget_learner(budget, **params):
    return tiny_learner(
        "prototypical", max_epochs=1000, episodes_per_epoch=5, callbacks=[budget], **params
    )


def test_stops_after_the_budget_in_wall_clock_time(digits):
    X, y = digits
    budget = TimeBudget(0.5)
    learner = budget_learner(budget)
    start = time.perf_counter()
    learner.fit(X, y)
    seconds = time.perf_counter() - start
    assert budget.stopped_ and 0.5 <= budget.elapsed_ < seconds
    assert seconds < 0.5 + 10  # no tight timing: stopped at all, well before 1000 epochs
    assert len(learner.history) < 1000
    assert learner.history[-1, "time_budget_stopped"] is True
    # Usable as a fitted learner.
    assert 0 <= learner.score(X, y, n_episodes=5) <= 1
    clf = learner.to_classifier()
    assert isinstance(clf, PrototypicalClassifier)
    assert 0 <= clf.fit(X[:30], y[:30]).score(X[30:60], y[30:60]) <= 1


def test_stops_within_an_epoch_with_a_consistent_history(digits, fake_clock):
    # One clock reading at the start, one per training meta-batch: the 7th meta-batch
    # ends 7 "seconds" in, in the 2nd epoch of 5.
    X, y = digits
    budget = TimeBudget(7)
    learner = budget_learner(budget).fit(X, y)
    history = learner.history
    assert budget.stopped_ and budget.episodes_ == 7
    assert history[:, "epoch"] == [1, 2]
    assert history[:, "train_batch_count"] == [5, 2]
    assert len(history[-1, "batches"]) == 2
    # The interrupted epoch is summed up as a full one is.
    losses = history[-1, "batches", :, "train_loss"]
    assert history[-1, "train_loss"] == pytest.approx(np.mean(losses))
    for key in ("train_loss", "train_acc", "dur"):
        assert len(history[:, key]) == 2
    assert history[-1, "time_budget_stopped"] is True
    assert "time_budget_stopped" not in history[0]
    assert budget.elapsed_ == 8  # the 8th reading, at the end of training


def test_counts_the_episodes_of_meta_batches(digits, fake_clock):
    # 5 episodes per epoch in meta-batches of 2, 2 and 1: the 4th meta-batch is the
    # 2nd epoch's first.
    X, y = digits
    budget = TimeBudget(4)
    learner = budget_learner(budget, meta_batch_size=2).fit(X, y)
    assert budget.episodes_ == 5 + 2
    assert learner.history[:, "train_batch_count"] == [3, 1]


def test_validation_neither_counts_nor_runs_in_the_interrupted_epoch(digits, fake_clock):
    X, y = digits
    budget = TimeBudget(7)
    learner = budget_learner(
        budget, train_split=ValidClassSplit(0.3, random_state=0), valid_episodes=3
    ).fit(X, y)
    history = learner.history
    assert history[:, "train_batch_count"] == [5, 2]  # validation batches read no clock
    assert history[0, "valid_batch_count"] == 3 and "valid_loss" in history[0]
    assert "valid_loss" not in history[-1] and "valid_acc" not in history[-1]
    assert len(history[:, "valid_acc"]) == 1


def test_closes_the_progress_bar_of_the_interrupted_epoch(digits, fake_clock):
    X, y = digits
    bar = ProgressBar()
    learner = tiny_learner(
        "prototypical",
        max_epochs=1000,
        episodes_per_epoch=5,
        callbacks=[bar, TimeBudget(3)],
    ).fit(X, y)
    assert len(learner.history) == 1
    assert bar.pbar_.disable  # closed


def test_a_budget_shorter_than_one_meta_batch_trains_one(digits, fake_clock):
    X, y = digits
    budget = TimeBudget(1e-3)
    learner = budget_learner(budget).fit(X, y)
    assert budget.episodes_ == 1 and learner.history[:, "train_batch_count"] == [1]


def test_prints_one_line_when_verbose(digits, fake_clock, capsys):
    X, y = digits
    messages = []
    budget_learner(TimeBudget(3, sink=messages.append), verbose=0).fit(X, y)
    assert messages == []
    budget_learner(TimeBudget(3, sink=messages.append), verbose=1).fit(X, y)
    assert len(messages) == 1
    assert "time budget of 3 s" in messages[0] and "3 episodes" in messages[0]
    assert "\n" not in messages[0]


def test_partial_fit_starts_a_new_budget(digits, fake_clock):
    X, y = digits
    budget = TimeBudget(3)
    learner = budget_learner(budget).fit(X, y)
    assert len(learner.history) == 1
    learner.partial_fit(X, y)
    assert budget.stopped_ and budget.episodes_ == 3
    assert learner.history[:, "train_batch_count"] == [3, 3]


def test_an_unspent_budget_changes_nothing(digits):
    X, y = digits
    budget = TimeBudget(3600)
    with_budget = tiny_learner("prototypical", callbacks=[budget]).fit(X, y)
    without = tiny_learner("prototypical").fit(X, y)
    assert not budget.stopped_ and budget.episodes_ == 2 * 8
    assert len(with_budget.history) == len(without.history) == 2
    assert "time_budget_stopped" not in with_budget.history[-1]
    assert with_budget.history[:, "train_loss"] == without.history[:, "train_loss"]
    ours, theirs = with_budget.module_.state_dict(), without.module_.state_dict()
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name


@pytest.mark.parametrize("seconds", [0, -1, "a", True, None, float("inf"), float("nan")])
def test_bad_seconds_are_refused_at_fit(digits, seconds):
    X, y = digits
    learner = budget_learner(TimeBudget(seconds))
    with pytest.raises(ValueError, match="TimeBudget: seconds must be a positive number"):
        learner.fit(X, y)


def test_seconds_may_be_set_through_the_learner(digits, fake_clock):
    X, y = digits
    learner = budget_learner(TimeBudget(100))
    learner.set_params(callbacks__TimeBudget__seconds=2)
    learner.fit(X, y)
    assert learner.history[:, "train_batch_count"] == [2]


def test_cosine_schedule_anneals_the_learning_rate_over_the_budget(digits, fake_clock):
    # Readings: 0 at the start, then 1, 2, 3, 4 after the meta-batches: the rate set
    # after each follows the half cosine of the spent fraction, and ends at zero.
    X, y = digits
    seen = []

    class RecordLR(callbacks_module.Callback):
        def on_batch_begin(self, net, training=False, **kwargs):
            if training:
                seen.append(net.optimizer_.param_groups[0]["lr"])

    budget = TimeBudget(4, lr_schedule="cosine")
    learner = tiny_learner(
        "prototypical",
        max_epochs=1000,
        episodes_per_epoch=5,
        lr=0.01,
        callbacks=[RecordLR(), budget],
    ).fit(X, y)
    expected = [0.01 * (1 + np.cos(np.pi * t / 4)) / 2 for t in range(4)]
    assert seen == pytest.approx(expected)
    assert learner.optimizer_.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert budget.initial_lrs_ == [0.01]


def test_cosine_schedule_restarts_from_the_initial_rate_at_partial_fit(digits, fake_clock):
    X, y = digits
    budget = TimeBudget(3, lr_schedule="cosine")
    learner = budget_learner(budget, lr=0.01).fit(X, y)
    learner.set_params(lr=0.02)  # a new starting rate for the next run is honoured
    learner.partial_fit(X, y)
    assert budget.initial_lrs_ == [pytest.approx(0.02)]


def test_without_a_schedule_the_learning_rate_is_left_alone(digits, fake_clock):
    X, y = digits
    learner = budget_learner(TimeBudget(3), lr=0.01).fit(X, y)
    assert learner.optimizer_.param_groups[0]["lr"] == 0.01


def test_bad_schedule_is_refused_at_fit(digits):
    X, y = digits
    learner = budget_learner(TimeBudget(3, lr_schedule="linear"))
    with pytest.raises(ValueError, match="lr_schedule"):
        learner.fit(X, y)
