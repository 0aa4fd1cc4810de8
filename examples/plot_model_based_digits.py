"""
==========================================================
Model-based few-shot learning: SNAIL, MANN, in-context
==========================================================

The model-based methods do not compare embeddings with a fixed rule nor
take gradient steps at test time: a network reads the labelled support set
and the query, and outputs the query's class scores. Here three of them are
meta-trained on digits 0-5 (their rotations as further classes) and tested
on the rotated digits 6-9, classes they never saw:

- :class:`~skfewshot.meta.SNAILLearner` (Mishra et al. 2018): causal
  temporal convolutions and causal attention over the sequence of the
  support set's (embedding, one-hot label) pairs, the query last;
- :class:`~skfewshot.meta.MANNLearner` (Santoro et al. 2016): an LSTM
  controller with an external memory reads the same sequence one step at a
  time;
- :class:`~skfewshot.meta.InContextLearner`: a small transformer over the
  support tokens and the query token, with no positional encoding.

The encoders are tiny MLPs and the budgets a thousand episodes, so that the
example runs in seconds: the figures show the mechanics, not what the
methods reach (the papers meta-train for 10^5 episodes and more).
"""

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits

from skfewshot import PrototypicalClassifier
from skfewshot.datasets import rotate_classes
from skfewshot.meta import InContextLearner, MANNLearner, SNAILLearner
from skfewshot.model_selection import EpisodicSplit, evaluate_episodes
from skfewshot.nn import MLP
from skfewshot.plotting import plot_benchmark

X, y = load_digits(return_X_y=True)
X, y = rotate_classes((X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), y)
base = (y % 10) < 6  # 24 base classes; the 16 rotated digits 6-9 are novel
X_base, y_base, X_novel, y_novel = X[base], y[base], X[~base], y[~base]

# %%
# Meta-training
# -------------
# The three learners share the encoder (64 pixels -> 16 features), the
# training episodes (5-way 2-shot, between the two test settings below) and
# the optimizer. ``max_ways=5`` is the width of the one-hot labels the
# networks read: the most classes an episode may have, at training and at
# test time. Each training episode shows its classes in a random subset of
# the label slots (``shuffle_labels=True``, the default): with 5 slots for 5
# classes, a fresh permutation of them per episode.
common = {
    "encoder": MLP,
    "encoder__in_features": 64,
    "encoder__hidden_features": (64,),
    "encoder__out_features": 16,
    "max_ways": 5,
    "n_way": 5,
    "n_shot": 2,
    "n_query": 8,
    "episodes_per_epoch": 50,
    "max_epochs": 20,
    "lr": 3e-3,
    "verbose": 0,
    "random_state": 0,
}
learners = {
    "SNAIL": SNAILLearner(
        comparator__embedding_dim=16,
        comparator__attention=((16, 8), (32, 16)),
        comparator__filters=8,
        comparator__dense_blocks=4,  # dilations 1, 2, 4, 8: the 10 support positions
        **common,
    ),
    "MANN": MANNLearner(
        comparator__embedding_dim=16,
        comparator__hidden_size=32,
        comparator__memory_slots=16,
        comparator__memory_size=8,
        comparator__read_heads=2,
        **common,
    ),
    "in-context": InContextLearner(
        comparator__embedding_dim=16,
        comparator__model_dim=16,
        comparator__num_heads=2,
        comparator__num_layers=2,
        comparator__feedforward_dim=32,
        **common,
    ),
}
for name, learner in learners.items():
    learner.fit(X_base, y_base)
    accuracy = learner.history[:, "train_acc"]
    print(f"{name}: training accuracy {accuracy[0]:.2f} (first epoch) -> {accuracy[-1]:.2f} (last)")

# %%
# A network that reads labels must first learn to bind each support
# sample's label to its embedding; until it does, it can only guess, at
# chance (1 in 5 here). The training curves show that plateau, then the
# climb out of it, earlier for some networks than for others.
_, ax = plt.subplots()
for name, learner in learners.items():
    ax.plot(learner.history[:, "epoch"], learner.history[:, "train_acc"], label=name)
ax.axhline(1 / 5, linestyle=":", color="gray", label="chance")
ax.set(xlabel="epoch (50 episodes)", ylabel="accuracy on the training episodes' queries")
ax.legend()

