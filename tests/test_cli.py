import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
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
    captured = capsys.readouterr()
    printed = captured.out
    assert "5-way 1-shot" in printed and "10-way 5-shot" in printed
    # --quiet: no progress bars (they go to stderr) and no epoch log.
    assert "meta-training" not in captured.err and "evaluating" not in captured.err
    assert "train_loss" not in printed
    # The table: a header in line with its rows (both columns right-aligned).
    lines = printed.splitlines()
    at = next(i for i, line in enumerate(lines) if "accuracy (%)" in line)
    header, rows = lines[at], lines[at + 2 : at + 6]
    assert set(lines[at + 1]) == {"-", " "}
    for row in rows:
        assert re.fullmatch(r" *\d+-way \d+-shot +\d+\.\d\d ± \d+\.\d\d", row), row
        assert len(row) == len(header)
        assert row.index("-shot") + len("-shot") == header.index("setting") + len("setting")
    assert [row.split()[0] for row in rows] == ["5-way", "5-way", "10-way", "10-way"]
    result = json.loads(js.read_text())
    assert result["train_episodes"] == 40 and len(result["results"]) == 4
    assert all(0 <= row["accuracy"] <= 100 for row in result["results"])
    clf = joblib.load(out)
    assert isinstance(clf, PrototypicalClassifier)
    rng = np.random.RandomState(0)
    X = rng.rand(6, 1, 8, 8).astype(np.float32)
    assert clf.fit(X, [0, 0, 1, 1, 2, 2]).predict(X).shape == (6,)


@pytest.mark.parametrize(
    "method, flags, episodes",
    [
        ("maml", [], "20-way 1-shot 5-query"),  # MAMLLearner's default episodes
        ("fomaml", [], "20-way 1-shot 5-query"),  # MAMLLearner's, first order
        ("fomaml", ["--train-way", "6", "--train-query", "4"], "6-way 1-shot 4-query"),
    ],
)
def test_training_episodes_are_the_method_defaults_unless_flags_set_them(
    method, flags, episodes, capsys
):
    main(
        ["benchmark", "--dataset", "digits", "--method", method, *flags]
        + ["--episodes", "4", "--episodes-per-epoch", "4", "--test-episodes", "1"]
        + ["--ways", "5", "--shots", "1", "--quiet", "--output", "none"]
    )
    assert f": 4 episodes of {episodes}," in capsys.readouterr().out


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


def test_encoder_from_starts_from_a_saved_encoder(tmp_path, capsys):
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
    capsys.readouterr()
    # A file without an encoder, or no file: an argparse-style error (status 2), no training.
    for path, message in [("plain.joblib", "without a trained encoder"), ("nope", "cannot read")]:
        with pytest.raises(SystemExit) as exited:
            main(["benchmark", *common, "--encoder-from", str(tmp_path / path)])
        assert exited.value.code == 2
        captured = capsys.readouterr()
        error = captured.err.splitlines()[-1]
        assert error.startswith("skfewshot benchmark: error: argument --encoder-from: ")
        assert message in error and "Meta-training" not in captured.out


def test_param_names_a_component_with_keyword_arguments():
    from skfewshot._cli._params import named_class
    from skfewshot.datasets import RandomAffine
    from skfewshot.nn import CosineHead

    affine = named_class("RandomAffine(rotation=15, translate=0.1)")
    assert isinstance(affine, RandomAffine) and (affine.rotation, affine.translate) == (15, 0.1)
    assert isinstance(named_class("RandomAffine"), RandomAffine)  # its defaults
    assert named_class("CosineHead") is CosineHead  # a module: the class
    assert isinstance(named_class("CosineHead(in_features=2, out_features=3)"), CosineHead)
    for text in ["RandomAffine(1)", "RandomAffine(x=open('f'))", "RandomAffine(**d)", "A(b"]:
        with pytest.raises(ValueError, match="keyword arguments of literal values"):
            named_class(text)
    with pytest.raises(ValueError, match="'Nope' is not a class"):
        named_class("Nope(a=1)")


def test_classifier_param_reaches_the_saved_classifier(tmp_path, capsys):
    out = tmp_path / "clf.joblib"
    common = ["benchmark", "--dataset", "digits", "--episodes", "2", "--episodes-per-epoch", "2"]
    common += ["--test-episodes", "3", "--ways", "5", "--shots", "1", "--quiet"]
    main([*common, "--classifier-param", "distance=cosine", "--output", str(out)])
    assert joblib.load(out).distance == "cosine"
    capsys.readouterr()
    # A name the classifier does not take fails before any training, as a bad flag does.
    with pytest.raises(SystemExit) as exited:
        main([*common, "--classifier-param", "distanc=cosine", "--output", "none"])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert re.search(r"PrototypicalClassifier .* has no parameter 'distanc'", captured.err)
    assert "Meta-training" not in captured.out


