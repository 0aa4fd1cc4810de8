"""
==========================================
Write your own method: a cosine classifier
==========================================

A few-shot method is a pair: a meta-learner that trains on episodes of base
classes, and a scikit-learn classifier that takes a support set of novel
classes. For a metric method both share a *comparator*, a torch module that
maps the embeddings of an episode, ``(support, support_labels, query)``, to
one row of class scores per query. Writing one takes three short classes on
the public bases of :mod:`skfewshot.base`:

* the comparator, here a **cosine classifier**: the scaled cosine
  similarity between each query embedding and each class's mean support
  embedding (the scale, 10 to start with, is learned);
* a :class:`~skfewshot.base.ComparatorClassifier` that names its default
  comparator;
* a :class:`~skfewshot.base.ComparatorLearner` that names its classifier,
  its comparator and its loss, and declares its own parameters.

Everything else (the episodic training loop, skorch's callbacks and
history, ``to_classifier``, validation, pickling, ``clone``) is inherited.
Digits 0-5 of scikit-learn's digits, with their rotations as further
classes, meta-train a small MLP; the rotated digits 6-9, never seen in
training, are the few-shot tasks. Runs in a few seconds on a CPU.
"""

import numpy as np
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits

from skfewshot.base import Boolean, ComparatorClassifier, ComparatorLearner, Positive
from skfewshot.datasets import rotate_classes
from skfewshot.model_selection import evaluate_episodes
from skfewshot.nn import MLP, Conv4, class_means, n_classes
from skfewshot.utils.estimator_checks import check_classifier, check_learner

# %%
# The method
# ----------
# The comparator is a plain torch module. The learner's ``_defaults`` pass
# its own ``scale`` and ``learn_scale`` on to the comparator it builds
# (explicit ``comparator__scale=...`` parameters would win), and
# ``_parameter_constraints`` checks them when the learner is initialised.

# [cosine method]


class CosineComparator(torch.nn.Module):
    """Scaled cosine similarity of each query to each class's mean support embedding."""

    def __init__(self, scale=10.0, learn_scale=True):
        super().__init__()
        scale = torch.tensor(float(scale))
        if learn_scale:
            self.scale = torch.nn.Parameter(scale)
        else:
            self.register_buffer("scale", scale)

    def forward(self, support, support_labels, query):
        means = class_means(support.flatten(1), support_labels, n_classes(support_labels))
        means = torch.nn.functional.normalize(means, dim=1)
        query = torch.nn.functional.normalize(query.flatten(1), dim=1)
        return self.scale * query @ means.T  # (n_query, n_way) logits


class CosineClassifier(ComparatorClassifier):
    """Few-shot classifier by scaled cosine similarity to the class means."""

    def _default_comparator(self):
        return CosineComparator()


class CosineLearner(ComparatorLearner):
    """Meta-train an encoder for the cosine classifier."""

    classifier_class = CosineClassifier

    _parameter_constraints = {
        **ComparatorLearner._parameter_constraints,
        "scale": Positive(),
        "learn_scale": Boolean(),
    }

    def __init__(
        self,
        encoder=Conv4,
        *,
        scale=10.0,
        learn_scale=True,
        comparator=CosineComparator,
        criterion=torch.nn.CrossEntropyLoss,
        **kwargs,
    ):
        super().__init__(encoder, comparator=comparator, criterion=criterion, **kwargs)
        self.scale = scale
        self.learn_scale = learn_scale

    def _defaults(self):
        return {"comparator__scale": self.scale, "comparator__learn_scale": self.learn_scale}


# [end cosine method]

# %%
# Meta-train it
# -------------
# The learner takes every parameter of the training loop
# (:class:`~skfewshot.base.EpisodicLearner`): episodes, epochs, learning
# rate, ``encoder__*`` parameters, skorch's callbacks...
X, y = load_digits(return_X_y=True)
X, y = rotate_classes((X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), y)
X = X.reshape(len(X), -1)  # back to vectors of 64 pixels
base = (y % 10) < 6  # 24 classes to meta-train on, 16 novel ones to test
X_base, y_base, X_novel, y_novel = X[base], y[base], X[~base], y[~base]

learner = CosineLearner(
    MLP,
    encoder__in_features=64,
    encoder__out_features=32,
    n_way=10,
    n_shot=1,
    n_query=5,
    episodes_per_epoch=50,
    max_epochs=5,
    verbose=0,
    random_state=0,
)
learner.fit(X_base, y_base)
print("train accuracy by epoch:", np.round(learner.history[:, "train_acc"], 2))
print(f"learned scale: {learner.comparator_.scale.item():.2f}")

# %%
# Few-shot classification of the novel classes
# --------------------------------------------
# ``to_classifier()`` gives a :class:`CosineClassifier` holding copies of the
# meta-trained encoder and comparator, and
# :func:`~skfewshot.model_selection.evaluate_episodes` scores it on 5-way
# 1-shot episodes of the novel classes, with a 95% confidence interval. The
# same learner with ``max_epochs=0`` gives the encoder's random
# initialisation; without an encoder, on raw pixels, the classifier is the
# cosine nearest-class-mean rule.
untrained = clone(learner).set_params(max_epochs=0).fit(X_base, y_base)
for name, clf in [
    ("raw pixels", CosineClassifier()),
    ("untrained encoder", untrained.to_classifier()),
    ("meta-trained", learner.to_classifier()),
]:
    result = evaluate_episodes(
        clf, X_novel, y_novel, n_way=5, n_shot=1, n_query=15, n_episodes=200, random_state=0
    )
    print(f"{name:>17}: {100 * result['accuracy']:.1f} ± {100 * result['ci95']:.1f} %")

# %%
# Meta-training on six digits for a few seconds lifts the encoder above its
# initialisation but not above raw pixels, a strong baseline on 8x8 digits
# (longer training overfits the six base digits); the benchmarks page shows
# what meta-training does on Omniglot.

# %%
# Check the contract
# ------------------
# :mod:`skfewshot.utils.estimator_checks` checks what a few-shot method must
# do: ``fit`` leaves the modules untouched, each query is scored on its own,
# any number of ways works, the same ``random_state`` gives the same
# result, a joblib round trip predicts the same, scikit-learn's tools work,
# and the learner's classifier scores episodes like the learner. Each check
# raises an ``AssertionError`` that says what broke. ``check_learner``
# meta-trains several times: give it a small budget.
check_classifier(CosineClassifier(), X_novel, y_novel)
print("CosineClassifier passes check_classifier")
small = dict(n_way=5, n_shot=1, n_query=5, episodes_per_epoch=10, max_epochs=2)
check_learner(clone(learner).set_params(**small), X_base, y_base)
print("CosineLearner passes check_learner")
