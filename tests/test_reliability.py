"""Reliability (issue 14, observations 3 to 5): no silent NaN, labels that name no class
refused everywhere they enter, and the meta-learners' bad input refused as the classifiers'
is: one clear error naming the owner and the fix, never an error from inside torch, numpy
or skorch.

Tiny and deterministic: digits / 16, the seeded 64-32-16 MLP, a few episodes.
"""

import re

import numpy as np
import pytest
import torch
from methods import LEARNERS, tiny_learner
from sklearn.model_selection import cross_val_score
from skorch.callbacks import Callback
from torch import nn

from skfewshot import EmbeddingTransformer, MAMLClassifier, PrototypicalClassifier
from skfewshot.model_selection import EpisodeSampler, EpisodicSplit

# -- observation 5: the meta-learners validate like the classifiers -------------------


@pytest.mark.parametrize("name", ["prototypical", "maml"])
def test_meta_batches_of_episodes_with_all_remaining_queries(name, base_novel):
    # n_query=None gives episodes of different lengths; meta-batches of them used to fail
    # in skorch ("Dataset does not have consistent lengths").
    X_base, y_base, X_novel, y_novel = base_novel
    learner = tiny_learner(
        name, n_query=None, meta_batch_size=2, episodes_per_epoch=4, max_epochs=1
    ).fit(X_base, y_base)
    batches = learner.history[-1, "batches"]
    assert len(batches) == 2
    counts = np.bincount(y_base)
    n_way, n_shot = learner.n_way, learner.n_shot
    for batch in batches:
        # The mean number of queries of the meta-batch's episodes.
        assert n_way * (counts.min() - n_shot) <= batch["train_batch_size"]
        assert batch["train_batch_size"] <= n_way * (counts.max() - n_shot)
    assert np.isfinite(learner.history[-1, "train_loss"])
    assert 0 <= learner.score(X_novel, y_novel, n_episodes=2) <= 1


LEARNER_PARAMETERS = {
    "no episodes": ({"episodes_per_epoch": 0}, "episodes_per_epoch must be an integer >= 1, got 0"),
    "negative epochs": ({"max_epochs": -1}, "max_epochs must be an integer >= 0, got -1"),
    "unknown device": (
        {"device": "nonsense"},
        "device='nonsense' is not a torch device; the devices of this machine are 'cpu'",
    ),
    "NaN learning rate": (
        {"lr": float("nan"), "optimizer": torch.optim.SGD},
        "lr must be a positive number, got nan",
    ),
    "NaN optimizer__lr": (
        {"optimizer__lr": float("nan")},
        "optimizer__lr must be a positive number, got nan",
    ),
}


@pytest.mark.parametrize("case", list(LEARNER_PARAMETERS))
def test_learner_parameters_are_refused_at_fit(case, base_novel):
    X_base, y_base, _, _ = base_novel
    params, message = LEARNER_PARAMETERS[case]
    with pytest.raises(ValueError, match="^" + re.escape(f"PrototypicalLearner: {message}")):
        tiny_learner("prototypical", **params).fit(X_base, y_base)


def test_parameters_set_after_fit_are_refused_at_partial_fit(base_novel):
    X_base, y_base, _, _ = base_novel
    learner = tiny_learner("prototypical", max_epochs=1).fit(X_base, y_base)
    learner.set_params(episodes_per_epoch=0)
    with pytest.raises(ValueError, match="episodes_per_epoch must be an integer >= 1, got 0"):
        learner.partial_fit(X_base, y_base)
    learner.set_params(episodes_per_epoch=2, device="nonsense")
    with pytest.raises(ValueError, match="device='nonsense' is not a torch device"):
        learner.partial_fit(X_base, y_base)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_a_clear_error(base_novel):
    X_base, y_base, _, _ = base_novel
    message = (
        "PrototypicalLearner: device='cuda' was requested but CUDA is not available on this "
        "machine; use device='cpu'"
    )
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        tiny_learner("prototypical", device="cuda").fit(X_base, y_base)
    with pytest.raises(ValueError, match="^" + re.escape(message.replace("Learner", "Classifier"))):
        PrototypicalClassifier(device="cuda").fit(X_base[:20], y_base[:20])


def test_learner_with_the_wrong_feature_count(base_novel):
    X_base, y_base, X_novel, y_novel = base_novel
    learner = tiny_learner("prototypical", max_epochs=1).fit(X_base, y_base)
    message = re.escape("X has 5 features, but PrototypicalLearner is expecting 64 features")
    with pytest.raises(ValueError, match=message):
        learner.score(X_novel[:, :5], y_novel, n_episodes=2)
    with pytest.raises(ValueError, match=message):
        learner.partial_fit(X_base[:, :5], y_base)
    # fit starts afresh: another feature count is fine there.
    learner.set_params(encoder__in_features=5).fit(X_base[:, :5], y_base)
    assert 0 <= learner.score(X_novel[:, :5], y_novel, n_episodes=2) <= 1


