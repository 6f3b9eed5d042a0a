"""Sphinx configuration of the pancreas documentation.

Build it with ``make docs`` (``python -m sphinx -W --keep-going -b html docs
docs/_build/html``). The build runs every example of ``examples/`` through
sphinx-gallery and treats every warning as an error. It needs no network:
there is no intersphinx mapping.

The API reference is generated here, at configuration time, from the modules
that exist in ``pancreas/``: one page per public module (a name without a
leading underscore) listing the names in its ``__all__``, so that a new
module appears in the reference without editing the docs. The command-line
reference is generated the same way from ``pancreas.cli.build_parser``.
Everything generated lands in ``docs/generated/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import pkgutil
import shutil
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))

import pancreas  # noqa: E402

# -- Project -----------------------------------------------------------------

project = "pancreas"
author = "the pancreas developers"
copyright = "the pancreas developers, BSD-3-Clause"
release = pancreas.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.extlinks",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "_ext", "_templates", "**.ipynb_checkpoints"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
default_role = "obj"
pygments_style = "sphinx"

# The :doi: and :arxiv: roles that the docstrings use (role names are not
# case-sensitive, so :DOI: and :arXiv: work too).
extlinks = {
    "doi": ("https://doi.org/%s", "doi:%s"),
    "arxiv": ("https://arxiv.org/abs/%s", "arXiv:%s"),
}

# No intersphinx: the build machine has no network. References to numpy,
# scikit-learn or Keras objects render as plain text.

# -- autodoc, autosummary, numpydoc --------------------------------------------

autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # the numpydoc docstrings give every type
autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False
numpydoc_show_class_members = False  # the class template lists members
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True


def skip_metadata_request_methods(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_<method>_request`` methods.

    scikit-learn adds them to a class whose ``fit`` (or ``score``...) takes
    extra keyword arguments (``Pipeline.fit(X, y, X_val=, y_val=)``), with a
    docstring that refers to scikit-learn's own glossary and user guide.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", skip_metadata_request_methods)


# -- HTML ----------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"pancreas {release}"
html_static_path = ["_static"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "installation": [], "cli": [], "reproduce": []}

# -- sphinx-gallery --------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "gallery_order.ExampleOrder",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "doc_module": ("pancreas",),
    "backreferences_dir": "generated/backreferences",
    # name objects by their defining module (pancreas.superpixels.X), as the
    # API pages do, not by the shortest import path (pancreas.X)
    "prefer_full_module": {r"^pancreas\."},
    "reference_url": {"pancreas": None},
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "min_reported_time": 0,
    "capture_repr": (),  # the examples print what they show
    "show_memory": False,
}

# -- API reference, generated from the package ----------------------------------

GENERATED = DOCS / "generated"
API_DIR = GENERATED / "api"

#: Groups of modules on the API page, in order; a module not listed here goes
#: under "Other modules", so new modules always appear.
API_GROUPS = (
    (
        "The method",
        (
            "pancreas.superpixels",
            "pancreas.cascade",
            "pancreas.convnet",
            "pancreas.augment",
            "pancreas.patches",
            "pancreas.refine",
            "pancreas.pipeline",
        ),
    ),
    (
        "Data",
        (
            "pancreas.io",
            "pancreas.record",
            "pancreas.datasets",
            "pancreas.alignment",
            "pancreas.phantom",
        ),
    ),
    (
        "Evaluation and results",
        (
            "pancreas.metrics",
            "pancreas.report",
            "pancreas.evaluation",
            "pancreas.plotting",
        ),
    ),
    (
        "Models, cohorts and the command line",
        (
            "pancreas.persistence",
            "pancreas.cohort",
            "pancreas.dicom_seg",
            "pancreas.distributed",
            "pancreas.cli",
        ),
    ),
    ("Base classes and exceptions", ("pancreas.base", "pancreas.exceptions")),
)


def public_modules() -> list[str]:
    """The public submodules of pancreas that exist now (``pancreas.<name>``)."""
    return sorted(
        f"pancreas.{m.name}"
        for m in pkgutil.iter_modules(pancreas.__path__)
        if not m.name.startswith("_")
    )


def public_names(module) -> list[str]:
    """``__all__``, or else the public classes and functions defined there."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            name
            for name, obj in vars(module).items()
            if not name.startswith("_")
            and (inspect.isclass(obj) or inspect.isfunction(obj))
            and obj.__module__ == module.__name__
        ]
    return list(names)


