"""The Prototypical Networks comparator (Snell et al. 2017)."""

from torch import nn

from .._param_validation import Options, validate_params
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
    """

    _parameter_constraints = {"distance": Options(*DISTANCES)}

    def __init__(self, distance="sqeuclidean"):
        super().__init__()
        validate_params({"distance": distance}, self._parameter_constraints, "Prototypes")
        self.distance = distance

    def forward(self, support, support_labels, query):
        prototypes = class_means(support.flatten(1), support_labels, n_classes(support_labels))
        return -pairwise_distance(query.flatten(1), prototypes, self.distance)
