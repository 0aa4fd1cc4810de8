"""skfewshot: few-shot learning (meta-learning) estimators for scikit-learn."""

from ._embedding import EmbeddingTransformer
from ._gradient import (
    ANILClassifier,
    LearnedOptimizerClassifier,
    MAMLClassifier,
    MetaSGDClassifier,
    ReptileClassifier,
)
from ._matching import MatchingClassifier
from ._model_based import InContextClassifier, MANNClassifier, SNAILClassifier
from ._prototypical import PrototypicalClassifier
from ._relation import RelationClassifier
from ._siamese import SiameseClassifier

__version__ = "0.1.0.dev0"

__all__ = [
    "ANILClassifier",
    "EmbeddingTransformer",
    "InContextClassifier",
    "LearnedOptimizerClassifier",
    "MAMLClassifier",
    "MANNClassifier",
    "MatchingClassifier",
    "MetaSGDClassifier",
    "PrototypicalClassifier",
    "RelationClassifier",
    "ReptileClassifier",
    "SNAILClassifier",
    "SiameseClassifier",
    "__version__",
]
