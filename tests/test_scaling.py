"""Scale-out on existing engines: Dask (through joblib) and torch.distributed.

* Evaluation and searches over episodes on a Dask ``LocalCluster`` of two
  worker processes give the scores of ``n_jobs=1``.
* Meta-training split across two processes (gloo, CPU) by
  :class:`~skfewshot.callbacks.DistributedMetaBatch` ends with the weights
  of a single process trained on the same meta-batches.

This file is also the script each process of the distributed test runs
(``python tests/test_scaling.py OUT_DIR`` with the environment variables
``torchrun`` sets); by hand: ``torchrun --standalone --nproc-per-node=2
tests/test_scaling.py OUT_DIR``.
"""

import contextlib
import datetime
import logging
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from methods import tiny_learner
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score
from torch import distributed as dist

from skfewshot import PrototypicalClassifier
from skfewshot.callbacks import DistributedMetaBatch
from skfewshot.meta import ValidClassSplit
from skfewshot.model_selection import EpisodicSplit
from skfewshot.nn import MLP


@contextlib.contextmanager
def _torch_threads(n):
    """torch's intra-op threads set to ``n`` in this process for the block."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# -- Dask ------------------------------------------------------------------------------------


def test_dask_local_cluster_gives_the_scores_of_one_job(base_novel):
    distributed = pytest.importorskip("dask.distributed")
    from joblib import parallel_config

    X_base, y_base, X_novel, y_novel = base_novel
    torch.manual_seed(0)
    classifier = PrototypicalClassifier(MLP(64, hidden_features=(32,), out_features=16))
    cv = EpisodicSplit(n_way=3, n_shot=1, n_query=5, n_episodes=30, random_state=0)
    search = GridSearchCV(
        tiny_learner("prototypical"), {"lr": [1e-3, 1e-2]}, cv=GroupKFold(2), refit=False
    )

    def run(n_jobs):
        scores = cross_val_score(classifier, X_novel, y_novel, cv=cv, n_jobs=n_jobs)
        results = search.set_params(n_jobs=n_jobs).fit(X_base, y_base, groups=y_base)
        return scores, results.cv_results_

    # The workers run torch on one thread each (below): so does the reference, so that both
    # make the same floating-point operations.
    with _torch_threads(1):
        expected_scores, expected_results = run(n_jobs=1)

    # Dask's nanny sets OMP_NUM_THREADS=1 (and more) in this process too, before it starts
    # the worker processes: restored afterwards.
    environ = dict(os.environ)
    try:
        with (
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            # One torch thread per worker thread: two workers never oversubscribe two cores.
            assert list(client.run(torch.get_num_threads).values()) == [1, 1]
            with parallel_config(backend="dask"):
                scores, results = run(n_jobs=2)
    finally:
        os.environ.clear()
        os.environ.update(environ)

    np.testing.assert_array_equal(scores, expected_scores)
    for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
        np.testing.assert_array_equal(results[key], expected_results[key])
    assert results["params"] == expected_results["params"]


# -- torch.distributed -----------------------------------------------------------------------


def _base_digits():
    X, y = load_digits(return_X_y=True)
    base = y < 6
    return X[base].astype(np.float32) / 16.0, y[base]


def _learners(distributed):
    """The learners trained in one process and split across two (``distributed``).

    Those compared with one process use SGD: the weights move by ``lr`` times the
    gradients, so the comparison tests the gradients. Adam divides each coordinate by
    its own gradient scale, which turns the rounding noise of a coordinate whose gradient
    is nearly zero (the sums are made in another order) into a step of order ``lr``.
    """

    def callbacks():
        return [DistributedMetaBatch()] if distributed else []

    sgd = {"optimizer": torch.optim.SGD, "lr": 0.1}
    return {
        # MAML (second order) with a meta-batch of 4: two episodes per process. Printing.
        "maml": tiny_learner("maml", meta_batch_size=4, verbose=1, callbacks=callbacks(), **sgd),
        # Meta-batches of 3, 3 and 1 episodes (7 per epoch): shares of 2 and 1, and one
        # process without an episode; validation on held-out classes.
        "uneven": tiny_learner(
            "prototypical",
            n_way=2,
            meta_batch_size=3,
            episodes_per_epoch=7,
            train_split=ValidClassSplit(2, random_state=0),
            valid_episodes=4,
            callbacks=callbacks(),
            **sgd,
        ),
        # No random_state: the processes train on rank 0's episodes and initial weights.
        "unseeded": tiny_learner(
            "prototypical", random_state=None, max_epochs=1, callbacks=callbacks()
        ),
    }


def _trained(learner):
    """What a test compares of a trained learner (plain values: torch.load weights_only)."""
    return {
        "weights": {k: v.detach().clone() for k, v in learner.module_.state_dict().items()},
        "train_loss": [float(v) for v in learner.history_[:, "train_loss"]],
        "train_acc": [float(v) for v in learner.history_[:, "train_acc"]],
        "meta_batches": [int(v) for v in learner.history_[:, "train_batch_count"]],
    }


def _rank_main(out):
    """One process of the distributed test (the environment of torchrun: RANK, ...)."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    try:
        X, y = _base_digits()
        results = {}
        for name, learner in _learners(distributed=True).items():
            results[name] = _trained(learner.fit(X, y))
        torch.save(results, os.path.join(out, f"rank{dist.get_rank()}.pt"))
        # No process tears gloo down while another still talks to it.
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch built without torch.distributed")
def test_two_processes_train_to_the_weights_of_one(tmp_path):
    world_size = 2
    # The rendezvous store lives in this process, as torchrun's agent hosts it: it outlives
    # both ranks (neither tears it down under the other) and holds its port from the start.
    store = dist.TCPStore("127.0.0.1", 0, world_size, is_master=True, wait_for_workers=False)
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(store.port),
        "TORCHELASTIC_USE_AGENT_STORE": "True",
        "WORLD_SIZE": str(world_size),
        "OMP_NUM_THREADS": "1",
    }
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"
    logs = [tmp_path / f"rank{rank}.log" for rank in range(world_size)]
    processes = []
    with contextlib.ExitStack() as stack:
        for rank, log in enumerate(logs):
            processes.append(
                subprocess.Popen(
                    [sys.executable, os.path.abspath(__file__), str(tmp_path)],
                    env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
                    stdout=stack.enter_context(open(log, "w")),
                    stderr=subprocess.STDOUT,
                )
            )
    deadline = time.monotonic() + 180  # a hang (a collective never matched) cannot block CI
    codes = None
    try:
        # The reference, while they train: one process, the same learners without the callback.
        X, y = _base_digits()
        with _torch_threads(1):
            expected = {
                name: _trained(learner.fit(X, y))
                for name, learner in _learners(distributed=False).items()
            }
            # Without a process group the callback does nothing: the same weights, bit for bit.
            alone = _learners(distributed=True)["maml"].fit(X, y)
            # The weights before training (max_epochs=0 builds the learner only).
            initial = {
                name: learner.set_params(max_epochs=0).fit(X, y).module_.state_dict()
                for name, learner in _learners(distributed=False).items()
                if name != "unseeded"
            }
        for key, value in _trained(alone)["weights"].items():
            assert torch.equal(value, expected["maml"]["weights"][key])
        codes = [p.wait(timeout=max(deadline - time.monotonic(), 1)) for p in processes]
    except subprocess.TimeoutExpired:
        pass
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    outputs = [log.read_text() for log in logs]
    report = "\n".join(
        f"--- rank {r} (results saved: {(tmp_path / f'rank{r}.pt').exists()}) ---\n{text[-3000:]}"
        for r, text in enumerate(outputs)
    )
    assert codes == [0] * world_size, f"the processes failed or hung: {codes}\n{report}"

    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world_size)]
    for name, result in ranks[0].items():
        # Every process holds the same weights, those of one process (to float rounding:
        # the gradients are summed in another order).
        for key, value in result["weights"].items():
            assert torch.equal(value, ranks[1][name]["weights"][key]), (name, key)
            if name != "unseeded":
                torch.testing.assert_close(value, expected[name]["weights"][key])
        assert result["train_loss"] == ranks[1][name]["train_loss"]
        if name != "unseeded":
            np.testing.assert_allclose(
                result["train_loss"], expected[name]["train_loss"], rtol=1e-5
            )
        assert result["meta_batches"] == expected[name]["meta_batches"]
        if name != "unseeded":
            # Training moved the weights far more than the tolerance: a wrong gradient (a
            # share not divided by the whole meta-batch, a missed episode) would show.
            moved = max(
                float((expected[name]["weights"][key] - value).abs().max())
                for key, value in initial[name].items()
            )
            assert moved > 1e-4, (name, moved)
    # Meta-updates per epoch: MAML's 8 episodes in 2 meta-batches of 4; the other's 7 in 3.
    assert ranks[0]["maml"]["meta_batches"] == [2, 2]
    assert ranks[0]["uneven"]["meta_batches"] == [3, 3]
    # Only rank 0 prints the epochs' table.
    assert "train_loss" in outputs[0]
    assert "train_loss" not in outputs[1], report


def test_distributed_meta_batch_needs_a_process_group_under_torchrun(base_novel, monkeypatch):
    X_base, y_base, _, _ = base_novel
    monkeypatch.setenv("WORLD_SIZE", "2")
    learner = tiny_learner("prototypical", callbacks=[DistributedMetaBatch()])
    with pytest.raises(RuntimeError, match=r"WORLD_SIZE=2.*init_process_group\(\) before fit"):
        learner.fit(X_base, y_base)


if __name__ == "__main__":
    _rank_main(sys.argv[1])
    # Its results saved and the process group destroyed, the process leaves without the
    # interpreter's teardown, in which gloo's threads now and then abort it (SIGABRT,
    # "terminate called without an active exception", after destroy_process_group
    # returned: about one run of this test in ten under pytest).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
