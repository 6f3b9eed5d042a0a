"""Docstrings: every public name is documented (numpydoc) and its examples run."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import pancreas

MODULES = sorted(
    m.name
    for m in pkgutil.iter_modules(pancreas.__path__, "pancreas.")
    if m.name != "pancreas.__main__"
)

# numpydoc checks that matter to users: a summary, documented parameters and
# returns, examples on public functions and classes.
CHECKED = {"GL08", "PR01", "PR02", "SS01", "EX01"}


def _public_objects():
    for modname in MODULES:
        if modname.split(".")[-1].startswith("_"):
            continue
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                if obj.__module__ == modname:
                    yield f"{modname}.{name}"


@pytest.mark.parametrize("modname", MODULES)
def test_doctests(modname):
    module = importlib.import_module(modname)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    for test in finder.find(module, modname):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {modname}"


@pytest.mark.parametrize("qualname", sorted(set(_public_objects())))
def test_numpydoc(qualname):
    from numpydoc.validate import validate

    errors = [
        f"{code}: {msg}"
        for code, msg in validate(qualname)["errors"]
        if code in CHECKED
    ]
    assert not errors, "\n".join(errors)
