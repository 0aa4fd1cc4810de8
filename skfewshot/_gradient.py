"""Few-shot classifiers whose fit adapts a copy of a network to the support set."""

import inspect

from ._base import GradientClassifier
from ._param_validation import Positive
from ._torch_utils import frozen_copy, torch_seed
from ._validation import module_or_none
from .nn._adaptation import GradientStep, MetaLearnerLSTM

_ATTRIBUTES = """Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The support set's class labels.
    model_ : skfewshot.nn.GradientAdaptation
        The frozen copies of the encoder and the update rule.
    adapted_ : dict of str to torch.Tensor
        The adapted tensors: the head (``"head.weight"``, ``"head.bias"``)
        and, where the encoder is adapted, its weights (``"encoder.<name>"``).
    statistics_ : dict
        The support set's batch-norm statistics under the adapted weights.
    n_features_in_ : int
        Number of features (for images, channels) seen during fit."""

_PARAMETERS = """
    inner_steps : int, default={inner_steps}
        Gradient steps on the support set at ``fit``.
    head_init : {{"zero", "prototypes"}}, default="{head_init}"
        The head's initial weights: zero, or ``W_k = 2 c_k``, ``b_k = -|c_k|^2``
        from the class means ``c_k`` of the support embeddings, so that before
        any step the classifier is a prototypical network (Proto-MAML,
        Triantafillou et al. 2020).
    transductive : bool, default=False
        False normalises the queries with the support set's batch-norm
        statistics: each query's prediction depends on the support set and on
        itself only. True uses the statistics of the queries passed together
        (as the original MAML code), making predictions depend on the batch.
    device : str or torch.device, default="cpu"
        Where the network runs.
    batch_size : int, default=256
        Queries scored at once.

"""


class MAMLClassifier(GradientClassifier):
    """Few-shot classifier that fine-tunes a copy of a network on the support set (MAML).

    ``fit`` takes the support set: it copies ``encoder`` (normally a
    meta-learned initialisation, the ``encoder_`` of a
    :class:`~skfewshot.meta.MAMLLearner`), adds a linear head with one
    output per support class and takes ``inner_steps`` gradient steps of rate
    ``inner_lr`` on the support set's cross-entropy, updating the copy's
    encoder and head. The meta-learned weights never change. Queries are
    scored by the adapted network; ``predict_proba`` is its softmax.

    Parameters
    ----------
    encoder : torch.nn.Module or None, default=None
        The initial weights of the network body, e.g. ``learner.encoder_``.
        Copied at fit. With None the samples are the features and only the
        head is trained.
    inner_lr : float, default=0.4
        Learning rate of the steps.
    {parameters}
    {attributes}

    See Also
    --------
    ANILClassifier : Adapt the head only (also on precomputed embeddings).
    skfewshot.meta.MAMLLearner : Meta-learn the initialisation.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot import MAMLClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MAMLClassifier(inner_lr=0.1, inner_steps=20).fit(X[:100] / 16, y[:100])
    >>> clf.predict(X[101:105] / 16)
    array([0, 5, 3, 6])
    """

    def __init__(
        self,
        encoder=None,
        *,
        inner_lr=0.4,
        inner_steps=10,
        head_init="zero",
        transductive=False,
        device="cpu",
        batch_size=256,
    ):
        self.encoder = encoder
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.head_init = head_init
        self.transductive = transductive
        self.device = device
        self.batch_size = batch_size

    _parameter_constraints = {**GradientClassifier._parameter_constraints, "inner_lr": Positive()}

    def _rule(self):
        return GradientStep(inner_lr=float(self.inner_lr))


class ANILClassifier(MAMLClassifier):
    """Few-shot classifier that trains a linear head on a frozen network (ANIL).

    "Almost no inner loop" (Raghu et al. 2020): ``fit`` embeds the support
    set with a copy of ``encoder`` (e.g. the ``encoder_`` of an
    :class:`~skfewshot.meta.ANILLearner`) and trains a linear head, one
    output per class, by ``inner_steps`` gradient steps of rate ``inner_lr``;
    the encoder is not adapted. With ``encoder=None`` it works on
    precomputed embeddings.

    Encoders meta-learned by the gradient-based learners normalise batch
    norm with each support set's statistics and never update their running
    statistics, so embeddings computed in evaluation mode (e.g. by
    :class:`~skfewshot.EmbeddingTransformer`) would be normalised wrongly:
    pass such an encoder as ``encoder``, which embeds each episode with its
    support set's statistics.

    Parameters
    ----------
    encoder : torch.nn.Module or None, default=None
        The frozen network body. None: the samples are the embeddings.
    inner_lr : float, default=0.4
        Learning rate of the head's steps.
    {parameters}
    {attributes}
    """

    _adapt = "head"


