"""What the model-based comparators share: labels as inputs, the support set as a sequence.

A model-based comparator (:class:`~skfewshot.nn.MANN`,
:class:`~skfewshot.nn.SNAIL`, :class:`~skfewshot.nn.InContextTransformer`)
reads the support samples together with their labels and each query
without one, and outputs the query's class scores directly. The labels are
one-hot vectors (or embeddings) of a fixed width, ``max_ways``, which bounds
the number of classes of an episode: :func:`check_ways`.

The sequence models (MANN, SNAIL) depend on the order in which they read the
support set; they read it in :func:`canonical_order`, which depends on the
set of (embedding, label) pairs only, so that the same support set gives the
same scores whatever the order of its samples.

The attention helpers score each query against the support set and itself,
never against the other queries: a query's scores do not depend on the
query batch.
"""

import functools

import torch
from torch import nn

from ._episode import n_classes

#: Seed of the fixed direction on which :func:`content_key` projects the embeddings.
ORDER_SEED = 0


def check_ways(labels, max_ways, owner):
    """The number of classes of episode-local ``labels``, refused beyond ``max_ways``.

    Parameters
    ----------
    labels : torch.Tensor of int
        Class indices ``0 .. n_way - 1``.
    max_ways : int
        The width of the label inputs.
    owner : str
        Named in the error.

    Returns
    -------
    n_way : int

    Raises
    ------
    ValueError
        If there are more classes than ``max_ways``.
    """
    n_way = n_classes(labels)
    if n_way > max_ways:
        raise ValueError(
            f"{owner}: the support set has {n_way} classes, but the labels are read as "
            f"one-hot vectors of max_ways={max_ways}, so at most {max_ways} classes fit. "
            f"Build it with max_ways={n_way} or more (comparator__max_ways, or max_ways, on a "
            "learner) and meta-train it, or use fewer classes."
        )
    return n_way


@functools.lru_cache(maxsize=16)
def _direction(width):
    """A fixed random direction of ``width`` features (float32, on the CPU; never modified)."""
    generator = torch.Generator().manual_seed(ORDER_SEED)
    with torch.inference_mode(False):  # a plain tensor, even if first drawn in inference mode
        return torch.randn(width, generator=generator)


def content_key(embeddings):
    """A number per sample that depends on its embedding only.

    The projection of the flattened embedding on a fixed random direction
    (seeded with :data:`ORDER_SEED`, the same at every call), in float32
    whatever the embeddings' dtype; no gradient.

    Parameters
    ----------
    embeddings : torch.Tensor of shape (n, ...)

    Returns
    -------
    key : torch.Tensor of shape (n,)
    """
    flat = embeddings.detach().flatten(1).float()
    # Elementwise product and sum: no matrix product, so autocast leaves it in float32.
    return (flat * _direction(flat.shape[1]).to(flat.device)).sum(1)


def canonical_order(support, labels):
    """The order in which a sequence model reads a support set: round-robin over the classes.

    The classes take turns in the order of their labels (a sample of class
    0, one of class 1, ..., then a second sample of class 0, ...), and a
    class's samples come in increasing order of their :func:`content_key`.
    The sequence depends on the set of (embedding, label) pairs only, not
    on the order of the given support set (samples of one class with equal
    keys, such as duplicates, keep their relative order). Interleaving the
    classes spreads each class over the sequence, as a shuffle does: no
    class is read first or last as a whole.

    Parameters
    ----------
    support : torch.Tensor of shape (n_support, ...)
        Support embeddings.
    labels : torch.Tensor of int of shape (n_support,)
        Their class indices.

    Returns
    -------
    order : torch.Tensor of int of shape (n_support,)
        Indices into the support set, in reading order.
    """
    order = torch.argsort(content_key(support), stable=True)
    order = order[torch.argsort(labels[order], stable=True)]  # by class, each by key
    grouped = labels[order]
    counts = torch.bincount(grouped)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(order), device=labels.device) - starts[grouped]  # within its class
    return order[torch.argsort(rank, stable=True)]


def one_hot(labels, max_ways, dtype):
    """Labels as one-hot vectors of width ``max_ways``, of ``dtype``."""
    return nn.functional.one_hot(labels, max_ways).to(dtype)


def self_attention(queries, keys, values, causal=False):
    """Scaled dot-product attention of a sequence over itself, one softmax per head.

    Parameters
    ----------
    queries, keys : torch.Tensor of shape (n, heads, d_key)
    values : torch.Tensor of shape (n, heads, d_value)
    causal : bool, default=False
        Position ``i`` attends to positions ``j <= i`` only.

    Returns
    -------
    read : torch.Tensor of shape (n, heads, d_value)
    """
    logits = torch.einsum("ihd,jhd->hij", queries, keys) * queries.shape[-1] ** -0.5
    if causal:
        n = len(queries)
        later = torch.ones(n, n, dtype=torch.bool, device=logits.device).triu(1)
        logits = logits.masked_fill(later, float("-inf"))
    return torch.einsum("hij,jhd->ihd", torch.softmax(logits, dim=-1), values)


def context_attention(queries, keys, values, context_keys, context_values):
    """Each query attends to the context (the support set) and to itself only.

    The attention of a batch of tokens appended to a context, with a mask
    that hides the other tokens of the batch from each: query ``i``'s
    softmax runs over the context's keys and its own key, so its result
    depends on the context and on that query alone.

    Parameters
    ----------
    queries, keys : torch.Tensor of shape (n_query, heads, d_key)
        The queries' own attention queries and keys.
    values : torch.Tensor of shape (n_query, heads, d_value)
        Their own values.
    context_keys : torch.Tensor of shape (n_context, heads, d_key)
    context_values : torch.Tensor of shape (n_context, heads, d_value)

    Returns
    -------
    read : torch.Tensor of shape (n_query, heads, d_value)
    """
    scale = queries.shape[-1] ** -0.5
    to_context = torch.einsum("ihd,jhd->ihj", queries, context_keys) * scale
    to_self = (queries * keys).sum(-1, keepdim=True) * scale
    weights = torch.softmax(torch.cat([to_context, to_self], dim=-1), dim=-1)
    read = torch.einsum("ihj,jhd->ihd", weights[..., :-1], context_values)
    return read + weights[..., -1:] * values
