"""Matching Networks comparator (Vinyals et al. 2016): cosine attention over the support set.

A query is labelled by the attention it pays to the support samples::

    a(x, x_i) = softmax_i cos(f(x), g(x_i))
    P(y | x, S) = sum_i a(x, x_i) onehot(y_i)

where ``f`` and ``g`` embed the query and the support samples. Without
*full context embeddings* (``fce=False``) ``f`` and ``g`` are the identity
on the encoder's embeddings and the comparator has no parameters. With them
(``fce=True``, the paper's appendix), ``g`` reads the whole support set with
a bidirectional LSTM and ``f`` attends to it with an LSTM over
``read_steps`` steps, so that both embeddings depend on the support set.
"""

import numpy as np
import torch
from torch import nn

from .._params import check_integer, check_positive
from ._heads import n_classes


class EmbeddingDimensionError(ValueError):
    """Embeddings whose width differs from the one a comparator was built for.

    ``expected`` is the width the comparator was built for, ``got`` the width
    it received; callers re-raise it naming their own parameter.
    """

    def __init__(self, message, *, expected, got):
        super().__init__(message)
        self.expected = expected
        self.got = got


def check_matching_options(*, owner, **options):
    """Validate the given options of :class:`MatchingAttention` (``fce``,
    ``read_steps``, ``embedding_dim``, ``scale``), with ``owner`` in the errors."""
    for name, value in options.items():
        if name == "fce":
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{owner}: fce must be True or False, got {value!r}.")
        elif name == "scale":
            check_positive(value, name, owner=owner)
        else:
            check_integer(value, name, owner=owner)


def matching_log_proba(query, support, support_labels, n_way, scale=1.0):
    """Log-probabilities of the cosine-attention classifier, shape (n_query, n_way).

    ``log sum_i softmax_i(scale * cos(query, support_i)) onehot(support_labels_i)``
    for (n_query, d) queries and (n_support, d) support embeddings,
    computed as a per-class log-sum-exp so that no probability underflows,
    whatever the scale. A class absent from the support set gets the log of
    the smallest positive float instead of minus infinity.
    """
    query = nn.functional.normalize(query, dim=1)
    support = nn.functional.normalize(support, dim=1)
    logits = scale * (query @ support.T)  # (n_query, n_support)
    # Shift each class's logits by the class's largest (a constant: no gradient).
    index = support_labels.expand_as(logits)
    class_max = logits.new_full((len(logits), n_way), torch.finfo(logits.dtype).min)
    class_max = class_max.scatter_reduce(1, index, logits.detach(), "amax").detach()
    one_hot = nn.functional.one_hot(support_labels, n_way).to(logits.dtype)
    class_sums = torch.exp(logits - class_max.gather(1, index)) @ one_hot
    log_class = class_max + class_sums.clamp_min(torch.finfo(logits.dtype).tiny).log()
    return log_class - logits.logsumexp(dim=1, keepdim=True)


def _read(state, support):
    """Attention readout of the support set: softmax of dot products, then the weighted sum."""
    return torch.softmax(state @ support.T, dim=1) @ support


