"""Matching Networks meta-learner."""

from torch import nn

from .._matching import MatchingClassifier
from ..nn import Conv4
from ..nn._matching import MatchingAttention
from ._base import ComparatorLearner


class MatchingLearner(ComparatorLearner):
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
        (default 64 with ``fce=True``, Conv4's on 28x28 images). False gives
        the plain cosine attention on the encoder's embeddings, with no
        comparator weights, for embeddings of any width.
    read_steps : int, default=5
        Steps of the attention LSTM with ``fce=True``.
    scale : float, default=10.0
        Multiplies the cosine similarities before the attention's softmax.
        10 sharpens the attention towards the nearest support samples, which
        the bounded cosine otherwise keeps soft, and trains much faster
        (chosen on validation classes: see ``benchmarks/default_choices.py``);
        1 is the paper's model.
    device : str, default="cpu"
        Where to train.
    random_state : int, RandomState instance or None, default=None
        Seeds episodes and weight initialisation.
    **kwargs
        Any other :class:`ComparatorLearner` / :class:`skorch.NeuralNet`
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
    >>> from skfewshot.meta import MatchingLearner
    >>> from skfewshot.nn import MLP
    >>> X, y = load_digits(return_X_y=True)
    >>> base, novel = y < 6, y >= 6
    >>> learner = MatchingLearner(MLP, encoder__out_features=32,
    ...                              comparator__embedding_dim=32, n_way=5, n_shot=1,
    ...                              n_query=5, max_epochs=2, episodes_per_epoch=20,
    ...                              verbose=0, random_state=0)
    >>> learner = learner.fit(X[base] / 16, y[base])
    >>> clf = learner.to_classifier().fit(X[novel][:20] / 16, y[novel][:20])
    """

    classifier_class = MatchingClassifier

    _parameter_constraints = {
        **ComparatorLearner._parameter_constraints,
        **{
            name: MatchingAttention._parameter_constraints[name]
            for name in ("fce", "read_steps", "scale")
        },
    }

    def __init__(
        self,
        encoder=Conv4,
        *,
        fce=True,
        read_steps=5,
        scale=10.0,
        comparator=MatchingAttention,
        criterion=nn.NLLLoss,
        **kwargs,
    ):
        super().__init__(encoder, comparator=comparator, criterion=criterion, **kwargs)
        self.fce = fce
        self.read_steps = read_steps
        self.scale = scale

    def _defaults(self):
        return {
            "comparator__embedding_dim": 64 if self.fce else None,
            "comparator__fce": self.fce,
            "comparator__read_steps": self.read_steps,
            "comparator__scale": self.scale,
        }
