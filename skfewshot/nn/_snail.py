"""SNAIL comparator (Mishra et al. 2018): causal temporal convolutions and causal attention.

A Simple Neural AttentIve meta-Learner reads an episode as a sequence of
(embedding, one-hot label) pairs, the query last with a zero label, through
*temporal convolution* blocks (stacks of causal, dilated convolutions with
gated activations, each block's output concatenated to its input: dense
blocks) interleaved with *causal attention* blocks (each position attends to
itself and the positions before it); the output at the query's position is
its class scores.

Every query is its own sequence, the support set followed by that query:
since the network is causal, the support positions do not depend on the
query, so they are computed once and each query's last position is computed
from them (the same scores as running each query's whole sequence, at the
cost of one position per query).
"""

from collections.abc import Sequence

import torch
from torch import nn

from .._param_validation import Integer, validate_params
from ._sequence import canonical_order, check_ways, context_attention, one_hot, self_attention


class DenseBlock(nn.Module):
    """A causal dilated convolution with a gated activation, concatenated to its input.

    ``a_t = tanh(W_f [x_{t-d}, x_t] + b_f) * sigmoid(W_g [x_{t-d}, x_t] + b_g)``
    (a convolution of kernel size 2 and dilation ``d``, with ``x_{t-d} = 0``
    before the sequence starts); the output is ``[x_t, a_t]``, of
    ``in_channels + filters`` channels.

    Parameters
    ----------
    in_channels : int
        Channels of the input sequence.
    filters : int
        Channels the block adds.
    dilation : int
        ``d``, the distance between the convolution's two taps.

    Attributes
    ----------
    conv : torch.nn.Linear
        Both taps (columns ``[:in_channels]`` for ``x_{t-d}``, then ``x_t``)
        of the filter (rows ``[:filters]``) and of the gate.
    """

    def __init__(self, in_channels, filters, dilation):
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Linear(2 * in_channels, 2 * filters)

    def _gated(self, past, present):
        values, gates = self.conv(torch.cat([past, present], 1)).chunk(2, 1)
        return torch.tanh(values) * torch.sigmoid(gates)

    def forward(self, sequence, queries):
        """``(sequence, queries)`` -> the same, with ``filters`` more channels.

        ``sequence`` (T, C) is the support set; ``queries`` (n_query, C) each
        stand at position T, after it.
        """
        length, d = len(sequence), self.dilation
        lag = min(d, length)  # positions with no sample d steps before
        past = torch.cat([sequence.new_zeros(lag, sequence.shape[1]), sequence[: length - lag]])
        if d <= length:
            query_past = sequence[length - d].expand(len(queries), -1)
        else:
            query_past = queries.new_zeros(queries.shape)
        return (
            torch.cat([sequence, self._gated(past, sequence)], 1),
            torch.cat([queries, self._gated(query_past, queries)], 1),
        )


class TCBlock(nn.Module):
    """A temporal convolution block: dense blocks of dilations 1, 2, 4, ...

    Parameters
    ----------
    in_channels : int
        Channels of the input sequence.
    filters : int
        Channels each dense block adds.
    dense_blocks : int
        Their number; the dilations are ``1, 2, ..., 2 ** (dense_blocks - 1)``,
        a receptive field of ``2 ** dense_blocks`` positions.

    Attributes
    ----------
    blocks : torch.nn.ModuleList of DenseBlock
    out_channels : int
        ``in_channels + dense_blocks * filters``.
    """

    def __init__(self, in_channels, filters, dense_blocks):
        super().__init__()
        self.blocks = nn.ModuleList(
            DenseBlock(in_channels + i * filters, filters, 2**i) for i in range(dense_blocks)
        )
        self.out_channels = in_channels + dense_blocks * filters

    def forward(self, sequence, queries):
        for block in self.blocks:
            sequence, queries = block(sequence, queries)
        return sequence, queries


class AttentionBlock(nn.Module):
    """Causal single-head attention, its read concatenated to its input.

    Position ``t`` reads ``sum_{j <= t} softmax_j(q_t . k_j / sqrt(key_size)) v_j``
    with ``q``, ``k``, ``v`` linear in the input; the output is ``[x_t,
    read_t]``, of ``in_channels + value_size`` channels.

    Parameters
    ----------
    in_channels : int
        Channels of the input sequence.
    key_size : int
        Width of the keys and queries.
    value_size : int
        Width of the values: the channels the block adds.

    Attributes
    ----------
    key, query, value : torch.nn.Linear
    """

    def __init__(self, in_channels, key_size, value_size):
        super().__init__()
        self.key = nn.Linear(in_channels, key_size)
        self.query = nn.Linear(in_channels, key_size)
        self.value = nn.Linear(in_channels, value_size)

    def forward(self, sequence, queries):
        """``(sequence, queries)`` -> the same, with ``value_size`` more channels.

        Each query (at position T) attends to the support sequence and itself.
        """
        keys, values = self.key(sequence)[:, None], self.value(sequence)[:, None]
        read = self_attention(self.query(sequence)[:, None], keys, values, causal=True)
        read_queries = context_attention(
            self.query(queries)[:, None],
            self.key(queries)[:, None],
            self.value(queries)[:, None],
            keys,
            values,
        )
        return torch.cat([sequence, read[:, 0]], 1), torch.cat([queries, read_queries[:, 0]], 1)


