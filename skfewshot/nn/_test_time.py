"""Test-time augmentation: an encoder whose embedding of an image averages distorted views."""

import numpy as np
import torch
from torch import nn

from .._param_validation import Integer, validate_params


class TestTimeAugmentation(nn.Module):
    """Wrap an image encoder to embed each image as the mean over fixed distortions of it.

    In evaluation mode an image's embedding is the mean of the encoder's
    embeddings of the image and of ``n_views`` distorted copies of it. The
    distortions are drawn once, from ``random_state``, when the module is
    built, and every image gets the same ones: an image's embedding depends
    on the image alone (not on the batch it comes in, nor on its position),
    so a classifier using this encoder stays inductive and deterministic.
    In training mode the module is the encoder itself (a learner augments
    its training samples with its own ``augmentation`` parameter).

    The encoder of any classifier can be wrapped, e.g.
    ``PrototypicalClassifier(TestTimeAugmentation(learner.encoder_))``; it
    costs ``n_views + 1`` encoder passes per image.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps a batch of images (n, channels, height, width) to embeddings.
    augmentation : object or None, default=None
        The distortions, with a ``matrices(n, rng)`` method giving ``n``
        affine maps, such as :class:`~skfewshot.datasets.RandomAffine`;
        None means ``RandomAffine()``.
    n_views : int, default=8
        Number of distorted copies averaged with the image.
    random_state : int, default=0
        Seeds the draw of the distortions.

    Attributes
    ----------
    views : torch.Tensor of shape (n_views, 2, 3)
        The affine maps of the distortions (a buffer: saved with the module).

    Examples
    --------
    >>> import torch
    >>> from skfewshot.nn import Conv4, TestTimeAugmentation
    >>> encoder = TestTimeAugmentation(Conv4(1, hidden_channels=8, out_channels=8))
    >>> encoder.eval()(torch.rand(3, 1, 28, 28)).shape
    torch.Size([3, 8])
    """

    __test__ = False  # not a pytest test class, despite its name

    _parameter_constraints = {"n_views": Integer(1), "random_state": Integer(0)}

    def __init__(self, encoder, augmentation=None, n_views=8, random_state=0):
        super().__init__()
        validate_params(
            {"n_views": n_views, "random_state": random_state},
            self._parameter_constraints,
            "TestTimeAugmentation",
        )
        if augmentation is None:
            from ..datasets import RandomAffine

            augmentation = RandomAffine()
        if not callable(getattr(augmentation, "matrices", None)):
            raise TypeError(
                "TestTimeAugmentation: augmentation must have a matrices(n, rng) method "
                f"giving n affine maps, such as skfewshot.datasets.RandomAffine; got "
                f"{augmentation!r}."
            )
        self.encoder = encoder
        self.augmentation = augmentation
        self.n_views = n_views
        self.random_state = random_state
        matrices = augmentation.matrices(n_views, np.random.RandomState(random_state))
        self.register_buffer("views", torch.as_tensor(matrices, dtype=torch.float32))

    def forward(self, x):
        z = self.encoder(x)
        if self.training:
            return z
        if x.ndim != 4:
            raise ValueError(
                "TestTimeAugmentation distorts images of shape (n_samples, channels, height, "
                f"width), got samples of shape {tuple(x.shape[1:])}."
            )
        from ..datasets._affine import warp

        for theta in self.views.to(x.dtype):
            z = z + self.encoder(warp(x, theta.unsqueeze(0)))
        return z / (self.n_views + 1)
