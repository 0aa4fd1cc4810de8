"""benchmarks/frontier.py: the recipes it trains, its resumable points and its figure."""

import json
from pathlib import Path

import pytest
from benchmark_scripts import load_script


@pytest.fixture
def frontier(monkeypatch):
    """The script, with the CLI's ``benchmark`` recording its flags instead of training."""

    def fake_benchmark(args):
        if args.output != "none":
            Path(args.output).write_bytes(b"saved")
        return {
            "train_seconds": 60 * args.max_time,
            "results": [
                {"n_way": n, "n_shot": 1, "accuracy": 90.0 + n / 10, "ci95": 0.3} for n in args.ways
            ],
        }

    return load_script("frontier", monkeypatch, fake_benchmark)


def test_a_recipe_is_one_budgeted_command_line_run(frontier, tmp_path):
    record = frontier.run_point("best", 3, tmp_path)
    (args,) = frontier.calls
    assert args.method == "pretraining" and args.precision == "bfloat16"
    assert args.test_time_augmentation == 8 and args.classifier_param == [("distance", "cosine")]
    assert args.max_time == 3 and args.episodes is None and args.shots == [1]
    assert record["accuracy"] == {"5w1s": (90.5, 0.3), "20w1s": (92.0, 0.3)}
    assert list(tmp_path.iterdir()) == []  # the runs' own files are cleaned up


def test_finetuning_starts_from_the_pretrained_encoder_within_the_budget(frontier, tmp_path):
    record = frontier.run_point("pretraining+finetune", 10, tmp_path)
    first, second = frontier.calls
    assert first.method == "pretraining" and first.max_time == pytest.approx(8)
    assert second.method == "protonet" and second.max_time == pytest.approx(2)
    assert second.encoder_from == first.output and second.lr == 1e-4
    assert record["train_seconds"] == pytest.approx(600)
    assert list(tmp_path.iterdir()) == []


def test_points_already_measured_are_not_run_again_and_the_figure_is_drawn(frontier, tmp_path):
    done = {"recipe": "protonet", "minutes": 1.0, "train_seconds": 60, "accuracy": {}}
    done["accuracy"] = {"5w1s": [95.0, 0.4], "20w1s": [85.0, 0.3]}
    (tmp_path / "protonet_1min.json").write_text(json.dumps(done))
    figure = tmp_path / "frontier.png"
    records = frontier.main(
        ["--recipes", "protonet,best", "--budgets", "1", "--out-dir", str(tmp_path)]
        + ["--figure", str(figure)]
    )
    assert [args.method for args in frontier.calls] == ["pretraining"]  # only "best" ran
    assert sorted(r["recipe"] for r in records) == ["best", "protonet"]
    assert figure.stat().st_size > 1000


def test_an_unknown_recipe_is_refused(frontier, tmp_path):
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        frontier.run_point("nope", 1, tmp_path)


def test_the_table_lists_each_measured_point(frontier, tmp_path, capsys):
    for name, minutes in [("protonet", 1), ("protonet", 3), ("best", 3)]:
        record = {"recipe": name, "minutes": float(minutes), "train_seconds": 60 * minutes}
        record["accuracy"] = {"5w1s": [95.0 + minutes, 0.4], "20w1s": [85.0, 0.3]}
        (tmp_path / f"{name}_{minutes}min.json").write_text(json.dumps(record))
    frontier.main(["--plot-only", "--markdown", "--budgets", "1,3", "--out-dir", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| recipe (5-way / 20-way 1-shot) | 1 min | 3 min |"
    assert lines[2] == "| episodic ProtoNet (CLI defaults) | 96.00 / 85.00 | 98.00 / 85.00 |"
    assert lines[3].endswith("|  | 98.00 / 85.00 |") and len(lines) == 4