class ReptileClassifier(MAMLClassifier):
    """Few-shot classifier that fine-tunes a Reptile initialisation on the support set.

    The same adaptation as :class:`MAMLClassifier` (``inner_steps`` gradient
    steps of rate ``inner_lr`` on a copy of the encoder and a new head),
    with defaults for an initialisation meta-learned by
    :class:`~skfewshot.meta.ReptileLearner`, which is fine-tuned for more
    steps than MAML's.

    Parameters
    ----------
    encoder : torch.nn.Module or None, default=None
        The initial weights of the network body, e.g. ``learner.encoder_``.
    inner_lr : float, default=0.1
        Learning rate of the steps.
    {parameters}
    {attributes}
    """

    def __init__(
        self,
        encoder=None,
        *,
        inner_lr=0.1,
        inner_steps=20,
        head_init="zero",
        transductive=False,
        device="cpu",
        batch_size=256,
    ):
        super().__init__(
            encoder,
            inner_lr=inner_lr,
            inner_steps=inner_steps,
            head_init=head_init,
            transductive=transductive,
            device=device,
            batch_size=batch_size,
        )


class _RuleClassifier(GradientClassifier):
    """A gradient classifier whose update rule is a (meta-learned) module parameter.

    ``lr_scale`` multiplies the rule's steps: a test-time knob to tune per
    setting on validation classes, as a plain step's rate is.
    """

    _parameter_constraints = {
        **GradientClassifier._parameter_constraints,
        "rule": module_or_none("rule"),
        "lr_scale": Positive(),
    }

    def _lr_scale(self):
        return float(self.lr_scale)

    def _default_rule(self):
        raise NotImplementedError

    def _rule(self):
        rule = self.rule
        if rule is None:
            with torch_seed(0):  # deterministic default weights
                rule = self._default_rule()
        return frozen_copy(rule, self._device)


class MetaSGDClassifier(_RuleClassifier):
    """Few-shot classifier that adapts with meta-learned per-parameter learning rates (Meta-SGD).

    ``fit`` copies ``encoder`` and adds a new linear head, then takes
    ``inner_steps`` steps ``p <- p - lr_scale * rates * grad`` on the support
    set's cross-entropy, with the rates of ``rule`` (the ``rule_`` of a
    :class:`~skfewshot.meta.MetaSGDLearner`: one per coordinate). The
    meta-learned weights and rates never change.

    Parameters
    ----------
    encoder : torch.nn.Module or None, default=None
        The meta-learned initialisation, e.g. ``learner.encoder_``.
    rule : skfewshot.nn.GradientStep or None, default=None
        The meta-learned rates, ``learner.rule_``. None: one rate, 0.4, for
        everything (MAML's step).
    lr_scale : float, default=1.0
        Multiplies the rates (1 takes them as meta-learned).
    {parameters}
    {attributes}
    """

    def __init__(
        self,
        encoder=None,
        rule=None,
        *,
        lr_scale=1.0,
        inner_steps=1,
        head_init="zero",
        transductive=False,
        device="cpu",
        batch_size=256,
    ):
        self.encoder = encoder
        self.rule = rule
        self.lr_scale = lr_scale
        self.inner_steps = inner_steps
        self.head_init = head_init
        self.transductive = transductive
        self.device = device
        self.batch_size = batch_size

    def _default_rule(self):
        return GradientStep(inner_lr=0.4)


class LearnedOptimizerClassifier(_RuleClassifier):
    """Few-shot classifier that adapts with a learned optimizer.

    ``fit`` copies ``encoder``, adds a new linear head and lets ``rule``, an
    optimizer network meta-trained by
    :class:`~skfewshot.meta.LearnedOptimizerLearner` (the meta-learner LSTM
    of Ravi & Larochelle 2017, or the LSTM optimizer of Andrychowicz et al.
    2016), update them for ``inner_steps`` steps from the support set's
    gradients and losses. The meta-learned weights never change.

    Parameters
    ----------
    encoder : torch.nn.Module or None, default=None
        The meta-learned initialisation, e.g. ``learner.encoder_``.
    rule : torch.nn.Module or None, default=None
        The meta-trained optimizer, ``learner.rule_``. None: an untrained
        :class:`~skfewshot.nn.MetaLearnerLSTM`, which starts as gradient
        descent with a small rate.
    lr_scale : float, default=1.0
        Multiplies the rule's steps (1 takes them as meta-trained): the
        :class:`~skfewshot.nn.LSTMOptimizer`'s updates, the
        :class:`~skfewshot.nn.MetaLearnerLSTM`'s input gate (its learning
        rate). Choose it per setting on validation classes, as
        :func:`~skfewshot.model_selection.tune_per_setting` does, like the
        rate of gradient descent.
    {parameters}
    {attributes}
    """

    def __init__(
        self,
        encoder=None,
        rule=None,
        *,
        lr_scale=1.0,
        inner_steps=5,
        head_init="zero",
        transductive=False,
        device="cpu",
        batch_size=256,
    ):
        self.encoder = encoder
        self.rule = rule
        self.lr_scale = lr_scale
        self.inner_steps = inner_steps
        self.head_init = head_init
        self.transductive = transductive
        self.device = device
        self.batch_size = batch_size

    def _default_rule(self):
        return MetaLearnerLSTM()


for _cls, _inner_steps in (
    (MAMLClassifier, 10),
    (ANILClassifier, 10),
    (ReptileClassifier, 20),
    (MetaSGDClassifier, 1),
    (LearnedOptimizerClassifier, 5),
):
    _head_init = inspect.signature(_cls).parameters["head_init"].default
    _cls.__doc__ = _cls.__doc__.replace(
        "    {parameters}\n",
        _PARAMETERS.format(inner_steps=_inner_steps, head_init=_head_init).lstrip("\n"),
    ).replace("{attributes}", _ATTRIBUTES)
