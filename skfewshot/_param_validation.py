"""Declarative checks of parameters, shared by the estimators, learners, splitters and modules.

Each estimator (or torch module) declares its parameters' constraints once,
as a ``{name: constraint}`` dict, and :func:`validate_params` checks them at
one time: a classifier's ``fit``, a learner's initialisation, a module's
``__init__``. A failed check raises an error that names the owner, the
parameter, what it must be and what it was.

Booleans are refused where a number is due (``True`` is an ``int`` to
Python, never a count or a rate here); NumPy scalars are accepted (a
parameter grid built with ``np.arange`` holds them). No scikit-learn,
so that the torch modules of :mod:`skfewshot.nn` can use it.
"""

import math
from numbers import Integral, Real

import numpy as np


def _prefix(owner):
    return f"{owner}: " if owner else ""


class Integer:
    """An integer >= ``minimum``; with ``none`` (what None means), None too."""

    def __init__(self, minimum=1, *, none=None):
        self.minimum = minimum
        self.none = none

    def check(self, value, name, owner=None):
        if value is None and self.none is not None:
            return None
        if isinstance(value, bool) or not isinstance(value, Integral) or value < self.minimum:
            alternative = f" or None ({self.none})" if self.none is not None else ""
            raise ValueError(
                f"{_prefix(owner)}{name} must be an integer >= {self.minimum}"
                f"{alternative}, got {value!r}."
            )
        return int(value)


class Positive:
    """A finite real number > 0."""

    def check(self, value, name, owner=None):
        if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < math.inf:
            raise ValueError(f"{_prefix(owner)}{name} must be a positive number, got {value!r}.")
        return float(value)


class Options:
    """One of a fixed set of values (strings, or None)."""

    def __init__(self, *values):
        self.values = values

    def check(self, value, name, owner=None):
        if (value is None or isinstance(value, str)) and value in self.values:
            return value
        raise ValueError(f"{_prefix(owner)}{name} must be one of {self.values}, got {value!r}.")


class Boolean:
    """True or False (a NumPy boolean too)."""

    def check(self, value, name, owner=None):
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise ValueError(f"{_prefix(owner)}{name} must be True or False, got {value!r}.")


class Instance:
    """An instance of ``types`` (a class or a tuple of classes), or None with ``none``.

    ``label`` names the type in the error (default: the class names) and
    ``hint`` is added to it: what to pass instead.
    """

    def __init__(self, types, *, none=False, label=None, hint=""):
        self.types = types if isinstance(types, tuple) else (types,)
        self.none = none
        self.label = label or " or ".join(t.__name__ for t in self.types)
        self.hint = hint

    def check(self, value, name, owner=None):
        if (value is None and self.none) or isinstance(value, self.types):
            return value
        raise TypeError(
            f"{_prefix(owner)}{name} must be a {self.label} instance"
            f"{' or None' if self.none else ''}, got {type(value).__name__}."
            + (f" {self.hint}" if self.hint else "")
        )


def validate_params(params, constraints, owner=None):
    """Check ``params`` (a dict) against ``constraints``; return the checked values.

    Parameters absent from ``constraints`` are returned unchanged.
    """
    return {
        name: constraints[name].check(value, name, owner) if name in constraints else value
        for name, value in params.items()
    }
