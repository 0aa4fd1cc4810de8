"""Prototypical Networks meta-learner."""

from torch import nn

from .._prototypical import PrototypicalClassifier
from ..nn import Conv4, Prototypes
from ._base import ComparatorLearner


class PrototypicalLearner(ComparatorLearner):
    """Meta-train an encoder with Prototypical Networks (Snell et al. 2017).

    Each training episode embeds support and query samples, averages the
    support embeddings of each class into a prototype and minimises the
    cross-entropy of the softmax over negative query-to-prototype distances.

    Parameters
    ----------
    encoder : torch.nn.Module class or instance, default=Conv4
        The backbone to meta-train (``encoder__*`` parameters configure a class).
    n_way, n_shot, n_query : int, default=20, 5, 5
        The training episodes.
    episodes_per_epoch : int, default=100
        Training episodes per epoch.
    max_epochs : int, default=30
        Number of epochs (30 x 100 = 3,000 episodes by default).
    lr : float, default=1e-3
        Learning rate of the Adam meta-optimizer.
    distance : {"sqeuclidean", "euclidean", "cosine"}, default="sqeuclidean"
        Distance between query embeddings and prototypes.
    scale : float, default=1.0
        Multiplies the negative distances before the softmax (an inverse
        temperature; the paper's is 1). Cosine distances need a larger one,
        e.g. 10.
    device : str, default="cpu"
        Where to train.
    random_state : int, RandomState instance or None, default=None
        Seeds episodes and weight initialisation.
    **kwargs
        Any other :class:`ComparatorLearner` / :class:`skorch.NeuralNet`
        parameter: ``train_split``, ``valid_episodes``, ``callbacks``,
        ``optimizer``, ``verbose``, ``encoder__*``, ...

    Attributes
    ----------
    encoder_ : torch.nn.Module
        The meta-trained encoder.
    module_ : skfewshot.nn.EpisodeModel
        The meta-trained encoder with a :class:`~skfewshot.nn.Prototypes` comparator.
    history_ : skorch.history.History
        Per-epoch ``train_loss``, ``train_acc`` and, with validation,
        ``valid_loss`` and ``valid_acc``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot.meta import PrototypicalLearner
    >>> from skfewshot.nn import MLP
    >>> X, y = load_digits(return_X_y=True)
    >>> base, novel = y < 6, y >= 6
    >>> learner = PrototypicalLearner(MLP, n_way=5, n_shot=1, n_query=5, max_epochs=2,
    ...                           episodes_per_epoch=20, verbose=0, random_state=0)
    >>> learner = learner.fit(X[base] / 16, y[base])
    >>> clf = learner.to_classifier()
    """

    classifier_class = PrototypicalClassifier

    _parameter_constraints = {
        **ComparatorLearner._parameter_constraints,
        **Prototypes._parameter_constraints,
    }

    def __init__(
        self,
        encoder=Conv4,
        *,
        distance="sqeuclidean",
        scale=1.0,
        comparator=Prototypes,
        criterion=nn.CrossEntropyLoss,
        **kwargs,
    ):
        super().__init__(encoder, comparator=comparator, criterion=criterion, **kwargs)
        self.distance = distance
        self.scale = scale

    def _defaults(self):
        return {
            f"{name}__{param}": getattr(self, param)
            for name in ("comparator", "classifier")
            for param in ("distance", "scale")
        }
