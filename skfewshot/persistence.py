"""Weights-only saving and loading of estimators: files that cannot run code when loaded.

:func:`save` writes a few-shot classifier, an embedding transformer or a
meta-learner, fitted or not, to a folder of two files; :func:`load` builds
it again. Unlike a pickle (``joblib.dump``), whose loading can run any code
the file names, a weights-only file holds data only, and loading it builds
nothing but a fixed list of classes:

``estimator.json``
    The estimator's class, its scikit-learn parameters
    (``get_params(deep=False)``) and what fitting stored, as JSON. A class
    is written by its public name (``"skfewshot.nn.Conv4"``,
    ``"torch.nn.CrossEntropyLoss"``) and read back through an allow-list,
    never by importing a module the file names: the estimators of skfewshot
    and :mod:`skfewshot.meta`, the modules of :mod:`skfewshot.nn`, a few
    helpers (:class:`~skfewshot.datasets.RandomAffine`,
    :class:`~skfewshot.meta.ValidClassSplit`,
    :class:`~skfewshot.callbacks.TimeBudget` and the callbacks of skorch
    that touch no file: a checkpoint callback could read a pickle at ``fit``),
    the modules of :mod:`torch.nn`, the optimizers and learning-rate
    schedulers of :mod:`torch.optim`, skorch's ``Dataset`` and ``ValidSplit``
    and torch's ``DataLoader``. A torch module (a parameter such as
    ``encoder``, or a fitted copy such as ``encoder_``) is written as its
    class, the arguments it was built with (the library's modules keep
    them) and the names of its tensors; a few modules of :mod:`torch.nn`
    whose arguments are their attributes are written too (``Identity``,
    ``Flatten``, ``Unflatten``, ``Sequential``, ``Linear``, ``ReLU``,
    ``Tanh``, ``Sigmoid``, ``Dropout``). Other objects (such as
    :class:`~skfewshot.datasets.RandomAffine` or a skorch callback) are
    written as their class and their parameters; NumPy arrays, random
    states, devices and dtypes as data. A meta-learner's fitted state is the
    weights of its ``module_`` and ``criterion_``, the state of its
    ``optimizer_``, its history and its fitted attributes (the episodes'
    random generator among them), so ``partial_fit`` carries on as it would
    have.
``tensors.pt``
    Every tensor, in a flat ``{name: tensor}`` dictionary written by
    :func:`torch.save` and read by ``torch.load(weights_only=True)``, which
    builds tensors and plain containers only (and refuses any other Python
    object); its SHA-256 digest is in the JSON file.

A value that cannot be written this way (a torch module of another class,
for example one defined in your own code, a function, a lambda) makes
:func:`save` raise an :class:`UnsavableError` that names it; such an
estimator can still be saved with ``joblib.dump``, whose files must then
come from a trusted source only. A constructor argument that cannot be
written but is the constructor's own default object (e.g. the ``sink=print``
of :class:`~skfewshot.callbacks.TimeBudget`) is left out and set again by
the constructor at load.

Not saved: the state of a meta-learner's callbacks (they are built afresh,
from their parameters, as skorch's ``initialize`` builds them) and which
device a module was moved to beyond its tensors' (the estimator's
``device`` parameter is saved). Tensors are loaded onto the devices they
were saved from.
"""

import functools
import hashlib
import inspect
import io
import json
import os
import re

import numpy as np
import sklearn
import skorch
import torch
from sklearn.base import BaseEstimator
from skorch import NeuralNet
from skorch.history import History
from torch import nn

from ._files import write_atomically
from ._torch_utils import torch_seed
from .nn._arguments import recorded_arguments

__all__ = ["UnsavableError", "load", "save"]

#: The ``format`` field of every weights-only file, and the version this module writes.
FORMAT = "skfewshot-weights-only"
FORMAT_VERSION = 1

JSON_FILE = "estimator.json"
TENSORS_FILE = "tensors.pt"

#: torch.load(weights_only=True) runs no code from torch 2.6 on (CVE-2025-32434).
_SAFE_TORCH = (2, 6)