class MatchingAttention(nn.Module):
    """Matching Networks comparator (Vinyals et al. 2016).

    Returns, for each query, the log of the class probabilities
    ``P(y | x, S) = sum_i a(x, x_i) onehot(y_i)`` with the attention
    ``a(x, x_i) = softmax_i scale * cos(f(x), g(x_i))`` over the support
    samples (the paper's ``scale`` is 1).
    ``softmax`` of a row of scores gives ``P`` back, its argmax is the
    prediction, and :class:`torch.nn.NLLLoss` on the scores is the paper's
    training loss. Feature maps are flattened. Each query is scored
    independently of the other queries.

    Parameters
    ----------
    embedding_dim : int, default=64
        Width of the embeddings, and of the LSTMs' states, with
        ``fce=True`` (64 for :class:`Conv4` on 28x28 images). Unused with
        ``fce=False``.
    fce : bool, default=False
        Full context embeddings. False: ``f`` and ``g`` are the identity
        and the comparator has no parameters. True: ``g(x_i) = x_i +
        h_fwd_i + h_bwd_i``, the support embeddings plus the states of a
        bidirectional LSTM that reads the support set sorted (stably) by
        label: how the classes' samples are interleaved changes nothing,
        but their order within a class, and the order of the labels, do;
        and ``f(x) = h_K``, the state after
        ``read_steps`` steps of an attention LSTM: ``h_0 = x``, then
        ``h_k = LSTM([x, r_{k-1}], h_{k-1}, c_{k-1}) + x`` with the readout
        ``r_{k-1} = sum_i softmax_i(h_{k-1} . g(x_i)) g(x_i)``. (The paper
        writes the LSTM with the hidden state ``[h_{k-1}, r_{k-1}]``; feeding
        ``r_{k-1}`` with the input computes the same gates.)
    read_steps : int, default=5
        ``K``, the attention LSTM's steps with ``fce=True``: how many times
        a query reads the support set before it is compared with it. The
        paper leaves K open; 5 reads are cheap next to the encoder and
        enough to attend over a 20-way episode.
    scale : float, default=1.0
        Multiplies the cosine similarities before the softmax (an inverse
        temperature). The paper uses 1: since cosines lie in [-1, 1] the
        attention is then soft, and with many support samples close to
        uniform. Larger values sharpen it towards the nearest support
        samples (Chen et al. 2019 use 100).

    Attributes
    ----------
    support_lstm : torch.nn.LSTM
        The bidirectional LSTM of ``g`` (only with ``fce=True``).
    query_lstm : torch.nn.LSTMCell
        The attention LSTM of ``f`` (only with ``fce=True``).
    """

    def __init__(self, embedding_dim=64, fce=False, read_steps=5, scale=1.0):
        super().__init__()
        check_matching_options(
            embedding_dim=embedding_dim,
            fce=fce,
            read_steps=read_steps,
            scale=scale,
            owner=type(self).__name__,
        )
        self.embedding_dim = int(embedding_dim)
        self.fce = bool(fce)
        self.read_steps = int(read_steps)
        self.scale = float(scale)
        if self.fce:
            self.support_lstm = nn.LSTM(self.embedding_dim, self.embedding_dim, bidirectional=True)
            self.query_lstm = nn.LSTMCell(2 * self.embedding_dim, self.embedding_dim)

    def extra_repr(self):
        return (
            f"embedding_dim={self.embedding_dim}, fce={self.fce}, "
            f"read_steps={self.read_steps}, scale={self.scale}"
        )

    def check_embeddings(self, embeddings):
        """Raise :class:`EmbeddingDimensionError` if the LSTMs cannot take ``embeddings``.

        Always passes with ``fce=False``, which takes embeddings of any width.
        """
        width = int(np.prod(embeddings.shape[1:], dtype=np.int64))
        if self.fce and width != self.embedding_dim:
            raise EmbeddingDimensionError(
                f"{type(self).__name__} was built with embedding_dim={self.embedding_dim} for "
                f"its full-context-embedding LSTMs, but received embeddings of {width} "
                f"features; build it with embedding_dim={width}, or use an encoder with "
                f"{self.embedding_dim} outputs.",
                expected=self.embedding_dim,
                got=width,
            )

    def embed_support(self, support):
        """``g``: full context embeddings of a label-sorted (n_support, d) support set."""
        states, _ = self.support_lstm(support.unsqueeze(1))  # one sequence of n_support
        states = states.squeeze(1)
        return support + states[:, : self.embedding_dim] + states[:, self.embedding_dim :]

    def embed_query(self, query, support):
        """``f``: full context embeddings of (n_query, d) queries, each independently."""
        state, cell = query, torch.zeros_like(query)
        for _ in range(self.read_steps):
            readout = _read(state, support)
            state, cell = self.query_lstm(torch.cat([query, readout], dim=1), (state, cell))
            state = state + query
        return state

    def forward(self, support, support_labels, query):
        support, query = support.flatten(1), query.flatten(1)
        if self.fce:
            self.check_embeddings(support)
            self.check_embeddings(query)
            order = torch.argsort(support_labels, stable=True)
            support_labels = support_labels[order]
            dtype = self.query_lstm.weight_ih.dtype
            support = self.embed_support(support[order].to(dtype))
            query = self.embed_query(query.to(dtype), support)
        else:
            dtype = torch.promote_types(support.dtype, query.dtype)
            support, query = support.to(dtype), query.to(dtype)
        return matching_log_proba(
            query, support, support_labels, n_classes(support_labels), self.scale
        )
