"""skfewshot.plotting: the figures draw what they are given and refuse what they cannot draw."""

import json
import re
import sys

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from skorch.history import History

from skfewshot import PrototypicalClassifier
from skfewshot.meta import PrototypicalLearner, ValidClassSplit
from skfewshot.model_selection import evaluate_episodes
from skfewshot.plotting import (
    RIGHT,
    WRONG,
    plot_accuracy,
    plot_benchmark,
    plot_episode,
    plot_learning_curves,
)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import same_color  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def episode(digits):
    """A 3-way 2-shot episode of digits 0, 1, 2 with 2 queries per class (flat 8x8 images)."""
    X, y = digits
    support = np.concatenate([np.flatnonzero(y == c)[:2] for c in (0, 1, 2)])
    query = np.concatenate([np.flatnonzero(y == c)[2:4] for c in (0, 1, 2)])
    return X[support], y[support], X[query], y[query]


# -- plot_episode --------------------------------------------------------------


def test_episode_grid_has_a_row_per_class_and_marks_wrong_predictions(episode):
    support, support_labels, query, query_labels = episode
    predicted = query_labels.copy()
    predicted[3] = 0  # the second query of class 1 taken for a 0
    axes = plot_episode(support, support_labels, query, query_labels, predicted)
    assert axes.shape == (3, 4)  # 3 classes; 2 support columns, then 2 query columns
    assert [len(ax.images) for ax in axes.flat] == [1] * 12
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["0", "1", "2"]
    assert [ax.get_title() for ax in axes[0, :2]] == ["support", "support"]
    queries = axes[:, 2:].flat
    titles = [ax.get_title() for ax in queries]
    assert titles == ["pred 0", "pred 0", "pred 1", "pred 0", "pred 2", "pred 2"]
    colours = [ax.title.get_color() for ax in axes[:, 2:].flat]
    assert [same_color(colour, WRONG) for colour in colours] == [0, 0, 0, 1, 0, 0]
    assert sum(same_color(colour, RIGHT) for colour in colours) == 5
    assert same_color(axes[1, 3].spines["left"].get_edgecolor(), WRONG)
    # The images are the samples, as 8x8 pictures on one colour scale.
    np.testing.assert_array_equal(axes[0, 0].images[0].get_array(), support[0].reshape(8, 8))
    both = np.concatenate([support, query])
    assert axes[2, 3].images[0].get_clim() == pytest.approx((both.min(), both.max()))


@pytest.mark.parametrize(
    "convert, image_shape",
    [
        (lambda X: X, None),
        (lambda X: X.reshape(-1, 1, 8, 8), None),
        (lambda X: X.reshape(-1, 8, 8), None),
        (lambda X: torch.from_numpy(X.reshape(-1, 1, 8, 8)), None),
        (lambda X: X.reshape(-1, 4, 16), (8, 8)),
    ],
    ids=["flat", "channels-first", "square", "tensor", "image_shape"],
)
def test_episode_grid_takes_vectors_images_and_tensors(episode, convert, image_shape):
    support, support_labels, query, query_labels = episode
    axes = plot_episode(
        convert(support),
        torch.from_numpy(support_labels),
        convert(query),
        query_labels,
        image_shape=image_shape,
    )
    assert axes.shape == (3, 4)
    for ax, image in zip(axes[:, 0], support[::2]):  # the first support image of each class
        np.testing.assert_array_equal(ax.images[0].get_array(), image.reshape(8, 8))


def test_episode_grid_of_colour_images_without_queries(episode):
    support, support_labels, _, _ = episode
    rgb = np.repeat(support.reshape(-1, 1, 8, 8), 3, axis=1)
    axes = plot_episode(rgb, support_labels)
    assert axes.shape == (3, 2)
    assert axes[0, 0].images[0].get_array().shape == (8, 8, 3)


def test_episode_grid_puts_queries_of_no_class_in_a_last_row(episode):
    support, support_labels, query, _ = episode
    axes = plot_episode(support, support_labels, query)
    assert axes.shape == (4, 8)  # 3 classes and the queries; 2 support, 6 query columns
    assert [len(ax.images) for ax in axes[3]] == [0, 0] + [1] * 6
    assert axes[3, 2].get_ylabel() == "queries"
    assert not axes[0, 2].axison and not axes[3, 0].axison  # unused cells are off
    # Predicted labels without true ones: rows of the predicted classes, no colours.
    predicted = np.array([0, 0, 1, 1, 2, 9])
    axes = plot_episode(support, support_labels, query, predicted=predicted)
    assert axes.shape == (4, 4)
    assert axes[3, 2].get_ylabel() == "other" and axes[3, 2].get_title() == "pred 9"
    assert same_color(axes[0, 2].title.get_color(), "black")


