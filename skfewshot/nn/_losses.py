"""Losses on class scores against episode-local labels."""

import torch
from torch import nn

from .._param_validation import Options, validate_params


class OneHotLoss(nn.Module):
    """A loss between class scores and the one-hot encoding of the labels.

    For methods trained as regression or binary classification per (query,
    class) pair rather than with a softmax: the mean squared error of
    relation scores (Relation Networks) or the binary cross-entropy of
    same/different logits (Siamese networks).

    Parameters
    ----------
    loss : {"mse", "bce_with_logits"}, default="mse"
        The element-wise loss.
    pos_weight : float or None, default=None
        With ``"bce_with_logits"``, the weight of the positive pairs (one
        positive per query against ``n_way - 1`` negatives).
    """

    def __init__(self, loss="mse", pos_weight=None):
        super().__init__()
        validate_params({"loss": loss}, {"loss": Options("mse", "bce_with_logits")}, "OneHotLoss")
        self.loss = loss
        self.pos_weight = pos_weight

    def forward(self, scores, labels):
        target = nn.functional.one_hot(labels, scores.shape[1]).to(scores.dtype)
        if self.loss == "mse":
            return nn.functional.mse_loss(scores, target)
        pos_weight = None
        if self.pos_weight is not None:
            pos_weight = torch.as_tensor(self.pos_weight, dtype=scores.dtype, device=scores.device)
        return nn.functional.binary_cross_entropy_with_logits(scores, target, pos_weight=pos_weight)


class ReptileLoss(nn.Module):
    """The outer loss of Reptile, or the query cross-entropy when there is none.

    Takes the output of :class:`~skfewshot.nn.ReptileAdaptation`: in
    training, a pair ``(query_logits, distance)``, whose loss is the
    distance (the labels are unused); in evaluation, query logits, whose
    loss is their cross-entropy (so validation losses are comparable with
    the other methods').
    """

    def forward(self, output, labels):
        if isinstance(output, tuple):
            return output[1]
        return nn.functional.cross_entropy(output, labels)
