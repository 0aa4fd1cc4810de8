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

import torch
from torch import nn

from .._param_validation import Boolean, Integer, Positive, validate_params
from ._episode import n_classes


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
    embedding_dim : int or None, default=None
        Width of the (flattened) embeddings, and of the LSTMs' states:
        required with ``fce=True`` (64 for :class:`Conv4` on 28x28 images).
        None, with ``fce=False``, takes embeddings of any width.
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

    _parameter_constraints = {
        "embedding_dim": Integer(1, none="any width, without full context embeddings"),
        "fce": Boolean(),
        "read_steps": Integer(1),
        "scale": Positive(),
    }

    def __init__(self, embedding_dim=None, fce=False, read_steps=5, scale=1.0):
        super().__init__()
        params = validate_params(
            {"embedding_dim": embedding_dim, "fce": fce, "read_steps": read_steps, "scale": scale},
            self._parameter_constraints,
            "MatchingAttention",
        )
        if params["fce"] and embedding_dim is None:
            raise ValueError(
                "MatchingAttention: full context embeddings (fce=True) need the embeddings' "
                "width: pass embedding_dim (e.g. 64 for Conv4 on 28x28 images)."
            )
        self.embedding_dim = params["embedding_dim"]
        self.fce = params["fce"]
        self.read_steps = params["read_steps"]
        self.scale = params["scale"]
        if self.fce:
            self.support_lstm = nn.LSTM(self.embedding_dim, self.embedding_dim, bidirectional=True)
            self.query_lstm = nn.LSTMCell(2 * self.embedding_dim, self.embedding_dim)

    def extra_repr(self):
        return (
            f"embedding_dim={self.embedding_dim}, fce={self.fce}, "
            f"read_steps={self.read_steps}, scale={self.scale}"
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
