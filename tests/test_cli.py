import json
import re
import subprocess
import sys
from types import SimpleNamespace

import joblib
import numpy as np
import pytest
import torch

from skfewshot import PrototypicalClassifier
from skfewshot._cli import build_parser, main


def test_benchmark_command_on_digits(tmp_path, capsys):
    out, js = tmp_path / "clf.joblib", tmp_path / "result.json"
    main(
        [
            "benchmark",
            "--dataset",
            "digits",
            "--episodes",
            "40",
            "--episodes-per-epoch",
            "20",
            "--test-episodes",
            "30",
            "--quiet",
            "--output",
            str(out),
            "--json",
            str(js),
        ]
    )
    printed = capsys.readouterr().out
    assert "5-way 1-shot" in printed and "10-way 5-shot" in printed
    result = json.loads(js.read_text())
    assert result["train_episodes"] == 40 and len(result["results"]) == 4
    assert all(0 <= row["accuracy"] <= 100 for row in result["results"])
    clf = joblib.load(out)
    assert isinstance(clf, PrototypicalClassifier)
    rng = np.random.RandomState(0)
    X = rng.rand(6, 1, 8, 8).astype(np.float32)
    assert clf.fit(X, [0, 0, 1, 1, 2, 2]).predict(X).shape == (6,)


