"""Classification heads and the model of supervised pre-training over all base classes."""

import torch
from torch import nn

from .._param_validation import Boolean, Integer, Positive, validate_params
from ._episode import EpisodeModel


class CosineHead(nn.Module):
    """A cosine classifier: scaled cosine similarities to one learned weight vector per class.

    ``logits = scale * normalize(z) @ normalize(W).T``: the "Baseline++"
    head of Chen et al. (2019) and the cosine classifier of Gidaris &
    Komodakis (2018), which keeps the classes' weights on the unit sphere
    like the embeddings a metric classifier compares. It takes the
    arguments of :class:`torch.nn.Linear` (``in_features``,
    ``out_features``), so either serves as a learner's ``head``.

    Parameters
    ----------
    in_features : int
        Width of the embeddings.
    out_features : int
        Number of classes.
    scale : float, default=10.0
        The inverse temperature of the softmax over the similarities.
    learn_scale : bool, default=True
        Meta-learn ``scale`` with the weights.
    """

    _parameter_constraints = {
        "in_features": Integer(1),
        "out_features": Integer(1),
        "scale": Positive(),
        "learn_scale": Boolean(),
    }

    def __init__(self, in_features, out_features, scale=10.0, learn_scale=True):
        super().__init__()
        params = {
            "in_features": in_features,
            "out_features": out_features,
            "scale": scale,
            "learn_scale": learn_scale,
        }
        validate_params(params, self._parameter_constraints, "CosineHead")
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        scale = torch.tensor(float(scale))
        if learn_scale:
            self.scale = nn.Parameter(scale)
        else:
            self.register_buffer("scale", scale)

    def forward(self, z):
        weight = nn.functional.normalize(self.weight, dim=1)
        return self.scale * nn.functional.normalize(z, dim=1) @ weight.T


class PretrainingModel(EpisodeModel):
    """An encoder with a classification head over the base classes, and a comparator.

    A batch with an empty support set is a plain classification batch: the
    output is the head's logits over all base classes (supervised
    pre-training). An episode (a non-empty support set) is scored like an
    :class:`EpisodeModel`, by the comparator on the embeddings: how the
    pre-trained encoder is validated and evaluated on novel classes.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps a batch of samples to embeddings (flattened for the head).
    comparator : torch.nn.Module
        Scores an episode's queries from its embeddings, e.g.
        :class:`~skfewshot.nn.Prototypes`.
    head : torch.nn.Module
        Maps (n, d) embeddings to (n, n_classes) logits, e.g.
        :class:`torch.nn.Linear` or :class:`CosineHead`.
    """

    def __init__(self, encoder, comparator, head):
        super().__init__(encoder, comparator)
        self.head = head

    def forward(self, support, support_labels, query):
        if len(support) == 0:
            return self.head(self.encoder(query).flatten(1))
        return super().forward(support, support_labels, query)