def test_score_needs_at_least_one_episode(base_novel):
    X_base, y_base, X_novel, y_novel = base_novel
    learner = tiny_learner("prototypical", max_epochs=1).fit(X_base, y_base)
    for n_episodes in (0, -3, 2.5):
        with pytest.raises(
            ValueError,
            match=re.escape(
                f"PrototypicalLearner: n_episodes must be an integer >= 1, got {n_episodes!r}"
            ),
        ):
            learner.score(X_novel, y_novel, n_episodes=n_episodes)


@pytest.mark.parametrize("batch_size", [0, -5, 2.5])
def test_embedding_transformer_batch_size_is_checked_at_fit_and_transform(batch_size, digits):
    X, _ = digits
    message = "^" + re.escape(
        f"EmbeddingTransformer: batch_size must be an integer >= 1, got {batch_size!r}"
    )
    with pytest.raises(ValueError, match=message):
        EmbeddingTransformer(batch_size=batch_size).fit(X)
    fitted = EmbeddingTransformer().fit(X)
    with pytest.raises(ValueError, match=message):
        fitted.set_params(batch_size=batch_size).transform(X)


@pytest.mark.parametrize("n_episodes", [0, -1, 2.5, None])
def test_get_n_splits_checks_n_episodes_as_split_does(n_episodes):
    cv = EpisodicSplit(n_episodes=n_episodes)
    message = "^" + re.escape("EpisodicSplit: n_episodes must be an integer >= 1, got")
    with pytest.raises(ValueError, match=message):
        cv.get_n_splits()
    y = np.repeat(np.arange(6), 20)
    with pytest.raises(ValueError, match=message):
        next(cv.split(y, y))
    n_splits = EpisodicSplit(n_episodes=np.int64(7)).get_n_splits()
    assert n_splits == 7 and type(n_splits) is int


# -- observation 4: labels that name no class are refused wherever they enter ------------


def _with(y, index, value, dtype):
    y = y.astype(dtype)
    y[index] = value
    return y


def test_episodic_split_refuses_nan_labels(digits):
    X, y = digits
    y_nan = _with(y, 5, np.nan, float)
    cv = EpisodicSplit(n_way=10, n_shot=1, n_query=1, n_episodes=3, random_state=0)
    message = re.escape(
        f"EpisodicSplit: y contains NaN at index 5 (1 of the {len(y)} labels are NaN, None or "
        "infinite, which name no class); drop or impute those samples."
    )
    with pytest.raises(ValueError, match=message):
        next(cv.split(X, y_nan))
    # It used to draw an 11-way episode from 10 classes, and cross_val_score gave NaN scores.
    with pytest.raises(ValueError, match=message):
        cross_val_score(PrototypicalClassifier(), X, y_nan, cv=cv)
    with pytest.raises(ValueError, match=r"EpisodicSplit: y contains None at index 5"):
        next(cv.split(X, _with(y, 5, None, object)))
    with pytest.raises(ValueError, match=r"EpisodicSplit: y contains inf at index 5"):
        next(cv.split(X, _with(y, 5, np.inf, float)))


def test_the_episode_sampler_refuses_nan_and_mixed_labels():
    y = np.repeat(np.arange(4), 5)
    with pytest.raises(ValueError, match=r"^EpisodeSampler: y contains NaN at index 7 "):
        EpisodeSampler(_with(y, 7, np.nan, float), 2, 1, 1)
    with pytest.raises(ValueError, match=r"^EpisodeSampler: y contains None at index 7 "):
        EpisodeSampler(_with(y, 7, None, object), 2, 1, 1)
    mixed = _with(y, 7, "a", object)  # used to fail inside numpy's sorting (TypeError)
    with pytest.raises(ValueError, match=r"cannot be sorted: they mix the types int, str"):
        EpisodeSampler(mixed, 2, 1, 1)


@pytest.mark.parametrize("name", LEARNERS)
@pytest.mark.parametrize("value, text", [(np.nan, "NaN"), (None, "None")])
def test_every_learner_refuses_labels_that_name_no_class(name, value, text, base_novel):
    X_base, y_base, _, _ = base_novel
    y_bad = _with(y_base, 7, value, float if isinstance(value, float) else object)
    owner = LEARNERS[name][0].__name__
    with pytest.raises(ValueError, match=f"^{owner}: y contains {text} at index 7 "):
        tiny_learner(name).fit(X_base, y_bad)


