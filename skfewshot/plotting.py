"""Figures of few-shot learning: episodes, learning curves, accuracy and benchmarks.

Each function draws on a matplotlib Axes (``ax``; None makes a new figure)
and returns what it drew on, as scikit-learn's plotting functions do:

- :func:`plot_episode`: the images of an episode, one row per class,
  support then queries, with predicted labels marked right or wrong;
- :func:`plot_learning_curves`: the losses and accuracies of a
  meta-learner's ``history_``, epoch by epoch;
- :func:`plot_accuracy`: accuracy against shots or ways, with 95%
  confidence bands;
- :func:`plot_benchmark`: the accuracy table of ``skfewshot benchmark
  --json`` runs, as grouped bars with their confidence intervals.

matplotlib is an optional dependency: ``pip install "skfewshot[plot]"``.
It is imported when a function is called, never at ``import skfewshot``.
"""

import json
import math
import os
from collections import Counter
from collections.abc import Mapping
from numbers import Real
from pathlib import Path

import numpy as np
from sklearn.exceptions import NotFittedError

from .metrics import mean_confidence_interval

__all__ = ["plot_accuracy", "plot_benchmark", "plot_episode", "plot_learning_curves"]

#: The colours of a right and of a wrong prediction.
RIGHT, WRONG = "tab:green", "tab:red"

#: The history keys :func:`plot_learning_curves` draws by default, where present.
CURVES = ("train_loss", "valid_loss", "train_acc", "valid_acc")


def _pyplot(owner):
    """``matplotlib.pyplot``, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f"{owner} needs matplotlib, an optional dependency of skfewshot: "
            'install it with pip install "skfewshot[plot]" (or pip install matplotlib).'
        ) from exc
    return plt


def _numpy(values):
    """``values`` as a NumPy array; a torch tensor is detached and moved to the CPU first."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _is_number(value):
    """Whether ``value`` is a real number (booleans are not)."""
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


def _accuracy_label(accuracies):
    """The y label: accuracies above 1 are percentages (``skfewshot benchmark --json``)."""
    accuracies = np.asarray(accuracies, dtype=float)
    return "accuracy (%)" if np.nanmax(accuracies) > 1 else "accuracy"


# -- episodes ----------------------------------------------------------------


def _images(X, image_shape, name):
    """The samples ``X`` as images: (n, height, width) or (n, height, width, channels)."""
    try:
        X = np.asarray(_numpy(X), dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"plot_episode: {name} must be numeric images.") from exc
    if X.ndim < 2:
        raise ValueError(
            f"plot_episode: {name} must hold one sample per row, got an array of shape {X.shape}."
        )
    n = len(X)
    if image_shape is not None:
        size = int(np.prod(X.shape[1:]))
        if size != int(np.prod(image_shape)):
            raise ValueError(
                f"plot_episode: the samples of {name} have {size} values each, which do not "
                f"make images of shape image_shape={image_shape} ({int(np.prod(image_shape))} "
                "values)."
            )
        X = X.reshape(n, *image_shape)
    elif X.ndim == 2:
        side = math.isqrt(X.shape[1])
        if side * side != X.shape[1]:
            raise ValueError(
                f"plot_episode: the samples of {name} are vectors of {X.shape[1]} values, not "
                "square images: pass image_shape=(height, width)."
            )
        X = X.reshape(n, side, side)
    if X.ndim == 4:
        if X.shape[1] in (1, 3, 4):  # channels first, as torch has them
            X = np.moveaxis(X, 1, -1)
        elif X.shape[-1] not in (1, 3, 4):
            raise ValueError(
                f"plot_episode: the samples of {name} have shape {X.shape[1:]}: images need 1 "
                "(grey), 3 (RGB) or 4 (RGBA) channels, first or last."
            )
        if X.shape[-1] == 1:
            X = X[..., 0]
    elif X.ndim != 3:
        raise ValueError(
            f"plot_episode: the samples of {name} have shape {X.shape[1:]}, which is not an "
            "image: pass image_shape=(height, width)."
        )
    return X


