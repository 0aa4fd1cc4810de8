"""Validation of the estimators' input and parameters: one home for the checks.

The parameter constraints (:mod:`skfewshot._param_validation`) are declared
by each estimator in ``_parameter_constraints`` and checked by
:func:`check_params` at one time (``fit``, a learner's initialisation); the
data checks below run there too.
"""

import numpy as np
import torch
from sklearn.utils.validation import validate_data

from ._param_validation import Instance, validate_params


class Device:
    """A usable :class:`torch.device` (CUDA only where it is available); None with ``none``."""

    def __init__(self, *, none=False):
        self.none = none

    def check(self, value, name, owner=None):
        if value is None and self.none:
            return None
        try:
            device = torch.device(value)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"{owner}: invalid {name} {value!r} ({exc}).") from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"{owner}: {name}={str(device)!r} was requested but CUDA is not available "
                "on this machine; use device='cpu'."
            )
        return device


class Component:
    """A torch module given as a class (built with ``<name>__*`` parameters) or an instance."""

    def check(self, value, name, owner=None):
        if isinstance(value, torch.nn.Module) or (
            isinstance(value, type) and issubclass(value, torch.nn.Module)
        ):
            return value
        if callable(value):  # a factory function
            return value
        raise TypeError(
            f"{owner}: {name} must be a torch.nn.Module class or instance, got {value!r}."
        )


def module_or_none(name):
    """The constraint of a classifier's ``encoder`` / ``comparator`` / ``rule`` parameter."""
    return Instance(
        torch.nn.Module,
        none=True,
        label="torch.nn.Module",
        hint=f"Pass an instance such as Conv4(), or a meta-learned one (learner.{name}_).",
    )


def check_params(estimator):
    """Check the parameters of ``estimator`` against its ``_parameter_constraints``.

    Returns the checked values by name (e.g. ``"device"`` as a :class:`torch.device`).
    """
    constraints = estimator._parameter_constraints
    params = {name: getattr(estimator, name) for name in constraints}
    return validate_params(params, constraints, owner=type(estimator).__name__)


def validate_X(estimator, X, y="no_validation", *, reset):
    """Validate the input of an estimator with an optional ``encoder``.

    Without an encoder the samples are feature vectors (2-D, float). With
    one, any per-sample shape the encoder takes is allowed (e.g. images
    (n, c, h, w)) and the data becomes float32. The per-sample shape is
    remembered at fit (``reset=True``) and enforced afterwards.
    """
    has_encoder = estimator.encoder is not None
    kwargs = dict(
        reset=reset,
        allow_nd=has_encoder,
        dtype=np.float32 if has_encoder else (np.float64, np.float32),
    )
    if isinstance(y, str) and y == "no_validation":
        X = validate_data(estimator, X, **kwargs)
        out = X
    else:
        X, y = validate_data(estimator, X, y, **kwargs)
        out = X, y
    sample_shape = X.shape[1:]
    if reset:
        estimator._sample_shape = sample_shape
    elif sample_shape != estimator._sample_shape:
        raise ValueError(
            f"X has samples of shape {sample_shape}, but {type(estimator).__name__} "
            f"was fitted on samples of shape {estimator._sample_shape}."
        )
    return out


def check_embedding_dim(comparator, embeddings, *, owner, parameter, source="the encoder gives"):
    """Check that ``comparator`` takes ``embeddings`` of their width, with a clear error.

    A comparator whose weights are sized to the embeddings declares
    ``embedding_dim`` (None or absent: any width) and, when it reads the
    channels of feature maps rather than their flattened width,
    ``embedding_axis = "channels"``. ``parameter`` names what the user sets
    to fix a mismatch (e.g. ``"comparator__embedding_dim"`` on a learner).
    """
    expected = getattr(comparator, "embedding_dim", None)
    if expected is None:
        return
    shape = tuple(embeddings.shape[1:])
    if getattr(comparator, "embedding_axis", "flat") == "channels":
        got, what = shape[0], "channels"
    else:
        got, what = int(np.prod(shape, dtype=np.int64)), "features"
    if got != expected:
        raise ValueError(
            f"{owner}: the comparator {type(comparator).__name__} was built for embeddings "
            f"of {expected} {what} (embedding_dim={expected}), but {source} embeddings of "
            f"shape {shape}, i.e. {got} {what}. Set {parameter}={got}, or use an encoder "
            f"with {expected} {what}."
        )
