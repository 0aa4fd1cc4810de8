"""The arguments a module was built with, kept on it: how it is rebuilt without pickle.

Several modules do not keep every constructor argument as an attribute
(:class:`Conv4` its widths, :class:`MLP` its layers, :class:`GradientStep`
the shapes of its rates), so their architecture cannot be read back from an
instance. :func:`record_arguments` makes a class keep them: every instance
built by that very class holds the ``(args, kwargs)`` of its construction,
and ``type(module)(*args, **kwargs)`` builds the same architecture, into
which the module's ``state_dict`` loads. :mod:`skfewshot.persistence` writes
them to its weights-only files. The arguments are stored as given (module
arguments are the module's children), travel with :func:`copy.deepcopy` and
pickles, and change nothing else.
"""

import functools

#: The instance attribute holding ``(args, kwargs)``.
ATTRIBUTE = "_skfewshot_arguments"


def record_arguments(cls):
    """Make the instances of ``cls`` keep the arguments they were constructed with.

    Only an instance whose class is ``cls`` itself records (a subclass
    records its own arguments only if it is registered too), after its
    construction succeeded. Registering a class twice changes nothing.

    Parameters
    ----------
    cls : type of torch.nn.Module
        The class, modified in place.

    Returns
    -------
    cls : type of torch.nn.Module
        The same class.
    """
    if getattr(cls.__dict__.get("__init__"), "_records_arguments", False):
        return cls
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if type(self) is cls:
            self.__dict__[ATTRIBUTE] = (args, dict(kwargs))

    __init__._records_arguments = True
    cls.__init__ = __init__
    return cls


def recorded_arguments(module):
    """The ``(args, kwargs)`` ``module`` was constructed with, or None if not recorded."""
    return module.__dict__.get(ATTRIBUTE)