def _labels(labels, n, name, samples):
    """``labels`` as a list of Python scalars, checked to be one per sample."""
    labels = _numpy(labels)
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(
            f"plot_episode: {name} must hold one label per sample of {samples} ({n}), got "
            f"shape {labels.shape}."
        )
    return labels.tolist()


def plot_episode(
    support,
    support_labels,
    query=None,
    query_labels=None,
    predicted=None,
    *,
    image_shape=None,
    cmap="gray_r",
    ax=None,
):
    """Show an episode: one row per class, its support images, then its queries.

    Each row holds a class of the support set: its support images first,
    then the queries of that class. With ``predicted``, each query is
    titled with its predicted label, in green when it is the true one and in
    red when it is not (its frame too). Queries without true labels are put
    in the row of their predicted class; queries with neither (or predicted
    outside the support's classes) go to a last row.

    Parameters
    ----------
    support : array-like or torch.Tensor of shape (n_support, ...)
        The support images: flat vectors (square images, e.g. 64 values for
        8x8 digits, unless ``image_shape`` is given), ``(n, height, width)``,
        ``(n, channels, height, width)`` (as the encoders take them) or
        ``(n, height, width, channels)``, with 1, 3 or 4 channels.
    support_labels : array-like of shape (n_support,)
        Their classes; the rows, in sorted order.
    query : array-like or torch.Tensor of shape (n_query, ...), default=None
        The query images, shaped as ``support``. None shows the support only.
    query_labels : array-like of shape (n_query,), default=None
        The true classes of the queries, each a class of the support set.
    predicted : array-like of shape (n_query,), default=None
        The predicted classes of the queries (e.g. ``clf.predict(query)``).
    image_shape : tuple of int, default=None
        The shape of one image, ``(height, width)`` or with channels, that
        each sample is reshaped to. None: as above.
    cmap : str or matplotlib Colormap, default="gray_r"
        The colormap of grey images (ignored for RGB ones). Support and
        query images share one colour scale.
    ax : matplotlib Axes, default=None
        A subplot whose area holds the grid (it is turned off). None makes
        a new figure sized to the grid.

    Returns
    -------
    axes : ndarray of matplotlib Axes of shape (n_rows, n_columns)
        One Axes per cell of the grid; unused cells are turned off.

    Raises
    ------
    ValueError
        If the labels do not match the samples in number, a query's true
        label is not a class of the support set, or the samples cannot be
        shown as images.

    See Also
    --------
    skfewshot.model_selection.EpisodicSplit : Draws episodes as index pairs.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skfewshot import PrototypicalClassifier
    >>> from skfewshot.model_selection import EpisodicSplit
    >>> from skfewshot.plotting import plot_episode
    >>> X, y = load_digits(return_X_y=True)
    >>> cv = EpisodicSplit(n_way=5, n_shot=1, n_query=4, n_episodes=1, random_state=0)
    >>> support, query = next(cv.split(X, y))
    >>> clf = PrototypicalClassifier().fit(X[support], y[support])
    >>> axes = plot_episode(  # doctest: +SKIP
    ...     X[support], y[support], X[query], y[query], predicted=clf.predict(X[query])
    ... )
    >>> axes.shape  # doctest: +SKIP
    (5, 5)
    """
    plt = _pyplot("plot_episode")
    if image_shape is not None:
        image_shape = tuple(int(size) for size in np.atleast_1d(image_shape))
        if len(image_shape) not in (2, 3):
            raise ValueError(
                "plot_episode: image_shape must be (height, width) or (height, width, channels)"
                f" / (channels, height, width), got {image_shape}."
            )
    support = _images(support, image_shape, "support")
    if len(support) == 0:
        raise ValueError("plot_episode: the support set is empty.")
    support_labels = _labels(support_labels, len(support), "support_labels", "support")
    if query is None:
        if query_labels is not None or predicted is not None:
            raise ValueError("plot_episode: query_labels and predicted need the query images.")
        query = support[:0]
    else:
        query = _images(query, image_shape, "query")
        if query.shape[1:] != support.shape[1:]:
            raise ValueError(
                f"plot_episode: the query images have shape {query.shape[1:]}, the support "
                f"images {support.shape[1:]}."
            )
    n_query = len(query)
    if query_labels is not None:
        query_labels = _labels(query_labels, n_query, "query_labels", "query")
    if predicted is not None:
        predicted = _labels(predicted, n_query, "predicted", "query")

    classes = np.unique(np.asarray(support_labels)).tolist()
    row_of = {label: row for row, label in enumerate(classes)}
    if query_labels is not None:
        unknown = sorted({str(label) for label in query_labels if label not in row_of})
        if unknown:
            raise ValueError(
                f"plot_episode: the query labels {unknown} are not classes of the support set "
                f"({', '.join(map(str, classes))})."
            )
    supports = [[i for i, label in enumerate(support_labels) if label == c] for c in classes]
    queries = [[] for _ in classes]
    others = []  # queries of no row: no label, or predicted outside the support's classes
    grouping = query_labels if query_labels is not None else predicted
    for i in range(n_query):
        row = None if grouping is None else row_of.get(grouping[i])
        (others if row is None else queries[row]).append(i)

    n_rows = len(classes) + bool(others)
    n_support_columns = max(len(indices) for indices in supports)
    n_query_columns = max([len(indices) for indices in queries] + [len(others)])
    n_columns = n_support_columns + n_query_columns
    row_names = [str(label) for label in classes]
    if others:
        row_names.append("queries" if grouping is None else "other")
    spacing = {"wspace": 0.1, "hspace": 0.45}
    if ax is None:
        margin = 0.2 + 0.08 * max(len(row_name) for row_name in row_names)  # inches, row names
        width, height = margin + 0.85 * n_columns + 0.2, 1.0 * n_rows + 0.4
        spacing.update(left=margin / width, right=1 - 0.2 / width)
        _, axes = plt.subplots(
            n_rows, n_columns, figsize=(width, height), squeeze=False, gridspec_kw=spacing
        )
    else:
        spec = getattr(ax, "get_subplotspec", lambda: None)()
        if spec is None:
            raise ValueError(
                "plot_episode: ax must be a subplot (e.g. from plt.subplots), whose area "
                "holds the grid."
            )
        grid = spec.subgridspec(n_rows, n_columns, **spacing)
        ax.set_axis_off()
        figure = ax.get_figure()
        axes = np.empty((n_rows, n_columns), dtype=object)
        for row in range(n_rows):
            for column in range(n_columns):
                axes[row, column] = figure.add_subplot(grid[row, column])

    if support.ndim == 4:  # colour images, scaled together into [0, 1]
        low = min(support.min(), query.min(initial=support.min()))
        high = max(support.max(), query.max(initial=support.max()))
        scale = high - low if high > low else 1.0
        support, query = (support - low) / scale, (query - low) / scale
        show = {}
    else:
        show = {
            "cmap": cmap,
            "vmin": min(support.min(), query.min(initial=support.min())),
            "vmax": max(support.max(), query.max(initial=support.max())),
        }

    used = np.zeros((n_rows, n_columns), dtype=bool)

    def draw(row, column, image, title=None, color=None):
        cell = axes[row, column]
        cell.imshow(image, **show)
        cell.set_xticks([])
        cell.set_yticks([])
        if title is not None:
            cell.set_title(title, fontsize=8, color=color or "black")
        if color is not None:
            for spine in cell.spines.values():
                spine.set_color(color)
                spine.set_linewidth(2)
        used[row, column] = True

    def draw_queries(row, indices):
        for k, i in enumerate(indices):
            title, color = ("query" if row == 0 else None), None
            if predicted is not None:
                title = f"pred {predicted[i]}"
                if query_labels is not None:
                    color = RIGHT if predicted[i] == query_labels[i] else WRONG
            draw(row, n_support_columns + k, query[i], title, color)

    for row, indices in enumerate(supports):
        for column, i in enumerate(indices):
            draw(row, column, support[i], "support" if row == 0 else None)
        draw_queries(row, queries[row])
    if others:
        draw_queries(len(classes), others)
    for row, row_name in enumerate(row_names):  # on the row's first image
        first = int(np.flatnonzero(used[row])[0])
        axes[row, first].set_ylabel(row_name, rotation=0, ha="right", va="center")
    for cell in axes[~used]:
        cell.set_axis_off()
    return axes


