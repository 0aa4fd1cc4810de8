"""Relation Networks comparator (Sung et al. 2018). Plain torch: it knows nothing of sklearn."""

import torch
from torch import nn
from torch.nn import functional as F

from .._param_validation import Integer, Options, validate_params
from ._episode import n_classes

AGGREGATIONS = ("sum", "mean")


class RelationModule(nn.Module):
    """The learned comparator of Relation Networks (Sung et al. 2018).

    Each class's support feature maps are aggregated into one class map (by
    default their sum, as in the paper). Every (class map, query map) pair
    is concatenated along the channels, with the class map first as in the
    reference implementation, and scored by the relation module: two blocks
    of 3x3 convolution (``hidden_channels`` filters, padding 1), batch
    normalisation, ReLU and 2x2 max-pooling, then a ReLU layer of
    ``hidden_features`` units and one sigmoid output, the *relation score*
    in [0, 1]. Trained with the mean squared error against one-hot targets
    (:class:`~skfewshot.nn.OneHotLoss` ``("mse")``), relation scores are
    not calibrated probabilities.

    Small maps: a block max-pools only a map of at least 2x2 (a 1x1 map
    passes unpooled), and the map left after the two blocks is averaged to
    1x1 (adaptive average pooling) before the fully connected layers, so
    the module takes maps of any size, and the number of its weights does
    not depend on the map size. On the 7x7 maps of Omniglot (28x28 images,
    ``Conv4(flatten=False, pooled_blocks=2)``) the blocks give 3x3 then 1x1
    maps, so the averaging does nothing and the architecture is the
    paper's. Embedding vectors (n, d) are taken as 1x1 maps of ``d``
    channels (e.g. from ``Conv4()`` or :class:`~skfewshot.nn.MLP`): the 3x3
    convolutions then act as linear layers on the concatenated pair.

    The first convolution is linear in its input, so it is computed on the
    class maps and on the query maps separately and the results are added
    for each pair: the same function and weights as convolving every
    concatenated pair, with ``n_way + n_query`` instead of ``n_way *
    n_query`` convolutions in the widest layer (several times faster).

    Parameters
    ----------
    embedding_dim : int, default=64
        Channels of the embeddings (their width, for vectors): the encoder's
        output channels. The first convolution takes twice as many.
    hidden_channels : int, default=64
        Filters of the two convolution blocks.
    hidden_features : int, default=8
        Units of the hidden fully connected layer.
    aggregation : {"mean", "sum"}, default="mean"
        How a class's support maps become its class map. ``"mean"`` keeps
        the class map's scale independent of the shot count, so one module
        serves any number of shots (chosen on validation classes: see
        ``benchmarks/default_choices.py``). ``"sum"`` is the paper's; its
        scale grows with the number of shots, so a module trained at one
        shot count sees differently scaled class maps at another (or with
        unbalanced support sets).

    Notes
    -----
    A pair's score depends only on that query and the support set: in
    evaluation mode (batch normalisation on running statistics) the scores
    of a query do not depend on the other queries of the batch.
    """

    #: The embeddings' channels are compared with ``embedding_dim`` (vectors are 1x1 maps).
    embedding_axis = "channels"

    _parameter_constraints = {
        "embedding_dim": Integer(1),
        "hidden_channels": Integer(1),
        "hidden_features": Integer(1),
        "aggregation": Options(*AGGREGATIONS),
    }

    def __init__(self, embedding_dim=64, hidden_channels=64, hidden_features=8, aggregation="mean"):
        super().__init__()
        validate_params(
            {
                "embedding_dim": embedding_dim,
                "hidden_channels": hidden_channels,
                "hidden_features": hidden_features,
                "aggregation": aggregation,
            },
            self._parameter_constraints,
            "RelationModule",
        )
        self.embedding_dim = embedding_dim
        self.aggregation = aggregation
        self.conv1 = nn.Conv2d(2 * embedding_dim, hidden_channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(hidden_channels)
        self.conv2 = nn.Conv2d(hidden_channels, hidden_channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(hidden_channels)
        self.fc1 = nn.Linear(hidden_channels, hidden_features)
        self.fc2 = nn.Linear(hidden_features, 1)

    def extra_repr(self):
        return f"embedding_dim={self.embedding_dim}, aggregation={self.aggregation!r}"

    @staticmethod
    def _as_maps(z):
        """Embedding vectors (n, d) as 1x1 maps (n, d, 1, 1); feature maps unchanged."""
        return z[:, :, None, None] if z.ndim == 2 else z

    def class_maps(self, support, support_labels):
        """Each class's map: the sum (or mean) of its support maps, (n_way, c, h, w)."""
        support = self._as_maps(support)
        n_way = n_classes(support_labels)
        maps = support.new_zeros((n_way, *support.shape[1:]))
        maps = maps.index_add(0, support_labels, support)
        if self.aggregation == "mean":
            counts = torch.bincount(support_labels, minlength=n_way).clamp_min(1)
            maps = maps / counts.to(maps.dtype)[:, None, None, None]
        return maps

    @staticmethod
    def _pool(x):
        """2x2 max-pooling of maps of at least 2x2; smaller maps pass unpooled."""
        return F.max_pool2d(x, 2) if min(x.shape[-2:]) >= 2 else x

    def forward(self, support, support_labels, query):
        classes = self.class_maps(support, support_labels)
        query = self._as_maps(query)
        n_query, n_way = len(query), len(classes)
        # conv1(cat([class, query])) == conv1_class(class) + conv1_query(query) + bias
        c = self.embedding_dim
        weight = self.conv1.weight
        from_classes = F.conv2d(classes, weight[:, :c], self.conv1.bias, padding=1)
        from_query = F.conv2d(query, weight[:, c:], None, padding=1)
        pairs = (from_query[:, None] + from_classes[None]).flatten(0, 1)
        x = self._pool(F.relu(self.bn1(pairs)))
        x = self._pool(F.relu(self.bn2(self.conv2(x))))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        x = F.relu(self.fc1(x))
        return torch.sigmoid(self.fc2(x)).view(n_query, n_way)


__all__ = ["RelationModule"]
