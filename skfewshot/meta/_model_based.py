"""Model-based meta-learners: MANN, SNAIL and an in-context transformer.

Each meta-trains an encoder and a network that reads the labelled support
set and the query (the comparator) with the one episodic training loop: the
loss is the cross-entropy of the network's scores for the queries.
"""

import torch
from torch import nn

from .._model_based import InContextClassifier, MANNClassifier, SNAILClassifier
from .._param_validation import Boolean, Integer
from ..nn import Conv4, n_classes
from ..nn._in_context import InContextTransformer
from ..nn._mann import MANN
from ..nn._snail import SNAIL
from ._base import ComparatorLearner
from ._episodes import Episode


class _ModelBasedLearner(ComparatorLearner):
    """A comparator learner whose comparator reads labels as inputs of ``max_ways`` slots.

    ``max_ways`` is passed on to the comparator; episodes of more classes
    are refused at fit. With ``shuffle_labels`` each training episode's
    classes take a random subset of the label slots (drawn from the
    episodes' random stream, so ``random_state`` still fixes everything);
    validation, :meth:`score` and the classifier use slots ``0 .. n_way -
    1``.
    """

    _parameter_constraints = {
        **ComparatorLearner._parameter_constraints,
        "max_ways": Integer(2),
        "shuffle_labels": Boolean(),
    }

    def _defaults(self):
        return {"comparator__max_ways": self.max_ways}

    def _check_input(self, X):
        super()._check_input(X)
        max_ways = getattr(self.module_.comparator, "max_ways", None)
        if max_ways is not None and self.n_way > max_ways:
            raise ValueError(
                f"{type(self).__name__}: episodes of n_way={self.n_way} classes need "
                f"{self.n_way} label slots, but the comparator reads labels as one-hot vectors "
                f"of max_ways={max_ways}. Set max_ways={self.n_way} or more, or lower n_way."
            )

    def infer(self, x, **fit_params):
        """Scores of one episode's queries; in training, with the classes in random label slots.

        With ``shuffle_labels``, a training episode's class ``c`` is shown to
        the comparator as label ``slots[c]``, ``slots`` ``n_way`` distinct
        slots of ``max_ways`` drawn from the episodes' random stream; the
        scores of those slots, in the order of the classes, are returned.
        """
        max_ways = getattr(self.module_.comparator, "max_ways", None)
        if not (self.shuffle_labels and self.module_.training and max_ways is not None):
            return super().infer(x, **fit_params)
        n_way = n_classes(x.support_labels)
        slots = torch.from_numpy(self._train_rng_.choice(max_ways, n_way, replace=False))
        episode = Episode(x.support, slots[x.support_labels.cpu()], x.query)
        scores = super().infer(episode, **fit_params)
        return scores[:, slots.to(scores.device)]


