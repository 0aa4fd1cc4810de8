"""The bases a new few-shot method extends, and the constraints its parameters declare.

A method is a pair: a few-shot classifier (fit on a support set, predict
queries) and a meta-learner (meta-train on a base data set, then
``to_classifier()``). Its classifier extends one of

* :class:`FewShotClassifier`: any rule from the support samples to query scores;
* :class:`EmbeddingClassifier`: embed with a frozen encoder, then compare embeddings;
* :class:`ComparatorClassifier`: the comparison is a torch module (a comparator);
* :class:`GradientClassifier`: adapt a copy of a network to the support set;

and its learner one of :class:`EpisodicLearner` (the one training loop),
:class:`ComparatorLearner` or :class:`GradientLearner`. Parameters are
declared with the constraints below in ``_parameter_constraints`` and
checked once, at fit (classifiers) or initialisation (learners).
:mod:`skfewshot.utils.estimator_checks` checks a new method's contract.
"""

from ._base import ComparatorClassifier, EmbeddingClassifier, FewShotClassifier, GradientClassifier
from ._param_validation import Boolean, Instance, Integer, Options, Positive, validate_params
from ._validation import Component, Device
from .meta._base import ComparatorLearner, EpisodicLearner, GradientLearner

__all__ = [
    "Boolean",
    "ComparatorClassifier",
    "ComparatorLearner",
    "Component",
    "Device",
    "EmbeddingClassifier",
    "EpisodicLearner",
    "FewShotClassifier",
    "GradientClassifier",
    "GradientLearner",
    "Instance",
    "Integer",
    "Options",
    "Positive",
    "validate_params",
]
