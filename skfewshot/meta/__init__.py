"""Meta-learners: skorch nets that meta-train few-shot models over episodes."""

from ._base import BaseEpisodicLearner, EpisodicLearner
from ._episodes import Episode, EpisodeLoader, ValidClassSplit
from ._maml import (
    ANILLearner,
    LearnedOptimizerLearner,
    MAMLLearner,
    MetaSGDLearner,
    ReptileLearner,
)
from ._matching import MatchingNetLearner
from ._protonet import ProtoNetLearner
from ._relation import RelationNetLearner
from ._siamese import SiameseLearner

__all__ = [
    "ANILLearner",
    "BaseEpisodicLearner",
    "Episode",
    "EpisodeLoader",
    "EpisodicLearner",
    "LearnedOptimizerLearner",
    "MAMLLearner",
    "MatchingNetLearner",
    "MetaSGDLearner",
    "ProtoNetLearner",
    "RelationNetLearner",
    "ReptileLearner",
    "SiameseLearner",
    "ValidClassSplit",
]