# -- learning curves ---------------------------------------------------------


def _history(learner_or_history):
    """The epochs (a list of dicts) of a fitted learner or of a history."""
    if hasattr(learner_or_history, "history_"):
        history = learner_or_history.history_
        if history is None or len(history) == 0:
            raise NotFittedError(
                f"This {type(learner_or_history).__name__} instance is not fitted yet: it has "
                "no history. Call fit before plot_learning_curves."
            )
    else:
        history = learner_or_history
    if hasattr(history, "to_list"):  # skorch's History and DistributedHistory
        history = history.to_list()
    if not isinstance(history, (list, tuple)) or not all(
        isinstance(epoch, Mapping) for epoch in history
    ):
        raise TypeError(
            "plot_learning_curves takes a fitted meta-learner, a skorch History or a list of "
            f"dicts (one per epoch), got {type(learner_or_history).__name__}."
        )
    if not history:
        raise ValueError("plot_learning_curves: the history has no epochs.")
    return list(history)


def plot_learning_curves(learner_or_history, *, keys=None, ax=None):
    """Plot the losses and accuracies of meta-training, epoch by epoch.

    Parameters
    ----------
    learner_or_history : meta-learner, skorch History or list of dict
        A fitted meta-learner (its ``history_``), or a history: one dict
        per epoch, as skorch records it (``{"epoch": 1, "train_loss": ...,
        "valid_acc": ..., ...}``).
    keys : str or sequence of str, default=None
        The numbers of the history to draw. None draws those of
        ``train_loss``, ``valid_loss``, ``train_acc`` and ``valid_acc`` that
        the history holds (the validation ones need a ``train_split``, e.g.
        :class:`~skfewshot.meta.ValidClassSplit`).
    ax : matplotlib Axes, default=None
        The Axes to draw on. None makes a new figure.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on. Losses (keys holding ``"loss"``) are on its
        y axis; drawn with losses, the accuracies (and other keys) are on a
        twin Axes with its own scale on the right (``ax.twinx()``, the last
        of ``ax.figure.axes``), which holds the legend.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the learner is not fitted (it has no history).
    ValueError
        If a key is not a number of the history, or the history has none of
        the default keys.

    Examples
    --------
    >>> from skfewshot.plotting import plot_learning_curves
    >>> history = [{"epoch": 1, "train_loss": 1.2, "train_acc": 0.5},
    ...            {"epoch": 2, "train_loss": 0.8, "train_acc": 0.7}]
    >>> ax = plot_learning_curves(history)  # doctest: +SKIP
    """
    plt = _pyplot("plot_learning_curves")
    history = _history(learner_or_history)
    available = list(
        dict.fromkeys(
            key
            for epoch in history
            for key, value in epoch.items()
            if key not in ("epoch", "batches") and _is_number(value)
        )
    )
    if keys is None:
        keys = [key for key in CURVES if key in available]
        if not keys:
            raise ValueError(
                f"plot_learning_curves: the history has none of {', '.join(CURVES)}; pass "
                f"keys= among its numbers: {', '.join(available) or 'none'}."
            )
    else:
        keys = [keys] if isinstance(keys, str) else list(keys)
        if not keys:
            raise ValueError("plot_learning_curves: keys is empty.")
        missing = [key for key in keys if key not in available]
        if missing:
            raise ValueError(
                f"plot_learning_curves: {', '.join(map(repr, missing))} not in the history, "
                f"whose numbers are: {', '.join(available) or 'none'}."
            )
    losses = [key for key in keys if "loss" in key]
    others = [key for key in keys if "loss" not in key]

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    twin = ax.twinx() if losses and others else ax
    for n, key in enumerate(keys):
        points = [
            (epoch.get("epoch", i + 1), float(epoch[key]))
            for i, epoch in enumerate(history)
            if _is_number(epoch.get(key))
        ]
        epochs, values = zip(*points)
        (ax if key in losses else twin).plot(
            epochs,
            values,
            color=f"C{n}",
            linestyle="--" if key.startswith("valid") else "-",
            marker="o" if key in losses else "s",
            markersize=4 if len(points) <= 30 else 0,
            label=key,
        )
    if losses:
        ax.set_ylabel("loss")
    if others:
        accuracies = all(key.endswith("acc") for key in others)
        twin.set_ylabel("accuracy" if accuracies else others[0] if len(others) == 1 else "value")
    ax.set_xlabel("epoch")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = ax.get_legend_handles_labels()
    if twin is not ax:
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    twin.legend(handles, labels)
    ax.grid(alpha=0.3)
    return ax


