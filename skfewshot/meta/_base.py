"""The one episodic training loop: a skorch NeuralNet whose batches are episodes."""

import copy

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, column_or_1d
from skorch import NeuralNet
from skorch.callbacks import PassthroughScoring

from .._params import check_integer
from .._torch_utils import channels_last, torch_seed
from ..model_selection import EpisodeSampler
from ..nn import Conv4, EpisodeModel
from ._episodes import EpisodeLoader

_MAX_SEED = np.iinfo(np.int32).max


class BaseEpisodicLearner(NeuralNet):
    """The training loop of every meta-learner: a skorch net whose batches are episodes.

    skorch's loop (callbacks, history, checkpoints, learning-rate schedules,
    devices) over episodes drawn by the one
    :class:`~skfewshot.model_selection.EpisodeSampler`. The ``module``
    maps an episode ``(support, support_labels, query)`` to one row of
    class scores per query, and ``criterion`` compares them with the
    episode-local query labels. A subclass names its *components*
    (``encoder`` and e.g. ``comparator`` or ``rule``), torch modules given
    as classes (configured with ``<component>__*`` parameters) or
    instances (copied), and builds the module from them in
    :meth:`_module_components`. Use :class:`EpisodicLearner` for an
    encoder and a comparator, or the gradient-based learners such as
    :class:`MAMLLearner`.

    Parameters
    ----------
    module : type of torch.nn.Module
        The episode model, built as ``module(**components, **module_params)``.
    criterion : type of torch.nn.Module
        The loss between the module's output and the episode-local query labels.
    encoder : torch.nn.Module class or instance, default=Conv4
        The backbone being meta-trained. A class is instantiated with the
        ``encoder__*`` parameters; an instance is copied.
    n_way, n_shot, n_query : int, default=20, 5, 5
        The training episodes: classes, support and query samples per class.
    episodes_per_epoch : int, default=100
        Training episodes per epoch.
    meta_batch_size : int, default=1
        Episodes per meta-update: their losses are averaged (each episode's
        gradient is accumulated as soon as it is computed, so memory holds
        one episode's graph at a time).
    valid_episodes : int, default=100
        Validation episodes per epoch, the same ones at every epoch, when
        ``train_split`` yields a validation set (of held-out classes, see
        :class:`ValidClassSplit`).
    random_state : int, RandomState instance or None, default=None
        Seeds the episodes and the weight initialisation: the same integer
        gives the same episodes and the same meta-trained weights on CPU.
    optimizer : type of torch.optim.Optimizer, default=torch.optim.Adam
        The meta-optimizer.
    lr : float, default=1e-3
        Its learning rate.
    max_epochs : int, default=30
        Number of epochs.
    train_split : callable or None, default=None
        skorch's ``train_split``; None trains on everything, without
        validation. Use :class:`ValidClassSplit` to hold out classes, or
        ``skorch.helper.predefined_split(Dataset(X_val, y_val))``.
    **kwargs
        Any other :class:`skorch.NeuralNet` parameter (``callbacks``,
        ``device``, ``verbose``, ...) and prefixed parameters
        (``encoder__*``, ``optimizer__*``, ``callbacks__*``, ...).

    Attributes
    ----------
    module_ : torch.nn.Module
        The meta-trained episode model.
    encoder_ : torch.nn.Module
        The meta-trained encoder.
    history_ : skorch.history.History
        Per-epoch losses and episodic accuracies (``train_acc``, ``valid_acc``).
    """

    #: The torch-module parameters of the learner, each with a ``<name>__*`` prefix.
    components = ("encoder",)
    prefixes_ = NeuralNet.prefixes_ + ["encoder"]

    def __init__(
        self,
        module,
        criterion,
        encoder=Conv4,
        *,
        n_way=20,
        n_shot=5,
        n_query=5,
        episodes_per_epoch=100,
        meta_batch_size=1,
        valid_episodes=100,
        random_state=None,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=30,
        train_split=None,
        **kwargs,
    ):
        super().__init__(
            module,
            criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            train_split=train_split,
            **kwargs,
        )
        self.encoder = encoder
        self.n_way = n_way
        self.n_shot = n_shot
        self.n_query = n_query
        self.episodes_per_epoch = episodes_per_epoch
        self.meta_batch_size = meta_batch_size
        self.valid_episodes = valid_episodes
        self.random_state = random_state

    @property
    def _default_callbacks(self):
        callbacks = list(super()._default_callbacks)
        at = [name for name, _ in callbacks].index("print_log")
        callbacks[at:at] = [
            (
                "train_acc",
                PassthroughScoring(name="train_acc", lower_is_better=False, on_train=True),
            ),
            ("valid_acc", PassthroughScoring(name="valid_acc", lower_is_better=False)),
        ]
        return callbacks

    # -- building ---------------------------------------------------------

    def _encoder_params(self):
        """Defaults of the encoder's constructor for this method (``encoder__*`` win)."""
        return {}

    def _build(self, name, defaults=None):
        """Instantiate the ``encoder`` or ``comparator`` parameter (class or instance)."""
        component = getattr(self, name)
        params = {**(defaults or {}), **self.get_params_for(name)}
        if isinstance(component, torch.nn.Module):
            if self.get_params_for(name):
                raise ValueError(
                    f"{name}__* parameters ({sorted(self.get_params_for(name))}) need {name} "
                    f"to be a class, but it is an instance; pass the class, e.g. "
                    f"{name}={type(component).__name__}."
                )
            return copy.deepcopy(component)
        if callable(component):
            return component(**params)
        raise TypeError(f"{name} must be a torch.nn.Module class or instance, got {component!r}.")

    def _module_components(self):
        """The keyword arguments ``module`` is built with (before ``module__*``)."""
        raise NotImplementedError

    def initialize_module(self):
        module = self.initialized_instance(
            self.module,
            {
                **self._module_components(),
                **self.get_params_for("module"),
            },
        )
        self.module_ = channels_last(module)
        return self

    def set_params(self, **kwargs):
        own = {
            k: kwargs.pop(k)
            for k in list(kwargs)
            if k.startswith(tuple(f"{name}__" for name in self.components))
        }
        for key, value in own.items():
            setattr(self, key, value)
            self._params_to_validate.add(key)
        super().set_params(**kwargs)
        if own and self.initialized_:
            self._validate_params()
            self._initialize_module(
                reason="Re-initializing module because parameters of "
                f"its components {self.components} changed."
            )
            self._initialize_criterion()
            self._initialize_optimizer()
        return self

    @property
    def encoder_(self):
        """The meta-trained encoder."""
        self.check_is_fitted()
        return self.module_.encoder

    # -- data -------------------------------------------------------------

    def _validate_base_data(self, X, y):
        owner = type(self).__name__
        X = check_array(X, allow_nd=True, dtype=np.float32, input_name="X")
        if y is None:
            raise ValueError(f"{owner} needs the class labels y of the base data set.")
        y = column_or_1d(y, warn=True)
        if len(y) != len(X):
            raise ValueError(f"{owner}: X has {len(X)} samples but y has {len(y)}.")
        return X, y

    def _sampler(self, y, *, what, n_way=None, n_shot=None, n_query=None):
        return EpisodeSampler(
            y,
            self.n_way if n_way is None else n_way,
            self.n_shot if n_shot is None else n_shot,
            self.n_query if n_query is None else n_query,
            owner=f"{type(self).__name__} ({what})",
        )

    def get_iterator(self, dataset, training=False):
        """An :class:`EpisodeLoader` over ``dataset``: training episodes are drawn
        afresh each epoch, validation episodes are the same at every epoch."""
        X = torch.from_numpy(np.asarray(dataset.X, dtype=np.float32))
        if training:
            check_integer(self.meta_batch_size, "meta_batch_size", owner=type(self).__name__)
            sampler = self._sampler(dataset.y, what="training set")
            return EpisodeLoader(
                X,
                sampler,
                self.episodes_per_epoch,
                self._train_rng_,
                meta_batch_size=self.meta_batch_size,
            )
        X_valid, y_valid = self._validate_base_data(dataset.X, dataset.y)
        sampler = self._sampler(y_valid, what="validation set")
        return EpisodeLoader(
            torch.from_numpy(X_valid), sampler, self.valid_episodes, self._valid_seed_
        )

    # -- training ---------------------------------------------------------

    def fit(self, X, y, **fit_params):
        """Meta-train on episodes drawn from the base data set ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Base samples, in the shape the encoder takes.
        y : array-like of shape (n_samples,)
            Base class labels; episodes are drawn among these classes.
        **fit_params : dict
            Passed to the head's ``forward``.

        Returns
        -------
        self
            The meta-trained learner.
        """
        seeds = check_random_state(self.random_state).randint(_MAX_SEED, size=3)
        self._seed_episodes(seeds[:2])
        with torch_seed(seeds[2]):
            return super().fit(X, y, **fit_params)

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Continue meta-training without re-initialising (see :meth:`fit`)."""
        if not hasattr(self, "_train_rng_"):
            self._seed_episodes(check_random_state(self.random_state).randint(_MAX_SEED, size=2))
        X, y = self._validate_base_data(X, y)
        return super().partial_fit(X, y, classes=classes, **fit_params)

    def _seed_episodes(self, seeds):
        self._train_rng_ = np.random.RandomState(seeds[0])
        self._valid_seed_ = int(seeds[1])

    def infer(self, x, **fit_params):
        """Scores of one episode's queries: ``module_(support, support_labels, query)``."""
        x = x.to(self.device)
        return self.module_(x.support, x.support_labels, x.query, **fit_params)

    def train_step_single(self, batch, **fit_params):
        """Forward and backward passes over one meta-batch of episodes.

        The loss is the mean over the meta-batch's episodes; each episode's
        share of the gradient is accumulated right after its forward pass.
        """
        self._set_training(True)
        episodes, targets = batch
        losses, y_preds = [], []
        for episode, y_true in zip(episodes, targets):
            y_pred = self.infer(episode, **fit_params)
            loss = self.get_loss(y_pred, y_true, X=episode, training=True)
            (loss / len(episodes)).backward()
            losses.append(loss.detach())
            # Detached: the episode's graph must not outlive its backward pass.
            y_preds.append(
                tuple(p.detach() for p in y_pred) if isinstance(y_pred, tuple) else y_pred.detach()
            )
        return {"loss": torch.stack(losses).mean(), "y_pred": y_preds}

    @staticmethod
    def _scores(y_pred):
        """The class scores in a module's output (the first item of a tuple)."""
        return y_pred[0] if isinstance(y_pred, tuple) else y_pred

    def episode_accuracy(self, y_pred, y_true):
        """Fraction of an episode's queries whose highest score is the true class."""
        y_pred = self._scores(y_pred)
        return (y_pred.argmax(1) == y_true.to(y_pred.device)).float().mean().item()

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        if y_pred is None:
            return
        name = "train_acc" if training else "valid_acc"
        if training:  # a meta-batch of episodes
            accuracy = np.mean([self.episode_accuracy(p, y) for p, y in zip(y_pred, batch[1])])
        else:
            accuracy = self.episode_accuracy(y_pred, batch[1])
        self.history.record_batch(name, float(accuracy))

    # -- evaluation -------------------------------------------------------

    def score(self, X, y, *, n_way=None, n_shot=None, n_query=None, n_episodes=600):
        """Mean episodic accuracy on the (novel) classes of ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Samples of classes to evaluate on, normally never seen in training.
        y : array-like of shape (n_samples,)
            Their labels.
        n_way, n_shot, n_query : int, default=None
            The test episodes; None takes the training episodes' values.
        n_episodes : int, default=600
            Number of test episodes, drawn from ``random_state``.

        Returns
        -------
        score : float
            Query accuracy averaged over the episodes.
        """
        self.check_is_fitted()
        X, y = self._validate_base_data(X, y)
        sampler = self._sampler(y, what="scored set", n_way=n_way, n_shot=n_shot, n_query=n_query)
        rng = check_random_state(self.random_state)
        loader = EpisodeLoader(torch.from_numpy(X), sampler, n_episodes, rng)
        accuracies = [
            self.episode_accuracy(self.evaluation_step(batch), batch[1]) for batch in loader
        ]
        return float(np.mean(accuracies))

    def _not_a_classifier(self, *args, **kwargs):
        raise TypeError(
            f"{type(self).__name__} is a meta-learner: it does not label samples itself. "
            "Wrap it as a few-shot classifier: learner.to_classifier().fit(X_support, "
            "y_support).predict(X_query)."
        )

    predict = predict_proba = forward = forward_iter = _not_a_classifier

    #: The few-shot classifier class of the method (set by each learner).
    classifier_class = None

    def _classifier_params(self):
        """Classifier parameters that mirror the learner's own (e.g. ``distance``)."""
        return {}

    def to_classifier(self, **params):
        """A scikit-learn few-shot classifier holding copies of the meta-trained model.

        Parameters
        ----------
        **params : dict
            Classifier parameters. ``device`` and the method's options default
            to the learner's; ``encoder`` (and ``comparator`` or ``rule``, for
            classifiers that take one) to evaluation-mode copies of the
            meta-trained ones. Pass ``encoder=None`` for a classifier of
            precomputed embeddings.

        Returns
        -------
        classifier
            Unfitted: ``fit`` it on a support set.
        """
        self.check_is_fitted()
        params = {"device": self.device, **self._classifier_params(), **params}
        accepted = self.classifier_class().get_params()
        for name in self.components:
            if name in accepted and name not in params:
                params[name] = copy.deepcopy(getattr(self.module_, name)).eval()
        return self.classifier_class(**params)