def test_python_m_skfewshot_help():
    done = subprocess.run(
        [sys.executable, "-m", "skfewshot", "benchmark", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--method" in done.stdout and "--data-home" in done.stdout


def test_param_flag_reads_literals_and_strings():

    args = build_parser().parse_args(
        [
            "benchmark",
            "--param",
            "scale=10",
            "--param",
            "encoder__hidden_features=(16,)",
            "--param",
            "distance=cosine",
        ]
    )
    assert dict(args.param) == {
        "scale": 10,
        "encoder__hidden_features": (16,),
        "distance": "cosine",
    }


def test_benchmark_command_runs_gradient_methods_on_images(tmp_path):
    from skfewshot import MetaSGDClassifier

    out, js = tmp_path / "clf.joblib", tmp_path / "result.json"
    main(
        [
            "benchmark",
            "--dataset",
            "digits",
            "--method",
            "metasgd",
            "--episodes",
            "8",
            "--episodes-per-epoch",
            "4",
            "--test-episodes",
            "5",
            "--test-inner-steps",
            "2",
            "--ways",
            "5",
            "--shots",
            "1",
            "--quiet",
            "--output",
            str(out),
            "--json",
            str(js),
        ]
    )
    result = json.loads(js.read_text())
    assert result["method"] == "metasgd" and len(result["results"]) == 1
    clf = joblib.load(out)
    assert isinstance(clf, MetaSGDClassifier) and clf.rule is not None


def test_max_time_stops_meta_training_early(tmp_path, capsys, monkeypatch):
    import skfewshot.callbacks as callbacks_module

    # The budget's clock advances by a minute at every reading (one at the start, one
    # per meta-batch): 2.5 minutes are spent at the 3rd meta-batch, on any machine.
    minutes = iter(range(10**6))
    clock = SimpleNamespace(perf_counter=lambda: 60.0 * next(minutes))
    monkeypatch.setattr(callbacks_module, "time", clock)
    js = tmp_path / "result.json"
    main(
        [
            "benchmark",
            "--dataset",
            "digits",
            "--episodes",
            "40",
            "--episodes-per-epoch",
            "20",
            "--max-time",
            "2.5",
            "--test-episodes",
            "10",
            "--ways",
            "5",
            "--shots",
            "1",
            "--quiet",
            "--output",
            "none",
            "--json",
            str(js),
        ]
    )
    printed = capsys.readouterr().out
    assert "within a 2.5-minute time budget" in printed
    assert "3 of 40 episodes: the 2.5-minute time budget stopped it early" in printed
    result = json.loads(js.read_text())
    assert result["max_time_minutes"] == 2.5 and result["stopped_early"] is True
    assert result["train_episodes"] == 3 and result["planned_episodes"] == 40
    assert len(result["results"]) == 1


def test_max_time_not_reached_trains_every_episode(tmp_path):
    js = tmp_path / "result.json"
    main(
        [
            "benchmark",
            "--dataset",
            "digits",
            "--episodes",
            "8",
            "--episodes-per-epoch",
            "4",
            "--max-time",
            "60",
            "--test-episodes",
            "5",
            "--ways",
            "5",
            "--shots",
            "1",
            "--quiet",
            "--output",
            "none",
            "--json",
            str(js),
        ]
    )
    result = json.loads(js.read_text())
    assert result["stopped_early"] is False and result["train_episodes"] == 8


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf"])
def test_max_time_must_be_a_positive_number(value, capsys):

    with pytest.raises(SystemExit):
        build_parser().parse_args(["benchmark", "--max-time", value])
    assert "positive number of minutes" in capsys.readouterr().err


@pytest.mark.parametrize(
    "options, n_classes",
    [
        (["--dataset", "digits", "--validation"], 8),
        (["--validation"], 192),  # a fifth of the 964 background characters, unrotated
        (["--protocol", "vinyals", "--validation"], 688),
    ],
)
def test_validation_classes_for_recipe_choices(options, n_classes, capsys, omniglot_small):
    # omniglot_small only skips the test where the Omniglot archives are absent.
    main(
        [
            "benchmark",
            *options,
            "--method",
            "pretraining",
            "--episodes",
            "2",
            "--episodes-per-epoch",
            "2",
            "--ways",
            "5",
            "--shots",
            "1",
            "--test-episodes",
            "2",
            "--param",
            "batch_size=8",
            "--param",
            "head=CosineHead",
            "--param",
            "augmentation=RandomAffine",
            "--quiet",
            "--output",
            "none",
        ]
    )
    assert f": {n_classes} validation classes" in capsys.readouterr().out


def test_max_time_alone_trains_until_the_budget_with_the_schedule_over_the_time(
    tmp_path, capsys, monkeypatch
):
    import skfewshot.callbacks as callbacks_module

    minutes = iter(range(10**6))
    clock = SimpleNamespace(perf_counter=lambda: 60.0 * next(minutes))
    monkeypatch.setattr(callbacks_module, "time", clock)
    js = tmp_path / "result.json"
    main(
        ["benchmark", "--dataset", "digits", "--max-time", "4", "--test-episodes", "5"]
        + ["--ways", "5", "--shots", "1", "--quiet", "--output", "none", "--json", str(js)]
    )
    printed = capsys.readouterr().out
    assert "within a 4-minute time budget (the schedule over the time)" in printed
    assert ", 4 episodes: the 4-minute time budget stopped it early" in printed
    result = json.loads(js.read_text())
    assert result["train_episodes"] == 4 and result["planned_episodes"] is None


def test_precision_reaches_the_learner(tmp_path, capsys):
    out = tmp_path / "clf.joblib"
    main(
        ["benchmark", "--dataset", "digits", "--episodes", "4", "--episodes-per-epoch", "2"]
        + ["--precision", "bfloat16", "--test-episodes", "3", "--ways", "5", "--shots", "1"]
        + ["--quiet", "--output", str(out)]
    )
    assert "bfloat16 mixed precision" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        build_parser().parse_args(["benchmark", "--precision", "float16"])


def test_encoder_from_starts_from_a_saved_encoder(tmp_path):
    first, second = tmp_path / "first.joblib", tmp_path / "second.joblib"
    common = ["--dataset", "digits", "--episodes-per-epoch", "2", "--test-episodes", "3"]
    common += ["--ways", "5", "--shots", "1", "--quiet"]
    main(["benchmark", *common, "--episodes", "4", "--output", str(first)])
    main(
        ["benchmark", *common, "--episodes", "2", "--lr", "1e-12", "--output", str(second)]
        + ["--encoder-from", str(first)]
    )
    # With a vanishing learning rate the second run keeps the first run's weights.
    ours = joblib.load(second).encoder.state_dict()
    for key, value in joblib.load(first).encoder.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(ours[key], value, atol=1e-6), key
    joblib.dump(PrototypicalClassifier(), tmp_path / "plain.joblib")
    with pytest.raises(ValueError, match="without a trained encoder"):
        main(["benchmark", *common, "--encoder-from", str(tmp_path / "plain.joblib")])


def test_param_names_a_component_with_keyword_arguments():
    from skfewshot._cli import _named_class
    from skfewshot.datasets import RandomAffine
    from skfewshot.nn import CosineHead

    affine = _named_class("RandomAffine(rotation=15, translate=0.1)")
    assert isinstance(affine, RandomAffine) and (affine.rotation, affine.translate) == (15, 0.1)
    assert isinstance(_named_class("RandomAffine"), RandomAffine)  # its defaults
    assert _named_class("CosineHead") is CosineHead  # a module: the class
    assert isinstance(_named_class("CosineHead(in_features=2, out_features=3)"), CosineHead)
    for text in ["RandomAffine(1)", "RandomAffine(x=open('f'))", "RandomAffine(**d)", "A(b"]:
        with pytest.raises(ValueError, match="keyword arguments of literal values"):
            _named_class(text)
    with pytest.raises(ValueError, match="'Nope' is not a class"):
        _named_class("Nope(a=1)")


def test_classifier_param_reaches_the_saved_classifier(tmp_path):
    out = tmp_path / "clf.joblib"
    common = ["benchmark", "--dataset", "digits", "--episodes", "2", "--episodes-per-epoch", "2"]
    common += ["--test-episodes", "3", "--ways", "5", "--shots", "1", "--quiet"]
    main([*common, "--classifier-param", "distance=cosine", "--output", str(out)])
    assert joblib.load(out).distance == "cosine"
    # A name the classifier does not take fails before any training.
    with pytest.raises(ValueError, match="PrototypicalClassifier .* has no parameter 'distanc'"):
        main([*common, "--classifier-param", "distanc=cosine", "--output", "none"])


def test_lr_defaults_to_the_learner_own(capsys):
    common = ["benchmark", "--dataset", "digits", "--episodes", "2", "--episodes-per-epoch", "2"]
    common += ["--test-episodes", "2", "--ways", "5", "--shots", "1", "--output", "none"]
    main([*common, "--method", "reptile"])  # Reptile's outer SGD step: 1.0
    assert re.search(r"learning rate from 1\b(?!\.)", capsys.readouterr().out)
    main([*common, "--lr", "0.005"])
    assert re.search(r"learning rate from 0.005\b", capsys.readouterr().out)
