"""Weights-only persistence: every estimator round-trips exactly, and a crafted file runs no code.

``skfewshot.persistence.save`` writes JSON and a file of tensors; ``load``
reads the tensors with ``torch.load(weights_only=True)`` and builds allow-listed
classes only. Each round trip compares everything the estimator holds (values,
dtypes, strides, modes) and its predictions, bit for bit.
"""

import hashlib
import inspect
import json
import pickle
import re

import numpy as np
import pytest
import torch
from conftest import TinyEncoder
from methods import LEARNERS, tiny_learner
from skorch.callbacks import EarlyStopping
from torch import nn

from skfewshot import (
    ANILClassifier,
    EmbeddingTransformer,
    LearnedOptimizerClassifier,
    MAMLClassifier,
    MatchingClassifier,
    MetaSGDClassifier,
    PrototypicalClassifier,
    RelationClassifier,
    ReptileClassifier,
    SiameseClassifier,
)
from skfewshot.callbacks import TimeBudget
from skfewshot.datasets import RandomAffine
from skfewshot.meta import PrototypicalLearner, ValidClassSplit
from skfewshot.nn import (
    MLP,
    Conv4,
    EpisodeModel,
    LSTMOptimizer,
    MatchingAttention,
    Prototypes,
    RelationModule,
    SiameseKernel,
    TestTimeAugmentation,
)
from skfewshot.persistence import JSON_FILE, TENSORS_FILE, UnsavableError, load, save

# -- helpers --------------------------------------------------------------------------------------


def _mlp(out_features=16):
    return MLP(64, hidden_features=(32,), out_features=out_features)


def _conv4():
    """A Conv4 for 8x8 digit images: three pooled blocks leave 1x1 maps of 8 channels."""
    return Conv4(1, hidden_channels=8, out_channels=8, pooled_blocks=3)


def _data(kind, digits):
    X, y = digits
    if kind == "images":
        X = X.reshape(-1, 1, 8, 8)
    elif kind == "float64":
        X = X.astype(np.float64)
    elif kind == "strings":
        y = np.array([f"digit {label}" for label in y])
    return X, y


def _episode(y, n_way=4, n_shot=3, n_query=5):
    """Support and query indices of the first ``n_way`` classes of ``y``."""
    where = [np.flatnonzero(y == c) for c in np.unique(y)[:n_way]]
    support = np.concatenate([w[:n_shot] for w in where])
    query = np.concatenate([w[n_shot : n_shot + n_query] for w in where])
    return support, query


def _round_trip(estimator, folder):
    save(estimator, folder)
    rng = torch.get_rng_state()
    loaded = load(folder)
    assert torch.equal(torch.get_rng_state(), rng), "load changed torch's global generator"
    return loaded


def _public(params):
    return {k: v for k, v in params.items() if not k.startswith("_")}


def _assert_same_module(ours, theirs, where, modes=True):
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert ours_state.keys() == theirs_state.keys(), where
    for key, value in theirs_state.items():
        _assert_same(ours_state[key], value, f"{where}.{key}")
    if modes:
        assert [(n, type(m), m.training) for n, m in ours.named_modules()] == [
            (n, type(m), m.training) for n, m in theirs.named_modules()
        ], where
        assert [(n, p.requires_grad) for n, p in ours.named_parameters()] == [
            (n, p.requires_grad) for n, p in theirs.named_parameters()
        ], where


