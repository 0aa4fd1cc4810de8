"""One registry of every few-shot method the library ships, for the common tests.

Each method is a learner (built tiny: an MLP on 8x8 digits, a few episodes)
and the classifiers scikit-learn's checks run on (tiny encoders and
comparators, listed by each method's test module next to the maths they
need); :func:`tiny_learner` is the one factory of small learners that the
per-method tests use too.
"""

from conftest import TinyEncoder

from skfewshot import EmbeddingTransformer, PrototypicalClassifier
from skfewshot.meta import (
    ANILLearner,
    InContextLearner,
    LearnedOptimizerLearner,
    MAMLLearner,
    MANNLearner,
    MatchingLearner,
    MetaSGDLearner,
    PretrainingLearner,
    PrototypicalLearner,
    RelationLearner,
    ReptileLearner,
    SiameseLearner,
    SNAILLearner,
)
from skfewshot.nn import MLP, LSTMOptimizer

#: name -> (learner class, its parameters beyond the tiny defaults)
LEARNERS = {
    "prototypical": (PrototypicalLearner, {}),
    "matching": (MatchingLearner, {"comparator__embedding_dim": 16}),
    "pretraining": (PretrainingLearner, {"batch_size": 16}),
    "relation": (
        RelationLearner,
        {"comparator__embedding_dim": 16, "comparator__hidden_channels": 16},
    ),
    "siamese": (SiameseLearner, {"comparator__embedding_dim": 16, "n_shot": 1}),
    "maml": (MAMLLearner, {"inner_steps": 2}),
    "fomaml": (MAMLLearner, {"inner_steps": 2, "first_order": True}),
    "anil": (ANILLearner, {}),
    "metasgd": (MetaSGDLearner, {}),
    "reptile": (ReptileLearner, {"inner_steps": 2}),
    # One meta-batch of imitation, then meta-training: the common checks see both phases.
    "meta-lstm": (LearnedOptimizerLearner, {"inner_steps": 2, "imitation_episodes": 4}),
    "lstm-optimizer": (
        LearnedOptimizerLearner,
        {"inner_steps": 2, "imitation_episodes": 4, "rule": LSTMOptimizer},
    ),
    # Model-based: label slots for up to 6 ways (the contract checks fit the 6 base digits).
    "mann": (
        MANNLearner,
        {
            "max_ways": 6,
            "comparator__embedding_dim": 16,
            "comparator__hidden_size": 16,
            "comparator__memory_slots": 8,
            "comparator__memory_size": 4,
            "comparator__read_heads": 2,
        },
    ),
    "snail": (
        SNAILLearner,
        {
            "max_ways": 6,
            "comparator__embedding_dim": 16,
            "comparator__attention": ((8, 4), (8, 4)),
            "comparator__filters": 4,
            "comparator__dense_blocks": 2,
        },
    ),
    "in-context": (
        InContextLearner,
        {
            "max_ways": 6,
            "comparator__embedding_dim": 16,
            "comparator__model_dim": 8,
            "comparator__num_heads": 2,
            "comparator__feedforward_dim": 16,
        },
    ),
}

#: A tiny encoder of 64-feature vectors (digits / 16) with 16-dimensional embeddings.
MLP16 = {
    "encoder": MLP,
    "encoder__in_features": 64,
    "encoder__hidden_features": (32,),
    "encoder__out_features": 16,
}

TINY = {
    "n_way": 3,
    "n_shot": 2,
    "n_query": 3,
    "episodes_per_epoch": 8,
    "max_epochs": 2,
    "verbose": 0,
    "random_state": 0,
}


def tiny_learner(name, encoder_params=MLP16, **params):
    """The learner of method ``name``, tiny; by default for 64-feature data (digits / 16).

    ``encoder_params`` holds the ``encoder`` parameter and its ``encoder__*`` ones.
    """
    cls, own = LEARNERS[name]
    return cls(**{**encoder_params, **TINY, **own, **params})


def classifiers():
    """Every classifier configuration scikit-learn's checks run on."""
    import test_gradient
    import test_matching
    import test_model_based
    import test_relation
    import test_siamese

    return [
        PrototypicalClassifier(),
        PrototypicalClassifier(TinyEncoder()),
        PrototypicalClassifier(distance="cosine"),
        PrototypicalClassifier(transductive=True, transductive_steps=2),
        *test_matching.ESTIMATORS,
        *test_relation.ESTIMATORS,
        *test_siamese.ESTIMATORS,
        *test_gradient.ESTIMATORS,
        *test_model_based.ESTIMATORS,
    ]


TRANSFORMERS = [EmbeddingTransformer(), EmbeddingTransformer(TinyEncoder())]
