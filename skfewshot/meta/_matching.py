"""Matching Networks meta-learner."""

from torch import nn

from .._matching import MatchingClassifier
from ..nn import Conv4
from ..nn._matching import (
    EmbeddingDimensionError,
    MatchingAttention,
    check_matching_options,
)
from ._base import EpisodicLearner


class MatchingNetLearner(EpisodicLearner):
    """Meta-train an encoder with Matching Networks (Vinyals et al. 2016).

    Each training episode embeds support and query samples; each query
    attends to the support samples with a softmax over cosine similarities,
    its class probabilities are the attention-weighted support labels, and
    the loss is their negative log-likelihood. With full context embeddings
    (``fce=True``) a bidirectional LSTM re-embeds the support set as a whole
    and an attention LSTM re-embeds each query by reading the support set,
    both meta-trained with the encoder (see
    :class:`~skfewshot.nn.MatchingAttention`).

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
    fce : bool, default=True
        Full context embeddings: the full Matching Networks model. The
        embeddings' width must then be ``comparator__embedding_dim``
        (default 64, Conv4's on 28x28 images). False gives the plain cosine
        attention on the encoder's embeddings, with no comparator weights.
    read_steps : int, default=5
        Steps of the attention LSTM with ``fce=True``.
    scale : float, default=1.0
        Multiplies the cosine similarities before the attention's softmax.
        1 is the paper's model; larger values (e.g. 10) sharpen the
        attention towards the nearest support samples, which the bounded
        cosine otherwise keeps soft, and train faster in short runs.
    device : str, default="cpu"
        Where to train.
    random_state : int, RandomState instance or None, default=None
        Seeds episodes and weight initialisation.
    **kwargs
        Any other :class:`EpisodicLearner` / :class:`skorch.NeuralNet`
        parameter: ``train_split``, ``valid_episodes``, ``callbacks``,
        ``optimizer``, ``verbose``, ``encoder__*``, ``comparator__embedding_dim``, ...

    Attributes
    ----------
    encoder_ : torch.nn.Module
        The meta-trained encoder.
    comparator_ : skfewshot.nn.MatchingAttention
        The meta-trained comparator (with its LSTMs when ``fce=True``).
    module_ : skfewshot.nn.EpisodeModel
        The meta-trained encoder and comparator.
    history_ : skorch.history.History
        Per-epoch ``train_loss``, ``train_acc`` and, with validation,
        ``valid_loss`` and ``valid_acc``.

    Notes
    -----
    With ``fce=True`` the support set's full context embeddings depend on
    its order: the LSTM reads it sorted by episode-local label, i.e. in the
    episode's class order during training and in the order of ``classes_``
    in the classifier that :meth:`to_classifier` returns.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot.meta import MatchingNetLearner
    >>> from skfewshot.nn import MLP
    >>> X, y = load_digits(return_X_y=True)
    >>> base, novel = y < 6, y >= 6
    >>> learner = MatchingNetLearner(MLP, encoder__out_features=32,
    ...                              comparator__embedding_dim=32, n_way=5, n_shot=1,
    ...                              n_query=5, max_epochs=2, episodes_per_epoch=20,
    ...                              verbose=0, random_state=0)
    >>> learner = learner.fit(X[base] / 16, y[base])
    >>> clf = learner.to_classifier().fit(X[novel][:20] / 16, y[novel][:20])
    """

    def __init__(
        self,
        encoder=Conv4,
        *,
        n_way=20,
        n_shot=5,
        n_query=5,
        episodes_per_epoch=100,
        max_epochs=30,
        lr=1e-3,
        fce=True,
        read_steps=5,
        scale=1.0,
        device="cpu",
        random_state=None,
        comparator=MatchingAttention,
        criterion=nn.NLLLoss,
        **kwargs,
    ):
        super().__init__(
            comparator,
            criterion,
            encoder,
            n_way=n_way,
            n_shot=n_shot,
            n_query=n_query,
            episodes_per_epoch=episodes_per_epoch,
            max_epochs=max_epochs,
            lr=lr,
            device=device,
            random_state=random_state,
            **kwargs,
        )
        self.fce = fce
        self.read_steps = read_steps
        self.scale = scale

    def _comparator_params(self):
        check_matching_options(
            fce=self.fce, read_steps=self.read_steps, scale=self.scale, owner=type(self).__name__
        )
        return {"fce": self.fce, "read_steps": self.read_steps, "scale": self.scale}

    classifier_class = MatchingClassifier

    def infer(self, x, **fit_params):
        """Log class probabilities of one episode's queries."""
        try:
            return super().infer(x, **fit_params)
        except EmbeddingDimensionError as exc:
            raise ValueError(
                f"{type(self).__name__}: the encoder gives embeddings of {exc.got} features, "
                f"but the full-context-embedding LSTMs were built for "
                f"comparator__embedding_dim={exc.expected}. Set "
                f"comparator__embedding_dim={exc.got}, or use an encoder with "
                f"{exc.expected} outputs (or fce=False, which takes any width)."
            ) from exc