#: The callbacks that read or write no file (a checkpoint read back at fit could hold a
#: pickle) and take no logger object.
_FEWSHOT_CALLBACKS = ("TimeBudget", "DistributedMetaBatch")
_SKORCH_CALLBACKS = (
    "BatchScoring",
    "EarlyStopping",
    "EpochScoring",
    "EpochTimer",
    "Freezer",
    "GradientNormClipping",
    "LRScheduler",
    "PassthroughScoring",
    "PrintLog",
    "ProgressBar",
    "Unfreezer",
    "WarmRestartLR",
)

#: A meta-learner's attributes that skorch's ``initialize`` builds again (the weights of its
#: modules and the state of its optimizers are saved apart).
_REBUILT = {
    "callbacks_",
    "cuda_dependent_attributes_",
    "history_",
    "init_context_",
    "initialized_",
    "prefixes_",
    "virtual_params_",
}

#: The NumPy dtypes whose arrays are stored as tensors (the others as JSON lists).
_TENSOR_DTYPES = {
    np.dtype(t)
    for t in (
        np.bool_,
        np.uint8,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.float16,
        np.float32,
        np.float64,
        np.complex64,
        np.complex128,
    )
}

#: torch.nn modules whose constructor arguments are their attributes of the same names.
_TORCH_MODULES = {
    nn.Identity: (),
    nn.Flatten: ("start_dim", "end_dim"),
    nn.Unflatten: ("dim", "unflattened_size"),
    nn.ReLU: ("inplace",),
    nn.Tanh: (),
    nn.Sigmoid: (),
    nn.Dropout: ("p", "inplace"),
    nn.Linear: ("in_features", "out_features"),  # and bias, a tensor or None
    nn.Sequential: None,  # its children, in order
}


class UnsavableError(TypeError):
    """An estimator holds a value that a weights-only file cannot describe.

    Raised by :func:`save`, naming the value (e.g. ``PrototypicalClassifier.encoder``)
    and what it is. Such an estimator can be saved with ``joblib.dump``; a
    pickle must be loaded only from a trusted source.
    """


# -- the allow-list ---------------------------------------------------------------------------


class _Registry:
    """The classes a weights-only file may name, by public name, and their roles."""

    def __init__(self):
        import skorch.callbacks
        import skorch.dataset
        import torch.optim.lr_scheduler
        import torch.utils.data

        import skfewshot

        from . import callbacks, datasets, meta
        from . import nn as fewshot_nn

        self.classes = {}  # public name -> class
        self.estimators, self.modules, self.objects = set(), set(), set()

        def add(prefix, namespace, names, role=None, where=None):
            for name in names:
                obj = getattr(namespace, name, None)
                if isinstance(obj, type) and (where is None or where(obj)):
                    self.classes.setdefault(f"{prefix}.{name}", obj)
                    if role is not None:
                        role.add(obj)

        def estimator(cls):
            return issubclass(cls, (BaseEstimator, NeuralNet))

        def module(cls):
            return issubclass(cls, nn.Module)

        def public(namespace):
            return [name for name in vars(namespace) if not name.startswith("_")]

        add("skfewshot", skfewshot, skfewshot.__all__, self.estimators, estimator)
        add("skfewshot.meta", meta, meta.__all__, self.estimators, estimator)
        add("skfewshot.meta", meta, ["ValidClassSplit"], self.objects)
        add("skfewshot.nn", fewshot_nn, fewshot_nn.__all__, self.modules, module)
        add("skfewshot.datasets", datasets, ["RandomAffine"], self.objects)
        add("skfewshot.callbacks", callbacks, _FEWSHOT_CALLBACKS, self.objects)
        add("skorch.callbacks", skorch.callbacks, _SKORCH_CALLBACKS, self.objects)
        add("skorch.dataset", skorch.dataset, ["ValidSplit"], self.objects)
        add("skorch.dataset", skorch.dataset, ["Dataset"])
        add("torch.utils.data", torch.utils.data, ["DataLoader"])
        add("torch.nn", nn, public(nn), where=module)
        self.modules |= set(_TORCH_MODULES)
        add(
            "torch.optim",
            torch.optim,
            public(torch.optim),
            where=lambda cls: issubclass(cls, torch.optim.Optimizer),
        )
        add(
            "torch.optim.lr_scheduler",
            torch.optim.lr_scheduler,
            public(torch.optim.lr_scheduler),
            where=lambda cls: cls.__module__ == "torch.optim.lr_scheduler",
        )
        self.names = {}  # class -> its first public name
        for name, cls in self.classes.items():
            self.names.setdefault(cls, name)