def _kind(obj) -> str:
    if inspect.isclass(obj):
        return "class"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "function"
    return "data"


def _table(names: list[str], *, toctree: bool) -> str:
    """An autosummary table; with ``toctree``, stub pages from _templates/."""
    lines = [".. autosummary::"]
    if toctree:
        lines.append("   :toctree: .")
    lines += ["   :nosignatures:", ""]
    lines += [f"   {name}" for name in names]
    return "\n".join(lines) + "\n"


def _module_page(modname: str) -> str:
    module = importlib.import_module(modname)
    own: dict[str, list[str]] = {"class": [], "function": [], "data": []}
    elsewhere: list[str] = []
    for name in public_names(module):
        obj = getattr(module, name)
        kind = _kind(obj)
        defined_in = getattr(obj, "__module__", modname) if kind != "data" else modname
        if defined_in == modname:
            own[kind].append(name)
        else:
            elsewhere.append(f"~{defined_in}.{name}")
    title = f"``{modname}``"
    out = [
        f".. _api_{modname.replace('.', '_')}:",
        "",
        title,
        "=" * len(title),
        "",
        f".. automodule:: {modname}",
        "   :no-members:",
        "",
        f".. currentmodule:: {modname}",
        "",
    ]
    headings = {"class": "Classes", "function": "Functions", "data": "Data"}
    for kind, names in own.items():
        if names:
            out += [headings[kind], "-" * len(headings[kind]), ""]
            out.append(_table(names, toctree=True))
    if elsewhere:
        out += ["Also exported here", "------------------", ""]
        out.append(_table(elsewhere, toctree=False))
    return "\n".join(out)


def _top_level_table() -> str:
    """The names ``import pancreas`` exports, linked to where they are defined."""
    order = [m for _, group in API_GROUPS for m in group]
    entries = []
    for name in pancreas.__all__:
        if name.startswith("__"):
            continue
        module = getattr(pancreas, name).__module__
        rank = order.index(module) if module in order else len(order)
        entries.append((rank, name.lower(), f"~{module}.{name}"))
    return _table([entry for *_, entry in sorted(entries)], toctree=False)


def write_api_pages() -> None:
    if API_DIR.exists():
        shutil.rmtree(API_DIR)
    API_DIR.mkdir(parents=True)
    modules = public_modules()
    listed = {m for _, group in API_GROUPS for m in group}
    groups = [
        (title, [m for m in group if m in modules]) for title, group in API_GROUPS
    ]
    groups.append(("Other modules", [m for m in modules if m not in listed]))
    for modname in modules:
        (API_DIR / f"{modname}.rst").write_text(_module_page(modname))
    out = [
        "``import pancreas``",
        "--------------------",
        "",
        "The package exports these names lazily: ``import pancreas`` is fast and",
        "does not import Keras; each name is loaded from its module on first use.",
        "",
        _top_level_table(),
    ]
    for title, group in groups:
        if not group:
            continue
        out += [title, "-" * len(title), ""]
        out.append(_table(group, toctree=False))
        out += [".. toctree::", "   :hidden:", ""]
        out += [f"   generated/api/{m}" for m in group]
        out.append("")
    (GENERATED / "api_index.rst.inc").write_text("\n".join(out))


def _subcommands(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def write_cli_help() -> None:
    """``--help`` of ``pancreas`` and of each subcommand, as an rst fragment."""
    from pancreas.cli import build_parser

    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"
    try:
        parser = build_parser()
        pages = [("pancreas", parser)]
        pages += [(f"pancreas {name}", sub) for name, sub in _subcommands(parser)]
        out = []
        for title, sub in pages:
            heading = f"``{title} --help``"
            out += [heading, "~" * len(heading), "", ".. code-block:: text", ""]
            out += [f"   {line}".rstrip() for line in sub.format_help().splitlines()]
            out.append("")
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    (GENERATED / "cli_help.rst.inc").write_text("\n".join(out))


GENERATED.mkdir(exist_ok=True)
write_api_pages()
write_cli_help()
