"""Matching Networks few-shot classifier."""

from ._base import ComparatorClassifier
from .nn._matching import MatchingAttention


class MatchingClassifier(ComparatorClassifier):
    """Few-shot classifier by attention over the support set (Vinyals et al. 2016).

    ``fit`` embeds the support set with a fixed (e.g. meta-trained) encoder
    and stores the embeddings; no weight changes. A query attends to every
    support sample with a softmax over cosine similarities; its class
    probabilities are the attention-weighted support labels,
    ``P(y | x, S) = sum_i a(x, x_i) onehot(y_i)``, and its label the most
    probable class. Any number of classes and of samples per class.

    Parameters
    ----------
    encoder : torch.nn.Module or None, default=None
        Maps a batch of samples to embeddings, e.g. the ``encoder_`` of a
        :class:`~skfewshot.meta.MatchingLearner`. It is copied at fit and
        used in evaluation mode; its weights never change. With None the
        samples are used as they are (feature vectors or precomputed
        embeddings).
    comparator : torch.nn.Module or None, default=None
        The attention module, e.g. the meta-trained ``comparator_`` of a
        :class:`~skfewshot.meta.MatchingLearner` (with its full context
        embedding LSTMs). Copied at fit and used in evaluation mode. None
        uses ``MatchingAttention()``: plain cosine attention on the
        embeddings, which has no weights and takes any embedding width.
    device : str or torch.device, default="cpu"
        Where the encoder and the comparator run.
    batch_size : int, default=256
        Samples embedded, and queries scored, at once.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The support set's class labels.
    encoder_ : torch.nn.Module or None
        The evaluation-mode copy of ``encoder`` in use.
    comparator_ : torch.nn.Module
        The evaluation-mode copy of the comparator in use.
    support_ : torch.Tensor
        Embeddings of the support set.
    support_labels_ : torch.Tensor
        Their class indices into ``classes_``.
    n_features_in_ : int
        Number of features (for images, channels) seen during fit.

    Notes
    -----
    ``decision_function`` returns the log-probabilities ``log P(y | x, S)``.
    A comparator with full context embeddings reads the support set sorted
    by class, in the order of ``classes_``: the result does not depend on
    how the classes' samples are interleaved in ``X``, but does on the order
    of the samples within each class.

    See Also
    --------
    EmbeddingTransformer : Embed a data set once, then fit this classifier
        (``encoder=None``) on the embeddings of many episodes.
    PrototypicalClassifier : Distance to the class means instead of
        attention to each support sample.

    Examples
    --------
    On raw pixels the paper's unscaled cosine attention is too soft to
    single out the nearest samples; a larger ``scale`` sharpens it:

    >>> from sklearn.datasets import load_digits
    >>> from skfewshot import MatchingClassifier
    >>> from skfewshot.nn import MatchingAttention
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MatchingClassifier(comparator=MatchingAttention(scale=20.0))
    >>> clf.fit(X[:100], y[:100]).predict(X[100:105])
    array([4, 0, 5, 3, 6])
    """

    def _default_comparator(self):
        return MatchingAttention()
