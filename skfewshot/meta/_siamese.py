"""Siamese networks meta-learner."""

from numbers import Integral

from .._siamese import SiameseClassifier
from ..nn import Conv4, OneHotLoss
from ..nn._siamese import SiameseKernel
from ._base import ComparatorLearner


class SiameseLearner(ComparatorLearner):
    """Meta-train a Siamese network (Koch, Zemel and Salakhutdinov 2015).

    A Siamese network learns a kernel ``k(x, x') = sigmoid(w . |f(x) -
    f(x')| + b)``, the probability that two samples are of the same class,
    with the binary cross-entropy of same/different pairs of base-class
    samples. Here the pairs come from episodes: each query is paired with
    every support sample, and the :class:`~skfewshot.nn.SiameseKernel`
    comparator returns, per class, the largest pair logit
    (``aggregation="max"``).

    With the default one-shot episodes (``n_shot=1``) those (n_query, n_way)
    scores *are* the pair logits of every (query, support sample) pair, one
    same-class pair and ``n_way - 1`` different-class pairs per query, and
    the criterion ``OneHotLoss("bce_with_logits", pos_weight=n_way - 1)`` is
    exactly Koch's pairwise binary cross-entropy, with same and different
    pairs weighted equally in total. The learner sets that ``pos_weight``
    from ``n_way`` unless ``criterion__pos_weight`` is given.

    With ``n_shot > 1`` the loss is the binary cross-entropy of the
    *max-aggregated* pair logits: for each query, the closest support sample
    of its own class is pushed towards "same" and the closest sample of each
    other class towards "different" (the hardest pairs; the other pairs get
    no gradient), i.e. Koch's nearest-sample decision rule trained directly.

    Parameters
    ----------
    encoder : torch.nn.Module class or instance, default=Conv4
        The shared branch ``f`` (``encoder__*`` parameters configure a class).
        Its embedding width must be ``comparator__embedding_dim``.
    n_way, n_shot, n_query : int, default=20, 1, 5
        The training episodes. One shot makes the scores exactly the pair
        logits; 20 ways give 19 different pairs to every same pair.
    episodes_per_epoch : int, default=100
        Training episodes per epoch.
    max_epochs : int, default=30
        Number of epochs (30 x 100 = 3,000 episodes by default).
    lr : float, default=3e-3
        Learning rate of the Adam meta-optimizer: the pair loss learns slowly
        at the other learners' 1e-3 (3e-3 was chosen on validation classes:
        see ``benchmarks/default_choices.py``).
    device : str, default="cpu"
        Where to train.
    random_state : int, RandomState instance or None, default=None
        Seeds episodes and weight initialisation.
    comparator : torch.nn.Module class or instance, default=SiameseKernel
        The kernel head; ``comparator__embedding_dim`` (default 64, Conv4's
        width on 28x28 images) sets its width. Its aggregation must be
        ``"max"`` (the scores must be pair logits for the loss); choose the
        test-time rule with ``to_classifier(aggregation=...)``.
    criterion : type of torch.nn.Module, default=OneHotLoss
        The loss. For :class:`~skfewshot.nn.OneHotLoss` (or a subclass) the
        learner defaults ``criterion__loss`` to ``"bce_with_logits"`` and
        ``criterion__pos_weight`` to ``n_way - 1``.
    **kwargs
        Any other :class:`ComparatorLearner` / :class:`skorch.NeuralNet`
        parameter: ``train_split``, ``valid_episodes``, ``callbacks``,
        ``optimizer``, ``verbose``, ``encoder__*``, ``comparator__*``,
        ``criterion__*``, ...

    Attributes
    ----------
    encoder_ : torch.nn.Module
        The meta-trained encoder.
    comparator_ : skfewshot.nn.SiameseKernel
        The meta-trained kernel head.
    module_ : skfewshot.nn.EpisodeModel
        Both together.
    criterion_ : torch.nn.Module
        The loss in use, with its ``pos_weight``.
    history_ : skorch.history.History
        Per-epoch ``train_loss``, ``train_acc`` and, with validation,
        ``valid_loss`` and ``valid_acc``.

    Notes
    -----
    :meth:`score` labels a query by the class of largest max-aggregated
    logit (its nearest support sample under the kernel), and so does
    :meth:`to_classifier`'s :class:`~skfewshot.SiameseClassifier`, whose
    ``aggregation`` defaults to ``"max"`` here; pass
    ``to_classifier(aggregation="sum")`` for the kernel-sum rule (the same
    with one shot).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot.meta import SiameseLearner
    >>> from skfewshot.nn import MLP
    >>> X, y = load_digits(return_X_y=True)
    >>> base, novel = y < 6, y >= 6
    >>> learner = SiameseLearner(MLP, encoder__out_features=16, comparator__embedding_dim=16,
    ...                          n_way=5, n_query=5, max_epochs=2, episodes_per_epoch=20,
    ...                          verbose=0, random_state=0)
    >>> learner = learner.fit(X[base] / 16, y[base])
    >>> clf = learner.to_classifier()
    """

    classifier_class = SiameseClassifier

    def __init__(
        self,
        encoder=Conv4,
        *,
        n_shot=1,
        lr=3e-3,
        comparator=SiameseKernel,
        criterion=OneHotLoss,
        **kwargs,
    ):
        super().__init__(
            encoder, comparator=comparator, criterion=criterion, n_shot=n_shot, lr=lr, **kwargs
        )

    def initialize_module(self):
        super().initialize_module()
        aggregation = getattr(self.module_.comparator, "aggregation", "max")
        if aggregation != "max":
            raise ValueError(
                f"{type(self).__name__} trains on pair logits, so its comparator's "
                f"aggregation must be 'max', got {aggregation!r}. Choose the test-time "
                "rule with to_classifier(aggregation='sum' or 'max')."
            )
        return self

    def _defaults(self):
        """The test-time rule ``"max"``; for a OneHotLoss criterion class, ``loss`` and
        ``pos_weight`` from ``n_way``."""
        defaults = {"classifier__aggregation": "max"}
        criterion = self.criterion
        if isinstance(criterion, type) and issubclass(criterion, OneHotLoss):
            defaults["criterion__loss"] = "bce_with_logits"
            if isinstance(self.n_way, Integral):  # else the constraints refuse it
                defaults["criterion__pos_weight"] = float(self.n_way - 1)
        return defaults