def test_lr_defaults_to_the_learner_own(capsys):
    common = ["benchmark", "--dataset", "digits", "--episodes", "2", "--episodes-per-epoch", "2"]
    common += ["--test-episodes", "2", "--ways", "5", "--shots", "1", "--output", "none"]
    main([*common, "--method", "reptile"])  # Reptile's outer SGD step: 1.0
    assert re.search(r"learning rate from 1\b(?!\.)", capsys.readouterr().out)
    main([*common, "--lr", "0.005"])
    assert re.search(r"learning rate from 0.005\b", capsys.readouterr().out)


def test_every_flag_has_help():
    parser = build_parser()
    parsers = [parser] + [
        command
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for command in action.choices.values()
    ]
    assert len(parsers) > 1  # the benchmark command at least
    missing = [
        f"{command.prog} {'/'.join(action.option_strings) or action.dest}"
        for command in parsers
        for action in command._actions
        if not (action.help or "").strip() or action.help == argparse.SUPPRESS
    ]
    assert not missing, f"flags without help: {missing}"
    for command in parsers:
        command.format_help()  # renders (no stray % in a help string)


DIGITS = ["benchmark", "--dataset", "digits", "--ways", "5", "--shots", "1"]


@pytest.mark.parametrize(
    "flags, error",
    [
        (
            ["--param", "n_wya=5"],
            "argument --param: PrototypicalLearner (the learner of --method protonet) has no "
            "parameter 'n_wya' (did you mean 'n_way'?); its parameters: ",
        ),
        (
            ["--param", "encoder__hidden_featurs=(16,)"],
            "argument --param: encoder__hidden_featurs: the encoder MLP has no parameter "
            "'hidden_featurs' (did you mean 'hidden_features'?); its parameters: in_features, ",
        ),
        (["--param", "n_query=many"], "PrototypicalLearner: n_query must be an integer >= 1"),
        (["--param", "max_epochs=3"], "argument --param: max_epochs is set by --episodes;"),
        (["--param", "augmentation=Nope"], "argument --param: 'Nope' is not a class of"),
        (
            ["--classifier-param", "distance=cosin"],
            "argument --classifier-param: PrototypicalClassifier: distance must be one of",
        ),
        (
            ["--classifier-param", "distanc=cosine"],
            "argument --classifier-param: PrototypicalClassifier (the classifier of --method "
            "protonet) has no parameter 'distanc' (did you mean 'distance'?); its parameters: ",
        ),
    ],
)
def test_bad_param_is_an_argparse_error(flags, error, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*DIGITS, *flags, "--quiet", "--output", "none"])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("usage: skfewshot benchmark ")
    assert captured.err.splitlines()[-1].startswith(f"skfewshot benchmark: error: {error}")
    assert "Traceback" not in captured.err and "Meta-training" not in captured.out


def test_unknown_param_lists_the_valid_names(capsys):
    with pytest.raises(SystemExit):
        main([*DIGITS, "--param", "scal=10", "--quiet", "--output", "none"])
    error = capsys.readouterr().err.splitlines()[-1]
    names = error.split("its parameters: ")[1]
    assert "n_way, " in names and "scale, " in names and "episodes_per_epoch, " in names
    assert "<name>__<parameter> for " in names and "encoder" in names.split(" for ")[1]