class MANNLearner(_ModelBasedLearner):
    """Meta-train an encoder and a memory-augmented neural network (Santoro et al. 2016).

    Each training episode embeds support and query samples; the network
    (:class:`~skfewshot.nn.MANN`: an LSTM controller with an external memory,
    least-recently-used writes and cosine reads) reads the support set as a
    sequence of (embedding, one-hot label) pairs, then each query, without
    a label, as one more step from the state after the support set; the
    loss is the cross-entropy of the queries' outputs. Encoder and network
    are trained together.

    Parameters
    ----------
    encoder : torch.nn.Module class or instance, default=Conv4
        The backbone to meta-train (``encoder__*`` parameters configure a class).
    n_way, n_shot, n_query : int, default=20, 5, 5
        The training episodes. The network reads ``n_way * n_shot`` support
        steps per episode, one after the other.
    episodes_per_epoch : int, default=100
        Training episodes per epoch.
    max_epochs : int, default=30
        Number of epochs (30 x 100 = 3,000 episodes by default).
    lr : float, default=1e-3
        Learning rate of the Adam meta-optimizer.
    max_ways : int, default=20
        Width of the network's one-hot labels and outputs: the most classes
        of a training or test episode (``comparator__max_ways``). A larger
        ``n_way`` is refused at fit, a classifier's larger support set at
        its fit.
    shuffle_labels : bool, default=True
        Show each training episode's classes as a random subset of the
        ``max_ways`` label slots (a fresh draw per episode, from
        ``random_state``), so that every slot is trained whatever
        ``n_way``: a network trained on 5-way episodes then classifies up to
        ``max_ways`` classes. False: class ``c`` is slot ``c``, as at test
        time (the papers' setting, which trains the slots up to ``n_way``
        only).
    label_offset : bool, default=False
        The paper's protocol: each support sample comes with the label of
        the sample before it, each query with the last support label
        (``comparator__label_offset``; see :class:`~skfewshot.nn.MANN`).
    device : str, default="cpu"
        Where to train.
    random_state : int, RandomState instance or None, default=None
        Seeds episodes, label slots and weight initialisation.
    comparator : torch.nn.Module class or instance, default=MANN
        The network; ``comparator__embedding_dim`` (default 64) must be the
        encoder's output width, and ``comparator__hidden_size``,
        ``comparator__memory_slots``, ``comparator__memory_size``,
        ``comparator__read_heads`` and ``comparator__usage_decay`` set the
        rest (the paper's 200, 128, 40, 4 and 0.95 by default).
    criterion : type of torch.nn.Module, default=torch.nn.CrossEntropyLoss
        The loss on the queries' scores.
    **kwargs
        Any other :class:`ComparatorLearner` / :class:`skorch.NeuralNet`
        parameter: ``train_split``, ``valid_episodes``, ``callbacks``,
        ``optimizer``, ``verbose``, ``encoder__*``, ``comparator__*``, ...

    Attributes
    ----------
    encoder_ : torch.nn.Module
        The meta-trained encoder.
    comparator_ : skfewshot.nn.MANN
        The meta-trained network.
    module_ : skfewshot.nn.EpisodeModel
        Both together.
    history_ : skorch.history.History
        Per-epoch ``train_loss``, ``train_acc`` and, with validation,
        ``valid_loss`` and ``valid_acc``.

    Notes
    -----
    The network reads the support set in a canonical order, the same in
    training and at test time: round-robin over the classes, each class's
    samples ordered by a fixed projection of their embeddings. The
    sequence is read one step at a time, so an episode's cost grows with
    ``n_way * n_shot`` steps of Python; the queries are one batched step.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot.meta import MANNLearner
    >>> from skfewshot.nn import MLP
    >>> X, y = load_digits(return_X_y=True)
    >>> learner = MANNLearner(MLP, encoder__out_features=16, comparator__embedding_dim=16,
    ...                       comparator__hidden_size=32, comparator__memory_slots=16,
    ...                       comparator__memory_size=8, max_ways=5, n_way=5, n_shot=1,
    ...                       max_epochs=1, episodes_per_epoch=10, verbose=0,
    ...                       random_state=0)
    >>> learner = learner.fit(X[y < 6] / 16, y[y < 6])
    >>> clf = learner.to_classifier()
    """

    classifier_class = MANNClassifier

    _parameter_constraints = {
        **_ModelBasedLearner._parameter_constraints,
        "label_offset": MANN._parameter_constraints["label_offset"],
    }

    def __init__(
        self,
        encoder=Conv4,
        *,
        max_ways=20,
        shuffle_labels=True,
        label_offset=False,
        comparator=MANN,
        criterion=nn.CrossEntropyLoss,
        **kwargs,
    ):
        super().__init__(encoder, comparator=comparator, criterion=criterion, **kwargs)
        self.max_ways = max_ways
        self.shuffle_labels = shuffle_labels
        self.label_offset = label_offset

    def _defaults(self):
        return {**super()._defaults(), "comparator__label_offset": self.label_offset}


class SNAILLearner(_ModelBasedLearner):
    """Meta-train an encoder and a SNAIL network (Mishra et al. 2018).

    Each training episode embeds support and query samples; the network
    (:class:`~skfewshot.nn.SNAIL`: causal temporal convolution blocks
    interleaved with causal attention blocks) reads the sequence of the
    support set's (embedding, one-hot label) pairs followed by one query
    with a zero label, for each query; the loss is the cross-entropy of the
    outputs at the queries' positions. Encoder and network are trained
    together.

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
    max_ways : int, default=20
        Width of the network's one-hot labels and outputs: the most classes
        of a training or test episode (``comparator__max_ways``). A larger
        ``n_way`` is refused at fit, a classifier's larger support set at
        its fit.
    shuffle_labels : bool, default=True
        Show each training episode's classes as a random subset of the
        ``max_ways`` label slots (a fresh draw per episode, from
        ``random_state``), so that every slot is trained whatever
        ``n_way``. False: class ``c`` is slot ``c``, as at test time.
    device : str, default="cpu"
        Where to train.
    random_state : int, RandomState instance or None, default=None
        Seeds episodes, label slots and weight initialisation.
    comparator : torch.nn.Module class or instance, default=SNAIL
        The network; ``comparator__embedding_dim`` (default 64) must be the
        encoder's output width, and ``comparator__attention``,
        ``comparator__filters`` and ``comparator__dense_blocks`` set the
        architecture (the paper's Omniglot one by default).
    criterion : type of torch.nn.Module, default=torch.nn.CrossEntropyLoss
        The loss on the queries' scores.
    **kwargs
        Any other :class:`ComparatorLearner` / :class:`skorch.NeuralNet`
        parameter: ``train_split``, ``valid_episodes``, ``callbacks``,
        ``optimizer``, ``verbose``, ``encoder__*``, ``comparator__*``, ...

    Attributes
    ----------
    encoder_ : torch.nn.Module
        The meta-trained encoder.
    comparator_ : skfewshot.nn.SNAIL
        The meta-trained network.
    module_ : skfewshot.nn.EpisodeModel
        Both together.
    history_ : skorch.history.History
        Per-epoch ``train_loss``, ``train_acc`` and, with validation,
        ``valid_loss`` and ``valid_acc``.

    Notes
    -----
    The network reads the support set in a canonical order, the same in
    training and at test time: round-robin over the classes, each class's
    samples ordered by a fixed projection of their embeddings. The support
    positions are computed once per episode; each query adds one position.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot.meta import SNAILLearner
    >>> from skfewshot.nn import MLP
    >>> X, y = load_digits(return_X_y=True)
    >>> learner = SNAILLearner(MLP, encoder__out_features=16, comparator__embedding_dim=16,
    ...                        comparator__attention=((16, 8), (16, 8)),
    ...                        comparator__filters=8, comparator__dense_blocks=3,
    ...                        max_ways=5, n_way=5, n_shot=1, max_epochs=1,
    ...                        episodes_per_epoch=10, verbose=0, random_state=0)
    >>> learner = learner.fit(X[y < 6] / 16, y[y < 6])
    >>> clf = learner.to_classifier()
    """

    classifier_class = SNAILClassifier

    def __init__(
        self,
        encoder=Conv4,
        *,
        max_ways=20,
        shuffle_labels=True,
        comparator=SNAIL,
        criterion=nn.CrossEntropyLoss,
        **kwargs,
    ):
        super().__init__(encoder, comparator=comparator, criterion=criterion, **kwargs)
        self.max_ways = max_ways
        self.shuffle_labels = shuffle_labels


