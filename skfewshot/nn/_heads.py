"""Episode heads: modules that turn an encoder into a few-shot model of one episode.

A head takes ``(support, support_labels, query)`` — support samples, their
episode-local labels 0..n_way-1 and query samples — and returns one output
row per query. The meta-learners' training loop calls heads only through
this signature, so a new method plugs in as a head and a loss.
"""

import torch
from torch import nn

from .._distances import class_means, pairwise_distance


class PrototypicalNetwork(nn.Module):
    """Prototypical Networks head (Snell et al. 2017).

    Embeds support and query samples with ``encoder``, averages each class's
    support embeddings into a prototype and returns, for each query, the
    negative distances to the prototypes (logits for a softmax).

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps a batch of samples to (n, d) embeddings.
    distance : {"sqeuclidean", "euclidean", "cosine"}, default="sqeuclidean"
        Distance between embeddings and prototypes.
    """

    def __init__(self, encoder, distance="sqeuclidean"):
        super().__init__()
        self.encoder = encoder
        self.distance = distance

    def forward(self, support, support_labels, query):
        n_support = len(support)
        z = self.encoder(torch.cat([support, query])).flatten(1)
        n_way = int(support_labels.max()) + 1
        prototypes = class_means(z[:n_support], support_labels, n_way)
        return -pairwise_distance(z[n_support:], prototypes, self.distance)
