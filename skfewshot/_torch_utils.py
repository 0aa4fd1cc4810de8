"""Torch plumbing shared by the estimators: devices, seeding, batched embedding."""

import contextlib
import copy

import numpy as np
import torch


@contextlib.contextmanager
def torch_seed(seed):
    """Run a block with torch's CPU random generator seeded, restoring it after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def channels_last(module):
    """Put the 2-D convolution weights of ``module`` in channels-last memory format.

    On CPU, oneDNN's convolutions run this layout about 1.5x faster in
    training and 2x faster in inference (``benchmarks/training_speed.py`` and
    ``benchmarks/evaluation_speed.py`` run it);
    the arithmetic is unchanged. Uninitialised (lazy) layers are left alone.
    Returns ``module``, converted in place.
    """
    for layer in module.modules():
        if isinstance(layer, torch.nn.Conv2d) and not isinstance(
            layer.weight, torch.nn.parameter.UninitializedParameter
        ):
            layer.to(memory_format=torch.channels_last)
    return module


def frozen_copy(module, device):
    """An evaluation-mode copy of ``module`` on ``device``; the original is untouched."""
    return channels_last(copy.deepcopy(module).to(device).eval())


@contextlib.contextmanager
def encoder_errors(encoder, shape, *, owner):
    """Re-raise a RuntimeError from inside ``encoder`` as a ValueError naming the input shape."""
    try:
        yield
    except RuntimeError as exc:
        raise ValueError(
            f"{owner}: the encoder {type(encoder).__name__} failed on a batch of "
            f"shape {tuple(shape)}. Check that X has the shape the encoder "
            f"expects (e.g. (n_samples, channels, height, width) for Conv4). "
            f"torch said: {exc}"
        ) from exc


def probe(module, sample, *, owner):
    """``module(sample)`` in evaluation mode without a graph, its training mode restored.

    A dry run on one sample, to check what a module takes or size what
    follows it: nothing is updated (batch-norm running statistics included),
    and an error inside the module is re-raised naming the sample's shape.
    """
    mode = module.training
    try:
        module.eval()
        with torch.no_grad(), encoder_errors(module, sample.shape, owner=owner):
            return module(sample)
    finally:
        module.train(mode)


def as_tensor(X, device):
    """``X`` (an array or a tensor) as a tensor on ``device``, without a copy where possible."""
    if isinstance(X, torch.Tensor):
        return X.to(device)
    X = np.ascontiguousarray(X)
    return torch.from_numpy(X if X.flags.writeable else X.copy()).to(device)


def embed(encoder, X, *, device, batch_size, owner):
    """Embed ``X`` in batches with ``encoder`` (inference mode) as a tensor.

    The embeddings keep the shape the encoder gives (vectors or feature maps).
    With ``encoder=None`` the samples of ``X`` are the embeddings. Errors raised
    inside the encoder are re-raised as a ValueError naming the input shape.
    """
    if encoder is None:
        return as_tensor(X, device)
    X = as_tensor(X, "cpu")
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(X), batch_size):
            batch = X[start : start + batch_size].to(device, torch.float32)
            with encoder_errors(encoder, batch.shape, owner=owner):
                chunks.append(encoder(batch))
    return torch.cat(chunks)


def non_finite_rows(scores):
    """The rows of class scores (n, n_classes) from which no class can be predicted.

    A row with a NaN, with plus infinity for a class, or with minus infinity
    for every class: its argmax would silently be the first class and its
    probabilities NaN. (Minus infinity for some classes only is a
    probability of 0 for them, and fine.)
    """
    return scores.isnan().any(1) | scores.isposinf().any(1) | scores.isneginf().all(1)