# -- accuracy ----------------------------------------------------------------


def _accuracy(record, where, owner):
    """The mean accuracy and the half-width of its 95% interval in a result."""
    if "accuracy" in record and "ci95" in record:
        accuracy, ci95 = record["accuracy"], record["ci95"]
        if not (_is_number(accuracy) and _is_number(ci95)):
            raise ValueError(
                f"{owner}: the accuracy and ci95 of {where} must be numbers, got "
                f"{accuracy!r} and {ci95!r}."
            )
        return float(accuracy), float(ci95)
    if "scores" in record:
        return mean_confidence_interval(record["scores"])
    raise ValueError(
        f"{owner}: {where} has neither 'accuracy' and 'ci95' nor per-episode 'scores'; it has "
        f"{', '.join(map(repr, record)) or 'nothing'}."
    )


def _is_run(item):
    """Whether ``item`` is a benchmark result (a dict with ``"results"``) or a path to one."""
    return isinstance(item, (str, os.PathLike)) or (isinstance(item, Mapping) and "results" in item)


def _load_runs(runs, owner):
    """``[(path or None, result), ...]`` of benchmark results given as dicts or JSON paths."""
    loaded = []
    for i, run in enumerate(runs):
        source = None
        if isinstance(run, (str, os.PathLike)):
            source = Path(run)
            with open(source, encoding="utf-8") as f:
                run = json.load(f)
        where = str(source) if source is not None else f"benchmark result {i}"
        if not isinstance(run, Mapping) or not isinstance(run.get("results"), list):
            raise ValueError(
                f"{owner}: {where} is not a benchmark result: expected a dict with a "
                "'results' list, as `skfewshot benchmark --json` writes."
            )
        for k, row in enumerate(run["results"]):
            if not isinstance(row, Mapping):
                raise ValueError(f"{owner}: result {k} of {where} is not a dict: {row!r}.")
        loaded.append((source, run))
    return loaded


