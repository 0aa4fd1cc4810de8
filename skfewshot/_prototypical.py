"""Prototypical few-shot classifier."""

import torch

from ._base import EmbeddingClassifier, FewShotClassifier
from ._param_validation import Boolean, Integer, Options, Positive
from .nn._distances import DISTANCES, class_means, pairwise_distance


class PrototypicalClassifier(EmbeddingClassifier):
    """Few-shot classifier by distance to class prototypes (Snell et al. 2017).

    ``fit`` embeds the support set with a fixed (e.g. meta-trained) encoder
    and stores each class's mean embedding, its prototype; no weight
    changes. A query is labelled by its nearest prototype, and its class
    probabilities are the softmax over negative distances.

    With ``transductive=True`` the prototypes are refined, at prediction
    time, with the unlabelled queries by soft k-means (Ren et al. 2018,
    "Meta-Learning for Semi-Supervised Few-Shot Classification"):
    each query is softly assigned to the prototypes (the softmax over its
    negative distances to them) and each prototype becomes the weighted mean
    of its support embeddings (weight 1 each) and of all the queries (weight
    their assignment to it), ``transductive_steps`` times. The queries are
    then scored against the refined prototypes. This is *transductive*: each
    prediction depends on the other queries passed in the same call to
    ``predict``, ``predict_proba`` or ``decision_function``.

    Parameters
    ----------
    encoder : torch.nn.Module or None, default=None
        Maps a batch of samples to (n, d) embeddings, e.g. the ``encoder_``
        of a :class:`~skfewshot.meta.PrototypicalLearner`. It is copied at fit
        and used in evaluation mode; its weights never change. With None
        the samples are used as they are (feature vectors or precomputed
        embeddings), and the model is the nearest-centroid classifier.
    distance : {"sqeuclidean", "euclidean", "cosine"}, default="sqeuclidean"
        Distance between an embedding and a prototype; also the one of the
        soft assignments of the transductive refinement.
    scale : float, default=1.0
        Multiplies the negative distances before the softmax (an inverse
        temperature): ``predict_proba`` is ``softmax(-scale * distance)``, and
        so are the soft assignments of the transductive refinement. It does
        not change ``predict`` without transduction. Cosine distances lie in
        [0, 2], where 1 leaves the probabilities nearly uniform: use e.g. 10.
    transductive : bool, default=False
        False scores each query against the support set's prototypes: its
        prediction depends on the support set and on itself only. True
        refines the prototypes with the queries by soft k-means before
        scoring them. Transductive: each prediction depends on the other
        queries passed in the same call (all of them together, whatever
        ``batch_size``); the fitted ``prototypes_`` are left unchanged.
    transductive_steps : int, default=1
        Soft k-means refinement steps of the prototypes when
        ``transductive=True`` (Ren et al. found one enough); validated but
        unused otherwise.
    device : str or torch.device, default="cpu"
        Where the encoder runs.
    batch_size : int, default=256
        Samples embedded at once.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The support set's class labels.
    prototypes_ : ndarray of shape (n_classes, n_embedding)
        Mean embedding of each class's support samples (never refined: the
        transductive refinement is redone on every call's queries).
    encoder_ : torch.nn.Module or None
        The evaluation-mode copy of ``encoder`` in use.
    n_features_in_ : int
        Number of features (for images, channels) seen during fit.

    See Also
    --------
    EmbeddingTransformer : Embed a data set once, then fit this classifier
        (``encoder=None``) on the embeddings of many episodes.
    sklearn.neighbors.NearestCentroid : The same rule without an encoder or
        probabilities.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot import PrototypicalClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = PrototypicalClassifier().fit(X[:50], y[:50])
    >>> clf.predict(X[50:53])
    array([2, 2, 7])
    """

    _parameter_constraints = {
        **FewShotClassifier._parameter_constraints,
        "distance": Options(*DISTANCES),
        "scale": Positive(),
        "transductive": Boolean(),
        "transductive_steps": Integer(1),
    }

    def __init__(
        self,
        encoder=None,
        *,
        distance="sqeuclidean",
        scale=1.0,
        transductive=False,
        transductive_steps=1,
        device="cpu",
        batch_size=256,
    ):
        self.encoder = encoder
        self.distance = distance
        self.scale = scale
        self.transductive = transductive
        self.transductive_steps = transductive_steps
        self.device = device
        self.batch_size = batch_size

    def _fit_embeddings(self, support, labels, n_classes):
        self.prototypes_ = class_means(support.flatten(1), labels, n_classes).cpu().numpy()
        # Support samples per class: their weight in the transductive refinement.
        self._support_counts = torch.bincount(labels, minlength=n_classes).cpu().numpy()

    def _refine(self, prototypes, query):
        """Soft k-means refinement of ``prototypes`` with all the query embeddings.

        Each step assigns every query softly to the prototypes (the softmax
        over its scaled negative distances, ``predict_proba``) and replaces each prototype by the
        weighted mean of its support embeddings (weight 1 each, through the
        support-only prototype times the class count) and of the queries
        (weight their assignment).
        """
        counts = torch.as_tensor(self._support_counts, device=query.device, dtype=query.dtype)
        support_sums = prototypes * counts.unsqueeze(1)
        refined = prototypes
        for _ in range(self.transductive_steps):
            weights = torch.softmax(self._logits(query, refined), dim=1)
            refined = (support_sums + weights.T @ query) / (counts + weights.sum(0)).unsqueeze(1)
        return refined

    def _logits(self, query, prototypes):
        return -self.scale * pairwise_distance(query, prototypes, self.distance)

    def _score_embeddings(self, query):
        """Scaled negative distances of the queries to each (refined, if transductive) prototype."""
        query = query.flatten(1)
        prototypes = torch.as_tensor(self.prototypes_, device=query.device, dtype=query.dtype)
        if self.transductive:  # all the queries of the call together, never in batches
            prototypes = self._refine(prototypes, query)
        return self._logits(query, prototypes)
