"""Meta-learners: skorch nets that meta-train few-shot models over episodes."""

from ._base import ComparatorLearner, EpisodicLearner, GradientLearner
from ._episodes import Episode, EpisodeLoader, ValidClassSplit
from ._gradient import (
    ANILLearner,
    LearnedOptimizerLearner,
    MAMLLearner,
    MetaSGDLearner,
    ReptileLearner,
)
from ._matching import MatchingLearner
from ._model_based import InContextLearner, MANNLearner, SNAILLearner
from ._pretraining import PretrainingLearner
from ._prototypical import PrototypicalLearner
from ._relation import RelationLearner
from ._siamese import SiameseLearner

__all__ = [
    "ANILLearner",
    "ComparatorLearner",
    "Episode",
    "EpisodeLoader",
    "EpisodicLearner",
    "GradientLearner",
    "InContextLearner",
    "LearnedOptimizerLearner",
    "MAMLLearner",
    "MANNLearner",
    "MatchingLearner",
    "MetaSGDLearner",
    "PretrainingLearner",
    "PrototypicalLearner",
    "RelationLearner",
    "ReptileLearner",
    "SNAILLearner",
    "SiameseLearner",
    "ValidClassSplit",
]