def _run_labels(runs, labels, owner):
    """The legend labels of benchmark runs: given, or their methods (made unique)."""
    if labels is not None:
        labels = [labels] if isinstance(labels, str) else [str(label) for label in labels]
        if len(labels) != len(runs):
            raise ValueError(
                f"{owner}: {len(labels)} labels for {len(runs)} benchmark results; give one "
                "label per result."
            )
        return labels
    names = [
        str(run.get("method", source.stem if source is not None else f"run {i + 1}"))
        for i, (source, run) in enumerate(runs)
    ]
    counts = Counter(names)
    return [
        name if counts[name] == 1 else f"{name} ({source.stem if source is not None else i + 1})"
        for i, (name, (source, _)) in enumerate(zip(names, runs))
    ]


def _accuracy_records(results, owner):
    """The results of :func:`plot_accuracy` as a list of dicts, runs unpacked."""
    if hasattr(results, "to_dict") and not isinstance(results, Mapping):  # a pandas DataFrame
        results = results.to_dict(orient="records")
    if _is_run(results):
        results = [results]
    elif isinstance(results, Mapping):
        raise TypeError(
            f"{owner}: results must be a list of dicts, one per setting (a dict without "
            "'results' was given: wrap a single result in a list)."
        )
    results = list(results)
    if any(_is_run(item) for item in results):
        runs = _load_runs(results, owner)
        labels = _run_labels(runs, None, owner) if len(runs) > 1 else [None] * len(runs)
        results = [
            {**row, "label": label}
            for label, (_, run) in zip(labels, runs)
            for row in run["results"]
        ]
    for i, record in enumerate(results):
        if not isinstance(record, Mapping):
            raise TypeError(f"{owner}: result {i} is a {type(record).__name__}, not a dict.")
    if not results:
        raise ValueError(f"{owner}: there are no results to plot.")
    return results