def test_no_download_with_missing_data_names_the_flag_to_drop(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["benchmark", "--no-download", "--data-home", str(tmp_path), "--quiet"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "skfewshot benchmark: error: argument --no-download: Omniglot is missing from "
        f"{tmp_path / 'omniglot'}: drop --no-download to download it, or pass --data-home DIR "
        "where omniglot/ lives.\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_progress_on_stderr_and_no_colours_in_redirected_output(capsys):
    main(
        [*DIGITS, "--episodes", "8", "--episodes-per-epoch", "4", "--test-episodes", "3"]
        + ["--output", "none"]
    )
    captured = capsys.readouterr()
    # One bar over all the epochs (8 episodes in 2 epochs), one over the evaluation episodes.
    assert "meta-training: 100%" in captured.err and "8/8" in captured.err
    assert "epoch 2/2" in captured.err
    assert "evaluating: 100%" in captured.err and "3/3" in captured.err
    assert "5-way 1-shot" in captured.err  # the setting being evaluated
    # The epoch log and the table on stdout, without the log's ANSI colours.
    assert "train_loss" in captured.out and "accuracy (%)" in captured.out
    assert "\x1b[" not in captured.out


@pytest.mark.parametrize("how", ["sigint", "keyboard-interrupt"])
def test_interrupted_training_exits_130_and_saves_nothing(how, tmp_path, capsys, monkeypatch):
    # skorch's fit catches the KeyboardInterrupt of a Ctrl+C and returns a half-trained
    # learner: the command must tell, by the SIGINT it noted or the epochs left undone.
    from skfewshot._cli._console import TrainingProgress

    end_of_epoch = TrainingProgress.on_epoch_end

    def ctrl_c_after_epoch_1(self, net, **kwargs):
        end_of_epoch(self, net, **kwargs)
        if self.epochs_ == 1:
            if how == "sigint":
                signal.raise_signal(signal.SIGINT)
            else:
                raise KeyboardInterrupt

    monkeypatch.setattr(TrainingProgress, "on_epoch_end", ctrl_c_after_epoch_1)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        status = main(
            [*DIGITS, "--episodes", "40", "--episodes-per-epoch", "4", "--test-episodes", "3"]
            + ["--output", str(tmp_path / "clf.joblib"), "--json", str(tmp_path / "r.json")]
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    assert status == 130
    captured = capsys.readouterr()
    assert captured.err.splitlines()[-1] == (
        "skfewshot: interrupted after 1 of 10 epochs of meta-training; nothing was saved."
    )
    assert "accuracy (%)" not in captured.out and "Saved the classifier" not in captured.out
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_interrupted_evaluation_exits_130_and_saves_nothing(tmp_path, capsys, monkeypatch):
    from skfewshot._cli import _benchmark

    class Fitted:  # a fitted episode's classifier, as the scorer receives it
        def score(self, X, y):
            return 1.0

    def interrupted(estimator, X, y, *, scoring, **kwargs):
        scoring(Fitted(), X[:5], y[:5])
        scoring(Fitted(), X[:5], y[:5])
        raise KeyboardInterrupt

    monkeypatch.setattr(_benchmark, "evaluate_episodes", interrupted)
    status = main(
        [*DIGITS, "--episodes", "4", "--episodes-per-epoch", "2", "--test-episodes", "5"]
        + ["--quiet", "--output", str(tmp_path / "clf.joblib"), "--json", str(tmp_path / "r.json")]
    )
    assert status == 130
    captured = capsys.readouterr()
    assert captured.err.splitlines()[-1] == (
        "skfewshot: interrupted while evaluating, after 2 of 5 test episodes; nothing was saved."
    )
    assert "accuracy (%)" not in captured.out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process: POSIX")
def test_sigint_stops_the_benchmark_command(tmp_path):
    # The real thing: Ctrl+C (SIGINT) to `python -m skfewshot benchmark` while it trains.
    out, js = tmp_path / "clf.joblib", tmp_path / "result.json"
    stdout_path, stderr_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    command = [sys.executable, "-m", "skfewshot", *DIGITS, "--episodes", "100000"]
    command += ["--episodes-per-epoch", "20", "--output", str(out), "--json", str(js)]

    def restore_sigint():  # a SIGINT ignored here (a background job) would stay ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    with open(stdout_path, "w") as stdout, open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            command,
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=restore_sigint if ignored else None,
        )
        try:
            # Training runs once the bar is on stderr and epoch 1's log line on stdout.
            deadline = time.monotonic() + 25
            while "meta-training" not in stderr_path.read_text() or (
                "train_loss" not in stdout_path.read_text()
            ):
                assert process.poll() is None, stderr_path.read_text()
                assert time.monotonic() < deadline, "no training after 25 s"
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            status = process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    printed, err = stdout_path.read_text(), stderr_path.read_text()
    assert status == 130, err
    last = err.rstrip().splitlines()[-1]
    assert re.fullmatch(
        r"skfewshot: interrupted after \d+ of 5000 epochs of meta-training; nothing was saved\.",
        last,
    ), err
    assert "Traceback" not in err
    assert "Meta-training PrototypicalLearner" in printed  # it did start
    assert "accuracy (%)" not in printed and "Saved the classifier" not in printed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stderr.txt", "stdout.txt"]


def test_epoch_log_has_colours_on_a_terminal_only(monkeypatch):
    import io

    from skfewshot._cli import benchmark
    from skfewshot._cli._console import EpochLog

    row = {"epoch": 1, "train_loss": 0.5, "train_loss_best": True, "dur": 0.1}
    assert "\x1b[" in EpochLog(colors=True).initialize().table(row)
    assert "\x1b[" not in EpochLog(colors=False).initialize().table(row)

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal = Terminal()
    flags = [*DIGITS, "--episodes", "2", "--episodes-per-epoch", "2", "--test-episodes", "2"]
    benchmark(build_parser().parse_args([*flags, "--output", "none"]), out=terminal)
    assert "\x1b[" in terminal.getvalue()  # skorch's marks of the best scores so far


def test_a_file_is_written_whole_or_not_at_all(tmp_path):
    from skfewshot._files import write_atomically

    def interrupted(path):
        with open(path, "w") as f:
            f.write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(tmp_path / "result.json", interrupted)
    assert list(tmp_path.iterdir()) == []
    write_atomically(tmp_path / "result.json", lambda path: open(path, "w").close())
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_a_scorer_counts_the_episodes_and_scores_as_the_default(digits):
    from skfewshot.model_selection import evaluate_episodes

    X, y = digits
    episodes = dict(n_way=5, n_shot=1, n_query=5, n_episodes=20, random_state=0)
    ticks = []

    def counted(fitted, X_query, y_query):
        ticks.append(1)
        return fitted.score(X_query, y_query)

    counted_result = evaluate_episodes(PrototypicalClassifier(), X, y, scoring=counted, **episodes)
    expected = evaluate_episodes(PrototypicalClassifier(), X, y, **episodes)
    assert (counted_result["accuracy"], counted_result["ci95"]) == (
        expected["accuracy"],
        expected["ci95"],
    )
    assert len(ticks) == 20  # one call per episode


# -- --checkpoint-dir: an interrupted benchmark resumes -----------------------------------


def _encoder_weights(path):
    return joblib.load(path).encoder.state_dict()


def test_an_interrupted_benchmark_resumes_from_its_checkpoint(tmp_path, capsys, monkeypatch):
    # Ctrl+C after epoch 2 of 4, then the same command: it resumes from the last
    # checkpoint (epoch 1: epoch 2's is taken as epoch 3 begins) and ends with the weights
    # and the results of an uninterrupted run with the same random_state.
    from skfewshot._cli._console import TrainingProgress

    flags = [*DIGITS, "--episodes", "16", "--episodes-per-epoch", "4", "--test-episodes", "5"]
    flags += ["--quiet"]
    whole, whole_json = tmp_path / "whole.joblib", tmp_path / "whole.json"
    assert main([*flags, "--output", str(whole), "--json", str(whole_json)]) == 0
    checkpoints = tmp_path / "checkpoints"
    resumed, resumed_json = tmp_path / "resumed.joblib", tmp_path / "resumed.json"
    resumable = [*flags, "--checkpoint-dir", str(checkpoints)]
    resumable += ["--output", str(resumed), "--json", str(resumed_json)]
    capsys.readouterr()

    end_of_epoch = TrainingProgress.on_epoch_end

    def ctrl_c_after_epoch_2(self, net, **kwargs):
        end_of_epoch(self, net, **kwargs)
        if self.epochs_ == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(TrainingProgress, "on_epoch_end", ctrl_c_after_epoch_2)
    assert main(resumable) == 130
    captured = capsys.readouterr()
    assert captured.err.splitlines()[-1] == (
        "skfewshot: interrupted after 2 of 4 epochs of meta-training; the last checkpoint, "
        f"of epoch 1, is in {checkpoints}: run the same command again (with --checkpoint-dir "
        f"{checkpoints}) to resume it."
    )
    assert "accuracy (%)" not in captured.out
    assert not resumed.exists() and not resumed_json.exists()
    names = sorted(entry.name for entry in checkpoints.iterdir())
    assert names == ["benchmark-settings.json", "epoch-000001"]

    monkeypatch.setattr(TrainingProgress, "on_epoch_end", end_of_epoch)
    assert main(resumable) == 0
    captured = capsys.readouterr()
    assert f"skfewshot: resuming from epoch 1 of 4 in {checkpoints}." in captured.err
    assert "(resumed from epoch 1 of 4)" in captured.out
    expected = _encoder_weights(whole)
    ours = _encoder_weights(resumed)
    assert ours.keys() == expected.keys()
    assert all(torch.equal(ours[key], value) for key, value in expected.items())
    expected_result = json.loads(whole_json.read_text())
    result = json.loads(resumed_json.read_text())
    assert result["results"] == expected_result["results"]
    assert result["train_episodes"] == expected_result["train_episodes"] == 16
    assert result["resumed_from_epoch"] == 1 and expected_result["resumed_from_epoch"] is None

    # Meta-training has ended: the same command evaluates the trained learner again,
    # without training, with other evaluation flags if need be.
    resumed.unlink()
    again = [*resumable, "--test-episodes", "5", "--shots", "1,5"]
    assert main(again) == 0
    captured = capsys.readouterr()
    assert (
        f"skfewshot: resuming from epoch 4 of 4 in {checkpoints}: meta-training has ended, "
        "on to the evaluation." in captured.err
    )
    ours = _encoder_weights(resumed)
    assert all(torch.equal(ours[key], value) for key, value in expected.items())
    result = json.loads(resumed_json.read_text())
    assert result["results"][0] == expected_result["results"][0]  # 5-way 1-shot
    assert len(result["results"]) == 2 and result["resumed_from_epoch"] == 4
    assert sorted(entry.name for entry in checkpoints.iterdir()) == [
        "benchmark-settings.json",
        "epoch-000003",
        "epoch-000004",
    ]


def test_a_checkpoint_dir_of_other_settings_is_refused(tmp_path, capsys):
    checkpoints = tmp_path / "checkpoints"
    flags = [*DIGITS, "--episodes", "4", "--episodes-per-epoch", "2", "--test-episodes", "2"]
    flags += ["--quiet", "--output", "none", "--checkpoint-dir", str(checkpoints)]
    assert main(flags) == 0
    capsys.readouterr()
    for other, difference in [
        (["--lr", "0.01"], "--lr 0.001 there, 0.01 here"),
        (["--method", "maml"], "--method protonet there, maml here"),
        (["--param", "scale=10"], '--param {} there, {"scale": 10} here'),
        (["--episodes", "6"], "--episodes 4 there, 6 here"),
        # --tune meta-trains without the validation classes (its grid is no training setting).
        (["--tune", "distance=sqeuclidean,cosine"], "--tune unset there, on here"),
    ]:
        with pytest.raises(SystemExit) as exited:
            main([*flags, *other])
        assert exited.value.code == 2
        captured = capsys.readouterr()
        error = captured.err.splitlines()[-1]
        assert error.startswith(
            f"skfewshot benchmark: error: argument --checkpoint-dir: {checkpoints} holds the "
            "checkpoints of a run with other settings ("
        )
        assert difference in error, error
        assert "or pass another --checkpoint-dir" in error
        assert "Meta-training" not in captured.out
    # The evaluation flags are no training settings: they may change.
    assert main([*flags, "--ways", "10", "--test-query", "5"]) == 0

    # Checkpoints without the settings of their run (not written by the command).
    foreign = tmp_path / "foreign"
    (foreign / "epoch-000001").mkdir(parents=True)
    with pytest.raises(SystemExit) as exited:
        main([*flags[:-1], str(foreign)])
    assert exited.value.code == 2
    assert "holds checkpoints but not the settings of their run" in capsys.readouterr().err
    # A time budget follows the clock: it cannot resume.
    with pytest.raises(SystemExit) as exited:
        main([*flags, "--max-time", "1"])
    assert exited.value.code == 2
    assert "--checkpoint-dir: not allowed with --max-time" in capsys.readouterr().err


# -- --tune: test-time parameters chosen per setting on held-out validation classes -------

TUNE = ["benchmark", "--dataset", "digits", "--method", "maml", "--ways", "5", "--quiet"]
TUNE += ["--episodes", "4", "--episodes-per-epoch", "4", "--test-episodes", "3"]
TUNE += ["--train-way", "5"]  # 16 base classes are left for training, fewer than MAML's 20 ways


def test_tune_chooses_parameters_per_setting_on_held_out_classes(tmp_path, capsys):
    js = tmp_path / "result.json"
    main(
        [*TUNE, "--shots", "1,2", "--tune", "inner_steps=1,2", "--tune-episodes", "3"]
        + ["--output", "none", "--json", str(js)]
    )
    printed = capsys.readouterr().out
    # Meta-training without the 8 validation classes (digits 4-5 and their rotations):
    # 16 of the 24 base classes; the test classes are the 16 novel ones, as without --tune.
    assert "Meta-training MAMLLearner on 16 base classes (" in printed
    assert ": 16 novel classes, 3 episodes" in printed
    assert (
        "inner_steps tuned per setting on 8 validation classes held out from meta-training "
        "(3 episodes per candidate)" in printed
    )
    assert "tuned on validation classes: accuracy (%)" in printed
    for setting in ("5-way 1-shot", "5-way 2-shot"):
        assert re.search(rf"{setting} +\d+\.\d\d ± \d+\.\d\d +inner_steps=[12]: \d+\.\d\d", printed)
    result = json.loads(js.read_text())
    assert result["tuned"]["grid"] == {"inner_steps": [1, 2]}
    assert result["tuned"]["episodes"] == 3 and result["tuned"]["validation_classes"] == 8
    assert [(row["n_way"], row["n_shot"]) for row in result["results"]] == [(5, 1), (5, 2)]
    for row in result["results"]:
        assert list(row["params"]) == ["inner_steps"] and row["params"]["inner_steps"] in (1, 2)
        assert 0 <= row["validation_accuracy"] <= 100 and 0 <= row["accuracy"] <= 100


def test_without_tune_rows_carry_no_chosen_parameters(tmp_path):
    js = tmp_path / "result.json"
    main([*TUNE, "--shots", "1", "--output", "none", "--json", str(js)])
    result = json.loads(js.read_text())
    assert result["tuned"] is None
    assert all("params" not in row for row in result["results"])


@pytest.mark.parametrize(
    "flags, error",
    [
        (
            ["--tune", "inner_steps=1,2", "--validation"],
            "argument --tune: not allowed with --validation: --tune holds out the validation "
            "classes itself",
        ),
        (
            ["--tune", "nonsense=1,2"],
            "argument --tune: MAMLClassifier (the classifier of --method maml) has no "
            "parameter 'nonsense'",
        ),
        (["--tune", "inner_steps=1,-1"], "argument --tune: MAMLClassifier: inner_steps must be"),
        (
            ["--tune", "inner_steps=1,2", "--classifier-param", "inner_steps=3"],
            "argument --tune: inner_steps is also set by --classifier-param; pick one",
        ),
        (
            ["--tune", "inner_steps=1,2", "--test-inner-steps", "3"],
            "argument --tune: inner_steps is also set by --test-inner-steps; pick one",
        ),
        (
            ["--tune", "inner_steps=1", "--tune", "inner_steps=2"],
            "argument --tune: inner_steps is given twice",
        ),
        (
            ["--tune", "inner_steps=1,2", "--tune-episodes", "0"],
            "argument --tune-episodes: a number of episodes >= 1, got 0.",
        ),
        (["--tune", "inner_steps"], "argument --tune: expected NAME=V1,V2,..."),
        (["--tune", "inner_steps=1,,2"], "argument --tune: expected NAME=V1,V2,..."),
        (["--tune", "=1,2"], "argument --tune: expected NAME=V1,V2,..."),
    ],
)
def test_bad_tune_is_an_argparse_error(flags, error, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*TUNE, "--shots", "1", *flags, "--output", "none"])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("usage: skfewshot benchmark ")
    assert captured.err.splitlines()[-1].startswith(f"skfewshot benchmark: error: {error}")
    assert "Traceback" not in captured.err and "Meta-training" not in captured.out


def test_tune_needs_enough_validation_classes_for_every_setting(capsys):
    # Digits hold out 8 validation classes: no 10-way episodes; said before any training.
    with pytest.raises(SystemExit) as exited:
        main([*TUNE, "--ways", "5,10", "--tune", "inner_steps=1,2", "--output", "none"])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    error = captured.err.splitlines()[-1]
    assert error.startswith(
        "skfewshot benchmark: error: argument --tune: the validation classes: an episode of "
        "n_way=10 classes needs 10 classes"
    )
    assert error.endswith("Here: --ways, --shots or --test-query.")
    assert "Meta-training" not in captured.out


def test_tune_values_are_read_as_literals_split_at_top_level_commas():
    args = build_parser().parse_args(
        ["benchmark", "--tune", "inner_lr=0.1,0.4", "--tune", "x=cosine,(1, 2),None"]
    )
    assert args.tune == [("inner_lr", [0.1, 0.4]), ("x", ["cosine", (1, 2), None])]
    assert build_parser().parse_args(["benchmark"]).tune == []