def test_score_and_classifiers_refuse_labels_that_name_no_class(base_novel):
    X_base, y_base, X_novel, y_novel = base_novel
    learner = tiny_learner("prototypical", max_epochs=1).fit(X_base, y_base)
    with pytest.raises(ValueError, match=r"^PrototypicalLearner: y contains NaN at index 3 "):
        learner.score(X_novel, _with(y_novel, 3, np.nan, float), n_episodes=2)
    y_none = _with(y_base[:20], 3, None, object)  # a numpy TypeError / a class "None" before
    with pytest.raises(ValueError, match=r"^PrototypicalClassifier: y contains None at index 3"):
        PrototypicalClassifier().fit(X_base[:20], y_none)
    y_strings = _with(y_base[:20], 3, None, object)
    y_strings[:3] = "a"
    with pytest.raises(ValueError, match=r"^MAMLClassifier: y contains None at index 3"):
        MAMLClassifier().fit(X_base[:20], y_strings)
    with pytest.raises(ValueError, match="Input y contains NaN"):  # scikit-learn's check
        PrototypicalClassifier().fit(X_base[:20], _with(y_base[:20], 3, np.nan, float))


# -- observation 3: no silent NaN -------------------------------------------------------


def test_a_query_far_out_of_scale_is_an_error_not_the_first_class(digits, mlp):
    # A finite 1e30 through an MLP: the distances overflow, the probabilities were all NaN
    # and predict returned classes_[0] without a word.
    X, y = digits
    clf = PrototypicalClassifier(mlp).fit(X[:50], y[:50])
    X_query = np.vstack([X[50:52], np.full((1, 64), 1e30, dtype=np.float32)])
    message = (
        r"^PrototypicalClassifier: the class scores of 1 of the 3 query samples are not finite "
        r"\(NaN or infinite; the first at index 2\), so no class can be predicted for them\. "
        r".*The largest absolute value in those samples is 1e\+30: scale X"
    )
    for method in (clf.predict, clf.predict_proba, clf.decision_function, clf.score):
        args = (X_query, y[50:53]) if method == clf.score else (X_query,)
        with pytest.raises(ValueError, match=message):
            method(*args)
    assert np.isfinite(clf.predict_proba(X[50:60])).all()  # in scale, all is well


class NaNBeyondTen(nn.Module):
    """An encoder whose embedding of a sample with a value beyond 10 is NaN."""

    def forward(self, x):
        x = x.flatten(1)
        return torch.where(x.abs() > 10, torch.nan, x)


def test_non_finite_embeddings_are_named(digits):
    X, y = digits
    clf = PrototypicalClassifier(NaNBeyondTen()).fit(X[:50], y[:50])
    X_query = X[50:55].copy()
    X_query[[1, 3], 0] = 20.0
    with pytest.raises(
        ValueError,
        match=r"2 of the 5 query samples .* The encoder produced non-finite embeddings for 2",
    ):
        clf.predict(X_query)


def test_a_diverged_adaptation_is_named(digits, mlp):
    X, y = digits
    clf = MAMLClassifier(mlp, inner_steps=1).fit(X[:30], y[:30])
    clf.adapted_["head.weight"] = torch.full_like(clf.adapted_["head.weight"], torch.nan)
    with pytest.raises(
        ValueError,
        match=(
            r"^MAMLClassifier: the class scores of 5 of the 5 query samples are not finite .*"
            r"The adaptation to the support set diverged: its adapted weights are not finite\. "
            r"Lower inner_lr=0\.4 or inner_steps=1"
        ),
    ):
        clf.predict(X[30:35])


def test_a_diverging_loss_stops_training_naming_the_learning_rate(base_novel):
    X_base, y_base, _, _ = base_novel
    # Samples of 1e30: the squared distances overflow and the loss is not finite.
    with pytest.raises(
        ValueError,
        match=(
            r"^PrototypicalLearner: the training loss is (nan|inf) at epoch 1, meta-batch 1: "
            r"training diverged\. Lower the learning rate \(lr=0\.001\), or scale X"
        ),
    ):
        tiny_learner("prototypical").fit(X_base * np.float32(1e30), y_base)


class PoisonGradients(Callback):
    """Makes every gradient NaN: the meta-update then makes the weights NaN."""

    def on_grad_computed(self, net, named_parameters, **kwargs):
        for _, p in named_parameters:
            if p.grad is not None:
                p.grad.fill_(torch.nan)


def test_non_finite_weights_stop_training(base_novel):
    X_base, y_base, _, _ = base_novel
    learner = tiny_learner("reptile", callbacks=[PoisonGradients()])
    with pytest.raises(
        ValueError,
        match=(
            r"^ReptileLearner: the weights are not finite after the meta-update at epoch 1, "
            r"meta-batch 1: training diverged\. Lower the learning rate \(lr=1\.0, "
            r"inner_lr=0\.1\)"
        ),
    ):
        learner.fit(X_base, y_base)


def test_learner_score_refuses_non_finite_scores(base_novel):
    X_base, y_base, X_novel, y_novel = base_novel
    learner = tiny_learner("prototypical", max_epochs=1).fit(X_base, y_base)
    with pytest.raises(
        ValueError,
        match=r"^PrototypicalLearner: the class scores of \d+ queries of a scored episode are "
        r"not finite",
    ):
        learner.score(X_novel * np.float32(1e30), y_novel, n_episodes=2)
