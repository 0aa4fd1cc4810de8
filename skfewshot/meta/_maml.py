"""Gradient-based meta-learners: MAML (both orders), ANIL, Meta-SGD, Reptile, learned optimizers."""

import torch
from skorch import NeuralNet
from torch import nn

from .._gradient import (
    ANILClassifier,
    LearnedOptimizerClassifier,
    MAMLClassifier,
    MetaSGDClassifier,
    ReptileClassifier,
)
from ..nn import Conv4
from ..nn._adaptation import (
    GradientAdaptation,
    GradientStep,
    MetaLearnerLSTM,
    ReptileAdaptation,
    adapted_shapes,
    check_adaptation_options,
)
from ..nn._losses import ReptileLoss
from ._base import BaseEpisodicLearner


class MAMLLearner(BaseEpisodicLearner):
    """Meta-learn an initialisation with MAML (Finn et al. 2017), second order by default.

    Each training episode puts a linear head sized to its classes on the
    encoder (zero or prototype initialisation), adapts the encoder and the
    head to the support set by ``inner_steps`` gradient steps of rate
    ``inner_lr``, and scores the queries with the adapted weights; the
    meta-optimizer minimises the query cross-entropy averaged over
    ``meta_batch_size`` episodes, differentiating through the inner steps
    (second-order terms included unless ``first_order=True``). The inner
    loop is functional (:mod:`torch.func`): the encoder's weights, the
    meta-learned initialisation, are only changed by the meta-optimizer.
    See :class:`~skfewshot.nn.GradientAdaptation`.

    Parameters
    ----------
    encoder : torch.nn.Module class or instance, default=Conv4
        The network whose initialisation is meta-learned (``encoder__*``
        parameters configure a class); it maps samples to embeddings, and the
        per-episode head maps those to class scores.
    inner_lr : float, default=0.4
        Learning rate of the inner gradient steps.
    inner_steps : int, default=1
        Inner steps per training episode.
    first_order : bool, default=False
        First-order MAML: treat the inner gradients as constants (no second
        derivatives; faster, less memory).
    head_init : {"zero", "prototypes"}, default="zero"
        The per-episode head's initial weights: zero, or from the support
        set's class means (Proto-MAML). The head is never meta-learned, so
        any number of ways works at test time.
    transductive : bool, default=False
        False normalises the queries with the support set's batch-norm
        statistics (each query is scored independently of the others);
        True with the query batch's, as the original MAML code.
    n_way, n_shot, n_query : int, default=5, 1, 15
        The training episodes.
    meta_batch_size : int, default=4
        Episodes per meta-update.
    episodes_per_epoch : int, default=100
        Training episodes per epoch.
    max_epochs : int, default=30
        Number of epochs.
    lr : float, default=1e-3
        Learning rate of the Adam meta-optimizer.
    device : str, default="cpu"
        Where to train.
    random_state : int, RandomState instance or None, default=None
        Seeds episodes and weight initialisation.
    **kwargs
        Any other :class:`BaseEpisodicLearner` / :class:`skorch.NeuralNet`
        parameter (``train_split``, ``valid_episodes``, ``callbacks``,
        ``optimizer``, ``verbose``, ...) and ``encoder__*``, ``rule__*``.

    Attributes
    ----------
    encoder_ : torch.nn.Module
        The meta-learned initialisation of the encoder.
    rule_ : torch.nn.Module
        The update rule of the inner loop.
    module_ : skfewshot.nn.GradientAdaptation
        The encoder, the rule and the adaptation options.
    history_ : skorch.history.History
        Per-epoch ``train_loss``, ``train_acc`` and, with validation,
        ``valid_loss`` and ``valid_acc`` (after adaptation).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot.meta import MAMLLearner
    >>> from skfewshot.nn import MLP
    >>> X, y = load_digits(return_X_y=True)
    >>> base, novel = y < 6, y >= 6
    >>> learner = MAMLLearner(MLP, encoder__in_features=64, n_way=5, max_epochs=1,
    ...                       episodes_per_epoch=8, verbose=0, random_state=0)
    >>> learner = learner.fit(X[base] / 16, y[base])
    >>> clf = learner.to_classifier(n_steps=5).fit(X[novel][:20] / 16, y[novel][:20])
    """

    components = ("encoder", "rule")
    prefixes_ = NeuralNet.prefixes_ + ["encoder", "rule"]

    #: What the inner loop adapts: "all" (MAML) or "head" (ANIL).
    _adapt = "all"

    def __init__(
        self,
        encoder=Conv4,
        *,
        inner_lr=0.4,
        inner_steps=1,
        first_order=False,
        head_init="zero",
        transductive=False,
        n_way=5,
        n_shot=1,
        n_query=15,
        meta_batch_size=4,
        episodes_per_epoch=100,
        max_epochs=30,
        lr=1e-3,
        device="cpu",
        random_state=None,
        rule=GradientStep,
        module=GradientAdaptation,
        criterion=nn.CrossEntropyLoss,
        **kwargs,
    ):
        super().__init__(
            module,
            criterion,
            encoder,
            n_way=n_way,
            n_shot=n_shot,
            n_query=n_query,
            meta_batch_size=meta_batch_size,
            episodes_per_epoch=episodes_per_epoch,
            max_epochs=max_epochs,
            lr=lr,
            device=device,
            random_state=random_state,
            **kwargs,
        )
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.first_order = first_order
        self.head_init = head_init
        self.transductive = transductive
        self.rule = rule

    def _rule_params(self):
        """Defaults of the rule's constructor (``rule__*`` win)."""
        return {"lr": self.inner_lr}

    def _module_components(self):
        owner = type(self).__name__
        check_adaptation_options(
            steps=self.inner_steps,
            adapt=self._adapt,
            head_init=self.head_init,
            owner=owner,
            steps_name="inner_steps",
        )
        encoder = self._build("encoder", self._encoder_params())
        try:
            shapes = adapted_shapes(encoder, self._adapt)
        except ValueError as exc:
            raise ValueError(f"{owner}: {exc}") from exc
        rule = self._build("rule", {"shapes": shapes, **self._rule_params()})
        return {
            "encoder": encoder,
            "rule": rule,
            "steps": self.inner_steps,
            "first_order": self.first_order,
            "adapt": self._adapt,
            "head_init": self.head_init,
            "transductive": self.transductive,
        }

    @property
    def rule_(self):
        """The update rule of the inner loop (with its meta-learned weights, if any)."""
        self.check_is_fitted()
        return self.module_.rule

    classifier_class = MAMLClassifier

    def _classifier_params(self):
        return {
            "inner_lr": self.inner_lr,
            "n_steps": self.inner_steps,
            "head_init": self.head_init,
            "transductive": self.transductive,
        }