def test_episode_grid_fills_the_given_axes(episode):
    fig, (left, right) = plt.subplots(1, 2)
    axes = plot_episode(*episode, ax=right)
    assert all(ax.get_figure() is fig for ax in axes.flat)
    assert left.axison and not right.axison
    assert len(fig.axes) == 2 + axes.size


@pytest.mark.parametrize(
    "change, message",
    [
        ({"support": np.zeros((6, 63))}, r"pass image_shape=\(height, width\)"),
        ({"support_labels": [0, 1]}, r"one label per sample of support \(6\)"),
        ({"query_labels": [0, 0, 1, 1, 2, 7]}, r"query labels \['7'\] are not classes"),
        ({"predicted": [0]}, r"one label per sample of query \(6\)"),
        ({"image_shape": (4, 4)}, "do not make images of shape"),
        ({"query": np.zeros((6, 1, 4, 4))}, r"query images have shape \(4, 4\)"),
        ({"support": np.zeros((6, 5, 8, 8))}, r"1 \(grey\), 3 \(RGB\) or 4"),
    ],
    ids=["not-square", "support-labels", "unknown-class", "predicted", "shape", "query", "rgb"],
)
def test_episode_grid_errors(episode, change, message):
    support, support_labels, query, query_labels = episode
    arguments = {
        "support": support,
        "support_labels": support_labels,
        "query": query,
        "query_labels": query_labels,
        **change,
    }
    with pytest.raises(ValueError, match=message):
        plot_episode(**arguments)


# -- plot_learning_curves ------------------------------------------------------


def _epoch(epoch, train_loss, valid_loss, train_acc, valid_acc):
    return {
        "epoch": epoch,
        "batches": [],
        "train_loss": train_loss,
        "train_loss_best": True,
        "train_acc": train_acc,
        "valid_loss": valid_loss,
        "valid_acc": valid_acc,
        "dur": 0.1,
    }


HISTORY = [
    _epoch(1, 1.5, 1.6, 0.4, 0.35),
    _epoch(2, 1.1, 1.3, 0.6, 0.5),
    _epoch(3, 0.9, 1.2, 0.7, 0.55),
]


def _labels(ax):
    return [line.get_label() for line in ax.get_lines()]


def test_learning_curves_of_a_history():
    ax = plot_learning_curves(History(HISTORY))
    twin = ax.figure.axes[-1]  # the accuracies' own scale, on the right
    assert twin is not ax
    assert _labels(ax) == ["train_loss", "valid_loss"]
    assert _labels(twin) == ["train_acc", "valid_acc"]
    np.testing.assert_array_equal(ax.get_lines()[1].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [1.6, 1.3, 1.2])
    np.testing.assert_allclose(twin.get_lines()[1].get_ydata(), [0.35, 0.5, 0.55])
    assert ax.get_lines()[1].get_linestyle() == "--"  # validation dashed
    assert (ax.get_xlabel(), ax.get_ylabel(), twin.get_ylabel()) == ("epoch", "loss", "accuracy")
    legend = [text.get_text() for text in twin.get_legend().get_texts()]
    assert legend == ["train_loss", "valid_loss", "train_acc", "valid_acc"]


def test_learning_curves_of_chosen_keys():
    ax = plot_learning_curves(HISTORY, keys="valid_acc")
    assert len(ax.figure.axes) == 1 and _labels(ax) == ["valid_acc"]
    assert ax.get_ylabel() == "accuracy"
    ax = plot_learning_curves(HISTORY, keys=["dur"])
    assert _labels(ax) == ["dur"] and ax.get_ylabel() == "dur"
    # Epochs without a key leave it out; losses alone need no second scale.
    history = [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5, "valid_loss": 0.7}]
    ax = plot_learning_curves(history)
    assert len(ax.figure.axes) == 1 and _labels(ax) == ["train_loss", "valid_loss"]
    np.testing.assert_array_equal(ax.get_lines()[1].get_xdata(), [2])


def test_learning_curves_of_a_meta_learner(digits):
    from methods import tiny_learner

    X, y = digits
    split = ValidClassSplit(valid_size=3, random_state=0)  # 3 base classes held out
    learner = tiny_learner("prototypical", train_split=split, valid_episodes=2)
    learner.fit(X[y < 6], y[y < 6])
    ax = plot_learning_curves(learner)
    labels = [label for axes in ax.figure.axes for label in _labels(axes)]
    assert labels == ["train_loss", "valid_loss", "train_acc", "valid_acc"]
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [1, 2])  # max_epochs=2


