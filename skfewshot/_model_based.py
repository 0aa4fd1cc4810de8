"""Model-based few-shot classifiers: a network reads the labelled support set and the query.

MANN (Santoro et al. 2016), SNAIL (Mishra et al. 2018) and an in-context
transformer (in the spirit of CAML, Fifty et al. 2024). ``fit`` stores the
support embeddings and labels; ``predict`` runs the meta-trained network
over the support set and each query, and its output is the query's class
scores: no weight changes, no gradient step.
"""

from ._base import ComparatorClassifier


class _ModelBasedClassifier(ComparatorClassifier):
    """A comparator classifier whose comparator reads labels as inputs of a fixed width.

    ``fit`` refuses a support set of more classes than the comparator's
    ``max_ways``, and there is no default comparator: an untrained network
    scores at random.
    """

    #: The comparator's class and the learner that meta-trains it, for the messages.
    _comparator_name = None
    _learner_name = None

    def _default_comparator(self):
        raise TypeError(
            f"{type(self).__name__} needs a meta-trained {self._comparator_name}: pass "
            f"comparator=learner.comparator_ of a fitted {self._learner_name}, or build the "
            f"classifier with learner.to_classifier(). An untrained {self._comparator_name} "
            "would score at random."
        )

    def _fit_support(self, X, labels, n_classes):
        max_ways = getattr(self.comparator, "max_ways", None)
        if max_ways is not None and n_classes > max_ways:
            raise ValueError(
                f"{type(self).__name__}: the support set has {n_classes} classes, but the "
                f"comparator {type(self.comparator).__name__} reads labels as one-hot vectors "
                f"of max_ways={max_ways}, so it classifies at most {max_ways} classes. "
                f"Meta-train one with max_ways={n_classes} or more (the learner's max_ways), "
                "or fit fewer classes."
            )
        super()._fit_support(X, labels, n_classes)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # What a model-based classifier predicts is what its network learned in
        # meta-training: scikit-learn's generic test problems say nothing of it.
        tags.classifier_tags.poor_score = True
        return tags


class MANNClassifier(_ModelBasedClassifier):
    """Few-shot classifier by a memory-augmented neural network (Santoro et al. 2016).

    ``fit`` embeds the support set with a fixed (e.g. meta-trained) encoder
    and stores the embeddings and labels; no weight changes. A query is
    labelled by the meta-trained :class:`~skfewshot.nn.MANN`: its LSTM
    controller reads the support set, one (embedding, one-hot label) pair
    per step, writing to and reading from its external memory, then the
    query with no label; the output at the query's step is its class
    scores (``predict_proba`` is their softmax). Each query continues from
    the state after the support set on its own: its prediction does not
    depend on the other queries. At most ``max_ways`` classes (the
    network's label width; a ValueError beyond), any number of shots.

    Parameters
    ----------
    encoder : torch.nn.Module or None, default=None
        Maps a batch of samples to embeddings, e.g. the ``encoder_`` of a
        :class:`~skfewshot.meta.MANNLearner`. It is copied at fit and used
        in evaluation mode; its weights never change. With None the samples
        are the embeddings (e.g. from :class:`~skfewshot.EmbeddingTransformer`).
    comparator : torch.nn.Module, default=None
        The meta-trained network, e.g. the ``comparator_`` of a
        :class:`~skfewshot.meta.MANNLearner` (which ``learner.to_classifier()``
        passes). Required: an untrained network scores at random, so ``fit``
        raises a TypeError without one. It is copied at fit and used in
        evaluation mode; its ``embedding_dim`` must be the embeddings' width.
    device : str or torch.device, default="cpu"
        Where the encoder and the network run.
    batch_size : int, default=256
        Samples embedded at once, and queries scored at once (the network
        reads the support set once per batch of queries).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The support set's class labels.
    encoder_ : torch.nn.Module or None
        The evaluation-mode copy of ``encoder`` in use.
    comparator_ : torch.nn.Module
        The evaluation-mode copy of ``comparator`` in use.
    support_ : torch.Tensor
        Embeddings of the support set.
    support_labels_ : torch.Tensor
        Their class indices into ``classes_``: class ``classes_[c]`` is the
        network's label slot ``c``.
    n_features_in_ : int
        Number of features (for images, channels) seen during fit.

    Notes
    -----
    The network reads the support set in a canonical order: round-robin
    over the classes in the order of ``classes_``, each class's samples
    ordered by a fixed projection of their embeddings (see
    :class:`~skfewshot.nn.MANN`). The predictions therefore do not depend on
    the order of the samples in ``X``; read in the order given, a sequence
    model's scores would change with it. The classifier reports
    scikit-learn's ``poor_score`` tag: what it predicts depends entirely on
    the meta-training of its network.

    See Also
    --------
    skfewshot.meta.MANNLearner : Meta-trains the encoder and the network;
        its ``to_classifier()`` returns this classifier.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot.meta import MANNLearner
    >>> from skfewshot.nn import MLP
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> learner = MANNLearner(MLP, encoder__out_features=16, comparator__embedding_dim=16,
    ...                       comparator__hidden_size=32, comparator__memory_slots=16,
    ...                       comparator__memory_size=8, max_ways=5, n_way=5, n_shot=1,
    ...                       max_epochs=1, episodes_per_epoch=10, verbose=0,
    ...                       random_state=0).fit(X[y < 6], y[y < 6])
    >>> clf = learner.to_classifier().fit(X[y >= 6][:20], y[y >= 6][:20])
    >>> clf.predict_proba(X[y >= 6][20:22]).shape
    (2, 4)
    """

    _comparator_name = "MANN"
    _learner_name = "MANNLearner"


