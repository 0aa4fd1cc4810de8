"""The parameters of ``skfewshot benchmark``: flag values, --param names and values, checks.

Every check runs before any data is loaded or any training starts, and a
bad value is a :class:`UsageError`, which the command reports as argparse
does (``skfewshot benchmark: error: ...``, exit status 2).
"""

import argparse
import ast
import difflib
import inspect

import joblib
import torch

from .. import nn
from .._validation import check_params

#: --method -> (meta-learner class name in skfewshot.meta, its parameters)
METHODS = {
    "protonet": ("PrototypicalLearner", {}),
    "matching": ("MatchingLearner", {}),
    "relation": ("RelationLearner", {}),
    "siamese": ("SiameseLearner", {}),
    "maml": ("MAMLLearner", {}),
    "fomaml": ("MAMLLearner", {"first_order": True}),
    "anil": ("ANILLearner", {}),
    "metasgd": ("MetaSGDLearner", {}),
    "reptile": ("ReptileLearner", {}),
    "meta-lstm": ("LearnedOptimizerLearner", {"rule": "MetaLearnerLSTM"}),
    "lstm-optimizer": ("LearnedOptimizerLearner", {"rule": "LSTMOptimizer"}),
    "mann": ("MANNLearner", {}),
    "snail": ("SNAILLearner", {}),
    "in-context": ("InContextLearner", {}),
    "pretraining": ("PretrainingLearner", {}),
}


#: The learned optimizers' --method -> their rule's class name in skfewshot.nn.
LEARNED_RULES = {m: p["rule"] for m, (c, p) in METHODS.items() if c == "LearnedOptimizerLearner"}


#: Learner parameters given as a class name of skfewshot.nn (or skfewshot.datasets) in --param.
COMPONENTS = ("encoder", "comparator", "rule", "head", "augmentation")

#: Learner parameters that flags set: --param cannot set them too.
SET_BY_FLAGS = {
    "episodes_per_epoch": "--episodes-per-epoch",
    "max_epochs": "--episodes",
    "precision": "--precision",
    "device": "--device",
    "random_state": "--random-state",
    "verbose": "--quiet",
    "n_way": "--train-way",
    "n_shot": "--train-shot",
    "n_query": "--train-query",
    "lr": "--lr",
}


class UsageError(ValueError):
    """A bad flag value or a missing input: ``main`` reports it as argparse does
    (``skfewshot benchmark: error: ...``, exit status 2), with the usage unless
    ``usage=False``."""

    def __init__(self, message, usage=True):
        super().__init__(message)
        self.usage = usage


def named_class(value):
    """``value``, or the class of skfewshot.nn / skfewshot.datasets it names.

    An augmentation is named with its parameters' defaults (``RandomAffine``).
    A name with keyword arguments of literal values, ``RandomAffine(translate=0.1)``
    or ``CosineHead(scale=5.0)``, is an instance built with them.
    """
    from .. import datasets

    if not isinstance(value, str):
        return value
    name, kwargs = value, None
    if "(" in value:
        try:
            call = ast.parse(value.strip(), mode="eval").body
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)) or call.args:
                raise ValueError
            name = call.func.id
            kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
            if None in kwargs:
                raise ValueError
        except (SyntaxError, ValueError):
            raise ValueError(
                f"--param: cannot read {value!r}; write a class name, alone or with keyword "
                "arguments of literal values, e.g. RandomAffine(rotation=15, translate=0.1)."
            ) from None
    for module in (nn, datasets):
        if hasattr(module, name) and name[:1].isupper():
            cls = getattr(module, name)
            if kwargs is not None:
                try:
                    return cls(**kwargs)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"--param: {value}: {exc}") from None
            # An augmentation is an instance with its defaults; a module, the class.
            return cls() if module is datasets else cls
    raise ValueError(f"--param: {name!r} is not a class of skfewshot.nn or skfewshot.datasets.")


def _literal(text):
    """``text`` read as a Python literal when it is one, else the plain string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def param(text):
    """``name=value`` of --param, the value read as a Python literal when it is one."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    return name, _literal(value)


def _top_level_split(text):
    """``text`` split at its commas outside brackets: ``1,(2, 3)`` is ``1`` and ``(2, 3)``."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def grid_param(text):
    """``name=v1,v2,...`` of --tune: the name and its candidate values, each read as --param's."""
    name, sep, values = text.partition("=")
    parts = _top_level_split(values)
    if not sep or not name or not all(part.strip() for part in parts):
        raise argparse.ArgumentTypeError(
            "expected NAME=V1,V2,... (a classifier parameter and its candidate values, "
            f"e.g. inner_steps=0,1,2,5), got {text!r}"
        )
    return name, [_literal(part.strip()) for part in parts]


