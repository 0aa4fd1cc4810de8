"""
=================================================================
Meta-training Prototypical Networks, then few-shot classification
=================================================================

:class:`~skfewshot.meta.ProtoNetLearner` meta-trains an encoder on episodes
of *base* classes; :meth:`~skfewshot.meta.ProtoNetLearner.to_classifier`
wraps it as a scikit-learn classifier whose ``fit`` takes the support set of
*novel* classes, never seen in training.

This example runs offline in under a minute on scikit-learn's digits: the
four rotations of each digit are separate classes (40 in all); digits 0-5
are the base classes and 6-9 the novel ones. The same code with
:func:`~skfewshot.datasets.fetch_omniglot` and :class:`~skfewshot.nn.Conv4`
reproduces the Omniglot benchmark (``skfewshot benchmark``).
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score

from skfewshot import EmbeddingTransformer, PrototypicalClassifier
from skfewshot.datasets import rotate_classes
from skfewshot.meta import ProtoNetLearner, ValidClassSplit
from skfewshot.metrics import mean_confidence_interval
from skfewshot.model_selection import EpisodicSplit
from skfewshot.nn import MLP

X, y = load_digits(return_X_y=True)
X, y = rotate_classes((X / 16).astype(np.float32).reshape(-1, 1, 8, 8), y)
base = (y % 10) < 6

learner = ProtoNetLearner(
    MLP, encoder__in_features=64, n_way=10, n_shot=5, n_query=5,
    episodes_per_epoch=50, max_epochs=10, random_state=0,
    train_split=ValidClassSplit(valid_size=0.2, random_state=0),  # held-out classes
)
learner.fit(X[base], y[base])

# %%
# Evaluate 5-way 1-shot episodes of the novel classes: embed them once, then
# fit a prototype classifier on each episode's support set.
Z = EmbeddingTransformer(learner.encoder_).fit_transform(X[~base])
cv = EpisodicSplit(n_way=5, n_shot=1, n_query=15, n_episodes=600, random_state=0)
for name, features in [("raw pixels", X[~base].reshape(len(Z), -1)), ("meta-trained", Z)]:
    scores = cross_val_score(PrototypicalClassifier(), features, y[~base], cv=cv)
    mean, half = mean_confidence_interval(scores)
    print(f"{name:>12}: {100 * mean:.1f} ± {100 * half:.1f} %")

# %%
# The classifier itself is a scikit-learn estimator: fit it on a support set
# and predict queries.
clf = learner.to_classifier()
support, query = next(cv.split(X[~base], y[~base]))
clf.fit(X[~base][support], y[~base][support])
print("query accuracy of one episode:", clf.score(X[~base][query], y[~base][query]))
