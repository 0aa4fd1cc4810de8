"""The Prototypical Networks comparator (Snell et al. 2017)."""

from torch import nn

from .._param_validation import Options, Positive, validate_params
from ._distances import DISTANCES, class_means, pairwise_distance
from ._episode import n_classes


class Prototypes(nn.Module):
    """Prototypical Networks comparator (Snell et al. 2017).

    Averages each class's support embeddings into a prototype and returns,
    for each query, the negative distances to the prototypes (logits).

    Parameters
    ----------
    distance : {"sqeuclidean", "euclidean", "cosine"}, default="sqeuclidean"
        Distance between embeddings and prototypes.
    scale : float, default=1.0
        Multiplies the negative distances (an inverse temperature of the
        softmax): Prototypical Networks use 1 with squared Euclidean
        distances; cosine distances, in [0, 2], train better with e.g. 10.
    """

    _parameter_constraints = {"distance": Options(*DISTANCES), "scale": Positive()}

    def __init__(self, distance="sqeuclidean", scale=1.0):
        super().__init__()
        params = {"distance": distance, "scale": scale}
        validate_params(params, self._parameter_constraints, "Prototypes")
        self.distance = distance
        self.scale = scale

    def forward(self, support, support_labels, query):
        prototypes = class_means(support.flatten(1), support_labels, n_classes(support_labels))
        return -self.scale * pairwise_distance(query.flatten(1), prototypes, self.distance)