@pytest.mark.parametrize(
    "history, kwargs, error, message",
    [
        (PrototypicalLearner(), {}, NotFittedError, "PrototypicalLearner instance is not fitted"),
        (HISTORY, {"keys": ["valid_f1"]}, ValueError, "'valid_f1' not in the history"),
        (HISTORY, {"keys": []}, ValueError, "keys is empty"),
        ([{"epoch": 1, "dur": 0.1}], {}, ValueError, "pass keys= among its numbers: dur"),
        ([], {}, ValueError, "the history has no epochs"),
        (42, {}, TypeError, "a skorch History or a list of dicts"),
    ],
    ids=["not-fitted", "unknown-key", "no-keys", "no-curves", "empty", "not-a-history"],
)
def test_learning_curves_errors(history, kwargs, error, message):
    with pytest.raises(error, match=message):
        plot_learning_curves(history, **kwargs)


# -- plot_accuracy -------------------------------------------------------------

#: (n_way, n_shot) -> accuracy, each with a 95% interval of ± 0.02
ACCURACY = {(5, 1): 0.7, (5, 5): 0.9, (10, 1): 0.6, (10, 5): 0.8}
RESULTS = [
    {"n_way": n_way, "n_shot": n_shot, "accuracy": accuracy, "ci95": 0.02}
    for (n_way, n_shot), accuracy in ACCURACY.items()
]


def test_accuracy_against_shots_has_a_line_and_a_band_per_way():
    ax = plot_accuracy(RESULTS)
    assert _labels(ax) == ["5-way", "10-way"]
    np.testing.assert_array_equal(ax.get_lines()[1].get_xdata(), [1, 5])
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [0.6, 0.8])
    assert len(ax.collections) == 2  # the confidence bands
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    np.testing.assert_allclose([band.min(), band.max()], [0.68, 0.92])
    assert list(ax.get_xticks()) == [1, 5]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("shots per class (K)", "accuracy")
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["5-way", "10-way"]


def test_accuracy_against_ways_of_benchmark_results(tmp_path):
    percent = [{**row, "accuracy": 100 * row["accuracy"], "ci95": 2.0} for row in RESULTS]
    path = tmp_path / "protonet_omniglot.json"
    path.write_text(json.dumps({"method": "protonet", "results": percent}))
    ax = plot_accuracy(path, x="ways")
    assert _labels(ax) == ["1-shot", "5-shot"]
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [5, 10])
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [70, 60])
    assert ax.get_ylabel() == "accuracy (%)"
    # Several runs: a set of lines for each, labelled with its method.
    ax = plot_accuracy([path, {"method": "maml", "results": percent}], x="ways")
    assert _labels(ax) == ["protonet, 1-shot", "protonet, 5-shot", "maml, 1-shot", "maml, 5-shot"]


def test_accuracy_of_evaluate_episodes(digits):
    X, y = digits
    results = [
        {
            "n_way": 5,
            "n_shot": n_shot,
            **evaluate_episodes(
                PrototypicalClassifier(),
                X,
                y,
                n_shot=n_shot,
                n_query=5,
                n_episodes=5,
                random_state=0,
            ),
        }
        for n_shot in (1, 3)
    ]
    ax = plot_accuracy(results)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [r["accuracy"] for r in results])
    # The per-episode scores alone give the same mean (mean_confidence_interval).
    ax = plot_accuracy([{"n_shot": r["n_shot"], "scores": r["scores"]} for r in results])
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [r["accuracy"] for r in results])
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    lowest = min(r["accuracy"] - r["ci95"] for r in results)
    np.testing.assert_allclose(band.min(), lowest)
    assert ax.get_legend() is None  # one unnamed line


@pytest.mark.parametrize(
    "results, kwargs, error, message",
    [
        (RESULTS, {"x": "queries"}, ValueError, "x must be 'shots' or 'ways'"),
        ([{"n_way": 5, "accuracy": 0.5, "ci95": 0.1}], {}, ValueError, "has no 'n_shot'"),
        ([{"n_shot": 1, "accuracy": 0.5}], {}, ValueError, "neither 'accuracy' and 'ci95' nor"),
        (RESULTS + RESULTS[:1], {}, ValueError, "two results for n_shot=1"),
        ([{"n_shot": "1", "accuracy": 0.5, "ci95": 0.1}], {}, ValueError, "must be a number"),
        ([], {}, ValueError, "no results to plot"),
        (RESULTS[0], {}, TypeError, "wrap a single result in a list"),
        ([0.5], {}, TypeError, "result 0 is a float, not a dict"),
        ([{"results": "none"}], {}, ValueError, "not a benchmark result"),
    ],
    ids=["x", "no-x", "no-accuracy", "twice", "not-a-number", "empty", "a-dict", "float", "run"],
)
def test_accuracy_errors(results, kwargs, error, message):
    with pytest.raises(error, match=message):
        plot_accuracy(results, **kwargs)


