"""Kill-and-resume (issue 14, observations 1 and 2): ResumableCheckpoint saves everything a
run needs, atomically, and a resumed run ends bit-identical to an uninterrupted one.

In process: a run of 2 epochs resumed by a new learner to 4 against 4 epochs straight,
learning-rate schedules and dropout, a corrupt latest checkpoint, early stopping. Across
processes: meta-training killed with SIGKILL at random points (inside a checkpoint's
writing among them), resumed in a new process until it ends.

Tiny and deterministic: digits 0-5 / 16, a 64-32-16 MLP, a few episodes per epoch.
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from methods import tiny_learner
from sklearn.base import clone
from skorch.callbacks import Callback, EarlyStopping, LRScheduler
from torch import nn

from skfewshot.callbacks import ResumableCheckpoint

ROOT = Path(__file__).resolve().parents[1]


def _weights(learner):
    return {name: tensor.clone() for name, tensor in learner.module_.state_dict().items()}


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    different = [name for name in a if not torch.equal(a[name], b[name])]
    assert different == [], f"weights differ: {different}"


def _checkpoints(folder):
    return sorted(entry.name for entry in Path(folder).iterdir())


# -- in process --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["prototypical", "maml", "pretraining"])
def test_a_resumed_run_ends_bit_identical_to_an_uninterrupted_one(name, base_novel, tmp_path):
    # Epoch 3 used to draw epoch 1's episodes again (the episode stream restarted from
    # random_state) and max_epochs counted new epochs (2 + 4 = 6).
    X, y, _, _ = base_novel
    whole = tiny_learner(name, max_epochs=4).fit(X, y)
    first = tiny_learner(name, max_epochs=2, callbacks=[ResumableCheckpoint(tmp_path)])
    assert len(first.fit(X, y).history) == 2
    resumed = tiny_learner(name, max_epochs=4, callbacks=[ResumableCheckpoint(tmp_path)])
    resumed.fit(X, y)

    assert len(resumed.history) == len(whole.history) == 4
    _assert_same_weights(_weights(resumed), _weights(whole))
    for key in ["train_loss", "train_acc", "train_loss_best", "train_acc_best"]:
        assert resumed.history[:, key] == whole.history[:, key], key
    checkpoint = dict(resumed.callbacks_)["ResumableCheckpoint"]
    assert checkpoint.resumed_from_ == str(tmp_path / "epoch-000002")
    assert _checkpoints(tmp_path) == ["epoch-000003", "epoch-000004"]  # keep=2

    # The run has ended: fit again restores it and trains nothing.
    again = tiny_learner(name, max_epochs=4, callbacks=[ResumableCheckpoint(tmp_path)])
    assert len(again.fit(X, y).history) == 4
    _assert_same_weights(_weights(again), _weights(whole))


@pytest.mark.parametrize("schedule_first", [True, False], ids=["schedule-first", "schedule-last"])
def test_learning_rate_schedule_and_torch_random_state_resume(schedule_first, base_novel, tmp_path):
    # Dropout draws from torch's random generator, and a cosine schedule steps the learning
    # rate at every epoch's end: both must continue as they would have, whichever callback
    # comes first.
    X, y, _, _ = base_novel
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 16))

    def learner(max_epochs, *callbacks):
        schedule = LRScheduler("CosineAnnealingLR", T_max=4)
        callbacks = [schedule, *callbacks] if schedule_first else [*callbacks, schedule]
        return tiny_learner(
            "prototypical",
            encoder_params={"encoder": encoder},
            max_epochs=max_epochs,
            callbacks=callbacks,
        )

    whole = learner(4).fit(X, y)
    learner(2, ResumableCheckpoint(tmp_path)).fit(X, y)
    resumed = learner(4, ResumableCheckpoint(tmp_path)).fit(X, y)

    _assert_same_weights(_weights(resumed), _weights(whole))
    assert resumed.history[:, "event_lr"] == whole.history[:, "event_lr"]
    assert resumed.optimizer_.param_groups[0]["lr"] == whole.optimizer_.param_groups[0]["lr"]
    assert resumed.history[:, "train_loss"] == whole.history[:, "train_loss"]


def test_a_corrupt_latest_checkpoint_falls_back_to_the_one_before(base_novel, tmp_path):
    X, y, _, _ = base_novel
    whole = tiny_learner("prototypical", max_epochs=4).fit(X, y)
    tiny_learner("prototypical", max_epochs=3, callbacks=[ResumableCheckpoint(tmp_path)]).fit(X, y)
    assert _checkpoints(tmp_path) == ["epoch-000002", "epoch-000003"]
    params = tmp_path / "epoch-000003" / "params.pt"
    params.write_bytes(params.read_bytes()[: params.stat().st_size // 2])  # truncated
    # A half-written checkpoint of a process killed while saving it.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    partial = tmp_path / f".tmp-{dead.pid}-epoch-000004"
    partial.mkdir()
    (partial / "params.pt").write_bytes(b"half")

    resumed = tiny_learner("prototypical", max_epochs=4, callbacks=[ResumableCheckpoint(tmp_path)])
    with pytest.warns(UserWarning, match=r"epoch-000003 is corrupt \(ValueError: params.pt"):
        resumed.fit(X, y)

    assert len(resumed.history) == 4
    _assert_same_weights(_weights(resumed), _weights(whole))
    names = [".corrupt-epoch-000003", "epoch-000003", "epoch-000004"]
    if os.name != "posix":  # where a dead writer cannot be told from a live one
        names.insert(0, partial.name)
    assert _checkpoints(tmp_path) == names


def test_no_readable_checkpoint_is_an_error_never_a_silent_restart(base_novel, tmp_path):
    X, y, _, _ = base_novel
    tiny_learner("prototypical", max_epochs=2, callbacks=[ResumableCheckpoint(tmp_path)]).fit(X, y)
    for manifest in tmp_path.glob("epoch-*/manifest.json"):
        manifest.write_text("{", encoding="utf-8")  # truncated
    learner = tiny_learner("prototypical", max_epochs=4, callbacks=[ResumableCheckpoint(tmp_path)])
    with pytest.raises(ValueError, match="no checkpoint in .* can be read.*JSONDecodeError"):
        learner.fit(X, y)


def test_a_checkpoint_of_another_learner_is_refused(base_novel, tmp_path):
    X, y, _, _ = base_novel
    tiny_learner("prototypical", max_epochs=1, callbacks=[ResumableCheckpoint(tmp_path)]).fit(X, y)
    wider = tiny_learner(
        "prototypical",
        max_epochs=2,
        encoder__out_features=8,
        callbacks=[ResumableCheckpoint(tmp_path)],
    )
    with pytest.raises(ValueError, match="does not fit this PrototypicalLearner"):
        wider.fit(X, y)
    with pytest.raises(ValueError, match="is of a PrototypicalLearner, not of this MAMLLearner"):
        tiny_learner("maml", callbacks=[ResumableCheckpoint(tmp_path)]).fit(X, y)


@pytest.mark.parametrize("stop_first", [True, False], ids=["stop-first", "stop-last"])
def test_a_run_stopped_early_stays_stopped(stop_first, base_novel, tmp_path):
    # The loss never beats the first epoch's by the (relative) threshold of 10: a stop
    # after epoch 2. Fit again: the same learner, whichever callback ends the epoch first.
    X, y, _, _ = base_novel

    def learner():
        stop = EarlyStopping(monitor="train_loss", patience=1, threshold=10.0)
        checkpoint = ResumableCheckpoint(tmp_path)
        callbacks = [stop, checkpoint] if stop_first else [checkpoint, stop]
        return tiny_learner("prototypical", max_epochs=10, callbacks=callbacks)

    first = learner().fit(X, y)
    assert len(first.history) == 2
    again = learner().fit(X, y)
    assert len(again.history) == 2
    _assert_same_weights(_weights(again), _weights(first))


class _CtrlC(Callback):
    """Ctrl+C once, at the end of epoch ``at``: after the callbacks before it have ended it."""

    def __init__(self, at):
        self.at = at

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("schedule_last", [True, False], ids=["before-schedule", "after-all"])
def test_ctrl_c_at_an_epoch_end_resumes_to_the_uninterrupted_weights(
    schedule_last, base_novel, tmp_path
):
    # skorch ends training alike for an early stop and for Ctrl+C (a KeyboardInterrupt):
    # a run interrupted after the checkpoint's end of epoch, before the learning-rate
    # schedule's step, used to be checkpointed as stopped, and its rerun trained nothing.
    X, y, _, _ = base_novel

    def learner(*ctrl_c):
        schedule = LRScheduler("CosineAnnealingLR", T_max=4)
        checkpoint = ResumableCheckpoint(tmp_path)
        if schedule_last:
            return tiny_learner(
                "prototypical", max_epochs=4, callbacks=[checkpoint, *ctrl_c, schedule]
            )
        return tiny_learner("prototypical", max_epochs=4, callbacks=[schedule, checkpoint, *ctrl_c])

    whole = tiny_learner(
        "prototypical", max_epochs=4, callbacks=[LRScheduler("CosineAnnealingLR", T_max=4)]
    ).fit(X, y)
    assert len(learner(_CtrlC(at=2)).fit(X, y).history) == 2
    resumed = learner().fit(X, y)
    assert len(resumed.history) == 4
    _assert_same_weights(_weights(resumed), _weights(whole))


def test_skorch_reads_the_latest_checkpoint_and_clones_the_callback(base_novel, tmp_path):
    X, y, _, _ = base_novel
    checkpoint = ResumableCheckpoint(tmp_path, keep=3)
    trained = tiny_learner("prototypical", max_epochs=3, callbacks=[checkpoint]).fit(X, y)
    assert _checkpoints(tmp_path) == ["epoch-000001", "epoch-000002", "epoch-000003"]
    fresh = tiny_learner("prototypical").initialize()
    fresh.load_params(checkpoint=checkpoint)
    _assert_same_weights(_weights(fresh), _weights(trained))
    assert len(fresh.history) == 3

    copy = clone(checkpoint)
    assert (copy.dirname, copy.keep, copy.monitor) == (tmp_path, 3, None)
    with pytest.raises(ValueError, match="keep must be an integer >= 1, got 0"):
        tiny_learner("prototypical", callbacks=[ResumableCheckpoint(tmp_path, keep=0)]).fit(X, y)


def test_a_folder_is_written_whole_or_not_at_all(tmp_path):
    from skfewshot._files import write_atomically

    def interrupted(path):
        os.mkdir(path)
        (Path(path) / "params.pt").write_text("half", encoding="utf-8")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(tmp_path / "epoch-000001", interrupted)
    assert list(tmp_path.iterdir()) == []

    def whole(path):
        os.mkdir(path)
        (Path(path) / "params.pt").write_text("whole", encoding="utf-8")

    write_atomically(tmp_path / "epoch-000001", whole)
    assert _checkpoints(tmp_path) == ["epoch-000001"]
    assert (tmp_path / "epoch-000001" / "params.pt").read_text(encoding="utf-8") == "whole"


# -- across processes: SIGKILL at random points -------------------------------------------

EPOCHS = 6  # the script's max_epochs; a checkpoint at every epoch, of 4 torch.save calls

SCRIPT = '''\
"""Meta-train a tiny learner, checkpointing every epoch; resume what DIRNAME holds."""

import sys
import time

import torch
from sklearn.datasets import load_digits
from skorch.callbacks import Callback

from skfewshot._files import write_atomically
from skfewshot.callbacks import ResumableCheckpoint
from skfewshot.meta import PrototypicalLearner
from skfewshot.nn import MLP

dirname, out, stall_at, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
torch.set_num_threads(1)
save, saves = torch.save, []


def slow_save(*args, **kwargs):
    """torch.save, then a pause: a kill at a random time often lands in a checkpoint."""
    save(*args, **kwargs)
    saves.append(None)
    if len(saves) - 1 == stall_at:  # one file of a checkpoint written, not the others
        print("stalled", flush=True)
        time.sleep(60)
    time.sleep(pause)


torch.save = slow_save


class Started(Callback):
    def on_train_begin(self, net, **kwargs):
        print("training", flush=True)


X, y = load_digits(return_X_y=True)
base = y < 6
learner = PrototypicalLearner(
    MLP,
    encoder__in_features=64,
    encoder__hidden_features=(32,),
    encoder__out_features=16,
    n_way=3,
    n_shot=2,
    n_query=3,
    episodes_per_epoch=8,
    max_epochs=6,
    random_state=0,
    verbose=0,
    callbacks=[Started(), ResumableCheckpoint(dirname)],
)
learner.fit(X[base] / 16, y[base])
result = {
    "weights": {name: tensor.clone() for name, tensor in learner.module_.state_dict().items()},
    "epochs": len(learner.history),
}
write_atomically(out, lambda path: save(result, path))
'''

_ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
}


def _run(script, dirname, out, log, *, stall_at=-1, pause=0.0, kill_after=None):
    """Run the script; SIGKILL it once it stalls inside a checkpoint's writing, or
    ``kill_after`` seconds after training begins. Returns its exit status."""
    command = [sys.executable, str(script), str(dirname), str(out), str(stall_at), str(pause)]
    with open(log, "a", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=_ENV
        )
        try:
            for line in iter(process.stdout.readline, ""):
                if line.strip() == "stalled":
                    process.kill()
                    break
                if line.strip() == "training" and kill_after is not None:
                    time.sleep(kill_after)
                    process.kill()  # nothing if it has ended
                    break
            return process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()


def _killed_and_resumed(script, folder, rng):
    """One trial: a kill inside a checkpoint's writing, a kill at a random time, then
    resumed to the end. The final weights and number of epochs."""
    folder.mkdir()
    dirname, out, log = folder / "checkpoints", folder / "weights.pt", folder / "stderr.txt"

    status = _run(script, dirname, out, log, stall_at=rng.randrange(4 * EPOCHS), pause=0.02)
    assert status == -signal.SIGKILL, log.read_text()
    assert any(entry.name.startswith(".tmp-") for entry in dirname.iterdir())  # half-written

    status = _run(script, dirname, out, log, pause=0.02, kill_after=rng.uniform(0, 0.5))
    assert status in (0, -signal.SIGKILL), log.read_text()
    if status != 0:
        assert _run(script, dirname, out, log) == 0, log.read_text()

    # No temporary left behind, no checkpoint ever found corrupt.
    assert all(name.startswith("epoch-") for name in _checkpoints(dirname))
    assert "corrupt" not in log.read_text()
    return torch.load(out, weights_only=True)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and process ids are POSIX")
def test_sigkill_at_random_points_then_resume_ends_bit_identical(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT, encoding="utf-8")
    rng = random.Random(14)
    reference_log = tmp_path / "reference.txt"
    with open(reference_log, "w", encoding="utf-8") as stderr:
        # The uninterrupted run, in the background while the trials run.
        command = [sys.executable, str(script), str(tmp_path / "reference")]
        command += [str(tmp_path / "reference.pt"), "-1", "0"]
        reference = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=_ENV)
        try:
            trials = [_killed_and_resumed(script, tmp_path / f"trial{i}", rng) for i in range(3)]
            assert reference.wait(timeout=120) == 0, reference_log.read_text()
        finally:
            if reference.poll() is None:
                reference.kill()
                reference.wait()

    expected = torch.load(tmp_path / "reference.pt", weights_only=True)
    assert expected["epochs"] == EPOCHS
    for trial in trials:
        assert trial["epochs"] == EPOCHS
        _assert_same_weights(trial["weights"], expected["weights"])