#: x -> (the key along x, the key of the lines, the x label, a line's label)
_ACCURACY_AXES = {
    "shots": ("n_shot", "n_way", "shots per class (K)", "{}-way"),
    "ways": ("n_way", "n_shot", "ways: classes per episode (N)", "{}-shot"),
}


def plot_accuracy(results, *, x="shots", ax=None):
    """Plot accuracy against shots or ways, with 95% confidence bands.

    One line per value of the other setting (one per number of ways against
    shots, one per number of shots against ways) and per ``"label"``, with
    a band from ``accuracy - ci95`` to ``accuracy + ci95``.

    Parameters
    ----------
    results : list of dict, DataFrame, benchmark result, or path
        One dict (or DataFrame row) per setting, with ``"n_way"`` and
        ``"n_shot"`` (the one along ``x`` is required), the mean
        ``"accuracy"`` and the half-width ``"ci95"`` of its 95% interval,
        or the per-episode ``"scores"`` (the
        mean and interval are then computed by
        :func:`~skfewshot.metrics.mean_confidence_interval`), and an
        optional ``"label"`` (e.g. the method) that makes lines of its own.
        A dict of :func:`~skfewshot.model_selection.evaluate_episodes` with
        its setting added is one: ``{"n_way": 5, "n_shot": 1,
        **evaluate_episodes(clf, X, y, n_way=5, n_shot=1)}``. Also taken:
        the result of ``skfewshot benchmark --json`` (the dict, or the path
        of its file), whose ``"results"`` are such dicts (in %), or a list of
        them (one set of lines per run, labelled by its method).
    x : {"shots", "ways"}, default="shots"
        What the x axis shows: ``n_shot`` or ``n_way``.
    ax : matplotlib Axes, default=None
        The Axes to draw on. None makes a new figure.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on: one line and one band per group.

    Raises
    ------
    ValueError
        If ``x`` is unknown, a result lacks what the figure needs, or two
        results of one line have the same ``x``.

    Examples
    --------
    >>> from skfewshot.plotting import plot_accuracy
    >>> results = [
    ...     {"n_way": 5, "n_shot": 1, "accuracy": 0.72, "ci95": 0.02},
    ...     {"n_way": 5, "n_shot": 5, "accuracy": 0.91, "ci95": 0.01},
    ... ]
    >>> ax = plot_accuracy(results, x="shots")  # doctest: +SKIP
    """
    if x not in _ACCURACY_AXES:
        raise ValueError(f"plot_accuracy: x must be 'shots' or 'ways', got {x!r}.")
    plt = _pyplot("plot_accuracy")
    key, line_key, xlabel, line_format = _ACCURACY_AXES[x]
    records = _accuracy_records(results, "plot_accuracy")
    groups = {}
    for i, record in enumerate(records):
        where = f"result {i}"
        if key not in record:
            raise ValueError(
                f"plot_accuracy: {where} has no {key!r}, which x={x!r} plots accuracy against; "
                f"it has {', '.join(map(repr, record))}."
            )
        value = record[key]
        if not _is_number(value):
            raise ValueError(
                f"plot_accuracy: the {key} of {where} must be a number, got {value!r}."
            )
        group = (record.get("label"), record.get(line_key))
        points = groups.setdefault(group, {})
        if value in points:
            label, line = group
            line = ([] if label is None else [f"label={label!r}"]) + (
                [] if line is None else [f"{line_key}={line}"]
            )
            raise ValueError(
                f"plot_accuracy: two results for {key}={value}"
                + (f" ({', '.join(line)})" if line else "")
                + "; give one per setting and line."
            )
        points[value] = _accuracy(record, where, "plot_accuracy")

    labels = list(dict.fromkeys(label for label, _ in groups))

    def order(group):
        label, line = group
        return labels.index(label), line is None, line if _is_number(line) else 0

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    ticks, accuracies, named = set(), [], False
    for group in sorted(groups, key=order):
        label, line = group
        parts = ([] if label is None else [str(label)]) + (
            [] if line is None else [line_format.format(line)]
        )
        named = named or bool(parts)
        points = groups[group]
        xs = sorted(points)
        mean = np.array([points[value][0] for value in xs])
        half = np.array([points[value][1] for value in xs])
        (drawn,) = ax.plot(xs, mean, marker="o", label=", ".join(parts) or "_nolegend_")
        ax.fill_between(xs, mean - half, mean + half, color=drawn.get_color(), alpha=0.2, lw=0)
        ticks.update(xs)
        accuracies.extend(mean)
    ax.set_xticks(sorted(ticks))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(_accuracy_label(accuracies))
    if named:
        ax.legend()
    ax.grid(alpha=0.3)
    return ax


