"""Checks of scalar parameters, shared by the estimators, learners, splitters and modules.

They raise a :class:`ValueError` that names the owner, the parameter, what
it must be and what it was. Booleans are refused where a number is due
(``True`` is an ``int`` to Python, never a count or a rate here); NumPy
scalars are accepted (a parameter grid built with ``np.arange`` holds them).
"""

import math
from numbers import Integral, Real


def _prefix(owner):
    return f"{owner}: " if owner else ""


def check_integer(value, name, *, owner=None, minimum=1, none=None):
    """Return ``value`` as an int; raise unless it is an integer >= ``minimum``.

    Parameters
    ----------
    value : object
        The parameter's value.
    name : str
        The parameter's name, for the message.
    owner : str, default=None
        Who owns the parameter (a class name), for the message.
    minimum : int, default=1
        The smallest value allowed.
    none : str, default=None
        When given, None is allowed too and this says what it means, for the
        message (e.g. ``"all remaining samples"``).

    Returns
    -------
    value : int or None
    """
    if value is None and none is not None:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        alternative = f" or None ({none})" if none is not None else ""
        raise ValueError(
            f"{_prefix(owner)}{name} must be an integer >= {minimum}{alternative}, got {value!r}."
        )
    return int(value)


def check_positive(value, name, *, owner=None):
    """Return ``value`` as a float; raise unless it is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < math.inf:
        raise ValueError(f"{_prefix(owner)}{name} must be a positive number, got {value!r}.")
    return float(value)
