"""Episodic cross-validation: few-shot episodes as scikit-learn CV splits."""

from ._episodes import EpisodeSampler
from ._evaluate import evaluate_episodes, tune_per_setting
from ._split import EpisodicSplit

__all__ = ["EpisodeSampler", "EpisodicSplit", "evaluate_episodes", "tune_per_setting"]
