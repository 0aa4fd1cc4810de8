import json
import subprocess
import sys

import joblib
import numpy as np

from skfewshot import PrototypicalClassifier
from skfewshot._cli import main


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
    from skfewshot._cli import build_parser

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