class ANILLearner(MAMLLearner):
    """Meta-learn an encoder with ANIL, "almost no inner loop" (Raghu et al. 2020).

    MAML in which the inner loop adapts the per-episode linear head only;
    the encoder is meta-learned through it. The embeddings are computed once
    per episode, so the inner steps are cheap. Same parameters as
    :class:`MAMLLearner`; the classifier is an
    :class:`~skfewshot.ANILClassifier`, which also takes precomputed
    embeddings.
    """

    _adapt = "head"
    classifier_class = ANILClassifier


class MetaSGDLearner(MAMLLearner):
    """Meta-learn an initialisation and per-parameter inner rates (Meta-SGD, Li et al. 2017).

    MAML whose inner step is ``p - rates * grad`` with a meta-learned rate
    for every coordinate of every encoder parameter (one for the head's
    weights and one for its biases, as the head is created per episode),
    all starting at ``inner_lr``. Same parameters as :class:`MAMLLearner`;
    ``rule_`` holds the learned rates.
    """

    def _rule_params(self):
        return {"lr": self.inner_lr, "learn_lr": True}

    classifier_class = MetaSGDClassifier

    def _classifier_params(self):
        return {
            "n_steps": self.inner_steps,
            "head_init": self.head_init,
            "transductive": self.transductive,
        }