def ints(text):
    return [int(v) for v in text.split(",")]


def check_minutes(text):
    """A positive number of minutes, for --max-time."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of minutes, got {text!r}")
    return value


def saved_encoder(path):
    """The trained encoder of the classifier saved at ``path``."""
    try:
        clf = joblib.load(path)
    except OSError as exc:
        raise UsageError(
            f"argument --encoder-from: cannot read {path} ({exc.strerror or exc})."
        ) from None
    encoder = getattr(clf, "encoder", None)
    if not isinstance(encoder, torch.nn.Module):
        raise UsageError(
            f"argument --encoder-from: {path} holds a {type(clf).__name__} without a trained "
            "encoder; give a classifier saved by skfewshot benchmark --output."
        )
    return encoder


def unknown_name(name, valid, owner):
    """The message for a parameter ``name`` that ``owner`` does not take, with the valid names."""
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{owner} has no parameter {name!r}{hint}; its parameters: {', '.join(valid)}"


def keyword_names(factory):
    """The names ``factory`` (a class or function) takes as keywords; None if it takes any."""
    if isinstance(factory, torch.nn.Module) or not callable(factory):
        return None
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_learner_params(learner_class, learner, names, method):
    """Check the --param ``names`` against ``learner``: argparse-style errors before training.

    A name is a parameter of the learner or ``<prefix>__<name>`` for one of
    its components (or skorch's module, criterion, optimizer, iterators,
    callbacks, ...); a component's own parameter must be one its class
    takes. Then the learner's values are checked against its constraints.
    """
    owner = f"{learner_class.__name__} (the learner of --method {method})"
    plain = sorted(k for k in learner_class().get_params(deep=False) if not k.startswith("_"))
    prefixes = sorted({*learner_class.prefixes_, "module", "criterion", "optimizer"})
    for name in sorted(names):
        prefix, sep, own = name.partition("__")
        # A refused name is reported, with its reason, by the learner's own check below.
        if name in plain or name in getattr(learner_class, "_refused_params", {}):
            continue
        if not (sep and own and prefix in prefixes):
            raise UsageError(
                "argument --param: "
                + unknown_name(name, plain, owner)
                + f"; and <name>__<parameter> for {', '.join(prefixes)}."
            )
        # skorch builds the optimizer itself (optimizer__param_groups, ...): not checked here.
        if prefix not in (*learner_class.components, "module", "criterion") or "__" in own:
            continue
        component = getattr(learner, prefix, None)
        if isinstance(component, torch.nn.Module) and prefix in learner_class.components:
            raise UsageError(
                f"argument --param: {name}: the {prefix} is a {type(component).__name__} "
                f"instance, which takes no {prefix}__* parameters; name its class instead."
            )
        valid = keyword_names(component)  # None for an instance: skorch rebuilds it
        if valid is not None and own not in valid:
            what = f"the {prefix} {getattr(component, '__name__', component)}"
            raise UsageError(f"argument --param: {name}: " + unknown_name(own, valid, what) + ".")
    try:
        learner._check_params()
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def check_classifier_params(classifier_class, params, method, flag="--classifier-param"):
    """Check the names and values of --classifier-param (or of ``flag``, which gives them):
    argparse-style errors before training."""
    plain = sorted(k for k in classifier_class().get_params(deep=False) if not k.startswith("_"))
    owner = f"{classifier_class.__name__} (the classifier of --method {method})"
    for name in sorted(params):
        if name not in plain:
            raise UsageError(f"argument {flag}: " + unknown_name(name, plain, owner) + ".")
    if not params:
        return
    try:
        check_params(classifier_class(**params))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"argument {flag}: {exc}") from None


def check_tune_grid(classifier_class, tune, classifier_params, method):
    """The grid of the --tune flags, checked as --classifier-param is: argparse-style errors.

    Each name must be a parameter of the classifier that neither
    --classifier-param nor another --tune gives, and each candidate value a
    valid one (with the --classifier-param values).

    Returns
    -------
    grid : dict
        The names, in the order given, and their lists of candidate values.
    """
    grid = {}
    for name, values in tune:
        if name in grid:
            raise UsageError(
                f"argument --tune: {name} is given twice; give all its candidates in one "
                f"--tune {name}=V1,V2,..."
            )
        if name in classifier_params:
            raise UsageError(
                f"argument --tune: {name} is also set by --classifier-param; pick one: "
                "tune it or set it."
            )
        for value in values:
            check_classifier_params(
                classifier_class, {**classifier_params, name: value}, method, flag="--tune"
            )
        grid[name] = values
    return grid
