"""
=================================================================
Meta-training Prototypical Networks, then few-shot classification
=================================================================

:class:`~skfewshot.meta.PrototypicalLearner` meta-trains an encoder on episodes
of *base* classes; :meth:`~skfewshot.meta.PrototypicalLearner.to_classifier`
wraps it as a scikit-learn classifier whose ``fit`` takes the support set of
*novel* classes, never seen in training.

This example runs in about a minute on a laptop CPU with Omniglot's two
small official subsets (1.3 and 1.6 MB, downloaded on first use): five
alphabets to meta-train on, five others to test on. ``skfewshot benchmark``
runs the full protocol.
"""

from sklearn.model_selection import cross_val_score

from skfewshot import EmbeddingTransformer, PrototypicalClassifier
from skfewshot.datasets import fetch_omniglot, rotate_classes
from skfewshot.meta import PrototypicalLearner, ValidClassSplit
from skfewshot.metrics import mean_confidence_interval
from skfewshot.model_selection import EpisodicSplit
from skfewshot.nn import Conv4

X_base, y_base = rotate_classes(*fetch_omniglot("background_small1", return_X_y=True))
X_novel, y_novel = fetch_omniglot("background_small2", return_X_y=True)

learner = PrototypicalLearner(
    Conv4,
    encoder__hidden_channels=32,
    n_way=10,
    n_shot=5,
    n_query=5,
    episodes_per_epoch=50,
    max_epochs=6,
    random_state=0,
    train_split=ValidClassSplit(valid_size=0.1, random_state=0),  # held-out classes
)
learner.fit(X_base, y_base)

# %%
# Evaluate 5-way 1-shot episodes of the novel alphabets: embed them once,
# then fit a prototype classifier on each episode's support set. Raw pixels
# (nearest centroid) are the baseline.
Z = EmbeddingTransformer(learner.encoder_).fit_transform(X_novel)
cv = EpisodicSplit(n_way=5, n_shot=1, n_query=15, n_episodes=600, random_state=0)
for name, features in [("raw pixels", X_novel.reshape(len(X_novel), -1)), ("meta-trained", Z)]:
    scores = cross_val_score(PrototypicalClassifier(), features, y_novel, cv=cv)
    mean, half = mean_confidence_interval(scores)
    print(f"{name:>12}: {100 * mean:.1f} ± {100 * half:.1f} %")

# %%
# The classifier itself is a scikit-learn estimator: fit it on a support set
# and predict the queries.
clf = learner.to_classifier()
support, query = next(cv.split(X_novel, y_novel))
clf.fit(X_novel[support], y_novel[support])
print("query accuracy of one episode:", clf.score(X_novel[query], y_novel[query]))
