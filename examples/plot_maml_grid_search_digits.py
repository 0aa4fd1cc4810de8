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
``GridSearchCV`` over episodes tunes them, for each few-shot setting, on
validation classes carved from the base classes, never on the test classes.

Digits 0-5, with their rotations as further classes, are the base classes;
the rotated digits 6-9, never seen in training nor in the search, are the
few-shot tasks.
"""

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, GroupShuffleSplit, cross_val_score

from skfewshot.datasets import rotate_classes
from skfewshot.meta import MAMLLearner
from skfewshot.metrics import mean_confidence_interval
from skfewshot.model_selection import EpisodicSplit
from skfewshot.nn import MLP
from skfewshot.plotting import plot_benchmark, plot_learning_curves

X, y = load_digits(return_X_y=True)
X, y = rotate_classes((X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), y)
base = (y % 10) < 6  # 24 base classes; 16 novel ones to test
X_base, y_base, X_novel, y_novel = X[base], y[base], X[~base], y[~base]

# %%
# Six of the 24 base classes are held out for validation: whole classes (the
# labels are the groups), as the test classes are new ones.
train, valid = next(GroupShuffleSplit(test_size=6, random_state=0).split(X_base, y_base, y_base))

learner = MAMLLearner(
    MLP,
    encoder__in_features=64,
    encoder__out_features=32,
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
learner.fit(X_base[train], y_base[train])
print("train accuracy after adaptation, by epoch:", np.round(learner.history[:, "train_acc"], 2))

# %%
# For each setting, the adaptation's steps and rate are grid-searched on the
# validation classes (0 steps: the prototype head alone, a prototypical
# network); the chosen classifier is then scored on the novel classes, next
# to the classifier with the training's adaptation (``inner_steps=2`` from
# the prototype head, at the default ``inner_lr=0.05``). ``refit=False``: a
# few-shot classifier is fitted on each episode's support set, so there is
# nothing to refit.
grid = {"inner_steps": [0, 1, 2, 5], "inner_lr": [0.05, 0.2]}
as_trained, tuned = [], []
for n_shot in (1, 5):
    cv = EpisodicSplit(n_way=5, n_shot=n_shot, n_query=10, n_episodes=100, random_state=0)
    search = GridSearchCV(learner.to_classifier(), grid, cv=cv, refit=False)
    search.fit(X_base[valid], y_base[valid])
    clf = clone(learner.to_classifier()).set_params(**search.best_params_)
    test_cv = EpisodicSplit(n_way=5, n_shot=n_shot, n_query=15, n_episodes=200, random_state=0)
    for rows, classifier in [(as_trained, learner.to_classifier()), (tuned, clf)]:
        mean, half = mean_confidence_interval(
            cross_val_score(classifier, X_novel, y_novel, cv=test_cv)
        )
        rows.append({"n_way": 5, "n_shot": n_shot, "accuracy": 100 * mean, "ci95": 100 * half})
    print(
        f"5-way {n_shot}-shot: chose {search.best_params_} on validation classes "
        f"({100 * search.best_score_:.1f} %); novel classes: "
        f"{tuned[-1]['accuracy']:.1f} ± {tuned[-1]['ci95']:.1f} % "
        f"(as trained: {as_trained[-1]['accuracy']:.1f} ± {as_trained[-1]['ci95']:.1f} %)"
    )

# %%
# The meta-training, epoch by epoch: the loss and the accuracy of the
# training episodes' queries after adaptation.
plot_learning_curves(learner)

# %%
# The accuracies on the novel classes, as a benchmark figure. The results
# are in the format ``skfewshot benchmark --json`` writes (accuracies in %),
# so ``plot_benchmark`` draws the files of the command line the same way.
dataset = "rotated digits 6-9"
plot_benchmark(
    [
        {"method": "as trained", "dataset": dataset, "results": as_trained},
        {"method": "tuned on validation classes", "dataset": dataset, "results": tuned},
    ]
)