@functools.cache
def _registry():
    return _Registry()


def _qualified(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _described(value):
    """What ``value`` is, for an error message."""
    if isinstance(value, type):
        return f"the class {_qualified(value)}"
    if isinstance(value, nn.Module):
        return f"a torch module of class {_qualified(type(value))}"
    if inspect.isfunction(value) or inspect.isbuiltin(value) or inspect.ismethod(value):
        name = getattr(value, "__qualname__", repr(value))
        return f"the function {getattr(value, '__module__', None)}.{name}"
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"a {_qualified(type(value))} object ({text})"


def _unsavable(where, value, reason=""):
    return UnsavableError(
        f"{where} is {_described(value)}, which a weights-only file cannot describe"
        f"{reason}. A weights-only file holds tensors, plain values (numbers, strings, "
        "lists, dicts, NumPy arrays) and the classes of skfewshot (and a few of torch "
        "and skorch) by name, with the arguments they are built with. Save this "
        "estimator with joblib.dump instead, and load that file with joblib.load only "
        "if you trust its source: loading a pickle can run code."
    )


def _torch_version():
    return tuple(int(part) for part in re.findall(r"\d+", str(torch.__version__))[:2])


def _module_arguments(module):
    """The ``(args, kwargs)`` that build ``module``'s architecture, or None if unknown."""
    kind = type(module)
    if kind in _TORCH_MODULES:
        if kind is nn.Sequential:
            names = [name for name, _ in module.named_children()]
            if names != [str(i) for i in range(len(module))]:
                return None
            return tuple(module), {}
        kwargs = {name: getattr(module, name) for name in _TORCH_MODULES[kind]}
        if kind is nn.Linear:
            kwargs["bias"] = module.bias is not None
        return (), kwargs
    return recorded_arguments(module)


def _signature_defaults(cls):
    """The default value of each constructor parameter of ``cls`` that has one."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def _object_params(obj, where):
    """The parameters an object of an allow-listed helper class is built with."""
    if callable(getattr(obj, "get_params", None)):
        params = obj.get_params(deep=False)
    else:
        params = {}
        for parameter in inspect.signature(type(obj)).parameters.values():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            if not hasattr(obj, parameter.name):
                raise _unsavable(where, obj, f" (it does not keep its argument {parameter.name!r})")
            params[parameter.name] = getattr(obj, parameter.name)
    return {name: value for name, value in params.items() if not name.startswith("_")}


# -- writing ----------------------------------------------------------------------------------


class _Writer:
    """Turns an estimator into JSON-able data and a flat dictionary of tensors."""

    def __init__(self):
        self.registry = _registry()
        self.tensors = {}
        self._modules = {}  # id(module) -> its number in the file
        self._kept = []  # the numbered modules, alive while their ids are in use

    def tensor(self, tensor):
        key = f"t{len(self.tensors)}"
        self.tensors[key] = tensor.detach()
        return key

    def weights(self, module):
        """The names of ``module``'s tensors in the file; uninitialised (lazy) ones are left out."""
        state = module.state_dict()
        lazy = [name for name, t in state.items() if nn.parameter.is_lazy(t)]
        return {
            "weights": {name: self.tensor(t) for name, t in state.items() if name not in lazy},
            "lazy": lazy,
        }

    def params(self, cls, params, where):
        """Constructor parameters; one that cannot be written but is the default is left out."""
        defaults = _signature_defaults(cls)
        out = {}
        for name, value in params.items():
            try:
                out[name] = self.value(value, f"{where}.{name}")
            except UnsavableError:
                if name in defaults and defaults[name] is value:
                    continue  # the constructor builds it again
                raise
        return out

    def value(self, value, where, weights=True):
        """A JSON value: plain values as they are, the others as ``{"__tag__": ...}``.

        ``weights=False`` for the modules among another module's arguments,
        whose tensors are in that module's.
        """
        if isinstance(value, np.generic):  # first: np.float64 and np.str_ are float and str
            item = value.item()
            if not isinstance(item, (bool, int, float, str)):
                raise _unsavable(where, value)
            return {"__numpy__": [value.dtype.str, item]}
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, torch.Tensor):
            if nn.parameter.is_lazy(value):
                raise _unsavable(where, value, " (an uninitialised lazy parameter)")
            return {"__tensor__": self.tensor(value)}
        if type(value) is np.ndarray:
            return {"__ndarray__": self.ndarray(value, where)}
        if isinstance(value, list):
            return [self.value(v, f"{where}[{i}]", weights) for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {
                "__tuple__": [self.value(v, f"{where}[{i}]", weights) for i, v in enumerate(value)]
            }
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in value):
                return {k: self.value(v, f"{where}[{k!r}]", weights) for k, v in value.items()}
            return {  # other keys (e.g. numbers), as [key, value] pairs
                "__dict__": [
                    [
                        self.value(k, f"{where} key", weights),
                        self.value(v, f"{where}[{k!r}]", weights),
                    ]
                    for k, v in value.items()
                ]
            }
        if isinstance(value, torch.device):
            return {"__device__": str(value)}
        if isinstance(value, torch.dtype):
            return {"__dtype__": str(value).removeprefix("torch.")}
        if type(value) is np.random.RandomState:
            name, keys, position, has_gauss, cached = value.get_state(legacy=True)
            return {
                "__random_state__": [
                    name,
                    [int(k) for k in keys],
                    int(position),
                    int(has_gauss),
                    float(cached),
                ]
            }
        if isinstance(value, type):
            name = self.registry.names.get(value)
            if name is None:
                raise _unsavable(where, value)
            return {"__class__": name}
        if isinstance(value, nn.Module):
            return self.module(value, where, weights)
        if type(value) in self.registry.objects:
            cls = type(value)
            params = _object_params(value, where)
            return {
                "__object__": {
                    "class": self.registry.names[cls],
                    "params": self.params(cls, params, where),
                }
            }
        raise _unsavable(where, value)

    def ndarray(self, array, where):
        description = {"dtype": array.dtype.str, "shape": list(array.shape)}
        native = array.dtype.newbyteorder("=")
        if native in _TENSOR_DTYPES:
            copy = np.array(array, dtype=native, order="C", copy=True)
            description["tensor"] = self.tensor(torch.from_numpy(copy))
            return description
        description["items"] = [
            self.value(item, f"{where}[{i}]") for i, item in enumerate(array.ravel().tolist())
        ]
        return description

    def module(self, module, where, weights=True):
        """A torch module: its class, its constructor arguments and (``weights``) its tensors."""
        number = self._modules.get(id(module))
        if number is not None:  # the same module again (e.g. model_.encoder is encoder_)
            return {"__ref__": number}
        cls = type(module)
        name = self.registry.names.get(cls) if cls in self.registry.modules else None
        if name is None:
            raise _unsavable(
                where,
                module,
                " (not one of the modules of skfewshot.nn, nor of the few "
                "torch.nn modules whose arguments are their attributes)",
            )
        arguments = _module_arguments(module)
        if arguments is None:
            raise _unsavable(
                where,
                module,
                " (the arguments it was built with are unknown: was it "
                "unpickled from an older version of skfewshot? Build it again)",
            )
        args, kwargs = arguments
        children = list(module.children())
        for value in (*args, *kwargs.values()):
            if isinstance(value, nn.Module) and not any(value is child for child in children):
                raise _unsavable(
                    where,
                    module,
                    " (a module it was built with is no longer one of its "
                    "children: it was replaced after the construction)",
                )
        number = len(self._modules)
        self._modules[id(module)] = number
        self._kept.append(module)
        description = {
            "class": name,
            "id": number,
            "args": [self.value(v, f"{where}.args[{i}]", False) for i, v in enumerate(args)],
            "kwargs": {k: self.value(v, f"{where}.{k}", False) for k, v in kwargs.items()},
        }
        if weights:
            description.update(self.weights(module))
            description["training"] = [n for n, m in module.named_modules() if m.training]
            description["frozen"] = [n for n, p in module.named_parameters() if not p.requires_grad]
        return {"__torch_module__": description}

    def estimator(self, estimator):
        """The estimator: class, parameters, fitted attributes and, for a learner, its state."""
        cls = type(estimator)
        if cls not in self.registry.estimators:
            raise UnsavableError(
                f"{_qualified(cls)} is not an estimator of skfewshot: save(...) writes "
                "the library's classifiers, transformers and meta-learners. Save it with "
                "joblib.dump instead, and load that file with joblib.load only if you "
                "trust its source: loading a pickle can run code."
            )
        where = cls.__name__
        params = {
            k: v for k, v in estimator.get_params(deep=False).items() if not k.startswith("_")
        }
        description = {
            "class": self.registry.names[cls],
            "params": self.params(cls, params, where),
        }
        if isinstance(estimator, NeuralNet):
            modules = [
                *getattr(estimator, "_modules", []),
                *getattr(estimator, "_criteria", []),
            ]
            optimizers = list(getattr(estimator, "_optimizers", []))
            rebuilt = _REBUILT | {f"{name}_" for name in (*modules, *optimizers)}
            attributes = {
                k: v for k, v in vars(estimator).items() if k.endswith("_") and k not in rebuilt
            }
        else:
            attributes = {k: v for k, v in vars(estimator).items() if k not in params}
        description["attributes"] = {
            k: self.value(v, f"{where}.{k}") for k, v in attributes.items()
        }
        if isinstance(estimator, NeuralNet) and estimator.initialized_:
            description["state"] = {
                "modules": {
                    f"{name}_": self.weights(getattr(estimator, f"{name}_"))
                    for name in modules
                    if isinstance(getattr(estimator, f"{name}_"), nn.Module)
                },
                "optimizers": {
                    f"{name}_": self.value(
                        getattr(estimator, f"{name}_").state_dict(), f"{where}.{name}_"
                    )
                    for name in optimizers
                },
                "history": self.value(list(estimator.history_), f"{where}.history_"),
            }
        return description