class SNAILClassifier(_ModelBasedClassifier):
    """Few-shot classifier by a simple neural attentive learner (Mishra et al. 2018).

    ``fit`` embeds the support set with a fixed (e.g. meta-trained) encoder
    and stores the embeddings and labels; no weight changes. A query is
    labelled by the meta-trained :class:`~skfewshot.nn.SNAIL`, which reads
    the sequence of the support set's (embedding, one-hot label) pairs
    followed by the query with a zero label through causal temporal
    convolutions and causal attention; the output at the query's position
    is its class scores (``predict_proba`` is their softmax). Each query is
    its own sequence (the support set, then that query): its prediction
    does not depend on the other queries. At most ``max_ways`` classes
    (the network's label width; a ValueError beyond), any number of shots.

    Parameters
    ----------
    encoder : torch.nn.Module or None, default=None
        Maps a batch of samples to embeddings, e.g. the ``encoder_`` of a
        :class:`~skfewshot.meta.SNAILLearner`. It is copied at fit and used
        in evaluation mode; its weights never change. With None the samples
        are the embeddings (e.g. from :class:`~skfewshot.EmbeddingTransformer`).
    comparator : torch.nn.Module, default=None
        The meta-trained network, e.g. the ``comparator_`` of a
        :class:`~skfewshot.meta.SNAILLearner` (which
        ``learner.to_classifier()`` passes). Required: an untrained network
        scores at random, so ``fit`` raises a TypeError without one. It is
        copied at fit and used in evaluation mode; its ``embedding_dim``
        must be the embeddings' width.
    device : str or torch.device, default="cpu"
        Where the encoder and the network run.
    batch_size : int, default=256
        Samples embedded at once, and queries scored at once (the network
        reads the support set once per batch of queries).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The support set's class labels.
    encoder_ : torch.nn.Module or None
        The evaluation-mode copy of ``encoder`` in use.
    comparator_ : torch.nn.Module
        The evaluation-mode copy of ``comparator`` in use.
    support_ : torch.Tensor
        Embeddings of the support set.
    support_labels_ : torch.Tensor
        Their class indices into ``classes_``: class ``classes_[c]`` is the
        network's label slot ``c``.
    n_features_in_ : int
        Number of features (for images, channels) seen during fit.

    Notes
    -----
    The network reads the support set in a canonical order: round-robin
    over the classes in the order of ``classes_``, each class's samples
    ordered by a fixed projection of their embeddings (see
    :class:`~skfewshot.nn.SNAIL`). The predictions therefore do not depend
    on the order of the samples in ``X``; read in the order given, a
    sequence model's scores would change with it. The classifier reports
    scikit-learn's ``poor_score`` tag: what it predicts depends entirely on
    the meta-training of its network.

    See Also
    --------
    skfewshot.meta.SNAILLearner : Meta-trains the encoder and the network;
        its ``to_classifier()`` returns this classifier.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot.meta import SNAILLearner
    >>> from skfewshot.nn import MLP
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> learner = SNAILLearner(MLP, encoder__out_features=16, comparator__embedding_dim=16,
    ...                        comparator__attention=((16, 8), (16, 8)),
    ...                        comparator__filters=8, comparator__dense_blocks=3,
    ...                        max_ways=5, n_way=5, n_shot=1, max_epochs=1,
    ...                        episodes_per_epoch=10, verbose=0,
    ...                        random_state=0).fit(X[y < 6], y[y < 6])
    >>> clf = learner.to_classifier().fit(X[y >= 6][:20], y[y >= 6][:20])
    >>> clf.predict_proba(X[y >= 6][20:22]).shape
    (2, 4)
    """

    _comparator_name = "SNAIL"
    _learner_name = "SNAILLearner"


