"""Torch modules: few-shot backbones and episode heads. They know nothing of scikit-learn.

Any module mapping a batch to (n, d) embeddings is an encoder.
"""

from ._heads import PrototypicalNetwork
from ._modules import MLP, Conv4

__all__ = ["Conv4", "MLP", "PrototypicalNetwork"]
