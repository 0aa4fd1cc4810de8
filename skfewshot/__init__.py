"""skfewshot: few-shot learning (meta-learning) estimators for scikit-learn."""

from ._embedding import EmbeddingTransformer
from ._prototypical import PrototypicalClassifier

__version__ = "0.1.0.dev0"

__all__ = ["EmbeddingTransformer", "PrototypicalClassifier", "__version__"]
