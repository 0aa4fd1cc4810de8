"""Siamese few-shot classifier: kernel nearest neighbours under a learned kernel."""

import torch

from ._base import ComparatorClassifier
from ._param_validation import Instance, Options
from .nn._siamese import SiameseKernel, aggregate_pair_logits


class SiameseClassifier(ComparatorClassifier):
    """Few-shot classifier with a Siamese network's kernel (Koch et al. 2015).

    A Siamese network learns a kernel ``k(x, x') = sigmoid(w . |f(x) - f(x')|
    + b)``, the probability that two samples share a class. ``fit`` stores
    the support set's embeddings (no weight changes); a query ``x`` gets the
    class probabilities of a kernel nearest-neighbour model::

        P(y | x, S)  proportional to  sum_{(x_i, y_i) in S} k(x, x_i) onehot(y_i)

    (``aggregation="sum"``), or to ``max_{i: y_i = y} k(x, x_i)`` (``"max"``,
    Koch's rule: the most similar support sample decides). Both rules agree
    with one shot per class. Any number of classes and shots works, whatever
    the episodes of meta-training were.

    Parameters
    ----------
    encoder : torch.nn.Module or None, default=None
        The shared branch ``f``, e.g. the ``encoder_`` of a
        :class:`~skfewshot.meta.SiameseLearner`. It is copied at fit and used
        in evaluation mode; its weights never change. With None the samples
        are used as they are (feature vectors or precomputed embeddings).
    comparator : skfewshot.nn.SiameseKernel or None, default=None
        The kernel head (``w``, ``b``), e.g. the learner's ``comparator_``. It
        is copied at fit and its pair logits are aggregated by this
        classifier's ``aggregation`` (the kernel's own is not used). Its ``embedding_dim``
        must be the embeddings' width. With None, a fixed kernel is built at
        fit for the embeddings' width: ``w = -1`` on every dimension and
        ``b = 0``, i.e. ``k(x, x') = sigmoid(-||f(x) - f(x')||_1)``, an L1
        (Laplacian-like) kernel that needs no training.
    aggregation : {"sum", "max"}, default="sum"
        How a class's support samples make its probability: the sum of
        their kernel values (the formula above) or the largest one.
    device : str or torch.device, default="cpu"
        Where the encoder and the kernel run.
    batch_size : int, default=256
        Samples embedded, and queries scored, at once. Scoring a batch holds
        ``batch_size x n_support x embedding_dim`` differences in memory.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The support set's class labels.
    encoder_ : torch.nn.Module or None
        The evaluation-mode copy of ``encoder`` in use.
    comparator_ : skfewshot.nn.SiameseKernel
        The evaluation-mode copy of the kernel in use, in the support
        embeddings' dtype.
    embedding_dim_ : int
        Width of the (flattened) support embeddings.
    support_ : torch.Tensor
        Embeddings of the support set.
    support_labels_ : torch.Tensor
        Their class indices into ``classes_``.
    n_features_in_ : int
        Number of features (for images, channels) seen during fit.

    Notes
    -----
    ``decision_function`` returns the logarithm of the aggregated kernel
    values, ``log sum_i k(x, x_i)`` per class (``"sum"``) or ``log
    max_i k(x, x_i)`` (``"max"``), computed without underflow;
    ``predict_proba`` is their softmax, i.e. the aggregated kernel values
    normalised over the classes.

    See Also
    --------
    skfewshot.meta.SiameseLearner : Meta-trains ``encoder`` and ``comparator``.
    PrototypicalClassifier : Distance to class means instead of a learned
        pairwise kernel.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot import SiameseClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = SiameseClassifier().fit(X[:50] / 16, y[:50])
    >>> clf.predict(X[50:53] / 16)
    array([2, 2, 7])
    """

    _parameter_constraints = {
        **ComparatorClassifier._parameter_constraints,
        "comparator": Instance(
            SiameseKernel,
            none=True,
            hint="Pass a meta-trained one (SiameseLearner.comparator_) or None for the "
            "fixed L1 kernel.",
        ),
        "aggregation": Options("sum", "max"),
    }

    def __init__(
        self, encoder=None, comparator=None, *, aggregation="sum", device="cpu", batch_size=256
    ):
        self.encoder = encoder
        self.comparator = comparator
        self.aggregation = aggregation
        self.device = device
        self.batch_size = batch_size

    def _default_comparator(self):
        """The fixed kernel ``sigmoid(-||z - z'||_1)`` for ``embedding_dim_``-wide embeddings."""
        kernel = SiameseKernel(self.embedding_dim_)
        with torch.no_grad():
            kernel.linear.weight.fill_(-1.0)
            kernel.linear.bias.zero_()
        return kernel

    def _fit_embeddings(self, support, labels, n_classes):
        self.embedding_dim_ = support[:1].flatten(1).shape[1]
        super()._fit_embeddings(support, labels, n_classes)

    def _compare(self, support, support_labels, query):
        """Log of the aggregated kernel values of each class, (n_query, n_classes)."""
        logits = self.comparator_.pair_logits(support, query)
        if self.aggregation == "sum":  # in log space, so that the normalisation cannot underflow
            return aggregate_pair_logits(logits, support_labels, "log_sum")
        # max pair logit -> log of the max kernel value
        return torch.nn.functional.logsigmoid(aggregate_pair_logits(logits, support_labels, "max"))
