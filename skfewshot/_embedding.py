"""Embedding a data set with a (meta-learned) encoder, as a transformer."""

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._lazy import LazySamples
from ._param_validation import Integer
from ._torch_utils import embed, frozen_copy
from ._validation import Device, check_params, module_or_none, validate_X


class EmbeddingTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Map samples to the embeddings of a fixed encoder.

    Embedding a data set once and evaluating hundreds of episodes on the
    embeddings (with :class:`PrototypicalClassifier` and ``encoder=None``) is
    far faster than re-embedding the samples of every episode, and gives the
    same scores.

    Parameters
    ----------
    encoder : torch.nn.Module or None, default=None
        Maps a batch of samples to (n, d) embeddings; copied at fit and used
        in evaluation mode. With None, samples pass through unchanged.
    device : str or torch.device, default="cpu"
        Where the encoder runs.
    batch_size : int, default=256
        Samples embedded at once (an integer >= 1, checked at fit and
        transform). With an encoder, samples read on demand (a memory-map,
        a uint8 array, an :class:`~skfewshot.datasets.ImageFolder`, a torch
        Dataset) are also read ``batch_size`` at a time: they are never
        loaded whole, uint8 pixels are scaled by 1/255.

    Attributes
    ----------
    encoder_ : torch.nn.Module or None
        The evaluation-mode copy of ``encoder`` in use.
    n_features_in_ : int
        Number of features (for images, channels) seen during fit.
    embedding_dim_ : int
        Dimension of the (flattened) embeddings.
    embedding_shape_ : tuple of int
        Shape of one embedding as the encoder gives it, e.g. ``(64, 7, 7)``
        for feature maps (``torch.nn.Unflatten(1, embedding_shape_)``
        restores it from the transformer's output).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import cross_val_score
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot import EmbeddingTransformer, PrototypicalClassifier
    >>> from skfewshot.model_selection import EpisodicSplit
    >>> X, y = load_digits(return_X_y=True)
    >>> Z = EmbeddingTransformer().fit_transform(X)
    >>> cv = EpisodicSplit(n_way=5, n_shot=5, n_episodes=20, random_state=0)
    >>> scores = cross_val_score(PrototypicalClassifier(), Z, y, cv=cv)
    >>> bool(scores.mean() > 0.8)
    True
    """

    _parameter_constraints = {
        "encoder": module_or_none("encoder"),
        "device": Device(),
        "batch_size": Integer(1),
    }

    def __init__(self, encoder=None, *, device="cpu", batch_size=256):
        self.encoder = encoder
        self.device = device
        self.batch_size = batch_size

    def fit(self, X, y=None):
        """Check the input and prepare the encoder.

        Parameters
        ----------
        X : array-like, memory-map, ImageFolder or torch Dataset of shape (n_samples, ...)
            Samples, in the shape the encoder takes. Lazy samples are checked
            on their first sample (the others when :meth:`transform` reads
            them).
        y : None
            Ignored.

        Returns
        -------
        self : EmbeddingTransformer
            The fitted transformer.
        """
        X = validate_X(self, X, reset=True, lazy=True)
        self._device = check_params(self)["device"]
        self.encoder_ = None if self.encoder is None else frozen_copy(self.encoder, self._device)
        first = X.take(np.arange(1)) if isinstance(X, LazySamples) else X[:1]
        self.embedding_shape_ = tuple(self._embed(first, flatten=False).shape[1:])
        self.embedding_dim_ = int(np.prod(self.embedding_shape_, dtype=np.int64))
        return self

    def _embed(self, X, flatten=True):
        z = embed(
            self.encoder_,
            X,
            device=self._device,
            batch_size=self.batch_size,
            owner=type(self).__name__,
        )
        return z.reshape(len(z), -1) if flatten else z

    def transform(self, X):
        """Embed ``X``.

        Parameters
        ----------
        X : array-like, memory-map, ImageFolder or torch Dataset of shape (n_samples, ...)
            Samples. Lazy samples are read, and embedded, ``batch_size`` at
            a time.

        Returns
        -------
        Z : ndarray of shape ``(n_samples, embedding_dim_)``
            Embeddings (float32 with an encoder; the input dtype without).
        """
        check_is_fitted(self)
        check_params(self)  # e.g. a batch_size set since fit
        X = validate_X(self, X, reset=False, lazy=True)
        if isinstance(X, LazySamples):
            return self._embed_samples(X)
        return self._embed(X).cpu().numpy()

    def _embed_samples(self, samples):
        """Embeddings of lazy samples, read ``batch_size`` at a time (the batches of ``embed``)."""
        n = len(samples)
        return np.concatenate(
            [
                self._embed(samples.take(np.arange(start, min(start + self.batch_size, n))))
                .cpu()
                .numpy()
                for start in range(0, n, self.batch_size)
            ]
        )

    @property
    def _n_features_out(self):
        return self.embedding_dim_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = self.encoder is not None
        tags.transformer_tags.preserves_dtype = (
            ["float64", "float32"] if self.encoder is None else ["float32"]
        )
        return tags
