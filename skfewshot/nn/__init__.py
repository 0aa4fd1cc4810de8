"""Torch modules: few-shot backbones, comparators and episode models.

They know nothing of scikit-learn. Any module mapping a batch to (n, d)
embeddings is an encoder; see :class:`EpisodeModel` for comparators.
"""

from torch.nn import Module as _Module

from ._adaptation import (
    GradientAdaptation,
    GradientStep,
    LSTMOptimizer,
    MetaLearnerLSTM,
    ReptileAdaptation,
    batch_statistics_from,
    lstm_cell,
)
from ._arguments import record_arguments as _record_arguments
from ._distances import class_means, pairwise_distance
from ._episode import EpisodeModel, n_classes
from ._in_context import InContextTransformer
from ._losses import OneHotLoss, ReptileLoss
from ._mann import MANN
from ._matching import MatchingAttention
from ._modules import MLP, Conv4
from ._pretraining import CosineHead, PretrainingModel
from ._prototypes import Prototypes
from ._relation import RelationModule
from ._siamese import SiameseKernel
from ._snail import SNAIL
from ._test_time import TestTimeAugmentation

__all__ = [
    "MANN",
    "MLP",
    "SNAIL",
    "Conv4",
    "CosineHead",
    "EpisodeModel",
    "GradientAdaptation",
    "GradientStep",
    "InContextTransformer",
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
    "lstm_cell",
    "class_means",
    "n_classes",
    "pairwise_distance",
]

# Every module class of the library keeps the arguments it was built with, so that
# skfewshot.persistence can rebuild it from them (without pickle) and load its weights.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and issubclass(_obj, _Module):
        _record_arguments(_obj)
del _name, _obj