# -- plot_benchmark ------------------------------------------------------------


def _run(method, accuracies):
    rows = [
        {"n_way": n_way, "n_shot": n_shot, "accuracy": accuracy, "ci95": 0.3}
        for (n_way, n_shot), accuracy in accuracies.items()
    ]
    return {"method": method, "dataset": "omniglot", "train_episodes": 100, "results": rows}


PROTONET = _run("protonet", {(5, 1): 97.0, (5, 5): 99.0, (20, 1): 92.0, (20, 5): 97.5})
MAML = _run("maml", {(5, 1): 96.0, (5, 5): 98.5, (20, 1): 90.0})  # no 20-way 5-shot


def _bars(ax):
    return [container for container in ax.containers if isinstance(container, BarContainer)]


def test_benchmark_figure_groups_the_runs_by_setting(tmp_path):
    path = tmp_path / "maml_omniglot.json"
    path.write_text(json.dumps(MAML))
    published = {"protonet": {(5, 1): 98.8, (20, 5): 98.9, (5, 5): "n/a"}}
    ax = plot_benchmark([PROTONET, path], published=published)
    settings = ["5-way 1-shot", "5-way 5-shot", "20-way 1-shot", "20-way 5-shot"]
    assert [label.get_text() for label in ax.get_xticklabels()] == settings
    assert len(ax.patches) == 7
    protonet, maml = _bars(ax)
    assert (protonet.get_label(), maml.get_label()) == ("protonet", "maml")
    assert [bar.get_height() for bar in protonet] == [97.0, 99.0, 92.0, 97.5]
    # Side by side in each group: 0.4 wide slots at -0.2 and +0.2 of the setting.
    centres = [bar.get_x() + bar.get_width() / 2 for bar in maml]
    np.testing.assert_allclose(centres, [0.2, 1.2, 2.2])
    (mark,) = [c for c in ax.collections if c.get_label() == "published"]
    np.testing.assert_allclose(mark.get_segments()[0], [[-0.38, 98.8], [-0.02, 98.8]])
    legend = {text.get_text() for text in ax.get_legend().get_texts()}
    assert legend == {"protonet", "maml", "published"}
    assert ax.get_title() == "omniglot" and ax.get_ylabel() == "accuracy (%)"
    bottom, top = ax.get_ylim()
    assert 80 < bottom < 90 - 0.3 and top > 99.3


def test_benchmark_figure_labels():
    ax = plot_benchmark([PROTONET, PROTONET])
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["protonet (1)", "protonet (2)"]
    ax = plot_benchmark(PROTONET, labels=["ProtoNet (Snell et al.)"])
    assert [bars.get_label() for bars in _bars(ax)] == ["ProtoNet (Snell et al.)"]
    assert ax.get_legend() is None  # one run, nothing to tell apart


@pytest.mark.parametrize(
    "table, kwargs, message",
    [
        ({"method": "protonet"}, {}, "is not a benchmark result"),
        ({"results": [{"n_way": 5, "accuracy": 90.0, "ci95": 1.0}]}, {}, "has no n_shot"),
        ({"results": []}, {}, "hold no settings"),
        (PROTONET, {"labels": ["a", "b"]}, "2 labels for 1 benchmark results"),
        (PROTONET, {"published": {"ProtoNet": {(5, 1): 98.8}}}, "published figures for 'ProtoNet'"),
        (PROTONET, {"published": {"protonet": {"5w1s": 98.8}}}, r"keyed by \(n_way, n_shot\)"),
    ],
    ids=["not-a-result", "no-shot", "empty", "labels", "published-label", "published-key"],
)
def test_benchmark_figure_errors(table, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plot_benchmark(table, **kwargs)


def test_missing_matplotlib_says_how_to_install_it(monkeypatch, episode):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    install = re.escape('pip install "skfewshot[plot]"')
    for plot, arguments in [
        (plot_episode, episode),
        (plot_learning_curves, (HISTORY,)),
        (plot_accuracy, (RESULTS,)),
        (plot_benchmark, (PROTONET,)),
    ]:
        with pytest.raises(ImportError, match=f"{plot.__name__} needs matplotlib.*{install}"):
            plot(*arguments)
