"""The documentation stays true to the code: the parameter table, the extension example,
and a site that builds with warnings as errors."""

import importlib.util
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: What ``sphinx-build`` needs besides Sphinx: the ``docs`` extra of pyproject.toml.
DOCS_PACKAGES = {
    "sphinx": "sphinx",
    "sphinx_gallery": "sphinx-gallery",
    "numpydoc": "numpydoc",
    "pydata_sphinx_theme": "pydata-sphinx-theme",
    "myst_parser": "myst-parser",
    "matplotlib": "matplotlib",
}


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


def test_docs_build_with_warnings_as_errors(tmp_path):
    """``sphinx-build -W`` of the whole site, offline, with the digits gallery executed.

    The sources (docs/ and examples/) are copied, so the build writes nothing in
    the working tree (its autosummary pages, gallery and figures are git-ignored
    there) and always starts afresh, as in CI.
    """
    missing = [pip for name, pip in DOCS_PACKAGES.items() if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(
            f"the docs packages are not installed ({', '.join(missing)}): "
            'pip install -e ".[test]" (or ".[docs]") installs them'
        )
    generated = ["_build", "generated", "auto_examples", "sg_execution_times.rst"]
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns(*generated))
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {key: value for key, value in os.environ.items() if key != "SKFEWSHOT_DOCS_ONLINE"}
    env["MPLBACKEND"] = "Agg"
    html = tmp_path / "html"
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    command += ["-d", str(tmp_path / "doctrees"), str(tmp_path / "docs"), str(html)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
    assert result.returncode == 0, (
        "sphinx-build -W failed (warnings are errors):\n" + (result.stdout + result.stderr)[-6000:]
    )

    # The Markdown page is rendered, the API pages have public paths, the digits examples
    # ran and drew their figures, the slow Omniglot example is shown without running.
    assert "<table" in (html / "benchmarks.html").read_text(encoding="utf-8")
    maml = (html / "generated" / "skfewshot.meta.MAMLLearner.html").read_text(encoding="utf-8")
    assert 'id="skfewshot.meta.MAMLLearner"' in maml
    assert "skfewshot.meta._gradient.MAMLLearner" not in maml
    figures = sorted(p.name for p in (html / "_images").glob("sphx_glr_plot_*_digits_*.png"))
    assert figures, "the digits examples drew no figure"
    for example in ROOT.glob("examples/plot_*_digits.py"):
        assert any(name.startswith(f"sphx_glr_{example.stem}_") for name in figures), example
    assert not list((html / "_images").glob("sphx_glr_plot_protonet_meta_training_[0-9]*.png"))
