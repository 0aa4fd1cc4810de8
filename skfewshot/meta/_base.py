"""The bases of the meta-learners: the one episodic training loop and its two families.

* :class:`EpisodicLearner`: a skorch net whose batches are meta-batches of
  episodes; every method trains in this loop.
* :class:`ComparatorLearner`: an encoder and a comparator (the metric methods).
* :class:`GradientLearner`: an encoder adapted by an update rule (the MAML family).
"""

import copy
from collections.abc import Callable

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import column_or_1d
from skorch import NeuralNet
from skorch.callbacks import PassthroughScoring

from .._lazy import DatasetSamples, as_samples
from .._param_validation import Instance, Integer, Options, Positive, validate_params
from .._torch_utils import channels_last, non_finite_rows, probe, torch_seed
from .._validation import (
    Component,
    Device,
    check_embedding_dim,
    check_labels,
    check_sample_shape,
)
from ..callbacks import DistributedMetaBatch
from ..model_selection import EpisodeSampler
from ..model_selection._episodes import EPISODE_CONSTRAINTS
from ..nn import Conv4, EpisodeModel
from ..nn._adaptation import (
    ADAPTATION_CONSTRAINTS,
    GradientAdaptation,
    GradientStep,
    adapted_shapes,
)
from ._episodes import EpisodeLoader

_MAX_SEED = np.iinfo(np.int32).max


def _float(y_pred):
    """A detached, floating-point output in float32 (mixed precision gives bfloat16)."""
    y_pred = y_pred.detach()
    return y_pred.float() if y_pred.is_floating_point() else y_pred