class InContextLearner(_ModelBasedLearner):
    """Meta-train an encoder and an in-context transformer (in the spirit of CAML).

    Each training episode embeds support and query samples; the
    transformer (:class:`~skfewshot.nn.InContextTransformer`) reads the
    support tokens (embedding plus label embedding) and the query tokens
    (embedding plus an "unknown label" embedding), each query attending to
    the support set and itself; the loss is the cross-entropy of the
    queries' outputs. Encoder and transformer are trained together (Fifty
    et al. 2024 keep a pre-trained image encoder frozen and train the
    transformer only).

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
    max_ways : int, default=20
        Label embeddings and outputs of the transformer: the most classes
        of a training or test episode (``comparator__max_ways``). A larger
        ``n_way`` is refused at fit, a classifier's larger support set at
        its fit.
    shuffle_labels : bool, default=True
        Show each training episode's classes as a random subset of the
        ``max_ways`` label slots (a fresh draw per episode, from
        ``random_state``), so that every label embedding is trained
        whatever ``n_way``. False: class ``c`` is slot ``c``, as at test
        time.
    device : str, default="cpu"
        Where to train.
    random_state : int, RandomState instance or None, default=None
        Seeds episodes, label slots and weight initialisation.
    comparator : torch.nn.Module class or instance, default=InContextTransformer
        The transformer; ``comparator__embedding_dim`` (default 64) must be
        the encoder's output width, and ``comparator__model_dim``,
        ``comparator__num_heads``, ``comparator__num_layers`` and
        ``comparator__feedforward_dim`` set the rest.
    criterion : type of torch.nn.Module, default=torch.nn.CrossEntropyLoss
        The loss on the queries' scores.
    **kwargs
        Any other :class:`ComparatorLearner` / :class:`skorch.NeuralNet`
        parameter: ``train_split``, ``valid_episodes``, ``callbacks``,
        ``optimizer``, ``verbose``, ``encoder__*``, ``comparator__*``, ...

    Attributes
    ----------
    encoder_ : torch.nn.Module
        The meta-trained encoder.
    comparator_ : skfewshot.nn.InContextTransformer
        The meta-trained transformer.
    module_ : skfewshot.nn.EpisodeModel
        Both together.
    history_ : skorch.history.History
        Per-epoch ``train_loss``, ``train_acc`` and, with validation,
        ``valid_loss`` and ``valid_acc``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot.meta import InContextLearner
    >>> from skfewshot.nn import MLP
    >>> X, y = load_digits(return_X_y=True)
    >>> learner = InContextLearner(MLP, encoder__out_features=16,
    ...                            comparator__embedding_dim=16, comparator__model_dim=16,
    ...                            comparator__feedforward_dim=32, max_ways=5, n_way=5,
    ...                            n_shot=1, max_epochs=1, episodes_per_epoch=10,
    ...                            verbose=0, random_state=0)
    >>> learner = learner.fit(X[y < 6] / 16, y[y < 6])
    >>> clf = learner.to_classifier()
    """

    classifier_class = InContextClassifier

    def __init__(
        self,
        encoder=Conv4,
        *,
        max_ways=20,
        shuffle_labels=True,
        comparator=InContextTransformer,
        criterion=nn.CrossEntropyLoss,
        **kwargs,
    ):
        super().__init__(encoder, comparator=comparator, criterion=criterion, **kwargs)
        self.max_ways = max_ways
        self.shuffle_labels = shuffle_labels


__all__ = ["InContextLearner", "MANNLearner", "SNAILLearner"]