def _write_bytes(path, data):
    """Write the bytes ``data`` to ``path``, whole or not at all."""

    def write(temporary):
        with open(temporary, "wb") as file:
            file.write(data)

    write_atomically(path, write)


def save(estimator, path):
    """Save an estimator to a weights-only folder, which :func:`load` reads without pickle.

    The folder holds ``estimator.json`` (the class, parameters and fitted
    attributes, as JSON) and ``tensors.pt`` (the tensors, for
    ``torch.load(weights_only=True)``); see :mod:`skfewshot.persistence` for
    what they hold. Everything is described before anything is written: an
    estimator that cannot be saved leaves no file, and each file is written
    whole (through a temporary file) or not at all.

    Parameters
    ----------
    estimator : estimator
        A classifier or transformer of :mod:`skfewshot`, or a meta-learner of
        :mod:`skfewshot.meta`, fitted or not.
    path : str or os.PathLike
        The folder, created if missing; its two files are replaced if present.

    Raises
    ------
    UnsavableError
        (A :class:`TypeError`.) If the estimator, one of its parameters or
        one of its fitted attributes cannot be described weights-only: a
        torch module of a class outside :mod:`skfewshot.nn` (e.g. one defined
        in your own code), a function or a lambda, an object of another
        library. The message names it. Such an estimator can be saved with
        ``joblib.dump``, whose file must then be loaded from a trusted source
        only.

    See Also
    --------
    load : Build the estimator again from the folder.

    Examples
    --------
    >>> import tempfile
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot import PrototypicalClassifier
    >>> from skfewshot.persistence import load, save
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = PrototypicalClassifier().fit(X[:50], y[:50])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save(clf, folder)
    ...     loaded = load(folder)
    >>> loaded.predict(X[50:53])
    array([2, 2, 7])
    """
    writer = _Writer()
    description = writer.estimator(estimator)
    buffer = io.BytesIO()
    torch.save(writer.tensors, buffer)
    tensors = buffer.getvalue()
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": {
            "skfewshot": _skfewshot_version(),
            "torch": str(torch.__version__),
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "skorch": skorch.__version__,
        },
        "tensors_sha256": hashlib.sha256(tensors).hexdigest(),
        "estimator": description,
    }
    text = json.dumps(document, indent=1)
    os.makedirs(path, exist_ok=True)
    _write_bytes(os.path.join(path, TENSORS_FILE), tensors)
    _write_bytes(os.path.join(path, JSON_FILE), text.encode("utf-8"))