class InContextClassifier(_ModelBasedClassifier):
    """Few-shot classifier by an in-context transformer (in the spirit of CAML).

    ``fit`` embeds the support set with a fixed (e.g. meta-trained) encoder
    and stores the embeddings and labels; no weight changes. A query is
    labelled by the meta-trained
    :class:`~skfewshot.nn.InContextTransformer`: a transformer encoder over
    the support tokens (embedding plus label embedding) and the query's
    token (embedding plus an "unknown label" embedding), whose output at
    the query's token is its class scores (``predict_proba`` is their
    softmax). The query attends to the support set and itself, never to
    the other queries: its prediction does not depend on them. With no
    positional encoding, the order of the support samples does not matter.
    At most ``max_ways`` classes (the network's label embeddings; a
    ValueError beyond), any number of shots.

    Parameters
    ----------
    encoder : torch.nn.Module or None, default=None
        Maps a batch of samples to embeddings, e.g. the ``encoder_`` of an
        :class:`~skfewshot.meta.InContextLearner`. It is copied at fit and
        used in evaluation mode; its weights never change. With None the
        samples are the embeddings (e.g. from
        :class:`~skfewshot.EmbeddingTransformer`).
    comparator : torch.nn.Module, default=None
        The meta-trained transformer, e.g. the ``comparator_`` of an
        :class:`~skfewshot.meta.InContextLearner` (which
        ``learner.to_classifier()`` passes). Required: an untrained network
        scores at random, so ``fit`` raises a TypeError without one. It is
        copied at fit and used in evaluation mode; its ``embedding_dim``
        must be the embeddings' width.
    device : str or torch.device, default="cpu"
        Where the encoder and the transformer run.
    batch_size : int, default=256
        Samples embedded at once, and queries scored at once (the support
        tokens are computed once per batch of queries).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The support set's class labels.
    encoder_ : torch.nn.Module or None
        The evaluation-mode copy of ``encoder`` in use.
    comparator_ : torch.nn.Module
        The evaluation-mode copy of ``comparator`` in use.
    support_ : torch.Tensor
        Embeddings of the support set.
    support_labels_ : torch.Tensor
        Their class indices into ``classes_``: class ``classes_[c]`` is the
        transformer's label slot ``c``.
    n_features_in_ : int
        Number of features (for images, channels) seen during fit.

    Notes
    -----
    The classifier reports scikit-learn's ``poor_score`` tag: what it
    predicts depends entirely on the meta-training of its network.

    See Also
    --------
    skfewshot.meta.InContextLearner : Meta-trains the encoder and the
        transformer; its ``to_classifier()`` returns this classifier.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot.meta import InContextLearner
    >>> from skfewshot.nn import MLP
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> learner = InContextLearner(MLP, encoder__out_features=16,
    ...                            comparator__embedding_dim=16, comparator__model_dim=16,
    ...                            comparator__feedforward_dim=32, max_ways=5, n_way=5,
    ...                            n_shot=1, max_epochs=1, episodes_per_epoch=10,
    ...                            verbose=0, random_state=0).fit(X[y < 6], y[y < 6])
    >>> clf = learner.to_classifier().fit(X[y >= 6][:20], y[y >= 6][:20])
    >>> clf.predict_proba(X[y >= 6][20:22]).shape
    (2, 4)
    """

    _comparator_name = "InContextTransformer"
    _learner_name = "InContextLearner"


__all__ = ["InContextClassifier", "MANNClassifier", "SNAILClassifier"]
