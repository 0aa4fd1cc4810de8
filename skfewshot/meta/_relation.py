"""Relation Networks meta-learner."""

from .._relation import RelationClassifier
from ..nn import Conv4, OneHotLoss
from ..nn._relation import RelationModule
from ._base import ComparatorLearner

#: Parameters the default encoder class, Conv4, is built with: 64x7x7 feature
#: maps of 28x28 images, as in the paper.
CONV4_MAP_PARAMS = {"flatten": False, "pooled_blocks": 2}


class RelationLearner(ComparatorLearner):
    """Meta-train an encoder and a relation module with Relation Networks (Sung et al. 2018).

    Each training episode embeds support and query samples into feature
    maps, sums each class's support maps into a class map, and scores every
    (class map, query map) pair with a learned relation module
    (:class:`~skfewshot.nn.RelationModule`) giving a relation score in
    [0, 1]. Encoder and relation module are trained together to minimise
    the mean squared error between the scores and the one-hot encoding of
    the query labels (:class:`~skfewshot.nn.OneHotLoss` ``("mse")``).

    Parameters
    ----------
    encoder : torch.nn.Module class or instance, default=Conv4
        The backbone to meta-train (``encoder__*`` parameters configure a
        class). When it is the class :class:`~skfewshot.nn.Conv4` (or a
        subclass), it is built with ``flatten=False, pooled_blocks=2``
        unless ``encoder__flatten`` / ``encoder__pooled_blocks`` say
        otherwise: the paper's embedding, 64x7x7 maps of 28x28 images.
        Encoders of vectors work too (the relation module takes them as 1x1
        maps).
    n_way, n_shot, n_query : int, default=20, 5, 5
        The training episodes. Each makes ``n_way * n_way * n_query``
        (query, class) pairs for the relation module.
    episodes_per_epoch : int, default=100
        Training episodes per epoch.
    max_epochs : int, default=30
        Number of epochs (30 x 100 = 3,000 episodes by default).
    lr : float, default=1e-3
        Learning rate of the Adam meta-optimizer (the paper's).
    device : str, default="cpu"
        Where to train.
    random_state : int, RandomState instance or None, default=None
        Seeds episodes and weight initialisation.
    comparator : torch.nn.Module class or instance, default=RelationModule
        The relation module. Its ``comparator__embedding_dim`` (default 64)
        must be the encoder's output channels; ``comparator__hidden_channels``
        (64), ``comparator__hidden_features`` (8) and
        ``comparator__aggregation`` (``"mean"``; the paper's is ``"sum"``)
        set the rest.
    criterion : type of torch.nn.Module, default=OneHotLoss
        The loss on the relation scores; ``criterion__loss`` defaults to
        ``"mse"``, the paper's.
    **kwargs
        Any other :class:`ComparatorLearner` / :class:`skorch.NeuralNet`
        parameter: ``train_split``, ``valid_episodes``, ``callbacks``,
        ``optimizer``, ``verbose``, ``encoder__*``, ``comparator__*``, ...

    Attributes
    ----------
    encoder_ : torch.nn.Module
        The meta-trained encoder.
    comparator_ : skfewshot.nn.RelationModule
        The meta-trained relation module.
    module_ : skfewshot.nn.EpisodeModel
        Both together.
    history_ : skorch.history.History
        Per-epoch ``train_loss``, ``train_acc`` and, with validation,
        ``valid_loss`` and ``valid_acc``.

    Notes
    -----
    Cost: the relation module runs once per (query, class) pair, so an
    episode costs about ``n_way * n_way * n_query`` times a small
    convolution on the feature maps, on top of embedding the episode's
    images. Fewer queries per episode cut the relation module's share.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot.meta import RelationLearner
    >>> from skfewshot.nn import MLP
    >>> X, y = load_digits(return_X_y=True)
    >>> base, novel = y < 6, y >= 6
    >>> learner = RelationLearner(MLP, encoder__out_features=16,
    ...                              comparator__embedding_dim=16, n_way=5, n_shot=1,
    ...                              n_query=5, max_epochs=2, episodes_per_epoch=20,
    ...                              verbose=0, random_state=0)
    >>> learner = learner.fit(X[base] / 16, y[base])
    >>> clf = learner.to_classifier()
    """

    classifier_class = RelationClassifier

    def __init__(self, encoder=Conv4, *, comparator=RelationModule, criterion=OneHotLoss, **kwargs):
        super().__init__(encoder, comparator=comparator, criterion=criterion, **kwargs)

    def _defaults(self):
        """Feature maps from the Conv4 class (``flatten=False, pooled_blocks=2``)."""
        if isinstance(self.encoder, type) and issubclass(self.encoder, Conv4):
            return {f"encoder__{k}": v for k, v in CONV4_MAP_PARAMS.items()}
        return {}