def _check_attention(attention):
    """``attention`` as a tuple of (key_size, value_size) pairs of integers >= 1."""
    message = (
        "SNAIL: attention must be a non-empty sequence of (key_size, value_size) pairs of "
        f"integers >= 1, got {attention!r}."
    )
    if isinstance(attention, str) or not isinstance(attention, Sequence) or not attention:
        raise ValueError(message)
    pairs = []
    for pair in attention:
        if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(message)
        try:
            pairs.append(tuple(Integer(1).check(size, "attention") for size in pair))
        except ValueError:
            raise ValueError(message) from None
    return tuple(pairs)


class SNAIL(nn.Module):
    """SNAIL comparator (Mishra et al. 2018): a Simple Neural AttentIve meta-Learner.

    The support set is read as a sequence in its canonical order (round-robin
    over the classes: see Notes) of inputs ``[e_t, onehot(y_t)]``, and
    each query as one more position, ``[e_q, 0]``, of its own copy of that
    sequence. The network alternates causal attention blocks
    (:class:`AttentionBlock`, one per ``attention`` pair) with temporal
    convolution blocks (:class:`TCBlock` of ``dense_blocks`` dense blocks
    of ``filters`` channels) between them; every block concatenates its
    output to its input. A linear readout of the query's position gives
    one logit per label slot; the query's class scores are the first
    ``n_way``. The defaults are the paper's Omniglot architecture:
    attention blocks of (64, 32), (256, 128) and (512, 256) keys and values,
    two TC blocks of 128 filters between them, a final 1x1 convolution (the
    readout).

    Parameters
    ----------
    embedding_dim : int, default=64
        Width of the (flattened) embeddings: 64 for
        :class:`~skfewshot.nn.Conv4` on 28x28 images.
    max_ways : int, default=20
        Width of the one-hot labels and of the output: the most classes an
        episode may have (20 covers 20-way Omniglot). More raise a
        ValueError.
    attention : sequence of (int, int), default=((64, 32), (256, 128), (512, 256))
        ``(key_size, value_size)`` of each attention block, in order; a TC
        block sits between consecutive ones.
    filters : int, default=128
        Channels each dense block adds (the paper's 128).
    dense_blocks : int, default=7
        Dense blocks per TC block, of dilations ``1, 2, ..., 2 **
        (dense_blocks - 1)``. The paper's TC block for sequences of ``T``
        positions has ``ceil(log2 T)``: 7 covers sequences of up to 128
        positions (20-way 5-shot, 101). Longer sequences work (the
        attention reaches every position), with convolutions that do not
        span them.

    Attributes
    ----------
    blocks : torch.nn.ModuleList
        The attention and TC blocks, in order.
    readout : torch.nn.Linear
        The output logits from the query's last features.

    Notes
    -----
    Each query's scores depend on the support set and that query only.

    The order in which the support set is read matters (:meth:`scores_in_order`
    reads it as given: another order of the same support set changes the
    scores). :meth:`forward` reads it in a canonical order, the same in
    training and at test time: round-robin over the classes in label order
    (a sample of class 0, one of class 1, ..., then a second of class 0,
    ...), each class's samples by increasing projection of their embeddings
    on a fixed random direction. It depends on the set of (embedding, label)
    pairs only, so the scores do not depend on the order of the support set.
    """

    _parameter_constraints = {
        "embedding_dim": Integer(1),
        "max_ways": Integer(2),
        "filters": Integer(1),
        "dense_blocks": Integer(1),
    }

    def __init__(
        self,
        embedding_dim=64,
        max_ways=20,
        attention=((64, 32), (256, 128), (512, 256)),
        filters=128,
        dense_blocks=7,
    ):
        super().__init__()
        params = validate_params(
            {
                "embedding_dim": embedding_dim,
                "max_ways": max_ways,
                "filters": filters,
                "dense_blocks": dense_blocks,
            },
            self._parameter_constraints,
            "SNAIL",
        )
        self.embedding_dim = params["embedding_dim"]
        self.max_ways = params["max_ways"]
        self.attention = _check_attention(attention)
        self.filters = params["filters"]
        self.dense_blocks = params["dense_blocks"]
        channels = self.embedding_dim + self.max_ways
        blocks = []
        for i, (key_size, value_size) in enumerate(self.attention):
            if i:
                blocks.append(TCBlock(channels, self.filters, self.dense_blocks))
                channels = blocks[-1].out_channels
            blocks.append(AttentionBlock(channels, key_size, value_size))
            channels += value_size
        self.blocks = nn.ModuleList(blocks)
        self.readout = nn.Linear(channels, self.max_ways)

    def extra_repr(self):
        return (
            f"embedding_dim={self.embedding_dim}, max_ways={self.max_ways}, "
            f"attention={self.attention}, filters={self.filters}, "
            f"dense_blocks={self.dense_blocks}"
        )

    def scores_in_order(self, support, support_labels, query):
        """Class scores (n_query, n_way) with the support set read in the order given.

        :meth:`forward` reads it in the canonical order instead: the
        scores then do not depend on the order of the support samples.
        """
        n_way = check_ways(support_labels, self.max_ways, "SNAIL")
        dtype = self.readout.weight.dtype
        sequence = torch.cat(
            [
                support.flatten(1).to(dtype),
                one_hot(support_labels, self.max_ways, dtype),
            ],
            1,
        )
        query = query.flatten(1).to(dtype)
        queries = torch.cat([query, query.new_zeros(len(query), self.max_ways)], 1)
        for block in self.blocks:
            sequence, queries = block(sequence, queries)
        return self.readout(queries)[:, :n_way]

    def forward(self, support, support_labels, query):
        order = canonical_order(support, support_labels)
        return self.scores_in_order(support[order], support_labels[order], query)


__all__ = ["SNAIL"]
