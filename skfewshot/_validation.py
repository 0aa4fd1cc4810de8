"""Validation of the estimators' input and parameters: one home for the checks.

The parameter constraints (:mod:`skfewshot._param_validation`) are declared
by each estimator in ``_parameter_constraints`` and checked by
:func:`check_params` at one time (``fit``, a learner's initialisation); the
data checks below run there too.
"""

import math

import numpy as np
import torch
from sklearn.utils.validation import validate_data

from ._lazy import as_samples, reads_lazily
from ._param_validation import Instance, _prefix, validate_params


def available_devices():
    """The devices of this machine, as strings: ``"cpu"``, then the CUDA (or MPS) ones."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += ["cuda", *(f"cuda:{index}" for index in range(torch.cuda.device_count()))]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


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
            raise ValueError(
                f"{_prefix(owner)}{name}={value!r} is not a torch device; the devices of "
                f"this machine are {_listed(available_devices())}."
            ) from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"{_prefix(owner)}{name}={str(device)!r} was requested but CUDA is not "
                f"available on this machine; use {name}='cpu' (the devices of this machine "
                f"are {_listed(available_devices())})."
            )
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise ValueError(
                f"{_prefix(owner)}{name}={str(device)!r} was requested but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s); the devices of this machine are "
                f"{_listed(available_devices())}."
            )
        return device


def _listed(values):
    return ", ".join(repr(value) for value in values)


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


def validate_X(estimator, X, y="no_validation", *, reset, lazy=False):
    """Validate the input of an estimator with an optional ``encoder``.

    Without an encoder the samples are feature vectors (2-D, float). With
    one, any per-sample shape the encoder takes is allowed (e.g. images
    (n, c, h, w)) and the data becomes float32. The per-sample shape is
    remembered at fit (``reset=True``) and enforced afterwards.

    With an encoder, samples read on demand (:func:`skfewshot._lazy.reads_lazily`:
    a memory-map, a uint8 array, an image folder, a torch Dataset) are
    converted as they are read, uint8 scaled by 1/255 to [0, 1]. With
    ``lazy`` (and no ``y``) they are returned as
    :class:`~skfewshot._lazy.LazySamples` for the caller to read in batches
    (their shape checked here, the rest as they are read); otherwise they are
    read whole here (a support set), then validated as an array. Lazy
    samples and torch Datasets given without an encoder are read whole too.
    """
    has_encoder = estimator.encoder is not None
    no_y = isinstance(y, str) and y == "no_validation"
    if reads_lazily(X) and (has_encoder or not isinstance(X, np.ndarray)):
        samples = as_samples(X)
        if has_encoder and lazy and no_y:
            _check_samples(estimator, samples, reset=reset)
            return samples
        X = samples.take(np.arange(len(samples)))
    kwargs = dict(
        reset=reset,
        allow_nd=has_encoder,
        dtype=np.float32 if has_encoder else (np.float64, np.float32),
    )
    if no_y:
        X = validate_data(estimator, X, **kwargs)
        out = X
    else:
        X, y = validate_data(estimator, X, y, **kwargs)
        out = X, y
    if reset:
        estimator._sample_shape = X.shape[1:]
    else:
        check_sample_shape(X, estimator._sample_shape, owner=type(estimator).__name__)
    return out


def _check_samples(estimator, samples, *, reset):
    """What :func:`validate_X` records and checks of lazy samples, without reading them."""
    owner = type(estimator).__name__
    if len(samples) == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={samples.shape}) while a minimum of 1 is "
            f"required by {owner}."
        )
    if reset:
        estimator.n_features_in_ = samples.shape[1]
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        estimator._sample_shape = samples.sample_shape
    else:
        check_sample_shape(samples, estimator._sample_shape, owner=owner)


def check_sample_shape(X, expected, *, owner):
    """Refuse samples ``X`` whose per-sample shape is not ``expected`` (the one seen at fit).

    Feature vectors get scikit-learn's message ("X has 5 features, but ...
    is expecting 64 features as input"), other samples (e.g. images) their
    shapes.
    """
    shape, expected = tuple(X.shape[1:]), tuple(expected)
    if shape == expected:
        return
    if len(shape) == len(expected) == 1:
        raise ValueError(
            f"X has {shape[0]} features, but {owner} is expecting {expected[0]} features as input."
        )
    raise ValueError(
        f"X has samples of shape {shape}, but {owner} was fitted on samples of shape {expected}."
    )


def _names_no_class(label):
    """Whether one label of an object array names no class: None, NaN, inf, pandas.NA, NaT."""
    if label is None or type(label).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(label, (float, np.floating)) and not math.isfinite(label)


def check_labels(y, *, owner):
    """Refuse labels that name no class: NaN, None (or pandas.NA, NaT) and infinities.

    The one check of the labels, wherever they enter: a classifier's ``fit``,
    a meta-learner's data (``fit``, ``partial_fit``, ``score``, validation)
    and the episode sampler (:class:`~skfewshot.model_selection.EpisodicSplit`
    and every learner's episodes). Without it, a NaN label would become a
    class of its own, and None would fail inside NumPy's sorting.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        The labels.
    owner : str
        The estimator (or splitter) named in the error.

    Returns
    -------
    y : ndarray of shape (n_samples,)
        The labels, unchanged.

    Raises
    ------
    ValueError
        If a label is missing or infinite, naming the first one's index.
    """
    kind = y.dtype.kind
    if kind in "fc":
        bad = ~np.isfinite(y)
    elif kind in "mM":
        bad = np.isnat(y)
    elif kind == "O":
        bad = np.fromiter((_names_no_class(label) for label in y.ravel()), dtype=bool, count=y.size)
    else:  # integers, booleans, strings: every value is a class
        return y
    if not bad.any():
        return y
    where = np.flatnonzero(bad)
    first = int(where[0])
    raise ValueError(
        f"{_prefix(owner)}y contains {_label_text(y.ravel()[first])} at index {first} "
        f"({len(where)} of the {y.size} labels are NaN, None or infinite, which name no "
        "class); drop or impute those samples."
    )


def _label_text(label):
    if isinstance(label, (np.datetime64, np.timedelta64)):
        return "NaT"
    if isinstance(label, (float, np.floating)) and math.isnan(label):
        return "NaN"
    if isinstance(label, np.generic):
        label = label.item()
    return repr(label)


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