def _skfewshot_version():
    from . import __version__

    return __version__


# -- reading ----------------------------------------------------------------------------------


class _Reader:
    """Builds an estimator back from the JSON data and the tensors, allow-listed classes only."""

    def __init__(self, tensors, path):
        self.registry = _registry()
        self.tensors = tensors
        self.path = path
        self.modules = {}  # number in the file -> module

    def error(self, where, message):
        return ValueError(f"{self.path}: {where}: {message}")

    def lookup(self, name, role, where):
        """The allow-listed class named ``name`` (refused if it may not play ``role``)."""
        cls = self.registry.classes.get(name) if isinstance(name, str) else None
        allowed = {
            "estimator": self.registry.estimators,
            "module": self.registry.modules,
            "object": self.registry.objects,
        }.get(role)
        if cls is None or (allowed is not None and cls not in allowed):
            raise self.error(
                where,
                f"{name!r} is not a class that a weights-only file may name as "
                f"{'an' if role[0] in 'aeiou' else 'a'} {role} (the library's estimators, "
                "modules and helpers, and a few torch and skorch classes, by their public "
                "names). The file was not written by skfewshot.persistence.save, or it was "
                "altered; nothing was built from it.",
            )
        return cls

    def check_name(self, cls, name, where):
        """A parameter or attribute name from the file: an identifier no method bears."""
        static = inspect.getattr_static(cls, name, None) if isinstance(name, str) else None
        if (
            not isinstance(name, str)
            or not name.isidentifier()
            or name.startswith("__")
            or callable(static)
            or hasattr(static, "__get__")
        ):
            raise self.error(
                where, f"{name!r} is not a parameter or attribute name of {cls.__name__}."
            )
        return name

    def tensor(self, key, where):
        if not isinstance(key, str) or key not in self.tensors:
            raise self.error(where, f"the tensor {key!r} is not in {TENSORS_FILE}.")
        return self.tensors[key]

    def value(self, node, where):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.value(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, dict) and not any(key.startswith("__") for key in node):
            return {key: self.value(v, f"{where}[{key!r}]") for key, v in node.items()}
        if not isinstance(node, dict) or len(node) != 1:
            raise self.error(where, "not a value of a weights-only file.")
        ((tag, content),) = node.items()
        read = {
            "__numpy__": self.numpy,
            "__tensor__": self.tensor,
            "__ndarray__": self.ndarray,
            "__tuple__": self.tuple,
            "__dict__": self.dict,
            "__device__": self.device,
            "__dtype__": self.dtype,
            "__random_state__": self.random_state,
            "__class__": lambda name, where: self.lookup(name, "class", where),
            "__torch_module__": self.module,
            "__ref__": self.ref,
            "__object__": self.object,
        }.get(tag)
        if read is None:
            raise self.error(where, f"unknown kind of value {tag!r}.")
        return read(content, where)

    def items(self, content, where):
        if not isinstance(content, list):
            raise self.error(where, "expected a list.")
        return content

    def mapping(self, content, where):
        if not isinstance(content, dict):
            raise self.error(where, "expected a JSON object.")
        return content

    def numpy(self, content, where):
        dtype, item = self.items(content, where)
        return np.dtype(dtype).type(item)

    def tuple(self, content, where):
        return tuple(
            self.value(v, f"{where}[{i}]") for i, v in enumerate(self.items(content, where))
        )

    def dict(self, content, where):
        out = {}
        for pair in self.items(content, where):
            if not isinstance(pair, list) or len(pair) != 2:
                raise self.error(where, "expected [key, value] pairs.")
            key = self.value(pair[0], f"{where} key")
            try:
                out[key] = self.value(pair[1], f"{where}[{key!r}]")
            except TypeError as exc:  # an unhashable key
                raise self.error(where, f"the key {key!r} cannot be a dict key.") from exc
        return out

    def device(self, content, where):
        return torch.device(content)

    def dtype(self, content, where):
        dtype = getattr(torch, content, None) if isinstance(content, str) else None
        if not isinstance(dtype, torch.dtype):
            raise self.error(where, f"{content!r} is not a torch dtype.")
        return dtype

    def random_state(self, content, where):
        name, keys, position, has_gauss, cached = self.items(content, where)
        if name != "MT19937":
            raise self.error(where, f"unknown random generator {name!r}.")
        random_state = np.random.RandomState()
        random_state.set_state(
            (name, np.array(keys, dtype=np.uint32), int(position), int(has_gauss), float(cached))
        )
        return random_state

    def ndarray(self, content, where):
        content = self.mapping(content, where)
        dtype, shape = np.dtype(content["dtype"]), tuple(content["shape"])
        if "tensor" in content:
            array = self.tensor(content["tensor"], where).numpy()
            return array.astype(dtype, copy=False).reshape(shape)
        items = self.items(content["items"], where)
        array = np.empty(len(items), dtype=dtype)
        for i, item in enumerate(items):
            array[i] = self.value(item, f"{where}[{i}]")
        return array.reshape(shape)

    def ref(self, content, where):
        if content not in self.modules:
            raise self.error(where, f"refers to the module {content!r}, not built before.")
        return self.modules[content]

    def object(self, content, where):
        content = self.mapping(content, where)
        cls = self.lookup(content.get("class"), "object", where)
        params = {
            self.check_name(cls, k, where): self.value(v, f"{where}.{k}")
            for k, v in self.mapping(content.get("params", {}), where).items()
        }
        try:
            return cls(**params)
        except Exception as exc:
            raise self.error(where, f"{cls.__name__} could not be built: {exc}") from exc

    def module(self, content, where):
        content = self.mapping(content, where)
        cls = self.lookup(content.get("class"), "module", where)
        args = self.items(content.get("args", []), where)
        args = [self.value(v, f"{where}.args[{i}]") for i, v in enumerate(args)]
        kwargs = {
            self.check_name(cls, k, where): self.value(v, f"{where}.{k}")
            for k, v in self.mapping(content.get("kwargs", {}), where).items()
        }
        try:
            with torch_seed(0):  # the initial weights are replaced; the global generator is left
                module = cls(*args, **kwargs)
        except Exception as exc:
            raise self.error(where, f"{cls.__name__} could not be built: {exc}") from exc
        self.modules[content.get("id")] = module
        if "weights" in content:
            self.load_weights(module, content, where, assign=True)
            training = set(self.items(content.get("training", []), where))
            for name, submodule in module.named_modules():
                submodule.training = name in training
            frozen = set(self.items(content.get("frozen", []), where))
            for name, parameter in module.named_parameters():
                if name in frozen:
                    parameter.requires_grad_(False)
        return module

    def load_weights(self, module, content, where, *, assign):
        """Load the tensors ``content["weights"]`` names into ``module``, all of them.

        ``assign=True`` takes the saved tensors themselves (their dtype,
        device and memory format); False copies them into the module's own
        (which an optimizer may hold).
        """
        names = self.mapping(content.get("weights", {}), where)
        state = {name: self.tensor(key, f"{where}.{name}") for name, key in names.items()}
        lazy = set(self.items(content.get("lazy", []), where))
        try:
            result = module.load_state_dict(state, strict=False, assign=assign)
        except Exception as exc:
            raise self.error(
                where, f"its tensors do not fit {type(module).__name__}: {exc}"
            ) from exc
        missing = [name for name in result.missing_keys if name not in lazy]
        if missing or result.unexpected_keys:
            raise self.error(
                where,
                f"its tensors do not fit {type(module).__name__}: missing {missing}, "
                f"unexpected {result.unexpected_keys}.",
            )

    def estimator(self, description):
        description = self.mapping(description, "estimator")
        cls = self.lookup(description.get("class"), "estimator", "estimator")
        where = cls.__name__
        params = {
            self.check_name(cls, k, where): self.value(v, f"{where}.{k}")
            for k, v in self.mapping(description.get("params", {}), where).items()
        }
        try:
            estimator = cls(**params)
        except Exception as exc:
            raise self.error(where, f"{cls.__name__} could not be built: {exc}") from exc
        attributes = self.mapping(description.get("attributes", {}), where)
        for name, value in attributes.items():
            setattr(
                estimator, self.check_name(cls, name, where), self.value(value, f"{where}.{name}")
            )
        state = description.get("state")
        if state is not None:
            state = self.mapping(state, where)
            with torch_seed(0):  # the initial weights are replaced; the global generator is left
                estimator.initialize()
            for name, weights in self.mapping(state.get("modules", {}), where).items():
                self.load_weights(
                    self.component(estimator, name, nn.Module, where),
                    self.mapping(weights, where),
                    f"{where}.{name}",
                    assign=False,  # the optimizer holds the module's own tensors
                )
            for name, value in self.mapping(state.get("optimizers", {}), where).items():
                optimizer = self.component(estimator, name, torch.optim.Optimizer, where)
                try:
                    optimizer.load_state_dict(self.value(value, f"{where}.{name}"))
                except (KeyError, TypeError, ValueError) as exc:
                    raise self.error(f"{where}.{name}", f"not an optimizer state: {exc}") from exc
            estimator.history_ = History(
                self.items(self.value(state.get("history", []), where), where)
            )
        return estimator

    def component(self, estimator, name, kind, where):
        value = getattr(estimator, name, None) if isinstance(name, str) else None
        if not isinstance(value, kind):
            raise self.error(
                where, f"{name!r} is not a {kind.__name__} of {type(estimator).__name__}."
            )
        return value


