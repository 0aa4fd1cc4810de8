"""
=======================================================
Episodic cross-validation of a few-shot classifier
=======================================================

A few-shot task is an N-way K-shot episode: a support set of K labelled
samples of each of N classes, and queries to label. :class:`EpisodicSplit`
turns episodes into cross-validation splits, so scikit-learn's
``cross_val_score`` and ``GridSearchCV`` evaluate few-shot classifiers with
the standard protocol: mean query accuracy over many episodes, with a 95%
confidence interval.

Here a :class:`PrototypicalClassifier` without an encoder (the
nearest-centroid rule) labels scikit-learn's digits from 1 to 10 examples,
among 5 and among 10 classes; :func:`~skfewshot.plotting.plot_accuracy`
draws the accuracies with their confidence bands.
"""

from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skfewshot import PrototypicalClassifier
from skfewshot.metrics import mean_confidence_interval
from skfewshot.model_selection import EpisodicSplit
from skfewshot.plotting import plot_accuracy

X, y = load_digits(return_X_y=True)

# %%
# 300 episodes per setting (600 is customary; fewer keep this example fast,
# and the bands below show what that costs). Each result keeps the
# per-episode scores, from which ``plot_accuracy`` takes the mean and its
# 95% interval.
results = []
for n_way in (5, 10):
    for n_shot in (1, 2, 5, 10):
        cv = EpisodicSplit(n_way=n_way, n_shot=n_shot, n_query=15, n_episodes=300, random_state=0)
        scores = cross_val_score(PrototypicalClassifier(), X, y, cv=cv)
        mean, half = mean_confidence_interval(scores)
        print(f"{n_way}-way {n_shot}-shot: {100 * mean:.1f} ± {100 * half:.1f} %")
        results.append({"n_way": n_way, "n_shot": n_shot, "scores": scores})

plot_accuracy(results, x="shots")

# %%
# Any scikit-learn tool works on episodes: here a grid search over the
# distance of a pipeline, scored on 100 5-way 1-shot episodes.
pipe = make_pipeline(StandardScaler(), PrototypicalClassifier())
search = GridSearchCV(
    pipe,
    {"prototypicalclassifier__distance": ["sqeuclidean", "euclidean", "cosine"]},
    cv=EpisodicSplit(n_way=5, n_shot=1, n_episodes=100, random_state=0),
    refit=False,
).fit(X, y)
for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
    print(params, f"{100 * score:.1f} %")
