"""Sphinx configuration of the skfewshot documentation.

Build (warnings are errors, as in CI and ``tests/test_docs.py``)::

    pip install -e ".[docs]"
    sphinx-build -W --keep-going -b html docs docs/_build/html

The build is offline by default. ``SKFEWSHOT_DOCS_ONLINE=1`` turns on links
to the documentation of Python, NumPy, scikit-learn, skorch and PyTorch
(intersphinx, which downloads their inventories): use it to publish the site.
"""

import os

import skfewshot

project = "skfewshot"
author = "skfewshot developers"
copyright = "skfewshot developers, BSD-3-Clause"
release = skfewshot.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "README.md"]
templates_path = ["_templates"]
nitpicky = False

# -- MyST (the Markdown pages, e.g. benchmarks.md) -------------------------------------------

myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3  # "#speed"-style links to headings work as on GitHub

# -- API pages: autosummary + autodoc + numpydoc ---------------------------------------------

# Pages are generated under docs/generated/ (git-ignored) from docs/api.rst, by the public
# names listed there (skfewshot.meta.MAMLLearner, never the private module defining it);
# the templates are in docs/_templates/autosummary/.
autosummary_generate = True
autosummary_imported_members = False
# docs/_templates/autosummary/class.rst documents every member of a class: every method an
# estimator has (fit, predict, score, get_params, skorch's), but not the ~50 methods of
# torch.nn.Module that every torch module of skfewshot.nn inherits (:inherited-members: Module).
autodoc_member_order = "alphabetical"
# Defaults as written in the source (``encoder=Conv4``), not their repr
# (``<class 'skfewshot.nn._modules.Conv4'>``, a private path).
autodoc_preserve_defaults = True
autodoc_typehints = "none"
# The page contents of a class list its members as ``fit()``, not ``MAMLLearner.fit()``.
toc_object_entries_show_parents = "hide"
numpydoc_show_class_members = True
numpydoc_show_inherited_class_members = True
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- Gallery ---------------------------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Executed (with their figures): the digits examples, seconds each on a CPU. The others
    # (plot_protonet_meta_training.py downloads Omniglot and meta-trains for minutes) are
    # shown with their code, not run.
    "filename_pattern": r"/plot_(\w+_digits|write_your_own_method)\.py$",
    "remove_config_comments": True,
}

# -- Theme -----------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"skfewshot {release}"
html_static_path = []
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "header_links_before_dropdown": 4,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {
    # The top-level pages are one page each: nothing to navigate beside the page itself;
    # the API reference lists its pages, the gallery (auto_examples/) its examples.
    "*": [],
    "api": ["sidebar-nav-bs"],
}

# -- Links to other projects' docs -----------------------------------------------------------

# Offline (the default, and CI) intersphinx has no inventory to fetch, so it is off: a failed
# fetch is a warning, which -W makes an error. SKFEWSHOT_DOCS_ONLINE=1 turns it on.
ONLINE = os.environ.get("SKFEWSHOT_DOCS_ONLINE", "") not in ("", "0")
intersphinx_mapping = (
    {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "skorch": ("https://skorch.readthedocs.io/en/stable", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
    }
    if ONLINE
    else {}
)
intersphinx_timeout = 30

# Labels and glossary terms of scikit-learn's docs that the docstrings skfewshot inherits from
# it refer to (``ClassifierMixin.score``: ``:ref:`accuracy <accuracy_score>```, the
# ``set_*_request`` methods: ``:term:`meta-estimator```): offline they would be undefined,
# so they link to scikit-learn's pages directly.
SKLEARN = "https://scikit-learn.org/stable/"
SKLEARN_REFS = {
    ("ref", "accuracy_score"): "modules/model_evaluation.html#accuracy-score",
    ("ref", "metadata_routing"): "metadata_routing.html",
    ("ref", "df_output_transform"): "auto_examples/miscellaneous/plot_set_output.html",
    ("ref", "sphx_glr_auto_examples_miscellaneous_plot_set_output.py"): (
        "auto_examples/miscellaneous/plot_set_output.html"
    ),
    ("term", "meta-estimator"): "glossary.html#term-meta-estimator",
}


def _link_sklearn_refs(app, env, node, contnode):
    if node.get("refdomain") != "std":
        return None
    target = node.get("reftarget", "").removeprefix("sklearn:")
    page = SKLEARN_REFS.get((node.get("reftype"), target))
    if page is None:
        return None
    from docutils import nodes

    reference = nodes.reference("", "", internal=False, refuri=SKLEARN + page)
    reference += contnode
    return reference


# The descriptions of the data sets (their DESCR), included by datasets.rst.
DATASET_DESCRIPTIONS = {
    "omniglot": "skfewshot.datasets._omniglot",
    "omniglot_vinyals": "skfewshot.datasets._vinyals",
}


def _write_dataset_descriptions(app):
    import importlib
    from pathlib import Path

    folder = Path(app.srcdir) / "generated"
    folder.mkdir(exist_ok=True)
    for name, module in DATASET_DESCRIPTIONS.items():
        text = importlib.import_module(module).DESCR
        path = folder / f"{name}_descr.txt"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def setup(app):
    # After intersphinx's handler (priority 500), which resolves them itself when online.
    app.connect("missing-reference", _link_sklearn_refs, priority=900)
    app.connect("builder-inited", _write_dataset_descriptions)
