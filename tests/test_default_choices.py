"""benchmarks/default_choices.py: the validation runs that choose each method's defaults."""

import inspect
import json

import pytest
from benchmark_scripts import load_script

from skfewshot._cli._params import METHODS
from skfewshot.meta import ANILLearner, MAMLLearner, MatchingLearner, MetaSGDLearner, SiameseLearner
from skfewshot.nn import RelationModule


@pytest.fixture
def choices(monkeypatch):
    """The script, with the CLI's ``benchmark`` recording its flags instead of training."""

    def fake_benchmark(args):
        return {
            "train_seconds": 1.0,
            "results": [
                {"n_way": w, "n_shot": s, "accuracy": 90.0 + w / 10 + s, "ci95": 0.3}
                for w in args.ways
                for s in args.shots
            ],
        }

    return load_script("default_choices", monkeypatch, fake_benchmark)


def test_candidates_train_on_validation_classes_only(choices, tmp_path):
    record = choices.run_candidate("relation", "aggregation=mean", 50)
    (args,) = choices.calls
    assert args.validation and args.method == "relation" and args.episodes == 50
    assert args.param == [("comparator__aggregation", "mean")]
    assert record["accuracy"] == {"5w1s": (91.5, 0.3), "20w1s": (93.0, 0.3), "5w5s": (95.5, 0.3)}


def test_results_are_saved_reused_and_tabulated(choices, tmp_path, capsys):
    records = choices.main(["--methods", "matching", "--episodes", "7", "--out-dir", str(tmp_path)])
    assert [r["candidate"] for r in records] == ["scale=1", "scale=10"]
    assert len(choices.calls) == 2 and len(list(tmp_path.glob("matching_*_7.json"))) == 2
    choices.main(["--methods", "matching", "--episodes", "7", "--out-dir", str(tmp_path)])
    assert len(choices.calls) == 2  # already measured: not run again
    printed = capsys.readouterr().out
    assert "| matching | scale=10 | 91.50 ± 0.30 | 93.00 ± 0.30 | 95.50 ± 0.30 |" in printed
    with pytest.raises(SystemExit):
        choices.main(["--methods", "protonet", "--out-dir", str(tmp_path)])


def test_the_library_defaults_are_candidates_chosen_here(choices):
    """Every default the script chooses is one of its candidates (kept in sync by hand)."""
    relation = inspect.signature(RelationModule).parameters["aggregation"].default
    assert f"aggregation={relation}" in choices.CANDIDATES["relation"]
    assert f"scale={MatchingLearner().scale:g}" in choices.CANDIDATES["matching"]
    assert f"lr={SiameseLearner().lr:g}" in choices.CANDIDATES["siamese"]
    for method, learner in (("anil", ANILLearner()), ("metasgd", MetaSGDLearner())):
        episodes = f"{learner.n_way}w{learner.n_shot}s{learner.n_query}q"
        assert episodes in choices.CANDIDATES[method]
    # MAML's candidates are its episodes from the paper's zero head, then its head and rate.
    maml = MAMLLearner()
    episodes = f"{maml.n_way}w{maml.n_shot}s{maml.n_query}q"
    assert f"{episodes}_{maml.head_init}_lr{maml.inner_lr:g}" in choices.CANDIDATES["maml"]
    assert choices.CANDIDATES["maml"][episodes][-4:] == [
        *["--param", "head_init=zero", "--param", "inner_lr=0.4"]
    ]
    # First-order MAML is MAMLLearner(first_order=True): MAML's episodes, head and rate.
    assert METHODS["fomaml"][1] == {"first_order": True}
    assert episodes in choices.CANDIDATES["fomaml"]
    saved = json.loads(json.dumps(choices.CANDIDATES))  # plain data, for the JSON records
    assert saved == choices.CANDIDATES
