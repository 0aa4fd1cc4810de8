"""Distances between embeddings, as torch functions (differentiable)."""

import torch

DISTANCES = ("sqeuclidean", "euclidean", "cosine")


def pairwise_distance(a, b, distance):
    """Distances between the rows of ``a`` (n, d) and ``b`` (m, d), shape (n, m).

    ``"sqeuclidean"`` and ``"euclidean"`` are (squared) Euclidean distances,
    ``"cosine"`` is one minus the cosine similarity.
    """
    if distance == "cosine":
        a = torch.nn.functional.normalize(a, dim=1)
        b = torch.nn.functional.normalize(b, dim=1)
        return 1 - a @ b.T
    sq = (a * a).sum(1, keepdim=True) - 2 * (a @ b.T) + (b * b).sum(1)
    sq = sq.clamp_min(0)
    if distance == "euclidean":
        return sq.clamp_min(1e-12).sqrt()
    return sq


def class_means(z, labels, n_classes):
    """Mean embedding of each class: ``z`` (n, d), ``labels`` in 0..n_classes-1."""
    sums = z.new_zeros(n_classes, z.shape[1]).index_add_(0, labels, z)
    counts = torch.bincount(labels, minlength=n_classes).clamp_min(1)
    return sums / counts.unsqueeze(1).to(z.dtype)
