"""Memory-augmented neural network comparator (Santoro et al. 2016): LSTM and external memory.

An LSTM *controller* reads the support set as a sequence of (embedding,
one-hot label) pairs and writes to an external memory of ``memory_slots``
rows by *least recently used access* (LRUA); it reads the memory back by
cosine similarity. Each query is then one more step of that sequence, with
no label, from the state the support set left: its output is the query's
class scores. The memory binds embeddings to labels within an episode; the
weights, meta-learned over episodes, learn how to bind and retrieve.
"""

import torch
from torch import nn
from torch.nn import functional as F

from .._param_validation import Boolean, Integer, Positive, validate_params
from ._sequence import canonical_order, check_ways, one_hot


class MANN(nn.Module):
    """Memory-augmented neural network comparator (Santoro et al. 2016).

    The support set is read as a sequence in its canonical order (round-robin
    over the classes: see Notes), one step per sample with input
    ``u_t = [e_t, onehot(y_t)]``; each query is one further step, input
    ``[e_q, 0]``, continuing independently from the state after the support
    set. One step, with ``H`` = ``read_heads``:

    * controller: ``h_t, c_t = LSTM([u_t, r_{t-1}], (h_{t-1}, c_{t-1}))``;
    * per head, from ``h_t``: a read key ``k_t = tanh(W_k h_t)``, a write
      vector ``a_t = tanh(W_a h_t)``, a write gate ``g_t = sigmoid(W_g
      h_t)`` and a key strength ``beta_t = 1 + softplus(W_b h_t)``;
    * LRUA write: the least-used weights ``w^lu_{t-1}`` are 1 on the ``H``
      slots of smallest usage ``w^u_{t-1}`` (ties: the lowest index) and 0
      elsewhere; the slot of smallest usage is erased, then
      ``M_t = M_{t-1} + sum_heads w^w_t a_t^T`` with the write weights
      ``w^w_t = g_t w^r_{t-1} + (1 - g_t) w^lu_{t-1}``: a head writes to
      the slots it just read, or to the least used ones;
    * cosine read: ``w^r_t(i) = softmax_i(beta_t cos(k_t, M_t(i)))``,
      ``r_t = sum_i w^r_t(i) M_t(i)`` (the heads' reads concatenated);
    * usage: ``w^u_t = usage_decay * w^u_{t-1} + sum_heads (w^r_t + w^w_t)``;
    * output: ``o_t = W_o [h_t, r_t]``, one logit per label slot.

    The query's class scores are the first ``n_way`` logits of its step.
    Memory, reads and usage start at zero. As in the reference
    implementation of the paper, the read key and the write vector are
    separate outputs of the controller; the key strength ``beta_t`` is
    that of Neural Turing Machines (Graves et al. 2014), which Santoro et
    al. leave out (``beta = 1``): with cosines in [-1, 1] and many slots, a
    read without it stays close to uniform.

    Parameters
    ----------
    embedding_dim : int, default=64
        Width of the (flattened) embeddings: 64 for
        :class:`~skfewshot.nn.Conv4` on 28x28 images.
    max_ways : int, default=20
        Width of the one-hot labels and of the output: the most classes an
        episode may have (20 covers 20-way Omniglot). More raise a
        ValueError.
    hidden_size : int, default=200
        Units of the LSTM controller (the paper's 200).
    memory_slots : int, default=128
        Rows of the memory (the paper's 128).
    memory_size : int, default=40
        Width of a memory row (the paper's 40).
    read_heads : int, default=4
        Read (and write) heads (the paper's 4); at most ``memory_slots``.
    usage_decay : float, default=0.95
        ``gamma``, the decay of the usage weights, in (0, 1].
    label_offset : bool, default=False
        The paper's protocol: each support sample comes with the label of
        the sample before it (none for the first), ``u_t = [e_t,
        onehot(y_{t-1})]``, and each query with the last support label, so
        that a label can only be bound to its sample through the
        controller's memory of the previous step. False: each support
        sample comes with its own label (the library's default, easier to
        learn). Santoro et al. present a uniformly shuffled sequence and
        train on the prediction at every step; here the order is the
        canonical one (so that the scores do not depend on the order of
        the support set) and the loss is the queries', as for every method
        of the library.

    Attributes
    ----------
    controller : torch.nn.LSTMCell
        The controller.
    heads : torch.nn.Linear
        Read keys, write vectors, write gates and key strengths from the
        controller's state.
    readout : torch.nn.Linear
        The output logits from the controller's state and the reads.

    Notes
    -----
    The support set is read sample by sample (a Python loop of
    ``n_support`` steps), then all queries in one step. Each query's
    scores depend on the support set and that query only.

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
        "hidden_size": Integer(1),
        "memory_slots": Integer(1),
        "memory_size": Integer(1),
        "read_heads": Integer(1),
        "usage_decay": Positive(),
        "label_offset": Boolean(),
    }

    def __init__(
        self,
        embedding_dim=64,
        max_ways=20,
        hidden_size=200,
        memory_slots=128,
        memory_size=40,
        read_heads=4,
        usage_decay=0.95,
        label_offset=False,
    ):
        super().__init__()
        params = validate_params(
            {
                "embedding_dim": embedding_dim,
                "max_ways": max_ways,
                "hidden_size": hidden_size,
                "memory_slots": memory_slots,
                "memory_size": memory_size,
                "read_heads": read_heads,
                "usage_decay": usage_decay,
                "label_offset": label_offset,
            },
            self._parameter_constraints,
            "MANN",
        )
        if params["usage_decay"] > 1:
            raise ValueError(f"MANN: usage_decay must be a number in (0, 1], got {usage_decay!r}.")
        if params["read_heads"] > params["memory_slots"]:
            raise ValueError(
                f"MANN: read_heads={read_heads} must not exceed memory_slots={memory_slots} "
                "(each head writes to one of the least-used slots)."
            )
        self.embedding_dim = params["embedding_dim"]
        self.max_ways = params["max_ways"]
        self.hidden_size = params["hidden_size"]
        self.memory_slots = params["memory_slots"]
        self.memory_size = params["memory_size"]
        self.read_heads = params["read_heads"]
        self.usage_decay = params["usage_decay"]
        self.label_offset = params["label_offset"]
        reads = self.read_heads * self.memory_size
        self.controller = nn.LSTMCell(self.embedding_dim + self.max_ways + reads, self.hidden_size)
        self.heads = nn.Linear(self.hidden_size, self.read_heads * (2 * self.memory_size + 2))
        self.readout = nn.Linear(self.hidden_size + reads, self.max_ways)

    def extra_repr(self):
        return (
            f"embedding_dim={self.embedding_dim}, max_ways={self.max_ways}, "
            f"memory_slots={self.memory_slots}, memory_size={self.memory_size}, "
            f"read_heads={self.read_heads}, usage_decay={self.usage_decay}, "
            f"label_offset={self.label_offset}"
        )

    def initial_state(self, batch, dtype, device):
        """The state before the first step: zeros.

        ``(h, c, memory, reads, read_weights, usage)`` of shapes
        ``(batch, hidden_size)`` twice, ``(batch, memory_slots,
        memory_size)``, ``(batch, read_heads * memory_size)``, ``(batch,
        read_heads, memory_slots)`` and ``(batch, memory_slots)``.
        """
        zeros = {"dtype": dtype, "device": device}
        hidden = torch.zeros(batch, self.hidden_size, **zeros)
        return (
            hidden,
            hidden,
            torch.zeros(batch, self.memory_slots, self.memory_size, **zeros),
            torch.zeros(batch, self.read_heads * self.memory_size, **zeros),
            torch.zeros(batch, self.read_heads, self.memory_slots, **zeros),
            torch.zeros(batch, self.memory_slots, **zeros),
        )

    def step(self, inputs, state):
        """One step: ``(h_t, r_t)`` and the new state from inputs ``u_t`` (batch, width).

        ``width`` is ``embedding_dim + max_ways``; ``state`` is as
        :meth:`initial_state` returns it. Rows of the batch are independent.
        """
        h, c, memory, reads, read_weights, usage = state
        dtype = self.readout.weight.dtype
        h, c = self.controller(torch.cat([inputs, reads], 1).to(dtype), (h, c))
        m = self.memory_size
        heads = self.heads(h).unflatten(1, (self.read_heads, 2 * m + 2))
        key, add = torch.tanh(heads[..., :m]), torch.tanh(heads[..., m : 2 * m])
        gate = torch.sigmoid(heads[..., 2 * m : 2 * m + 1])
        strength = 1 + F.softplus(heads[..., 2 * m + 1 :])
        # LRUA: the least-used slots of the previous step (stable: ties to the lowest index).
        ranked = torch.argsort(usage, dim=1, stable=True)
        least_used = torch.zeros_like(usage).scatter_(1, ranked[:, : self.read_heads], 1.0)
        erase = torch.ones_like(usage).scatter_(1, ranked[:, :1], 0.0)
        write_weights = gate * read_weights + (1 - gate) * least_used[:, None]
        memory = memory * erase[..., None] + torch.einsum("bhn,bhm->bnm", write_weights, add)
        # Cosine read, sharpened by the key strength.
        similarity = torch.einsum(
            "bhm,bnm->bhn", F.normalize(key, dim=-1), F.normalize(memory, dim=-1)
        )
        read_weights = torch.softmax(strength * similarity, dim=-1)
        reads = torch.einsum("bhn,bnm->bhm", read_weights, memory).flatten(1)
        usage = self.usage_decay * usage + (read_weights + write_weights).sum(1)
        return (h, reads), (h, c, memory, reads, read_weights, usage)

    def scores_in_order(self, support, support_labels, query):
        """Class scores (n_query, n_way) with the support set read in the order given.

        :meth:`forward` reads it in the canonical order instead: the
        scores then do not depend on the order of the support samples.
        """
        n_way = check_ways(support_labels, self.max_ways, "MANN")
        dtype = self.readout.weight.dtype
        support, query = support.flatten(1).to(dtype), query.flatten(1).to(dtype)
        labels = one_hot(support_labels, self.max_ways, dtype)
        if self.label_offset:  # each sample with the label of the one before it
            shown = torch.cat([labels.new_zeros(1, self.max_ways), labels[:-1]])
            query_label = labels[-1:]
        else:
            shown, query_label = labels, labels.new_zeros(1, self.max_ways)
        state = self.initial_state(1, dtype, support.device)
        for item in torch.cat([support, shown], 1):
            _, state = self.step(item[None], state)
        # Each query is one more step from the state after the support set, on its own.
        state = tuple(s.expand(len(query), *s.shape[1:]) for s in state)
        inputs = torch.cat([query, query_label.expand(len(query), -1)], 1)
        (h, reads), _ = self.step(inputs, state)
        return self.readout(torch.cat([h, reads], 1))[:, :n_way]

    def forward(self, support, support_labels, query):
        order = canonical_order(support, support_labels)
        return self.scores_in_order(support[order], support_labels[order], query)


__all__ = ["MANN"]
