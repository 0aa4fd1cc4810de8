"""Meta-learners: skorch nets that meta-train few-shot models over episodes."""

from ._base import EpisodicLearner
from ._episodes import Episode, EpisodeLoader, ValidClassSplit
from ._protonet import ProtoNetLearner

__all__ = ["Episode", "EpisodeLoader", "EpisodicLearner", "ProtoNetLearner", "ValidClassSplit"]
