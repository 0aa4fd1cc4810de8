"""Meta-learners through the public API, on tiny encoders and small real data."""

import numpy as np
import pytest
import torch
from methods import tiny_learner
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold
from skorch.callbacks import Checkpoint, EarlyStopping, LRScheduler, ProgressBar
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from skfewshot.meta import PrototypicalLearner, ValidClassSplit
from skfewshot.nn import MLP, Conv4


def _learner(**params):
    return tiny_learner("prototypical", **params)


def test_same_random_state_same_weights_and_different_seed_differs(base_novel):
    X_base, y_base, _, _ = base_novel
    a = _learner(random_state=3).fit(X_base, y_base).encoder_.state_dict()
    b = _learner(random_state=3).fit(X_base, y_base).encoder_.state_dict()
    c = _learner(random_state=4).fit(X_base, y_base).encoder_.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key])
    assert any(not torch.equal(a[key], c[key]) for key in a)


def test_fit_does_not_touch_global_torch_rng(base_novel):
    X_base, y_base, _, _ = base_novel
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _learner().fit(X_base, y_base)
    assert torch.equal(torch.rand(3), expected)


def test_validation_on_held_out_classes(base_novel):
    X_base, y_base, X_novel, y_novel = base_novel
    split = ValidClassSplit(valid_size=2, random_state=0)
    learner = _learner(train_split=split, n_way=2, valid_episodes=7).fit(X_base, y_base)
    dataset_train, dataset_valid = split(Dataset(X_base, y_base), y_base)
    assert not set(dataset_train.y) & set(dataset_valid.y)  # disjoint classes
    assert len(set(dataset_valid.y)) == 2
    row = learner.history_[-1]
    assert 0 <= row["valid_acc"] <= 1 and "valid_loss" in row
    assert row["valid_batch_count"] == 7

    explicit = _learner(train_split=predefined_split(Dataset(X_novel, y_novel)))
    explicit.fit(X_base, y_base)
    assert explicit.history_[-1, "valid_acc"] > 0.3


def test_skorch_callbacks_work(tmp_path, base_novel, capsys):
    X_base, y_base, _, _ = base_novel
    learner = _learner(
        max_epochs=20,
        train_split=ValidClassSplit(3, random_state=0),
        callbacks=[
            ProgressBar(batches_per_epoch=10),
            EarlyStopping(monitor="valid_acc", lower_is_better=False, patience=2),
            Checkpoint(monitor="valid_acc_best", dirname=str(tmp_path)),
            LRScheduler(policy="StepLR", step_size=1, gamma=0.5),
        ],
    ).fit(X_base, y_base)
    assert len(learner.history_) < 20  # stopped early
    assert (tmp_path / "params.pt").exists()
    assert learner.optimizer_.param_groups[0]["lr"] < 1e-3


def test_clone_set_params_and_grid_search_over_classes(base_novel):
    X_base, y_base, _, _ = base_novel
    learner = _learner()
    cloned = clone(learner)
    assert cloned.get_params()["encoder__out_features"] == 16
    cloned.set_params(encoder__out_features=8).fit(X_base, y_base)
    assert cloned.encoder_(torch.zeros(1, 64)).shape == (1, 8)
    cloned.set_params(encoder__out_features=4)  # re-initialises the fitted net
    assert cloned.encoder_(torch.zeros(1, 64)).shape == (1, 4)

    # Meta-level model selection: folds of disjoint classes (labels as groups).
    search = GridSearchCV(learner, {"lr": [1e-3, 1e-2]}, cv=GroupKFold(2))
    search.fit(X_base, y_base, groups=y_base)
    assert search.cv_results_["mean_test_score"].shape == (2,)


def test_meta_learner_errors(base_novel):
    X_base, y_base, _, _ = base_novel
    with pytest.raises(ValueError, match=r"training set.*only 6 of the 6 classes qualify"):
        _learner(n_way=7).fit(X_base, y_base)
    with pytest.raises(ValueError, match=r"validation set.*only 1 of the 1 classes"):
        _learner(train_split=ValidClassSplit(1)).fit(X_base, y_base)
    with pytest.raises(ValueError, match="contains NaN"):
        _learner().fit(np.full_like(X_base, np.nan), y_base)
    with pytest.raises(ValueError, match="needs the class labels"):
        _learner().fit(X_base, None)
    with pytest.raises(ValueError, match="distance must be one of"):
        _learner(distance="l1").fit(X_base, y_base)
    with pytest.raises(ValueError, match=r"precision must be one of \('float32', 'bfloat16'\)"):
        _learner(precision="float16").fit(X_base, y_base)
    with pytest.raises(ValueError, match="encoder__.*need encoder to be a class"):
        _learner(encoder=MLP(64)).fit(X_base, y_base)
    with pytest.raises(TypeError, match="meta-learner: it does not label samples"):
        _learner().fit(X_base, y_base).predict(X_base)


def test_conv4_on_omniglot_images(omniglot_small):
    X, y = omniglot_small.data, omniglot_small.target
    base = y < 100
    learner = PrototypicalLearner(
        Conv4,
        encoder__hidden_channels=16,
        encoder__out_channels=16,
        n_way=5,
        n_shot=1,
        n_query=3,
        episodes_per_epoch=5,
        max_epochs=1,
        verbose=0,
        random_state=0,
    )
    learner.fit(X[base], y[base])
    assert learner.encoder_(torch.as_tensor(X[:2])).shape == (2, 16)
    assert (
        0.2 <= learner.score(X[~base], y[~base], n_way=5, n_shot=1, n_query=5, n_episodes=20) <= 1
    )