class EpisodicLearner(NeuralNet):
    """The training loop of every meta-learner: a skorch net whose batches are episodes.

    skorch's loop (callbacks, history, checkpoints, learning-rate schedules,
    devices) over meta-batches of episodes drawn by the one
    :class:`~skfewshot.model_selection.EpisodeSampler`. The ``module``
    maps an episode ``(support, support_labels, query)`` to one row of
    class scores per query, and ``criterion`` compares them with the
    episode-local query labels.

    A method is a subclass that declares, as class attributes:

    * ``classifier_class``: its few-shot classifier (:meth:`to_classifier`);
    * ``components``: the names of its torch-module parameters (``encoder``
      and e.g. ``comparator`` or ``rule``), each given as a class
      (configured with ``<name>__*`` parameters) or an instance (copied);
    * ``_parameter_constraints``: the constraints of its own parameters,
      checked when the learner is initialised;

    and implements :meth:`_module_components` (or inherits it from
    :class:`ComparatorLearner` or :class:`GradientLearner`) and, where its
    own parameters set those of the objects it builds, :meth:`_defaults`.

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
        ``n_query=None`` takes all remaining samples of each drawn class as
        queries (the episodes then differ in size; meta-batches of them work).
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
    augmentation : callable or None, default=None
        Distorts the samples of the training episodes, as
        ``augmentation(samples, rng)`` with the episodes' random generator,
        e.g. :class:`~skfewshot.datasets.RandomAffine` for images (seeded by
        ``random_state`` like the episodes). None: no augmentation.
    precision : {"float32", "bfloat16"}, default="float32"
        The arithmetic of the training forward passes. ``"bfloat16"`` runs
        them under :func:`torch.autocast` (mixed precision: convolutions and
        matrix products in bfloat16, the weights, their gradients and the
        optimizer in float32), about twice as fast on CPUs with bfloat16
        units (Intel AMX or AVX-512 BF16) and on GPUs; the trained weights,
        validation, :meth:`score` and the classifiers stay float32.
    loader_workers : int, default=0
        :class:`torch.utils.data.DataLoader` worker processes reading the
        samples of each episode (training, validation and :meth:`score`),
        for data whose decoding dominates (a lazy
        :class:`~skfewshot.datasets.ImageFolder`, a torch Dataset); 0 reads
        them in this process. The episodes' indices are drawn in this
        process from ``random_state`` and the workers only read their rows,
        so the episodes and the trained weights are the same whatever the
        number of workers. See :doc:`/large_data`.
    optimizer : type of torch.optim.Optimizer, default=torch.optim.Adam
        The meta-optimizer.
    lr : float, default=1e-3
        Its learning rate (finite, > 0). A training loss or weights that
        become non-finite stop the training with a ValueError naming it.
    max_epochs : int, default=30
        Number of epochs; 0 builds the learner without training it.
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

    #: The few-shot classifier class of the method.
    classifier_class = None

    #: The torch-module parameters of the learner, each with a ``<name>__*`` prefix.
    components = ("encoder",)

    # skorch's parameter prefixes and the components', derived for every subclass.
    prefixes_ = [*NeuralNet.prefixes_, *components]

    #: Parameters of a parent class that this learner refuses, with the reason.
    _refused_params = {}

    _parameter_constraints = {
        "encoder": Component(),
        **EPISODE_CONSTRAINTS,
        "episodes_per_epoch": Integer(1),
        "meta_batch_size": Integer(1),
        "valid_episodes": Integer(1),
        "max_epochs": Integer(0),
        "augmentation": Instance(Callable, none=True, label="callable"),
        "precision": Options("float32", "bfloat16"),
        "loader_workers": Integer(0),
        "lr": Positive(),
        "device": Device(none=True),
    }

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.prefixes_ = [*NeuralNet.prefixes_, *cls.components]

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
        augmentation=None,
        precision="float32",
        loader_workers=0,
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
        self.augmentation = augmentation
        self.precision = precision
        self.loader_workers = loader_workers

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

    # -- parameters -------------------------------------------------------

    def _check_params(self):
        """Check the learner's parameters against ``_parameter_constraints``."""
        owner = type(self).__name__
        for name, reason in self._refused_params.items():
            if name in vars(self):
                raise ValueError(f"{owner} does not take {name}: {reason}.")
        params = {name: getattr(self, name) for name in self._parameter_constraints}
        validate_params(params, self._parameter_constraints, owner=owner)
        if "optimizer__lr" in vars(self):  # skorch's override of lr
            Positive().check(self.optimizer__lr, "optimizer__lr", owner)

    def initialize(self):
        """Check the parameters, then build the module, criterion and optimizer (skorch)."""
        self._check_params()
        return super().initialize()

    def _validate_params(self):
        super()._validate_params()
        self._check_params()

    def _defaults(self):
        """Parameters of the objects the learner builds that follow its own parameters.

        Returns ``{"<name>__<param>": value}``, ``<name>`` being a component,
        ``"module"``, ``"criterion"`` or ``"classifier"`` (the arguments of
        :meth:`to_classifier`, where those the classifier does not take are
        left out). Explicit ``<name>__<param>`` parameters (and
        :meth:`to_classifier` arguments) win.
        """
        return {}

    def _params_for(self, name):
        """The keyword arguments ``name`` is built with: defaults, then explicit ones."""
        prefix = f"{name}__"
        defaults = {
            k[len(prefix) :]: v for k, v in self._defaults().items() if k.startswith(prefix)
        }
        return {**defaults, **self.get_params_for(name)}

    def set_params(self, **kwargs):
        before = self._defaults()
        own = {
            k: kwargs.pop(k)
            for k in list(kwargs)
            if k.startswith(tuple(f"{name}__" for name in self.components))
        }
        for key, value in own.items():
            setattr(self, key, value)
            self._params_to_validate.add(key)
        super().set_params(**kwargs)
        if not self.initialized_:
            return self
        changed = {k.split("__")[0] for k, v in self._defaults().items() if before.get(k) != v}
        changed |= {k.split("__")[0] for k in own}
        if changed & {*self.components, "module"}:
            self._validate_params()
            self._initialize_module(
                reason=f"Re-initializing module because {sorted(changed)} parameters changed."
            )
            self._initialize_criterion()
            self._initialize_optimizer()
        elif "criterion" in changed:
            self._initialize_criterion(
                reason="Re-initializing criterion because its parameters changed."
            )
        return self

    # -- building ---------------------------------------------------------

    def _build(self, name, **arguments):
        """Instantiate the component ``name`` (class or instance) with its parameters.

        ``arguments`` (e.g. shapes known only from another component) come
        before the defaults and the explicit ``<name>__*`` parameters.
        """
        component = getattr(self, name)
        if isinstance(component, torch.nn.Module):
            if self.get_params_for(name):
                raise ValueError(
                    f"{name}__* parameters ({sorted(self.get_params_for(name))}) need {name} "
                    f"to be a class, but it is an instance; pass the class, e.g. "
                    f"{name}={type(component).__name__}."
                )
            return copy.deepcopy(component)
        return component(**{**arguments, **self._params_for(name)})

    def _module_components(self):
        """The keyword arguments ``module`` is built with (before ``module__*``)."""
        raise NotImplementedError

    def initialize_module(self):
        module = self.initialized_instance(
            self.module, {**self._module_components(), **self._params_for("module")}
        )
        self.module_ = channels_last(module)
        return self

    def initialize_criterion(self):
        self.criterion_ = self.initialized_instance(self.criterion, self._params_for("criterion"))
        return self

    @property
    def encoder_(self):
        """The meta-trained encoder."""
        self.check_is_fitted()
        return self.module_.encoder

    # -- data -------------------------------------------------------------

    def _validate_base_data(self, X, y, *, reset=False):
        """Check a base (or scored) data set: samples, labels that name classes.

        ``X`` becomes samples read on demand (:func:`skfewshot._lazy.as_samples`):
        a NumPy array in memory is checked whole by scikit-learn's
        ``check_array``, without a float32 copy (its rows are converted per
        episode); a memory-map, an image folder or a torch Dataset is
        checked on a sample here and on each episode's rows as they are
        read. The per-sample shape is
        remembered at ``fit`` (``reset=True``, or the first time) and enforced
        afterwards (``partial_fit``, validation, :meth:`score`), with
        scikit-learn's message for feature vectors.
        """
        owner = type(self).__name__
        X = as_samples(X)
        if y is None:
            hint = (
                " (a torch Dataset's labels are given as y, e.g. y=dataset.targets)"
                if isinstance(X, DatasetSamples)
                else ""
            )
            raise ValueError(f"{owner} needs the class labels y of the base data set{hint}.")
        y = column_or_1d(y, warn=True)
        if len(y) != len(X):
            raise ValueError(f"{owner}: X has {len(X)} samples but y has {len(y)}.")
        check_labels(y, owner=owner)
        # The name ends with "_": skorch takes the other attributes for parameters.
        if reset or not hasattr(self, "_sample_shape_"):
            self._sample_shape_ = X.sample_shape
        else:
            check_sample_shape(X, self._sample_shape_, owner=owner)
        return X, y

    def _check_input(self, X):
        """Check, on one sample, that the module takes the samples ``X`` (at fit)."""
        encoder = self.module_.encoder
        sample = X._tensor_rows(np.arange(1))
        sample = sample.to(next(encoder.parameters(), sample).device)
        if self.augmentation is not None:  # fails early on samples it cannot distort
            sample = self.augmentation(sample, np.random.RandomState(0))
        return probe(encoder, sample, owner=type(self).__name__)

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
        afresh each epoch, validation episodes are the same at every epoch.

        Each episode reads only its own samples, in this process or in
        ``loader_workers`` DataLoader workers."""
        if training:
            sampler = self._sampler(dataset.y, what="training set")
            return EpisodeLoader(
                as_samples(dataset.X),
                sampler,
                self.episodes_per_epoch,
                self._train_rng_,
                meta_batch_size=self.meta_batch_size,
                transform=self.augmentation,
                num_workers=self.loader_workers,
            )
        X_valid, y_valid = self._validate_base_data(dataset.X, dataset.y)
        sampler = self._sampler(y_valid, what="validation set")
        return EpisodeLoader(
            X_valid,
            sampler,
            self.valid_episodes,
            self._valid_seed_,
            num_workers=self.loader_workers,
        )

    # -- training ---------------------------------------------------------

    def fit(self, X, y, **fit_params):
        """Meta-train on episodes drawn from the base data set ``(X, y)``.

        Parameters
        ----------
        X : array-like, memory-map, ImageFolder or torch Dataset of shape (n_samples, ...)
            Base samples, in the shape the encoder takes. A NumPy array
            (a memory-map too) of any dtype is read and converted to float32
            per episode, uint8 scaled by 1/255 (a float32 array is read as it
            is); an :class:`~skfewshot.datasets.ImageFolder` or a map-style
            :class:`torch.utils.data.Dataset` is read per episode too: only
            the samples of the episodes are ever read (see
            :doc:`/large_data`). Other array-likes are converted whole.
        y : array-like of shape (n_samples,)
            Base class labels; episodes are drawn among these classes. NaN,
            None and infinite labels are refused. For a torch Dataset, its
            labels (its items' labels are not read).
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        self
            The meta-trained learner.

        Raises
        ------
        ValueError
            For invalid parameters or data, and when training diverges: a
            non-finite training loss (checked before each meta-update) or
            non-finite weights (after it) stop the training with an error
            that names the learning rate.
        SampleReadError
            When a sample of an episode cannot be read (e.g. a corrupt image
            file), naming it; unless the samples were opened with
            ``on_error="skip"``, which skips that episode with a warning.

        Notes
        -----
        ``fit`` starts over, unless a
        :class:`~skfewshot.callbacks.ResumableCheckpoint` callback finds a
        checkpoint in its folder: ``fit`` then continues that run up to
        ``max_epochs`` epochs in all (kill-and-resume).
        """
        X, y = self._validate_base_data(X, y, reset=True)
        seeds = check_random_state(self.random_state).randint(_MAX_SEED, size=3)
        self._seed_episodes(seeds[:2])
        with torch_seed(seeds[2]):
            return super().fit(X, y, **fit_params)

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Continue meta-training without re-initialising (see :meth:`fit`)."""
        if not hasattr(self, "_train_rng_"):
            self._seed_episodes(check_random_state(self.random_state).randint(_MAX_SEED, size=2))
        X, y = self._validate_base_data(X, y)
        if self.initialized_:  # parameters set since the initialisation are checked here
            self._check_params()
        else:
            self.initialize()
        self._check_input(X)
        return super().partial_fit(X, y, classes=classes, **fit_params)

    def _seed_episodes(self, seeds):
        self._train_rng_ = np.random.RandomState(seeds[0])
        self._valid_seed_ = int(seeds[1])

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """skorch's loop over the epochs; after a resume, over the epochs left.

        A callback that restores a saved run when training begins
        (:class:`~skfewshot.callbacks.ResumableCheckpoint`) sets the epochs
        left, so that ``max_epochs`` counts the restored epochs too: the
        resumed run ends with as many epochs as an uninterrupted one.
        """
        left = vars(self).pop("_epochs_left_", None)
        if epochs is None and left is not None:
            epochs = left
        return super().fit_loop(X, y, epochs=epochs, **fit_params)

    def infer(self, x, **fit_params):
        """Scores of one episode's queries: ``module_(support, support_labels, query)``."""
        x = x.to(self.device)
        return self.module_(x.support, x.support_labels, x.query, **fit_params)

    def _run_episodes(self, batch, *, training, **fit_params):
        """Losses and outputs of a meta-batch of episodes; in training, their gradients.

        The loss is the mean over the meta-batch's episodes; each episode's
        share of the gradient is accumulated right after its forward pass.
        """
        episodes, targets = batch
        losses, y_preds = [], []
        mixed = training and self.precision == "bfloat16"
        # Split across processes (DistributedMetaBatch): this process's share of the episodes,
        # each divided by the size of the whole meta-batch all the same.
        distributed = self._distributed_meta_batch() if training else None
        pairs = (
            zip(episodes, targets) if distributed is None else distributed._share(episodes, targets)
        )
        for episode, y_true in pairs:
            with torch.autocast(torch.device(self.device or "cpu").type, torch.bfloat16, mixed):
                y_pred = self.infer(episode, **fit_params)
                loss = self.get_loss(y_pred, y_true, X=episode, training=training)
            if training:
                (loss / len(episodes)).backward()
            losses.append(loss.detach())
            # Detached: the episode's graph must not outlive its backward pass.
            y_preds.append(
                tuple(_float(p) for p in y_pred) if isinstance(y_pred, tuple) else _float(y_pred)
            )
        if distributed is not None:  # every process's episodes, in the meta-batch's order
            losses, y_preds = distributed._gather(losses, y_preds, self.device)
        return {"loss": torch.stack(losses).mean(), "y_pred": y_preds}

    def _distributed_meta_batch(self):
        """The :class:`~skfewshot.callbacks.DistributedMetaBatch` callback splitting the
        training meta-batches across processes; None when there is none, or no process
        group (training in this process alone)."""
        for _, callback in getattr(self, "callbacks_", ()):
            if isinstance(callback, DistributedMetaBatch) and getattr(callback, "active_", False):
                return callback
        return None

    def train_step_single(self, batch, **fit_params):
        """Forward and backward passes over one meta-batch of episodes.

        A non-finite loss stops the training here, before the meta-update
        that its gradients would spoil. With a
        :class:`~skfewshot.callbacks.DistributedMetaBatch` callback, the
        episodes are shared among the processes and the gradients summed
        over them here (the loss checked is the whole meta-batch's, on
        every process).
        """
        self._set_training(True)
        step = self._run_episodes(batch, training=True, **fit_params)
        if not torch.isfinite(step["loss"]):
            raise ValueError(
                f"{type(self).__name__}: the training loss is {float(step['loss'])} at "
                f"{self._training_position()}: training diverged. {self._divergence_hint()}"
            )
        distributed = self._distributed_meta_batch()
        if distributed is not None:
            distributed._synchronize(self)
        return step

    def train_step(self, batch, **fit_params):
        """One meta-update (skorch's ``train_step``); non-finite weights after it stop the
        training."""
        step = super().train_step(batch, **fit_params)
        finite = [
            torch.isfinite(p).all()
            for p in self.module_.parameters()
            if not isinstance(p, torch.nn.parameter.UninitializedParameter)
        ]
        if finite and not bool(torch.stack(finite).all()):
            raise ValueError(
                f"{type(self).__name__}: the weights are not finite after the meta-update "
                f"at {self._training_position()}: training diverged. "
                f"{self._divergence_hint()}"
            )
        return step

    def _training_position(self):
        """Where the training is, for an error: "epoch 2, meta-batch 5"."""
        try:
            epoch, batches = self.history[-1, "epoch"], self.history[-1, "batches"]
            return f"epoch {epoch}, meta-batch {len(batches)}"
        except (IndexError, KeyError):
            return "the start of training"

    def _divergence_hint(self):
        """What to lower when the training diverges: the learning rates, or the scale of X."""
        rates = ["optimizer__lr" if "optimizer__lr" in vars(self) else "lr"]
        rates += [name for name in ("inner_lr", "imitation_lr") if hasattr(self, name)]
        listed = ", ".join(f"{name}={getattr(self, name)!r}" for name in rates)
        return (
            f"Lower the learning rate ({listed}), or scale X (e.g. to [0, 1], or to zero mean "
            "and unit variance)."
        )

    def validation_step(self, batch, **fit_params):
        """Forward passes over one meta-batch of validation episodes (no meta-gradient)."""
        self._set_training(False)
        with torch.no_grad():
            return self._run_episodes(batch, training=False, **fit_params)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """One pass over the meta-batches of ``iterator``: skorch's, with the episodes' size.

        skorch records a batch's size as the one length its items share;
        episodes drawn with ``n_query=None`` (all remaining samples of each
        class as queries) have different lengths. The size recorded here, which
        weights the meta-batch in the epoch's mean loss and accuracy, is the
        mean number of queries of its episodes (skorch's value when they are
        equal).
        """
        if iterator is None:
            return
        batch_count = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            self.history.record_batch(prefix + "_loss", step["loss"].item())
            sizes = [len(episode) for episode in batch[0]]
            size = sizes[0] if len(set(sizes)) == 1 else float(np.mean(sizes))
            self.history.record_batch(prefix + "_batch_size", size)
            self.notify("on_batch_end", batch=batch, training=training, **step)
            batch_count += 1
        self.history.record(prefix + "_batch_count", batch_count)

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
        accuracy = np.mean([self.episode_accuracy(p, y) for p, y in zip(y_pred, batch[1])])
        self.history.record_batch("train_acc" if training else "valid_acc", float(accuracy))

    # -- evaluation -------------------------------------------------------

    def score(self, X, y, *, n_way=None, n_shot=None, n_query=None, n_episodes=600):
        """Mean episodic accuracy on the (novel) classes of ``(X, y)``.

        Parameters
        ----------
        X : array-like, memory-map, ImageFolder or torch Dataset of shape (n_samples, ...)
            Samples of classes to evaluate on, normally never seen in training;
            read per episode as :meth:`fit` reads them.
        y : array-like of shape (n_samples,)
            Their labels.
        n_way, n_shot, n_query : int, default=None
            The test episodes; None takes the training episodes' values.
        n_episodes : int, default=600
            Number of test episodes, drawn from ``random_state``: the same
            episodes as :class:`~skfewshot.model_selection.EpisodicSplit`
            with that ``random_state`` draws, scored as ``to_classifier()``
            scores them (classes in the order of its ``classes_``).

        Returns
        -------
        score : float
            Query accuracy averaged over the episodes.

        Raises
        ------
        ValueError
            If ``n_episodes`` is not an integer >= 1, or if the scores of a
            query are not finite (NaN, or an overflow), which would make the
            accuracy meaningless.
        """
        self.check_is_fitted()
        owner = type(self).__name__
        n_episodes = Integer(1).check(n_episodes, "n_episodes", owner)
        X, y = self._validate_base_data(X, y)
        sampler = self._sampler(y, what="scored set", n_way=n_way, n_shot=n_shot, n_query=n_query)
        rng = check_random_state(self.random_state)
        self._set_training(False)
        accuracies = []
        # Classes in the order of a classifier's classes_: the classifier's scores.
        loader = EpisodeLoader(
            X, sampler, n_episodes, rng, sort_classes=True, num_workers=self.loader_workers
        )
        for batch in loader:
            with torch.no_grad():
                y_pred = self._run_episodes(batch, training=False)["y_pred"]
            for episode, p in zip(batch[0], y_pred):
                n_bad = int(non_finite_rows(self._scores(p)).sum())
                if n_bad:
                    largest = max(float(t.abs().max()) for t in (episode.support, episode.query))
                    raise ValueError(
                        f"{owner}: the class scores of {n_bad} queries of a scored episode "
                        "are not finite (NaN or infinite), so its accuracy is meaningless. "
                        f"The largest absolute value in its samples is {largest:.3g}: "
                        "scale X as the training data were, and check that the training "
                        "did not diverge."
                    )
            accuracies += [self.episode_accuracy(p, t) for p, t in zip(y_pred, batch[1])]
        if not accuracies:
            raise ValueError(
                f"{owner}: every scored episode was skipped (each held an unreadable sample)."
            )
        return float(np.mean(accuracies))

    def _not_a_classifier(self, *args, **kwargs):
        raise TypeError(
            f"{type(self).__name__} is a meta-learner: it does not label samples itself. "
            "Wrap it as a few-shot classifier: learner.to_classifier().fit(X_support, "
            "y_support).predict(X_query)."
        )

    predict = predict_proba = forward = forward_iter = _not_a_classifier

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
        accepted = self.classifier_class().get_params()
        defaults = {k: v for k, v in self._params_for("classifier").items() if k in accepted}
        params = {"device": self.device, **defaults, **params}
        for name in self.components:
            if name in accepted and name not in params:
                params[name] = copy.deepcopy(getattr(self.module_, name)).eval()
        return self.classifier_class(**params)


class ComparatorLearner(EpisodicLearner):
    """Meta-train an encoder and a comparator over episodes of a base data set.

    The base of the metric-based learners. A method plugs in a *comparator*
    and a loss: the learner builds ``module(encoder=<encoder>,
    comparator=<comparator>)``, by default an
    :class:`~skfewshot.nn.EpisodeModel`, which maps ``(support,
    support_labels, query)`` to one row of class scores per query; the loss
    compares those scores with the episode-local query labels. A comparator
    that declares an ``embedding_dim`` is checked against the encoder's
    output at fit. The training loop is :class:`EpisodicLearner`'s.

    Parameters
    ----------
    encoder : torch.nn.Module class or instance, default=Conv4
        The backbone being meta-trained. A class is instantiated with the
        ``encoder__*`` parameters; an instance is copied.
    comparator : torch.nn.Module class or instance
        Scores queries against the support set from their embeddings, e.g.
        :class:`skfewshot.nn.Prototypes`. A class is instantiated with the
        ``comparator__*`` parameters; an instance is copied.
    criterion : type of torch.nn.Module, default=torch.nn.CrossEntropyLoss
        The loss between the scores and the episode-local query labels.
    module : type of torch.nn.Module, default=EpisodeModel
        Built as ``module(encoder=..., comparator=..., **module_params)``.
    **kwargs
        The training parameters of :class:`EpisodicLearner` (``n_way``,
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

    _parameter_constraints = {**EpisodicLearner._parameter_constraints, "comparator": Component()}

    def __init__(
        self,
        encoder=Conv4,
        *,
        comparator,
        criterion=torch.nn.CrossEntropyLoss,
        module=EpisodeModel,
        **kwargs,
    ):
        super().__init__(module, criterion, encoder, **kwargs)
        self.comparator = comparator

    def _module_components(self):
        return {"encoder": self._build("encoder"), "comparator": self._build("comparator")}

    def _check_input(self, X):
        check_embedding_dim(
            self.module_.comparator,
            super()._check_input(X),
            owner=type(self).__name__,
            parameter="comparator__embedding_dim",
        )

    @property
    def comparator_(self):
        """The meta-trained comparator."""
        self.check_is_fitted()
        return self.module_.comparator


class GradientLearner(EpisodicLearner):
    """Meta-train an encoder (and an update rule) through gradient-based adaptation.

    The base of the optimization-based learners. Each training episode puts
    a linear head sized to its classes on the encoder, adapts the encoder
    and the head (or the head alone) to the support set by ``inner_steps``
    updates of an update *rule* (a component: ``rule__*`` parameters
    configure a class, which is built with the ``shapes`` of the adapted
    tensors), and scores the queries with the adapted weights; the module is
    a :class:`~skfewshot.nn.GradientAdaptation`. The training loop is
    :class:`EpisodicLearner`'s.

    Parameters
    ----------
    encoder : torch.nn.Module class or instance, default=Conv4
        The network whose initialisation is meta-learned.
    rule : torch.nn.Module class or instance, default=GradientStep
        The update rule of the inner loop.
    inner_steps : int, default=1
        Inner steps per training episode.
    head_init : {"zero", "prototypes"}, default="zero"
        The per-episode head's initial weights.
    transductive : bool, default=False
        Normalise the queries with the query batch's batch-norm statistics
        instead of the support set's.
    n_way, n_shot, n_query : int, default=5, 1, 15
        The training episodes.
    meta_batch_size : int, default=4
        Episodes per meta-update.
    module : type of torch.nn.Module, default=GradientAdaptation
        Built as ``module(encoder=..., rule=..., inner_steps=..., ...)``.
    criterion : type of torch.nn.Module, default=torch.nn.CrossEntropyLoss
        The query loss.
    **kwargs
        The training parameters of :class:`EpisodicLearner` and any other
        :class:`skorch.NeuralNet` parameter.
    """

    components = ("encoder", "rule")

    _parameter_constraints = {
        **EpisodicLearner._parameter_constraints,
        "rule": Component(),
        **{
            name: ADAPTATION_CONSTRAINTS[name]
            for name in ("inner_steps", "head_init", "transductive")
        },
    }

    #: What the inner loop adapts: "all" (MAML) or "head" (ANIL).
    _adapt = "all"

    def __init__(
        self,
        encoder=Conv4,
        *,
        rule=GradientStep,
        inner_steps=1,
        head_init="zero",
        transductive=False,
        n_way=5,
        n_shot=1,
        n_query=15,
        meta_batch_size=4,
        module=GradientAdaptation,
        criterion=torch.nn.CrossEntropyLoss,
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
            **kwargs,
        )
        self.rule = rule
        self.inner_steps = inner_steps
        self.head_init = head_init
        self.transductive = transductive

    def _defaults(self):
        shared = {
            "inner_steps": self.inner_steps,
            "head_init": self.head_init,
            "transductive": self.transductive,
        }
        return {
            "module__adapt": self._adapt,
            **{f"module__{k}": v for k, v in shared.items()},
            **{f"classifier__{k}": v for k, v in shared.items()},
        }

    def _module_components(self):
        encoder = self._build("encoder")
        try:
            shapes = adapted_shapes(encoder, self._adapt)
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__}: {exc}") from exc
        return {"encoder": encoder, "rule": self._build("rule", shapes=shapes)}

    @property
    def rule_(self):
        """The update rule of the inner loop (with its meta-learned weights, if any)."""
        self.check_is_fitted()
        return self.module_.rule
