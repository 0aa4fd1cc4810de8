"""The public contract checks catch planted defects, and pass the estimators they guard."""

import numpy as np
import pytest
import torch
from methods import tiny_learner

from skfewshot import PrototypicalClassifier
from skfewshot.meta import PrototypicalLearner
from skfewshot.nn import MLP
from skfewshot.utils import estimator_checks as checks


def _mlp():
    torch.manual_seed(0)
    return MLP(64, (32,), 16)


class EncoderChanging(PrototypicalClassifier):
    """Defect: fit trains the encoder it was given (no copy)."""

    def _fit_embeddings(self, support, labels, n_classes):
        with torch.no_grad():
            for p in self.encoder.parameters():
                p.add_(0.01)
        super()._fit_embeddings(support, labels, n_classes)


class BatchDependent(PrototypicalClassifier):
    """Defect: queries are centred on their batch's mean (transductive, undeclared)."""

    def _score_embeddings(self, query):
        return super()._score_embeddings(query - query.mean(0) + query.mean())


class ThreeWaysOnly(PrototypicalClassifier):
    """Defect: probabilities always have three columns."""

    def _score_embeddings(self, query):
        scores = super()._score_embeddings(query)
        return torch.cat([scores, scores.new_zeros(len(scores), 3)], 1)[:, :3]


class Unseeded(PrototypicalClassifier):
    """Defect: the prototypes get unseeded noise."""

    def _fit_embeddings(self, support, labels, n_classes):
        super()._fit_embeddings(support, labels, n_classes)
        self.prototypes_ = self.prototypes_ + np.random.default_rng().random(self.prototypes_.shape)


class LossyPickle(PrototypicalClassifier):
    """Defect: pickling drops the prototypes' precision."""

    def __getstate__(self):
        state = super().__getstate__()
        return {**state, "prototypes_": state["prototypes_"].round(1)}


class ParameterChanging(PrototypicalClassifier):
    """Defect: __init__ changes its parameter (clone cannot rebuild it)."""

    def __init__(self, encoder=None, *, distance="sqeuclidean", device="cpu", batch_size=256):
        super().__init__(encoder, distance=distance, device=device, batch_size=batch_size)
        self.batch_size = [batch_size]

    def fit(self, X, y):
        self.batch_size = self.batch_size[0] if isinstance(self.batch_size, list) else 256
        return super().fit(X, y)


class UnseededLearner(PrototypicalLearner):
    """Defect: meta-training ignores random_state."""

    def fit(self, X, y, **fit_params):
        self.random_state = int(np.random.default_rng().integers(1000))
        return super().fit(X, y, **fit_params)


class MismatchedClassifier(PrototypicalLearner):
    """Defect: to_classifier measures distances unlike meta-training."""

    def _defaults(self):
        return {**super()._defaults(), "classifier__distance": "cosine"}


def _learner(cls):
    return cls(
        MLP,
        encoder__in_features=64,
        encoder__out_features=16,
        n_way=3,
        n_shot=2,
        n_query=3,
        episodes_per_epoch=8,
        max_epochs=2,
        verbose=0,
        random_state=0,
    )


PLANTED = {
    "check_fit_leaves_modules_unchanged": lambda: EncoderChanging(_mlp()),
    "check_queries_scored_independently": lambda: BatchDependent(_mlp()),
    "check_any_number_of_ways": lambda: ThreeWaysOnly(),
    "check_same_random_state_same_result": lambda: _learner(UnseededLearner),
    "check_joblib_round_trip": lambda: LossyPickle(),
    "check_sklearn_tools": lambda: ParameterChanging(),
    "check_to_classifier_scores_like_the_learner": lambda: _learner(MismatchedClassifier),
}


@pytest.mark.parametrize("check", sorted(PLANTED))
def test_each_check_fails_on_its_planted_defect(check, digits):
    X, y = digits
    with pytest.raises(AssertionError, match=type(PLANTED[check]()).__name__):
        getattr(checks, check)(PLANTED[check](), X[y < 6], y[y < 6])


@pytest.mark.parametrize("check", sorted(PLANTED))
def test_each_check_passes_the_estimator_without_the_defect(check, digits):
    X, y = digits
    sound = (
        tiny_learner("prototypical")
        if "learner" in check or "random" in check
        else (PrototypicalClassifier(_mlp()))
    )
    getattr(checks, check)(sound, X[y < 6], y[y < 6])


def test_every_public_check_has_a_planted_defect():
    public = {name for name in checks.__all__ if name.startswith("check_")}
    assert public - {"check_classifier", "check_learner"} == set(PLANTED)
