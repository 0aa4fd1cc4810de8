"""Episode models: an encoder and a comparator, the unit every metric method plugs in.

A *comparator* takes embeddings — ``support`` (n_support, ...), their
episode-local labels ``support_labels`` in 0..n_way-1 and ``query``
(n_query, ...) — and returns one row of ``n_way`` class scores per query.
An :class:`EpisodeModel` runs an encoder on the raw samples and hands the
embeddings to its comparator. The meta-learners train episode models; the
few-shot estimators reuse the trained comparator on a frozen encoder's
embeddings (or on precomputed embeddings).

A comparator whose weights are sized to the embeddings says so with an
``embedding_dim`` attribute (the flattened width it takes; None: any), and
``embedding_axis = "channels"`` when it reads the channels of feature maps
instead; the estimators check it against the encoder's output once, at fit.
"""

import torch
from torch import nn


def n_classes(labels):
    """Number of classes of episode-local labels 0..n-1."""
    return int(labels.max()) + 1


class EpisodeModel(nn.Module):
    """An encoder followed by a comparator, for one episode at a time.

    Support and query samples are encoded together, so batch-norm layers in
    training mode see the whole episode, as in the reference implementations.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps a batch of samples to embeddings (vectors or feature maps).
    comparator : torch.nn.Module
        Maps ``(support_embeddings, support_labels, query_embeddings)`` to
        (n_query, n_way) class scores.
    """

    def __init__(self, encoder, comparator):
        super().__init__()
        self.encoder = encoder
        self.comparator = comparator

    def forward(self, support, support_labels, query):
        z = self.encoder(torch.cat([support, query]))
        return self.comparator(z[: len(support)], support_labels, z[len(support) :])
