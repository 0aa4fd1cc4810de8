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
from ._distances import class_means, pairwise_distance
from ._episode import EpisodeModel, n_classes
from ._losses import OneHotLoss, ReptileLoss
from ._matching import MatchingAttention
from ._modules import MLP, Conv4
from ._pretraining import CosineHead, PretrainingModel
from ._prototypes import Prototypes
from ._relation import RelationModule
from ._siamese import SiameseKernel
from ._test_time import TestTimeAugmentation

__all__ = [
    "MLP",
    "Conv4",
    "CosineHead",
    "EpisodeModel",
    "GradientAdaptation",
    "GradientStep",
    "LSTMOptimizer",
    "MatchingAttention",
    "MetaLearnerLSTM",
    "OneHotLoss",
    "PretrainingModel",
    "Prototypes",
    "RelationModule",
    "ReptileAdaptation",
    "ReptileLoss",
    "SiameseKernel",
    "TestTimeAugmentation",
    "batch_statistics_from",
    "class_means",
    "n_classes",
    "pairwise_distance",
]
