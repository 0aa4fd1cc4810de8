"""Meta-learners: skorch nets that meta-train few-shot models over episodes."""

from ._base import EpisodicLearner
from ._episodes import Episode, EpisodeLoader, ValidClassSplit
from ._matching import MatchingNetLearner
from ._protonet import ProtoNetLearner
from ._relation import RelationNetLearner
from ._siamese import SiameseLearner

__all__ = [
    "Episode",
    "EpisodeLoader",
    "EpisodicLearner",
    "MatchingNetLearner",
    "ProtoNetLearner",
    "RelationNetLearner",
    "SiameseLearner",
    "ValidClassSplit",
]