# %%
# Evaluation on the novel classes
# -------------------------------
# Each learner's ``to_classifier()`` is a scikit-learn classifier: ``fit``
# stores the support embeddings and labels, ``predict`` runs the network over
# the support set and each query. :func:`~skfewshot.model_selection.evaluate_episodes`
# scores it on 5-way 1-shot and 5-shot episodes of the rotated digits 6-9
# (100 episodes per setting; 600 is customary) with a 95% interval. The
# nearest-centroid rule on the pixels (a :class:`PrototypicalClassifier`
# without an encoder) is the reference that needs no meta-training.
classifiers = {name: learner.to_classifier() for name, learner in learners.items()}
classifiers["nearest centroid"] = PrototypicalClassifier()
runs = []
for name, clf in classifiers.items():
    # The learners' MLPs take the 1x8x8 images; the centroid rule, the 64 pixels.
    data = X_novel.reshape(len(X_novel), -1) if name == "nearest centroid" else X_novel
    results = []
    for n_shot in (1, 5):
        result = evaluate_episodes(
            clf,
            data,
            y_novel,
            n_way=5,
            n_shot=n_shot,
            n_query=10,
            n_episodes=100,
            random_state=0,
        )
        accuracy, ci95 = 100 * result["accuracy"], 100 * result["ci95"]
        print(f"{name}, 5-way {n_shot}-shot: {accuracy:.1f} ± {ci95:.1f} %")
        results.append({"n_way": 5, "n_shot": n_shot, "accuracy": accuracy, "ci95": ci95})
    runs.append({"method": name, "dataset": "digits 6-9 (rotated)", "results": results})

# %%
# The order of the support set
# ----------------------------
# The in-context transformer reads the support set as a set: no positional
# encoding, so shuffling the support samples changes nothing but rounding.
# SNAIL and MANN are sequence models: read in the order given
# (``comparator_.scores_in_order``), another order of the same support set
# gives other scores, and some predictions change. Their classifiers (and
# their learners, in training) therefore read the support set in a
# *canonical order*: round-robin over the classes in the order of
# ``classes_``, each class's samples by their projection on a fixed random
# direction. That order depends on the support set's (embedding, label)
# pairs only, so ``fit`` on the same support set in any order gives the same
# predictions.
cv = EpisodicSplit(n_way=5, n_shot=5, n_query=10, n_episodes=1, random_state=1)
support, query = next(cv.split(X_novel, y_novel))
shuffled = np.random.RandomState(0).permutation(support)
perm = torch.as_tensor(np.random.RandomState(1).permutation(len(support)))
for name in learners:
    clf = classifiers[name].fit(X_novel[support], y_novel[support])
    again = clone(clf).fit(X_novel[shuffled], y_novel[shuffled])
    proba, proba_again = clf.predict_proba(X_novel[query]), again.predict_proba(X_novel[query])
    change = np.abs(proba_again - proba).max()
    # The network itself, read in the order given, before and after shuffling the support.
    network, s, labels = clf.comparator_, clf.support_, clf.support_labels_
    with torch.no_grad():
        q = clf.encoder_(torch.as_tensor(X_novel[query]))
        read = getattr(network, "scores_in_order", network)
        before, after = read(s, labels, q), read(s[perm], labels[perm], q)
    changed = (before.argmax(1) != after.argmax(1)).float().mean().item()
    print(
        f"{name}: fit on the shuffled support set changes the probabilities by at most "
        f"{change:.1e}; read in the order given, shuffling changes "
        f"{100 * changed:.0f}% of the predictions (scores by up to "
        f"{(before - after).abs().max().item():.1e})"
    )

# %%
# The accuracies
# --------------
# :func:`~skfewshot.plotting.plot_benchmark` draws the table: one group of
# bars per setting, one bar per method, with the 95% intervals. With a
# thousand training episodes the networks are well above chance, and below
# the nearest-centroid rule that needs no training: they have learned to
# read a support set, not yet to read it well. How far they get with a real
# budget is the subject of the benchmarks of the documentation, next to the
# papers' figures.
plot_benchmark(runs)
