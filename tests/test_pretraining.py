"""Supervised pre-training over all base classes, its heads, and episodic fine-tuning after it."""

import numpy as np
import pytest
import torch
from methods import tiny_learner
from sklearn.base import clone

from skfewshot import PrototypicalClassifier
from skfewshot.meta import PretrainingLearner, ValidClassSplit
from skfewshot.nn import CosineHead, PretrainingModel, Prototypes


def _learner(**params):
    return tiny_learner("pretraining", **params)


def test_cosine_head_is_scaled_cosine_similarity():
    torch.manual_seed(0)
    head = CosineHead(4, 3, scale=5.0, learn_scale=False)
    z = torch.randn(6, 4)
    cos = torch.nn.functional.cosine_similarity(z[:, None], head.weight[None], dim=2)
    torch.testing.assert_close(head(z), 5.0 * cos)
    assert [name for name, _ in head.named_parameters()] == ["weight"]
    assert "scale" in dict(CosineHead(4, 3).named_parameters())
    with pytest.raises(ValueError, match="CosineHead: scale must be a positive number"):
        CosineHead(4, 3, scale=0)


def test_model_classifies_batches_and_scores_episodes():
    torch.manual_seed(0)
    encoder, head = torch.nn.Linear(5, 4), torch.nn.Linear(4, 7)
    model = PretrainingModel(encoder, Prototypes(), head)
    x = torch.randn(6, 5)
    torch.testing.assert_close(model(x[:0], torch.zeros(0, dtype=torch.long), x), head(encoder(x)))
    labels = torch.tensor([0, 1, 1])
    episode = model(x[:3], labels, x[3:])
    torch.testing.assert_close(episode, Prototypes()(encoder(x[:3]), labels, encoder(x[3:])))


def test_head_has_one_output_per_base_class(base_novel):
    X, y, _, _ = base_novel
    learner = _learner(max_epochs=1).fit(X, y)
    assert learner.head_.out_features == 6 and learner.head_.in_features == 16
    np.testing.assert_array_equal(learner.classes_, np.arange(6))
    assert learner.history[-1, "train_acc"] > 1 / 6  # batches of the 6 classes, not episodes
    cosine = _learner(max_epochs=1, head=CosineHead, head__scale=20.0).fit(X, y)
    assert isinstance(cosine.head_, CosineHead) and cosine.head_.scale.item() != 20.0


def test_string_labels_and_validation_on_held_out_classes(base_novel):
    X, y, _, _ = base_novel
    names = np.array(list("abcdef"))[y]
    learner = _learner(n_way=2, train_split=ValidClassSplit(2, random_state=0), valid_episodes=5)
    learner.fit(X, names)
    assert list(learner.classes_) == list("abcdef")  # held-out classes keep their outputs
    assert np.isfinite(learner.history[-1, "valid_acc"])


def test_classifier_and_episodic_fine_tuning(base_novel):
    X, y, _, _ = base_novel
    pretrained = _learner(distance="cosine").fit(X, y)
    clf = pretrained.to_classifier()
    assert isinstance(clf, PrototypicalClassifier) and clf.distance == "cosine"
    before = {k: v.clone() for k, v in pretrained.encoder_.state_dict().items()}
    fine_tuned = tiny_learner("prototypical", encoder_params={"encoder": pretrained.encoder_})
    fine_tuned.fit(X, y)
    assert all(torch.equal(v, before[k]) for k, v in pretrained.encoder_.state_dict().items())
    start = fine_tuned.initialize().encoder_.state_dict()
    assert all(torch.equal(v, before[k]) for k, v in start.items())  # starts from the copy


def test_meta_batches_average_batches_and_errors(base_novel):
    X, y, _, _ = base_novel
    learner = _learner(max_epochs=1, episodes_per_epoch=5, meta_batch_size=2).fit(X, y)
    assert len(learner.history[-1, "batches"]) == 3
    with pytest.raises(RuntimeError, match="sizes its head from the base data: call fit"):
        clone(_learner()).initialize()
    with pytest.raises(ValueError, match="PretrainingLearner: distance must be one of"):
        _learner(distance="l1").fit(X, y)
    with pytest.raises(TypeError, match="head must be a torch.nn.Module class or instance"):
        _learner(head="linear").fit(X, y)
    with pytest.raises(ValueError, match="PretrainingLearner: batch_size must be an integer"):
        PretrainingLearner(batch_size=0).fit(X, y)
    with pytest.raises(ValueError, match="the encoder Conv4 failed on a batch of shape"):
        PretrainingLearner().fit(X, y)  # vectors for an image encoder