# -- benchmarks --------------------------------------------------------------


def plot_benchmark(table_or_path, *, labels=None, published=None, ax=None):
    """Plot the accuracy table of benchmark runs: grouped bars with 95% intervals.

    One group of bars per few-shot setting (N-way K-shot), one bar per run,
    each with the error bar of its 95% confidence interval: the figure of
    the table ``benchmarks/accuracy_table.py`` prints. The y axis starts a
    little below the lowest accuracy, not at 0, so that differences of a
    point show.

    Parameters
    ----------
    table_or_path : dict, path, or list of them
        Benchmark results as ``skfewshot benchmark --json`` writes them: a
        dict (or the path of its JSON file) whose ``"results"`` list holds
        one dict per setting with ``"n_way"``, ``"n_shot"``, ``"accuracy"``
        and ``"ci95"`` (in %; or the per-episode ``"scores"``), and an
        optional ``"method"`` and ``"dataset"``; or a list of them, one per
        run.
    labels : sequence of str, default=None
        The runs' names in the legend. None: their ``"method"`` (with the
        file name, or the run's number, when two runs share a method).
    published : dict, default=None
        Figures to compare with, drawn as black marks over the bars: for a
        run's label, a dict ``{(n_way, n_shot): accuracy}``. Values that are
        not numbers (e.g. ``"n/a"``) and settings not in the results are
        left out.
    ax : matplotlib Axes, default=None
        The Axes to draw on. None makes a new figure.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on: one bar per run and setting, titled with the
        runs' data set when they share one.

    Raises
    ------
    ValueError
        If a result is not a benchmark result or lacks its setting or
        accuracy, the labels are not one per run, or ``published`` names a
        run that is not plotted.

    Examples
    --------
    >>> from skfewshot.plotting import plot_benchmark
    >>> run = {"method": "protonet", "dataset": "omniglot", "results": [
    ...     {"n_way": 5, "n_shot": 1, "accuracy": 97.6, "ci95": 0.3},
    ...     {"n_way": 5, "n_shot": 5, "accuracy": 99.3, "ci95": 0.1}]}
    >>> published = {"protonet": {(5, 1): 98.8, (5, 5): 99.7}}
    >>> ax = plot_benchmark(run, published=published)  # doctest: +SKIP
    """
    plt = _pyplot("plot_benchmark")
    runs = table_or_path
    if isinstance(runs, (str, os.PathLike, Mapping)):
        runs = [runs]
    runs = _load_runs(list(runs), "plot_benchmark")
    if not runs:
        raise ValueError("plot_benchmark: there are no benchmark results to plot.")
    labels = _run_labels(runs, labels, "plot_benchmark")
    tables = []
    for (source, run), label in zip(runs, labels):
        table = {}
        for i, row in enumerate(run["results"]):
            where = f"result {i} of {source if source is not None else label}"
            missing = [key for key in ("n_way", "n_shot") if key not in row]
            if missing:
                raise ValueError(f"plot_benchmark: {where} has no {' and no '.join(missing)}.")
            table[row["n_way"], row["n_shot"]] = _accuracy(row, where, "plot_benchmark")
        tables.append(table)
    settings = sorted(set().union(*tables))
    if not settings:
        raise ValueError("plot_benchmark: the benchmark results hold no settings.")
    published = {} if published is None else dict(published)
    unknown = [name for name in published if name not in labels]
    if unknown:
        raise ValueError(
            f"plot_benchmark: published figures for {', '.join(map(repr, unknown))}, which "
            f"is not the label of a run ({', '.join(map(repr, labels))})."
        )

    if ax is None:
        _, ax = plt.subplots(figsize=(max(5.0, 1.5 * len(settings) + 2), 4))
    column = {setting: i for i, setting in enumerate(settings)}
    width = 0.8 / len(runs)
    values, marked = [], False
    for k, (label, table) in enumerate(zip(labels, tables)):
        offset = (k - (len(runs) - 1) / 2) * width
        xs = [column[setting] + offset for setting in table]
        mean = [accuracy for accuracy, _ in table.values()]
        half = [ci95 for _, ci95 in table.values()]
        ax.bar(xs, mean, 0.9 * width, yerr=half, capsize=3, color=f"C{k}", label=label)
        values += [m - np.nan_to_num(h) for m, h in zip(mean, half)]
        values += [m + np.nan_to_num(h) for m, h in zip(mean, half)]
        for setting, value in published.get(label, {}).items():
            if not (isinstance(setting, tuple) and len(setting) == 2):
                raise ValueError(
                    f"plot_benchmark: the published figures of {label!r} must be keyed by "
                    f"(n_way, n_shot), got {setting!r}."
                )
            if setting not in column or not _is_number(value):
                continue
            x = column[setting] + offset
            ax.hlines(
                value,
                x - 0.45 * width,
                x + 0.45 * width,
                colors="black",
                linewidths=2,
                label="_nolegend_" if marked else "published",
            )
            marked = True
            values.append(float(value))
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    span = high - low if high > low else max(abs(high), 1.0) * 0.05
    bottom = low - 0.5 * span
    ax.set_ylim(max(0.0, bottom) if low >= 0 else bottom, high + 0.2 * span)
    ax.set_xticks(range(len(settings)), [f"{w}-way {s}-shot" for w, s in settings])
    ax.set_ylabel(_accuracy_label(values))
    datasets = {run.get("dataset") for _, run in runs}
    if len(datasets) == 1 and None not in datasets:
        ax.set_title(str(datasets.pop()))
    if len(runs) > 1 or marked:
        ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return ax