def _assert_same(ours, theirs, where="value"):
    """``ours`` (loaded) equals ``theirs`` (saved): values, types, dtypes, strides, modes."""
    if isinstance(theirs, nn.Module):
        assert type(ours) is type(theirs), where
        _assert_same_module(ours, theirs, where)
    elif isinstance(theirs, torch.Tensor):
        assert isinstance(ours, torch.Tensor), where
        assert (ours.dtype, ours.shape, ours.stride(), ours.device) == (
            theirs.dtype,
            theirs.shape,
            theirs.stride(),
            theirs.device,
        ), where
        assert torch.equal(ours, theirs), where
    elif isinstance(theirs, np.ndarray):
        assert isinstance(ours, np.ndarray) and ours.dtype == theirs.dtype, where
        np.testing.assert_array_equal(ours, theirs, err_msg=where)
    elif isinstance(theirs, np.random.RandomState):
        a, b = ours.get_state(legacy=True), theirs.get_state(legacy=True)
        assert (a[0], *a[2:]) == (b[0], *b[2:]), where
        np.testing.assert_array_equal(a[1], b[1], err_msg=where)
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            _assert_same(a, b, f"{where}[{i}]")
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and ours.keys() == theirs.keys(), where
        for key, value in theirs.items():
            _assert_same(ours[key], value, f"{where}[{key!r}]")
    elif (
        isinstance(theirs, (type, torch.device))
        or inspect.isroutine(theirs)
        or not hasattr(theirs, "__dict__")
    ):
        assert type(ours) is type(theirs) and ours == theirs, where
    else:  # an object of a helper class (RandomAffine, a callback, ...): its public state
        assert type(ours) is type(theirs), where
        _assert_same(_public(vars(ours)), _public(vars(theirs)), where)


# -- every classifier -----------------------------------------------------------------------------

#: name -> (classifier factory, the data it is fitted on)
CLASSIFIERS = {
    "prototypical": (lambda: PrototypicalClassifier(), "features"),
    "prototypical-mlp-string-labels": (
        lambda: PrototypicalClassifier(_mlp(), distance="cosine", scale=10.0),
        "strings",
    ),
    "prototypical-transductive-float64": (
        lambda: PrototypicalClassifier(transductive=True, transductive_steps=2),
        "float64",
    ),
    "prototypical-test-time-augmentation-conv4": (
        lambda: PrototypicalClassifier(
            TestTimeAugmentation(_conv4(), RandomAffine(rotation=20), n_views=3)
        ),
        "images",
    ),
    "matching": (lambda: MatchingClassifier(), "features"),
    "matching-fce": (
        lambda: MatchingClassifier(_mlp(), MatchingAttention(16, fce=True, read_steps=2)),
        "features",
    ),
    "relation": (
        lambda: RelationClassifier(
            _mlp(), RelationModule(16, hidden_channels=8, hidden_features=4)
        ),
        "features",
    ),
    "relation-sequential-maps": (
        lambda: RelationClassifier(
            nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Unflatten(1, (8, 2, 2))),
            RelationModule(8, hidden_channels=4),
        ),
        "features",
    ),
    "siamese-float64": (lambda: SiameseClassifier(), "float64"),
    "siamese-max": (
        lambda: SiameseClassifier(_mlp(), SiameseKernel(16), aggregation="max"),
        "features",
    ),
    "maml": (lambda: MAMLClassifier(inner_steps=3), "features"),
    "maml-mlp-prototypes": (
        lambda: MAMLClassifier(_mlp(), inner_steps=2, head_init="prototypes"),
        "features",
    ),
    "maml-conv4-batch-norm": (lambda: MAMLClassifier(_conv4(), inner_steps=1), "images"),
    "anil": (lambda: ANILClassifier(_mlp(), inner_steps=3), "features"),
    "reptile-transductive": (
        lambda: ReptileClassifier(_mlp(), inner_steps=2, transductive=True),
        "features",
    ),
    "metasgd-float64": (lambda: MetaSGDClassifier(), "float64"),
    "learned-optimizer": (lambda: LearnedOptimizerClassifier(inner_steps=2), "features"),
    "lstm-optimizer": (
        lambda: LearnedOptimizerClassifier(_mlp(), LSTMOptimizer(), inner_steps=2),
        "features",
    ),
}


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_round_trip_predicts_exactly_the_same(name, digits, tmp_path):
    factory, kind = CLASSIFIERS[name]
    X, y = _data(kind, digits)
    support, query = _episode(y)
    torch.manual_seed(0)
    fitted = factory().fit(X[support], y[support])

    loaded = _round_trip(fitted, tmp_path / "saved")

    assert type(loaded) is type(fitted)
    # Everything it holds: parameters (modules with their weights and modes) and fitted state.
    _assert_same(vars(loaded), vars(fitted), name)
    if getattr(fitted, "encoder_", None) is not None and hasattr(fitted, "model_"):
        assert loaded.model_.encoder is loaded.encoder_  # one module, as in the saved one
    for method in ("predict_proba", "decision_function", "predict"):
        np.testing.assert_array_equal(
            getattr(loaded, method)(X[query]), getattr(fitted, method)(X[query]), err_msg=method
        )


