"""Supervised pre-training of an encoder over all base classes."""

import numpy as np
import torch
from torch import nn

from .._lazy import as_samples
from .._param_validation import Integer
from .._torch_utils import probe
from .._validation import Component
from ..nn import Conv4
from ..nn._pretraining import PretrainingModel
from ._episodes import BatchLoader
from ._prototypical import PrototypicalLearner


class PretrainingLearner(PrototypicalLearner):
    """Pre-train an encoder as an ordinary classifier over all base classes at once.

    Few-shot classification needs an embedding that separates classes it
    has never seen; training the encoder with a classification head on the
    cross-entropy of *all* base classes at once, on mini-batches of samples
    rather than episodes, learns one quickly ("A Closer Look at Few-shot
    Classification", Chen et al. 2019; "Rethinking Few-Shot Image
    Classification: a Good Embedding Is All You Need", Tian et al. 2020).
    The head is then dropped: :meth:`to_classifier` gives a
    :class:`~skfewshot.PrototypicalClassifier` on the pre-trained encoder,
    and validation episodes (on held-out classes) and :meth:`score` are
    scored by class prototypes. The encoder can then be fine-tuned
    episodically: pass ``learner.encoder_`` as the ``encoder`` of any
    meta-learner (Meta-Baseline, Chen et al. 2021).

    It is a :class:`PrototypicalLearner` whose training steps are
    classification batches. The training loop is the one of every
    meta-learner
    (:class:`~skfewshot.base.EpisodicLearner`): a step is a batch of
    ``batch_size`` samples (an episode with an empty support set, for the
    :class:`~skfewshot.nn.PretrainingModel`), ``episodes_per_epoch`` steps
    make an epoch, and ``meta_batch_size`` batches are averaged per update.

    Parameters
    ----------
    encoder : torch.nn.Module class or instance, default=Conv4
        The backbone to pre-train (``encoder__*`` parameters configure a class).
    head : torch.nn.Module class or instance, default=torch.nn.Linear
        The classification head over the base classes, built as
        ``head(in_features=<embedding width>, out_features=<number of
        classes>, **head_params)``: :class:`torch.nn.Linear`, or
        :class:`~skfewshot.nn.CosineHead` (``head__scale=...``).
    distance : {"sqeuclidean", "euclidean", "cosine"}, default="sqeuclidean"
        Distance to the class prototypes in validation, :meth:`score` and the
        classifier.
    scale : float, default=1.0
        Multiplies the negative distances to the prototypes (an inverse
        temperature of their softmax).
    batch_size : int, default=128
        Samples per training batch.
    episodes_per_epoch : int, default=100
        Training batches per epoch.
    n_way, n_shot, n_query : int, default=5, 1, 15
        The validation episodes (and :meth:`score`'s defaults).
    augmentation : callable or None, default=None
        Distorts the training samples, e.g.
        :class:`~skfewshot.datasets.RandomAffine`.
    **kwargs
        Any other :class:`PrototypicalLearner` /
        :class:`skorch.NeuralNet` parameter: ``max_epochs``, ``lr``,
        ``random_state``, ``train_split``, ``callbacks``, ``encoder__*``,
        ``head__*``, ...

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The base classes, in the order of the head's outputs.
    encoder_ : torch.nn.Module
        The pre-trained encoder.
    head_ : torch.nn.Module
        The classification head.
    module_ : skfewshot.nn.PretrainingModel
        Encoder, comparator and head.
    history_ : skorch.history.History
        Per-epoch ``train_loss`` and ``train_acc`` (batch classification
        accuracy over the base classes) and, with validation, ``valid_loss``
        and ``valid_acc`` (episodic, on held-out classes).

    Notes
    -----
    With ``train_split`` holding out classes for validation, the head still
    has an output for every class of ``y``; the held-out ones never appear
    as targets.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot.meta import PretrainingLearner
    >>> from skfewshot.nn import MLP
    >>> X, y = load_digits(return_X_y=True)
    >>> base, novel = y < 6, y >= 6
    >>> learner = PretrainingLearner(MLP, encoder__in_features=64, max_epochs=2,
    ...                              episodes_per_epoch=20, verbose=0, random_state=0)
    >>> learner = learner.fit(X[base] / 16, y[base])
    >>> clf = learner.to_classifier()
    """

    components = ("encoder", "comparator", "head")

    _parameter_constraints = {
        **PrototypicalLearner._parameter_constraints,
        "head": Component(),
        "batch_size": Integer(1),
    }

    def __init__(
        self,
        encoder=Conv4,
        *,
        head=nn.Linear,
        batch_size=128,
        n_way=5,
        n_shot=1,
        n_query=15,
        module=PretrainingModel,
        **kwargs,
    ):
        super().__init__(
            encoder,
            module=module,
            batch_size=batch_size,
            n_way=n_way,
            n_shot=n_shot,
            n_query=n_query,
            **kwargs,
        )
        self.head = head

    def fit(self, X, y, **fit_params):
        """Pre-train on mini-batches of the base data set ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Base samples, in the shape the encoder takes.
        y : array-like of shape (n_samples,)
            Base class labels: the head has one output per class.
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        self
            The pre-trained learner.
        """
        X, y = self._validate_base_data(X, y, reset=True)
        self.classes_ = np.unique(y)
        return super().fit(X, y, **fit_params)

    def _module_components(self):
        if not hasattr(self, "classes_"):
            raise RuntimeError(
                f"{type(self).__name__} sizes its head from the base data: call fit(X, y)."
            )
        encoder = self._build("encoder")
        sample = torch.zeros(1, *self._sample_shape_)
        width = probe(encoder, sample, owner=type(self).__name__).flatten(1).shape[1]
        head = self._build("head", in_features=width, out_features=len(self.classes_))
        return {"encoder": encoder, "comparator": self._build("comparator"), "head": head}

    def get_iterator(self, dataset, training=False):
        """Mini-batches of the base classes in training; episodes in validation."""
        if not training:
            return super().get_iterator(dataset, training=False)
        return BatchLoader(
            as_samples(dataset.X),  # read batch by batch, as episodes are
            np.searchsorted(self.classes_, dataset.y),
            self.batch_size,
            self.episodes_per_epoch,
            self._train_rng_,
            meta_batch_size=self.meta_batch_size,
            transform=self.augmentation,
            num_workers=self.loader_workers,
        )

    @property
    def head_(self):
        """The classification head over the base classes."""
        self.check_is_fitted()
        return self.module_.head
