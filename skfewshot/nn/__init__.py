"""Torch modules: few-shot backbones, comparators and episode models.

They know nothing of scikit-learn. Any module mapping a batch to (n, d)
embeddings is an encoder; see :class:`EpisodeModel` for comparators.
"""

from ._heads import EpisodeModel, Prototypes
from ._losses import OneHotLoss
from ._modules import MLP, Conv4

__all__ = ["Conv4", "EpisodeModel", "MLP", "OneHotLoss", "Prototypes"]