def test_embedding_transformer_round_trip(digits, tmp_path):
    X, _ = _data("images", digits)
    torch.manual_seed(0)
    transformer = EmbeddingTransformer(TestTimeAugmentation(_conv4(), n_views=2)).fit(X[:20])
    loaded = _round_trip(transformer, tmp_path / "saved")
    _assert_same(vars(loaded), vars(transformer), "EmbeddingTransformer")
    np.testing.assert_array_equal(loaded.transform(X[20:40]), transformer.transform(X[20:40]))


# -- every learner --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LEARNERS)
def test_learner_round_trip_carries_on_exactly(name, base_novel, tmp_path):
    X_base, y_base, X_novel, y_novel = base_novel
    learner = tiny_learner(name).fit(X_base, y_base)

    loaded = _round_trip(learner, tmp_path / "learner")

    assert type(loaded) is type(learner)
    _assert_same(
        _public(loaded.get_params(deep=False)), _public(learner.get_params(deep=False)), "params"
    )
    _assert_same_module(loaded.module_, learner.module_, "module_", modes=False)
    _assert_same(loaded.optimizer_.state_dict(), learner.optimizer_.state_dict(), "optimizer_")
    _assert_same(loaded.history_.to_list(), learner.history_.to_list(), "history_")
    _assert_same(loaded._train_rng_, learner._train_rng_, "_train_rng_")

    # Its classifier scores the novel classes exactly as the saved learner's does ...
    support, query = _episode(y_novel)
    theirs = learner.to_classifier().fit(X_novel[support], y_novel[support])
    ours = loaded.to_classifier().fit(X_novel[support], y_novel[support])
    np.testing.assert_array_equal(
        ours.predict_proba(X_novel[query]), theirs.predict_proba(X_novel[query])
    )
    assert loaded.score(X_novel, y_novel, n_episodes=3) == learner.score(
        X_novel, y_novel, n_episodes=3
    )
    # ... that classifier round-trips on its own ...
    again = _round_trip(theirs, tmp_path / "classifier")
    _assert_same(vars(again), vars(theirs), "classifier")
    np.testing.assert_array_equal(
        again.predict_proba(X_novel[query]), theirs.predict_proba(X_novel[query])
    )
    # ... and training carries on as it would have: same episodes, optimizer and history.
    learner.partial_fit(X_base, y_base)
    loaded.partial_fit(X_base, y_base)
    _assert_same_module(loaded.module_, learner.module_, "module_ after partial_fit", modes=False)


def test_unfitted_learner_round_trips_its_parameters_as_readable_json(tmp_path):
    learner = PrototypicalLearner(
        MLP,
        encoder__in_features=64,
        encoder__hidden_features=(32,),
        augmentation=RandomAffine(rotation=5),
        train_split=ValidClassSplit(0.25, random_state=0),
        callbacks=[
            EarlyStopping(monitor="valid_acc", lower_is_better=False),
            ("budget", TimeBudget(60)),  # its sink=print is the default: built again
        ],
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        random_state=np.random.RandomState(3),
    )
    loaded = _round_trip(learner, tmp_path / "saved")
    _assert_same(
        _public(loaded.get_params(deep=False)), _public(learner.get_params(deep=False)), "params"
    )
    assert not loaded.initialized_
    document = json.loads((tmp_path / "saved" / JSON_FILE).read_text(encoding="utf-8"))
    assert document["estimator"]["class"] == "skfewshot.meta.PrototypicalLearner"
    params = document["estimator"]["params"]
    assert params["encoder"] == {"__class__": "skfewshot.nn.MLP"}
    assert params["optimizer"] == {"__class__": "torch.optim.SGD"}
    assert params["optimizer__momentum"] == 0.9


# -- what is refused ------------------------------------------------------------------------------


def test_save_names_a_module_of_a_user_defined_class_and_points_to_joblib(digits, tmp_path):
    X, y = digits
    clf = PrototypicalClassifier(TinyEncoder()).fit(X[:40], y[:40])
    folder = tmp_path / "saved"
    with pytest.raises(UnsavableError, match=r"PrototypicalClassifier\.encoder is .*TinyEncoder"):
        save(clf, folder)
    with pytest.raises(TypeError, match="joblib.dump.*trust its source"):
        save(clf, folder)
    assert not folder.exists()  # nothing half-made


