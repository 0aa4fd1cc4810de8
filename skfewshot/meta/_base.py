"""The one episodic training loop: a skorch NeuralNet whose batches are episodes."""

import copy

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, column_or_1d
from skorch import NeuralNet
from skorch.callbacks import PassthroughScoring

from .._torch_utils import channels_last, torch_seed
from ..model_selection import EpisodeSampler
from ..nn import Conv4, EpisodeModel
from ._episodes import EpisodeLoader

_MAX_SEED = np.iinfo(np.int32).max


class EpisodicLearner(NeuralNet):
    """Meta-train a few-shot model over episodes of a base data set.

    The base class of every meta-learner: skorch's training loop (callbacks,
    history, checkpoints, learning-rate schedules, devices) with episodes as
    batches. A method plugs in a *comparator* and a loss: the learner builds
    ``module(encoder=<encoder>, comparator=<comparator>)``, by default an
    :class:`~skfewshot.nn.EpisodeModel`, which maps ``(support,
    support_labels, query)`` to one row of class scores per query; the loss
    compares those scores with the episode-local query labels.

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
    n_way, n_shot, n_query : int, default=20, 5, 5
        The training episodes: classes, support and query samples per class.
    episodes_per_epoch : int, default=100
        Training episodes per epoch.
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
    module : type of torch.nn.Module, default=EpisodeModel
        Built as ``module(encoder=..., comparator=..., **module_params)``.
    **kwargs
        Any other :class:`skorch.NeuralNet` parameter (``callbacks``,
        ``device``, ``verbose``, ...) and prefixed parameters
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

    prefixes_ = NeuralNet.prefixes_ + ["encoder", "comparator"]

    def __init__(self, comparator, criterion, encoder=Conv4, *, n_way=20, n_shot=5, n_query=5,
                 episodes_per_epoch=100, valid_episodes=100, random_state=None,
                 optimizer=torch.optim.Adam, lr=1e-3, max_epochs=30, train_split=None,
                 module=EpisodeModel, **kwargs):
        super().__init__(module, criterion, optimizer=optimizer, lr=lr, max_epochs=max_epochs,
                         train_split=train_split, **kwargs)
        self.comparator = comparator
        self.encoder = encoder
        self.n_way = n_way
        self.n_shot = n_shot
        self.n_query = n_query
        self.episodes_per_epoch = episodes_per_epoch
        self.valid_episodes = valid_episodes
        self.random_state = random_state

    @property
    def _default_callbacks(self):
        callbacks = list(super()._default_callbacks)
        at = [name for name, _ in callbacks].index("print_log")
        callbacks[at:at] = [
            ("train_acc", PassthroughScoring(name="train_acc", lower_is_better=False,
                                             on_train=True)),
            ("valid_acc", PassthroughScoring(name="valid_acc", lower_is_better=False)),
        ]
        return callbacks

    # -- building ---------------------------------------------------------

    def _encoder_params(self):
        """Defaults of the encoder's constructor for this method (``encoder__*`` win)."""
        return {}

    def _comparator_params(self):
        """Constructor arguments of the comparator that the learner's own parameters set."""
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
        raise TypeError(
            f"{name} must be a torch.nn.Module class or instance, got {component!r}."
        )

    def initialize_module(self):
        module = self.initialized_instance(self.module, {
            "encoder": self._build("encoder", self._encoder_params()),
            "comparator": self._build("comparator", self._comparator_params()),
            **self.get_params_for("module"),
        })
        self.module_ = channels_last(module)
        return self

    def set_params(self, **kwargs):
        own = {k: kwargs.pop(k) for k in list(kwargs)
               if k.startswith(("encoder__", "comparator__"))}
        for key, value in own.items():
            setattr(self, key, value)
            self._params_to_validate.add(key)
        super().set_params(**kwargs)
        if own and self.initialized_:
            self._validate_params()
            self._initialize_module(reason="Re-initializing module because encoder or "
                                           "comparator parameters changed.")
            self._initialize_criterion()
            self._initialize_optimizer()
        return self

    @property
    def encoder_(self):
        """The meta-trained encoder."""
        self.check_is_fitted()
        return self.module_.encoder

    @property
    def comparator_(self):
        """The meta-trained comparator."""
        self.check_is_fitted()
        return self.module_.comparator

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
            sampler = self._sampler(dataset.y, what="training set")
            return EpisodeLoader(X, sampler, self.episodes_per_epoch, self._train_rng_)
        X_valid, y_valid = self._validate_base_data(dataset.X, dataset.y)
        sampler = self._sampler(y_valid, what="validation set")
        return EpisodeLoader(torch.from_numpy(X_valid), sampler, self.valid_episodes,
                             self._valid_seed_)

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

    def episode_accuracy(self, y_pred, y_true):
        """Fraction of an episode's queries whose highest output is the true class."""
        return (y_pred.argmax(1) == y_true.to(y_pred.device)).float().mean().item()

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        if y_pred is not None:
            name = "train_acc" if training else "valid_acc"
            self.history.record_batch(name, self.episode_accuracy(y_pred, batch[1]))

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
        sampler = self._sampler(y, what="scored set", n_way=n_way, n_shot=n_shot,
                                n_query=n_query)
        rng = check_random_state(self.random_state)
        loader = EpisodeLoader(torch.from_numpy(X), sampler, n_episodes, rng)
        accuracies = [self.episode_accuracy(self.evaluation_step(batch), batch[1])
                      for batch in loader]
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
            to the learner's; ``encoder`` (and ``comparator``, for classifiers
            that take one) to copies of ``encoder_`` and ``comparator_``. Pass
            ``encoder=None`` for a classifier of precomputed embeddings.

        Returns
        -------
        classifier
            Unfitted: ``fit`` it on a support set.
        """
        params = {"device": self.device, **self._classifier_params(), **params}
        if "encoder" not in params:
            params["encoder"] = copy.deepcopy(self.encoder_).eval()
        accepted = self.classifier_class().get_params()
        if "comparator" in accepted and "comparator" not in params:
            params["comparator"] = copy.deepcopy(self.comparator_).eval()
        return self.classifier_class(**params)
