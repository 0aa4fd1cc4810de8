"""In-context transformer comparator: a small transformer over support and query tokens.

In the spirit of CAML (Fifty et al. 2024, "Context-Aware Meta-Learning") and
of general-purpose in-context learners: each support sample is a token
``W e_i + L[y_i]`` (its embedding projected, plus the embedding of its
label), each query a token ``W e_q + u`` with a learned "unknown label"
vector ``u``; a transformer encoder mixes them and a linear readout of each
query's output token gives its class scores. No positional encoding: the
support set is a set, and its order does not matter. Each query attends to
the support tokens and to itself, never to the other queries (the attention
mask of a full sequence, computed without the masked entries), so its
scores do not depend on the query batch.
"""

from torch import nn

from .._param_validation import Integer, validate_params
from ._sequence import check_ways, context_attention, self_attention


class TransformerBlock(nn.Module):
    """A pre-norm transformer encoder block in which queries see the support set only.

    Support tokens ``s`` attend to each other; each query token ``q``
    attends to the support tokens and to itself::

        s = s + Attn(LN(s) -> LN(s)),    q = q + Attn(LN(q) -> [LN(s), LN(q)])
        x = x + FFN(LN(x))               for x in (s, q)

    with multi-head scaled dot-product attention (the same weights for both)
    and a two-layer GELU feed-forward network.

    Parameters
    ----------
    model_dim : int
        Width of the tokens.
    num_heads : int
        Attention heads; they divide ``model_dim``.
    feedforward_dim : int
        Hidden units of the feed-forward network.

    Attributes
    ----------
    norm1, norm2 : torch.nn.LayerNorm
    projection : torch.nn.Linear
        Attention queries, keys and values of the tokens.
    out : torch.nn.Linear
        The attention's output projection.
    feedforward : torch.nn.Sequential
    """

    def __init__(self, model_dim, num_heads, feedforward_dim):
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(model_dim)
        self.projection = nn.Linear(model_dim, 3 * model_dim)
        self.out = nn.Linear(model_dim, model_dim)
        self.norm2 = nn.LayerNorm(model_dim)
        self.feedforward = nn.Sequential(
            nn.Linear(model_dim, feedforward_dim), nn.GELU(), nn.Linear(feedforward_dim, model_dim)
        )

    def _heads(self, tokens):
        """Attention queries, keys and values of the tokens, each (n, num_heads, head_dim)."""
        return [x.unflatten(1, (self.num_heads, -1)) for x in self.projection(tokens).chunk(3, 1)]

    def forward(self, support, queries):
        """``(support, queries)`` tokens, (n_support, d) and (n_query, d) -> the same."""
        s_query, s_key, s_value = self._heads(self.norm1(support))
        q_query, q_key, q_value = self._heads(self.norm1(queries))
        read = self_attention(s_query, s_key, s_value)
        read_queries = context_attention(q_query, q_key, q_value, s_key, s_value)
        support = support + self.out(read.flatten(1))
        queries = queries + self.out(read_queries.flatten(1))
        support = support + self.feedforward(self.norm2(support))
        queries = queries + self.feedforward(self.norm2(queries))
        return support, queries


class InContextTransformer(nn.Module):
    """In-context transformer comparator: the support set and each query as tokens.

    Tokens: ``t_i = W e_i + L[y_i]`` for support sample ``i`` (embedding
    ``e_i``, label ``y_i``) and ``t_q = W e_q + u`` for a query, ``u`` a
    learned "unknown label" vector; ``W [e, onehot(y)]`` written as a sum.
    ``num_layers`` pre-norm transformer blocks (:class:`TransformerBlock`)
    mix them, the support tokens attending to each other and each query
    token to the support tokens and itself; a final layer norm and a linear
    readout of each query's token give one logit per label slot, and the
    query's class scores are the first ``n_way``.

    There is no positional encoding: the scores do not depend on the order
    of the support set, and the support set is read as it is given (no
    canonical order is needed). Any number of shots works, and any
    number of ways up to ``max_ways``.

    Parameters
    ----------
    embedding_dim : int, default=64
        Width of the (flattened) embeddings: 64 for
        :class:`~skfewshot.nn.Conv4` on 28x28 images.
    max_ways : int, default=20
        Label embeddings and outputs: the most classes an episode may have
        (20 covers 20-way Omniglot). More raise a ValueError.
    model_dim : int, default=128
        Width of the tokens.
    num_heads : int, default=4
        Attention heads; they divide ``model_dim``.
    num_layers : int, default=2
        Transformer blocks.
    feedforward_dim : int, default=256
        Hidden units of each block's feed-forward network.

    Attributes
    ----------
    embed : torch.nn.Linear
        ``W``, the embeddings' projection onto tokens.
    labels : torch.nn.Embedding
        ``L``: one row per label slot, then ``u`` (row ``max_ways``).
    blocks : torch.nn.ModuleList of TransformerBlock
    norm : torch.nn.LayerNorm
    readout : torch.nn.Linear
        The output logits from each query's token.
    """

    _parameter_constraints = {
        "embedding_dim": Integer(1),
        "max_ways": Integer(2),
        "model_dim": Integer(1),
        "num_heads": Integer(1),
        "num_layers": Integer(1),
        "feedforward_dim": Integer(1),
    }

    def __init__(
        self,
        embedding_dim=64,
        max_ways=20,
        model_dim=128,
        num_heads=4,
        num_layers=2,
        feedforward_dim=256,
    ):
        super().__init__()
        params = validate_params(
            {
                "embedding_dim": embedding_dim,
                "max_ways": max_ways,
                "model_dim": model_dim,
                "num_heads": num_heads,
                "num_layers": num_layers,
                "feedforward_dim": feedforward_dim,
            },
            self._parameter_constraints,
            "InContextTransformer",
        )
        if params["model_dim"] % params["num_heads"]:
            raise ValueError(
                f"InContextTransformer: num_heads={num_heads} must divide model_dim={model_dim}."
            )
        self.embedding_dim = params["embedding_dim"]
        self.max_ways = params["max_ways"]
        self.model_dim = params["model_dim"]
        self.num_heads = params["num_heads"]
        self.num_layers = params["num_layers"]
        self.feedforward_dim = params["feedforward_dim"]
        self.embed = nn.Linear(self.embedding_dim, self.model_dim)
        self.labels = nn.Embedding(self.max_ways + 1, self.model_dim)
        self.blocks = nn.ModuleList(
            TransformerBlock(self.model_dim, self.num_heads, self.feedforward_dim)
            for _ in range(self.num_layers)
        )
        self.norm = nn.LayerNorm(self.model_dim)
        self.readout = nn.Linear(self.model_dim, self.max_ways)

    def extra_repr(self):
        return (
            f"embedding_dim={self.embedding_dim}, max_ways={self.max_ways}, "
            f"model_dim={self.model_dim}, num_heads={self.num_heads}, "
            f"num_layers={self.num_layers}, feedforward_dim={self.feedforward_dim}"
        )

    def forward(self, support, support_labels, query):
        n_way = check_ways(support_labels, self.max_ways, "InContextTransformer")
        dtype = self.readout.weight.dtype
        support = self.embed(support.flatten(1).to(dtype)) + self.labels(support_labels)
        queries = self.embed(query.flatten(1).to(dtype)) + self.labels.weight[self.max_ways]
        for block in self.blocks:
            support, queries = block(support, queries)
        return self.readout(self.norm(queries))[:, :n_way]


__all__ = ["InContextTransformer"]
