"""
=========================================================
Look at meta-training and at an episode's predictions
=========================================================

A few-shot model is easier to trust when you see it learn and see it
predict. This example meta-trains Prototypical Networks (a small MLP
encoder) on digits 0-5, with their rotations as further classes, and holds
out six of these classes for validation; then it draws

- the learning curves of the meta-learner (loss and accuracy of the
  training and validation episodes, epoch by epoch) with
  :func:`~skfewshot.plotting.plot_learning_curves`;
- a 5-way 1-shot episode of the novel classes, the rotated digits 6-9,
  with :func:`~skfewshot.plotting.plot_episode`: one row per class, its
  support image and then its queries, each titled with the classifier's
  prediction, green when right and red when wrong.
"""

import numpy as np
from sklearn.datasets import load_digits

from skfewshot.datasets import rotate_classes
from skfewshot.meta import PrototypicalLearner, ValidClassSplit
from skfewshot.model_selection import EpisodicSplit
from skfewshot.nn import MLP
from skfewshot.plotting import plot_episode, plot_learning_curves

X, y = load_digits(return_X_y=True)
X, y = rotate_classes((X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), y)
base = (y % 10) < 6  # 24 base classes; the 16 rotated digits 6-9 are novel
X_base, y_base, X_novel, y_novel = X[base], y[base], X[~base], y[~base]

learner = PrototypicalLearner(
    MLP,
    encoder__in_features=64,
    encoder__out_features=32,
    n_way=5,
    n_shot=1,
    n_query=10,
    episodes_per_epoch=50,
    valid_episodes=50,
    max_epochs=15,
    train_split=ValidClassSplit(valid_size=6, random_state=0),  # 6 whole classes held out
    verbose=0,
    random_state=0,
)
learner.fit(X_base, y_base)

# %%
# Learning curves
# ---------------
# The validation episodes are drawn from the held-out classes, as the test
# episodes will be: the gap between the training and the validation curves
# is the gap between seen and new classes.
plot_learning_curves(learner)

# %%
# An episode of the novel classes
# -------------------------------
# The classifier of the meta-learner is fitted on the support set (one image
# per class) and labels the queries. The labels of
# :func:`~skfewshot.datasets.rotate_classes`
# are ``digit + 10 * quarter_turns``; the figure names them.
cv = EpisodicSplit(n_way=5, n_shot=1, n_query=5, n_episodes=1, random_state=0)
support, query = next(cv.split(X_novel, y_novel))
clf = learner.to_classifier().fit(X_novel[support], y_novel[support])
predicted = clf.predict(X_novel[query])
print(f"accuracy on this episode's queries: {np.mean(predicted == y_novel[query]):.2f}")


def name(labels):
    """``"7 @ 90°"`` for the digit 7 turned by 90 degrees."""
    return [f"{label % 10} @ {90 * (label // 10)}°" for label in labels]


plot_episode(
    X_novel[support],
    name(y_novel[support]),
    X_novel[query],
    name(y_novel[query]),
    name(predicted),
)
