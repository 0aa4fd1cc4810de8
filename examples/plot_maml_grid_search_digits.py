"""
=================================================================
Meta-learn an initialisation with MAML, tune its adaptation steps
=================================================================

Optimization-based few-shot methods adapt a network to each support set
by gradient steps. :class:`~skfewshot.meta.MAMLLearner` meta-learns the
initial weights those steps start from (second-order MAML here); its
classifier, a :class:`~skfewshot.MAMLClassifier`, copies them at ``fit``,
adds a head for the support set's classes and takes ``inner_steps`` steps of
rate ``inner_lr`` on the support set. The meta-learned weights never change,
and ``inner_steps`` and ``inner_lr`` are ordinary estimator parameters: a
``GridSearchCV`` over episodes tunes them.

Digits 0-5, with their rotations as further classes, meta-train a small MLP;
the rotated digits 6-9, never seen in training, are the few-shot tasks.
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score

from skfewshot.datasets import rotate_classes
from skfewshot.meta import MAMLLearner
from skfewshot.metrics import mean_confidence_interval
from skfewshot.model_selection import EpisodicSplit
from skfewshot.nn import MLP

X, y = load_digits(return_X_y=True)
X, y = rotate_classes((X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), y)
base = (y % 10) < 6  # 24 classes to meta-train on, 16 novel ones to test

learner = MAMLLearner(
    MLP,
    encoder__in_features=64,
    encoder__out_features=32,
    inner_lr=0.4,
    inner_steps=2,
    n_way=5,
    n_shot=1,
    n_query=10,
    meta_batch_size=4,
    max_epochs=10,
    episodes_per_epoch=40,
    verbose=0,
    random_state=0,
)
learner.fit(X[base], y[base])
print("train accuracy after adaptation, by epoch:", np.round(learner.history[:, "train_acc"], 2))

# %%
# Few-shot classification of the novel classes, 5-way 1-shot.
cv = EpisodicSplit(n_way=5, n_shot=1, n_query=15, n_episodes=200, random_state=0)
scores = cross_val_score(learner.to_classifier(), X[~base], y[~base], cv=cv)
mean, half = mean_confidence_interval(scores)
print(f"5-way 1-shot: {100 * mean:.1f} ± {100 * half:.1f} %")

# %%
# The adaptation's steps and rate are grid-searched like any parameter.
search = GridSearchCV(
    learner.to_classifier(), {"inner_steps": [1, 2, 5], "inner_lr": [0.1, 0.4]}, cv=cv
)
search.fit(X[~base], y[~base])
print("best:", search.best_params_, f"{100 * search.best_score_:.1f} %")
