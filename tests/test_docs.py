"""The documentation stays true to the code: the parameter table and the extension example."""

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_parameter_table_is_up_to_date():
    page = runpy.run_path(str(ROOT / "docs" / "parameter_table.py"))["parameters_page"]()
    committed = (ROOT / "docs" / "parameters.rst").read_text(encoding="utf-8")
    assert page == committed, (
        "docs/parameters.rst is out of date with the estimators' signatures: "
        "regenerate it with `python docs/parameter_table.py`."
    )


def test_write_your_own_method_example_runs(capsys):
    # run_name="__main__" as sphinx-gallery does: the classes it defines then pickle
    # (check_learner's joblib round trip) while it runs.
    namespace = runpy.run_path(
        str(ROOT / "examples" / "plot_write_your_own_method.py"), run_name="__main__"
    )
    out = capsys.readouterr().out
    assert "CosineClassifier passes check_classifier" in out
    assert "CosineLearner passes check_learner" in out
    assert namespace["learner"].comparator_.scale.requires_grad  # the scale was learned