class ReptileLearner(MAMLLearner):
    """Meta-learn an initialisation with Reptile (Nichol et al. 2018).

    Each episode adapts the encoder and a zero (or prototype) head to the
    support set by ``inner_steps`` first-order gradient steps; the
    meta-gradient is ``theta - theta_adapted`` (see
    :class:`~skfewshot.nn.ReptileAdaptation`), averaged over the
    meta-batch. With the default SGD meta-optimizer at ``lr`` = epsilon this
    is Reptile's update ``theta <- theta + epsilon (theta_adapted - theta)``;
    anneal it with a skorch ``LRScheduler``. The query set only serves for
    the reported accuracy.

    Parameters
    ----------
    encoder : torch.nn.Module class or instance, default=Conv4
        The network whose initialisation is meta-learned.
    inner_lr : float, default=0.1
        Learning rate of the inner steps.
    inner_steps : int, default=5
        Inner steps per training episode.
    meta_batch_size : int, default=5
        Episodes averaged per meta-update.
    lr : float, default=1.0
        The outer step size epsilon (the SGD meta-optimizer's rate).
    optimizer : type of torch.optim.Optimizer, default=torch.optim.SGD
        The meta-optimizer.
    **kwargs
        The other parameters of :class:`MAMLLearner` (``first_order`` is
        ignored: Reptile is first order).
    """

    def __init__(
        self,
        encoder=Conv4,
        *,
        inner_lr=0.1,
        inner_steps=5,
        meta_batch_size=5,
        lr=1.0,
        optimizer=torch.optim.SGD,
        module=ReptileAdaptation,
        criterion=ReptileLoss,
        **kwargs,
    ):
        super().__init__(
            encoder,
            inner_lr=inner_lr,
            inner_steps=inner_steps,
            meta_batch_size=meta_batch_size,
            lr=lr,
            optimizer=optimizer,
            module=module,
            criterion=criterion,
            **kwargs,
        )

    classifier_class = ReptileClassifier


class LearnedOptimizerLearner(MAMLLearner):
    """Meta-train an optimizer network together with the initialisation it starts from.

    "Can we learn gradient descent?": the inner loop's update rule is a
    network, meta-trained through the unrolled ``inner_steps`` updates of
    each episode together with the encoder's initial weights:

    * ``rule=MetaLearnerLSTM`` (default): the meta-learner LSTM of Ravi &
      Larochelle (2017), whose cell state is the learner's parameters and
      whose gates act as a learned learning rate and weight decay;
    * ``rule=LSTMOptimizer``: the coordinate-wise LSTM optimizer of
      Andrychowicz et al. (2016), which outputs the update itself.

    Gradients and losses enter the rule as inputs, without second
    derivatives, as in both papers (``first_order=True`` by default).
    ``rule__*`` parameters configure the rule (e.g. ``rule__hidden_size``).

    Parameters
    ----------
    encoder : torch.nn.Module class or instance, default=Conv4
        The learner network.
    rule : torch.nn.Module class or instance, default=MetaLearnerLSTM
        The learned optimizer (a class is built with ``shapes`` and
        ``rule__*``).
    inner_steps : int, default=5
        Unrolled updates per training episode.
    first_order : bool, default=True
        Treat the optimizee's gradients as constants.
    **kwargs
        The other parameters of :class:`MAMLLearner` (``inner_lr`` is
        unused).
    """

    def __init__(
        self, encoder=Conv4, *, rule=MetaLearnerLSTM, inner_steps=5, first_order=True, **kwargs
    ):
        super().__init__(
            encoder, rule=rule, inner_steps=inner_steps, first_order=first_order, **kwargs
        )

    def _rule_params(self):
        return {}

    classifier_class = LearnedOptimizerClassifier

    def _classifier_params(self):
        return {
            "n_steps": self.inner_steps,
            "head_init": self.head_init,
            "transductive": self.transductive,
        }
