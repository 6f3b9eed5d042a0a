"""StageReport: summary statistics, text table and CSV."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from pancreas.report import PAPER_TEST_DICE, StageReport


def _report():
    cols = ["Optimal", "S_RF", "G(P(x)) Ns=4"]
    rows = [
        {"case": "a", "Optimal": 0.9, "S_RF": 0.3, "G(P(x)) Ns=4": 0.8},
        {"case": "b", "Optimal": 0.8, "S_RF": 0.2, "G(P(x)) Ns=4": 0.6},
    ]
    return StageReport(cols, rows, {"G(P(x)) Ns=4": 0.4})


def test_summary():
    s = _report().summary()
    assert s["Optimal"]["mean"] == pytest.approx(0.85)
    assert s["S_RF"]["min"] == pytest.approx(0.2)
    assert s["G(P(x)) Ns=4"]["max"] == pytest.approx(0.8)
    assert s["G(P(x)) Ns=4"]["std"] == pytest.approx(np.std([0.8, 0.6]))


def test_text_has_paper_row_and_cases():
    text = _report().to_text()
    assert "paper mean" in text and f"{PAPER_TEST_DICE['S_RF']:.2f}" in text
    assert "threshold" in text and "0.40" in text
    lines = text.splitlines()
    assert lines[-1].startswith("b") and "0.600" in lines[-1]
    assert "a" not in _report().to_text(per_case=False).splitlines()[-1][:2]


def test_csv(tmp_path):
    path = _report().to_csv(tmp_path / "sub" / "t.csv")
    with path.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["case", "Optimal", "S_RF", "G(P(x)) Ns=4"]
    assert rows[1][0] == "a" and float(rows[1][1]) == 0.9
    assert [r[0] for r in rows[3:]] == ["mean", "std", "min", "max"]
    assert not list(tmp_path.glob("sub/.*tmp"))
