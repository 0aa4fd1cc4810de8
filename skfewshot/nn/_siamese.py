"""The Siamese networks comparator (Koch et al. 2015): a learned kernel on embeddings."""

import torch
from torch import nn

from .._param_validation import Integer, Options, validate_params
from ._episode import n_classes

AGGREGATIONS = ("max", "sum", "log_sum")


def aggregate_pair_logits(logits, support_labels, aggregation):
    """Class scores (n_query, n_way) from pair logits (n_query, n_support).

    See ``aggregation`` of :class:`SiameseKernel` for the rules.
    """
    n_way = n_classes(support_labels)
    index = support_labels.expand(len(logits), -1)
    if aggregation == "max":
        init = logits.new_full((len(logits), n_way), float("-inf"))
        return init.scatter_reduce(1, index, logits, reduce="amax")
    onehot = nn.functional.one_hot(support_labels, n_way).to(logits.dtype)
    if aggregation == "sum":
        return torch.sigmoid(logits) @ onehot
    # log sum_i sigmoid(l_i) over a class, shifted by the class's largest term
    log_kernel = nn.functional.logsigmoid(logits)
    top = log_kernel.new_full((len(logits), n_way), float("-inf"))
    top = top.scatter_reduce(1, index, log_kernel, reduce="amax").detach()
    return top + torch.log(torch.exp(log_kernel - top.gather(1, index)) @ onehot)


class SiameseKernel(nn.Module):
    """Siamese networks comparator (Koch, Zemel and Salakhutdinov 2015).

    Both branches of a Siamese network share the encoder ``f``; this module
    is the head that joins them, a learned kernel on two embeddings::

        k(x, x') = sigmoid(w . |f(x) - f(x')| + b)

    the probability that ``x`` and ``x'`` belong to the same class (a
    weighted L1 distance between the embeddings, squashed). For each query
    it computes the *pair logit* ``w . |f(q) - f(s_i)| + b`` of every support
    sample ``s_i`` and aggregates them per class.

    Parameters
    ----------
    embedding_dim : int, default=64
        Width of the (flattened) embeddings, the size of ``w``: 64 for
        :class:`~skfewshot.nn.Conv4` on 28x28 images.
    aggregation : {"max", "sum", "log_sum"}, default="max"
        How the pairs of a class make its score:

        - ``"max"``: the largest pair logit of the class, i.e. the closest
          support sample decides (Koch's one-shot rule). A valid logit,
          since the sigmoid is monotonic; with one support sample per class
          the scores are exactly the pair logits, which is how the module is
          trained with pairwise binary cross-entropy.
        - ``"sum"``: ``sum_i k(q, s_i) onehot(y_i)``, kernel values (not
          logits); normalised over the classes they give the kernel
          nearest-neighbour probabilities ``P(y | q, S)``.
        - ``"log_sum"``: the logarithm of ``"sum"``, computed without
          underflow (a softmax of it is the normalised ``"sum"``, even when
          every kernel value is below the smallest float).

    Attributes
    ----------
    linear : torch.nn.Linear
        The weights ``w`` (``linear.weight``, shape (1, embedding_dim)) and
        bias ``b`` of the pair logits.
    """

    _parameter_constraints = {"embedding_dim": Integer(1), "aggregation": Options(*AGGREGATIONS)}

    def __init__(self, embedding_dim=64, aggregation="max"):
        super().__init__()
        validate_params(
            {"embedding_dim": embedding_dim, "aggregation": aggregation},
            self._parameter_constraints,
            "SiameseKernel",
        )
        self.embedding_dim = int(embedding_dim)
        self.aggregation = aggregation
        self.linear = nn.Linear(self.embedding_dim, 1)

    def pair_logits(self, support, query):
        """Logits ``w @ |f(q) - f(s)| + b`` of every (query, support sample) pair.

        Parameters
        ----------
        support : torch.Tensor of shape (n_support, ...)
            Support embeddings.
        query : torch.Tensor of shape (n_query, ...)
            Query embeddings.

        Returns
        -------
        logits : torch.Tensor of shape (n_query, n_support)
            Same-class logits; ``sigmoid(logits)`` is the kernel.
        """
        support, query = support.flatten(1), query.flatten(1)
        return self.linear((query[:, None, :] - support[None, :, :]).abs()).squeeze(-1)

    def forward(self, support, support_labels, query):
        logits = self.pair_logits(support, query)
        return aggregate_pair_logits(logits, support_labels, self.aggregation)


__all__ = ["SiameseKernel", "aggregate_pair_logits"]