def test_save_names_a_lambda(tmp_path):
    learner = PrototypicalLearner(MLP, augmentation=lambda X, rng: X)
    with pytest.raises(UnsavableError, match=r"PrototypicalLearner\.augmentation is .*<lambda>"):
        save(learner, tmp_path / "saved")


def test_save_refuses_a_module_whose_argument_was_replaced(tmp_path):
    model = EpisodeModel(_mlp(), Prototypes())
    model.encoder = _mlp(8)  # the recorded arguments no longer describe it
    with pytest.raises(UnsavableError, match="no longer one of its children"):
        save(PrototypicalClassifier(model), tmp_path / "saved")


class _CreatesFile:
    """A pickle payload: unpickling it opens (creates) the file ``path`` for writing."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _saved_classifier(digits, folder):
    X, y = digits
    torch.manual_seed(0)
    save(PrototypicalClassifier(_mlp()).fit(X[:40], y[:40]), folder)
    return folder


def _vouch_for_the_tensors(folder):
    """Write the tensors file's digest into the JSON file, as a forger would."""
    document = json.loads((folder / JSON_FILE).read_text(encoding="utf-8"))
    digest = hashlib.sha256((folder / TENSORS_FILE).read_bytes()).hexdigest()
    document["tensors_sha256"] = digest
    (folder / JSON_FILE).write_text(json.dumps(document), encoding="utf-8")


@pytest.mark.parametrize("digest", ["forged", "kept"])
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_a_pickle_payload_in_place_of_the_tensors_runs_no_code(writer, digest, digits, tmp_path):
    folder = _saved_classifier(digits, tmp_path / "saved")
    marker = tmp_path / "marker"
    payload = {"t0": _CreatesFile(marker)}
    if writer == "torch.save":
        torch.save(payload, folder / TENSORS_FILE)
    else:
        (folder / TENSORS_FILE).write_bytes(pickle.dumps(payload))
    if digest == "forged":  # only torch.load(weights_only=True) stands in the way
        _vouch_for_the_tensors(folder)
        message = "not a plain file of tensors"
    else:
        message = "SHA-256"
    with pytest.raises(ValueError, match=message):
        load(folder)
    assert not marker.exists()
    # The payload is live: unpickling it for real does create its file.
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(_CreatesFile(live))).close()
    assert live.exists()


def _named_estimator(document, command):
    document["estimator"] = {"class": "os.system", "params": {"command": command}}
    return "os.system"


def _named_module(document, command):
    document["estimator"]["params"]["encoder"] = {
        "__torch_module__": {"class": "os.system", "id": 0, "args": [command], "kwargs": {}}
    }
    return "os.system"


def _named_object(document, command):
    document["estimator"]["params"]["encoder"] = {
        "__object__": {"class": "subprocess.Popen", "params": {"args": command, "shell": True}}
    }
    return "subprocess.Popen"


def _named_class(document, command):
    document["estimator"]["params"]["distance"] = {"__class__": "builtins.eval"}
    return "builtins.eval"


def _allowed_class_in_another_role(document, command):
    # Conv4 is allow-listed as a module, never as an estimator.
    document["estimator"]["class"] = "skfewshot.nn.Conv4"
    return "skfewshot.nn.Conv4"


def _method_as_attribute(document, command):
    document["estimator"]["attributes"]["predict"] = {"__class__": "skfewshot.nn.Conv4"}
    return "'predict'"


@pytest.mark.parametrize(
    "craft",
    [
        _named_estimator,
        _named_module,
        _named_object,
        _named_class,
        _allowed_class_in_another_role,
        _method_as_attribute,
    ],
)
def test_a_json_naming_anything_outside_the_allow_list_is_refused(craft, digits, tmp_path):
    folder = _saved_classifier(digits, tmp_path / "saved")
    marker = tmp_path / "marker"
    document = json.loads((folder / JSON_FILE).read_text(encoding="utf-8"))
    named = craft(document, f"touch {marker}")
    (folder / JSON_FILE).write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(named)):
        load(folder)
    assert not marker.exists()
