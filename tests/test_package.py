"""Packaging: metadata in pyproject only, light import, console entry."""

from __future__ import annotations

import configparser
import subprocess
import sys
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_setup_cfg_holds_no_metadata():
    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / "setup.cfg")
    assert not {"metadata", "options"} & set(cfg.sections())


def test_pyproject_metadata():
    meta = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert meta["license"] == "BSD-3-Clause"
    deps = " ".join(meta["dependencies"])
    for dep in ("numpy", "scipy", "scikit-image", "scikit-learn", "nibabel"):
        assert dep in deps
    for dep in ("pydicom", "joblib", "keras", "tensorflow"):
        assert dep in deps
    assert "distributed" in meta["optional-dependencies"]
    assert (REPO_ROOT / "pancreas" / "py.typed").exists()


def test_import_is_light_and_lazy():
    code = (
        "import sys, pancreas; "
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules; "
        "pancreas.dice_score; pancreas.Volume; pancreas.SuperpixelConvNet; "
        "assert 'keras' not in sys.modules; print(len(pancreas.__all__))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert int(out.stdout) > 5


def test_python_m_pancreas_help():
    out = subprocess.run(
        [sys.executable, "-m", "pancreas", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "demo" in out.stdout


def _pancreas_imports(module: Path) -> set[str]:
    """Every pancreas module that ``module`` imports, anywhere in its code
    (top level, inside functions and under ``TYPE_CHECKING``)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] == "pancreas")
    return found


def test_pipeline_and_evaluation_import_one_way():
    root = Path(__file__).resolve().parents[1] / "pancreas"
    assert "pancreas.evaluation" in _pancreas_imports(root / "pipeline.py")
    assert "pancreas.pipeline" not in _pancreas_imports(root / "evaluation.py")