class EpisodicLearner(BaseEpisodicLearner):
    """Meta-train an encoder and a comparator over episodes of a base data set.

    The base of the metric-based learners. A method plugs in a *comparator*
    and a loss: the learner builds ``module(encoder=<encoder>,
    comparator=<comparator>)``, by default an
    :class:`~skfewshot.nn.EpisodeModel`, which maps ``(support,
    support_labels, query)`` to one row of class scores per query; the loss
    compares those scores with the episode-local query labels. The
    training loop is :class:`BaseEpisodicLearner`'s.

    Parameters
    ----------
    comparator : torch.nn.Module class or instance
        Scores queries against the support set from their embeddings, e.g.
        :class:`skfewshot.nn.Prototypes`. A class is instantiated with the
        ``comparator__*`` parameters; an instance is copied.
    criterion : type of torch.nn.Module
        The loss between the scores and the episode-local query labels.
    encoder : torch.nn.Module class or instance, default=Conv4
        The backbone being meta-trained. A class is instantiated with the
        ``encoder__*`` parameters; an instance is copied.
    module : type of torch.nn.Module, default=EpisodeModel
        Built as ``module(encoder=..., comparator=..., **module_params)``.
    **kwargs
        The training parameters of :class:`BaseEpisodicLearner` (``n_way``,
        ``n_shot``, ``n_query``, ``episodes_per_epoch``, ``meta_batch_size``,
        ``max_epochs``, ``lr``, ``random_state``, ``train_split``, ...), any
        other :class:`skorch.NeuralNet` parameter, and prefixed parameters
        (``encoder__*``, ``comparator__*``, ``optimizer__*``, ``callbacks__*``).

    Attributes
    ----------
    module_ : torch.nn.Module
        The meta-trained episode model.
    encoder_ : torch.nn.Module
        The meta-trained encoder.
    comparator_ : torch.nn.Module
        The meta-trained comparator.
    history_ : skorch.history.History
        Per-epoch losses and episodic accuracies (``train_acc``, ``valid_acc``).
    """

    components = ("encoder", "comparator")
    prefixes_ = NeuralNet.prefixes_ + ["encoder", "comparator"]

    def __init__(self, comparator, criterion, encoder=Conv4, *, module=EpisodeModel, **kwargs):
        super().__init__(module, criterion, encoder, **kwargs)
        self.comparator = comparator

    def _comparator_params(self):
        """Constructor arguments of the comparator that the learner's own parameters set."""
        return {}

    def _module_components(self):
        return {
            "encoder": self._build("encoder", self._encoder_params()),
            "comparator": self._build("comparator", self._comparator_params()),
        }

    @property
    def comparator_(self):
        """The meta-trained comparator."""
        self.check_is_fitted()
        return self.module_.comparator
