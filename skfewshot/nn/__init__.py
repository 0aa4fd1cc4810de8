"""Torch modules: few-shot backbones, comparators and episode models.

They know nothing of scikit-learn. Any module mapping a batch to (n, d)
embeddings is an encoder; see :class:`EpisodeModel` for comparators.
"""

from ._adaptation import (
    GradientAdaptation,
    GradientStep,
    LSTMOptimizer,
    MetaLearnerLSTM,
    ReptileAdaptation,
    batch_statistics_from,
)
from ._heads import EpisodeModel, Prototypes
from ._losses import OneHotLoss, ReptileLoss
from ._matching import MatchingAttention
from ._modules import MLP, Conv4
from ._relation import RelationModule
from ._siamese import SiameseKernel

__all__ = [
    "MLP",
    "Conv4",
    "EpisodeModel",
    "GradientAdaptation",
    "GradientStep",
    "LSTMOptimizer",
    "MatchingAttention",
    "MetaLearnerLSTM",
    "OneHotLoss",
    "Prototypes",
    "RelationModule",
    "ReptileAdaptation",
    "ReptileLoss",
    "SiameseKernel",
    "batch_statistics_from",
]