def load(path):
    """Load an estimator saved by :func:`save`, without unpickling anything.

    The JSON file is read first: its format, and the estimator's class
    against the allow-list. The tensors file must match the SHA-256 digest
    the JSON file records, and is read with ``torch.load(weights_only=True)``,
    which builds tensors and plain containers only. Then the estimator, its
    parameters and its fitted state are built, every class through the
    allow-list (see :mod:`skfewshot.persistence`); a class outside it is
    refused before anything is built from it. A crafted file can therefore
    not run code; it can still describe a very large model.

    Parameters
    ----------
    path : str or os.PathLike
        A folder written by :func:`save`.

    Returns
    -------
    estimator : estimator
        The estimator, fitted if it was: a classifier predicts exactly as the
        saved one did, and a meta-learner's ``to_classifier()``, ``score`` and
        ``partial_fit`` carry on from the saved state.

    Raises
    ------
    ValueError
        If the folder is not a weights-only file of a known format version,
        the tensors file does not match its digest or is not a plain file of
        tensors (e.g. a pickle of other objects), or the JSON file names a
        class outside the allow-list or does not fit the estimator.
    RuntimeError
        With torch older than 2.6, whose ``torch.load(weights_only=True)``
        could run code from a crafted file (CVE-2025-32434).

    See Also
    --------
    save : Write an estimator to a weights-only folder.
    """
    if _torch_version() < _SAFE_TORCH:
        raise RuntimeError(
            f"skfewshot.persistence.load needs torch >= 2.6 (found {torch.__version__}): "
            "older versions of torch.load(weights_only=True) can run code from a crafted "
            "file (CVE-2025-32434). Upgrade torch."
        )
    where = os.fspath(path)
    with open(os.path.join(path, JSON_FILE), encoding="utf-8") as file:
        try:
            document = json.load(file)
        except ValueError as exc:
            raise ValueError(f"{where}: {JSON_FILE} is not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(
            f"{where}: not a weights-only skfewshot folder ({JSON_FILE} has no "
            f"format {FORMAT!r}); write one with skfewshot.persistence.save."
        )
    version = document.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(
            f"{where}: format version {version!r}, but this skfewshot reads versions "
            f"1 to {FORMAT_VERSION}: upgrade skfewshot."
        )
    reader = _Reader({}, where)
    estimator = document.get("estimator")
    reader.lookup(
        estimator.get("class") if isinstance(estimator, dict) else None, "estimator", "estimator"
    )
    with open(os.path.join(path, TENSORS_FILE), "rb") as file:
        data = file.read()
    if hashlib.sha256(data).hexdigest() != document.get("tensors_sha256"):
        raise ValueError(
            f"{where}: {TENSORS_FILE} is not the file {JSON_FILE} was saved with (its "
            "SHA-256 digest differs); it was not read."
        )
    try:
        tensors = torch.load(io.BytesIO(data), map_location=None, weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"{where}: {TENSORS_FILE} is not a plain file of tensors: "
            "torch.load(weights_only=True) refused to read it (it holds Python objects "
            "other than tensors and plain containers, which a weights-only load never "
            "builds). Nothing in it was run."
        ) from exc
    if not isinstance(tensors, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in tensors.items()
    ):
        raise ValueError(f"{where}: {TENSORS_FILE} is not a dictionary of named tensors.")
    reader.tensors = tensors
    try:
        return reader.estimator(estimator)
    except (KeyError, IndexError, TypeError) as exc:  # data of the wrong shape in the file
        raise ValueError(
            f"{where}: {JSON_FILE} does not describe an estimator as save writes it: {exc!r}"
        ) from exc
