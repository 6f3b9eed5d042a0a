"""Tables of results: the paper's stage table (Roth et al. 2015, Tables 1 and 2)."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["PAPER_TEST_DICE", "PAPER_TRAIN_DICE", "StageReport"]

#: Mean Dice on the 20 NIH test cases, Roth et al. (2015) Table 2.
PAPER_TEST_DICE = {
    "Optimal": 0.81,
    "S_RF": 0.27,
    "P(x) Ns=1": 0.46,
    "G(P(x)) Ns=1": 0.62,
    "P(x) Ns=4": 0.57,
    "G(P(x)) Ns=4": 0.68,
}

#: Mean Dice on the 60 NIH training cases, Roth et al. (2015) Table 1.
PAPER_TRAIN_DICE = {
    "Optimal": 0.80,
    "S_RF": 0.26,
    "P(x) Ns=4": 0.69,
    "G(P(x)) Ns=4": 0.79,
}


@dataclass
class StageReport:
    """Per-case Dice of every stage of the method, as in the paper's tables.

    Parameters
    ----------
    columns : list of str
        Stage names, in order (e.g. ``"Optimal"``, ``"S_RF"``, ...).
    rows : list of dict
        One dict per case: ``"case"`` plus one float per column.
    thresholds : dict of str to float
        Threshold used for each probability stage.
    paper : dict of str to float
        The paper's mean Dice per stage, printed beside ours.

    Examples
    --------
    >>> rep = StageReport(["Optimal"], [{"case": "a", "Optimal": 0.9},
    ...                                 {"case": "b", "Optimal": 0.8}])
    >>> round(rep.summary()["Optimal"]["mean"], 2)
    0.85
    """

    columns: list[str]
    rows: list[dict] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    paper: dict[str, float] = field(default_factory=lambda: dict(PAPER_TEST_DICE))

    def values(self, column: str) -> np.ndarray:
        """Per-case values of one column, as a float array."""
        return np.array([row[column] for row in self.rows], dtype=float)

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean, std, min and max over cases for each column."""
        out = {}
        for col in self.columns:
            v = self.values(col)
            out[col] = {
                "mean": float(np.mean(v)) if v.size else float("nan"),
                "std": float(np.std(v)) if v.size else float("nan"),
                "min": float(np.min(v)) if v.size else float("nan"),
                "max": float(np.max(v)) if v.size else float("nan"),
            }
        return out

    def to_text(self, *, per_case: bool = True) -> str:
        """The table as fixed-width text: summary rows, paper row, cases."""
        width = max(12, *(len(c) + 2 for c in self.columns))
        names = [*([row["case"] for row in self.rows] if per_case else [])]
        first = max(10, *(len(str(n)) + 2 for n in [*names, "paper mean"]))
        lines = ["".ljust(first) + "".join(c.rjust(width) for c in self.columns)]
        summ = self.summary()
        for stat in ("mean", "std", "min", "max"):
            lines.append(
                stat.ljust(first)
                + "".join(f"{summ[c][stat]:.3f}".rjust(width) for c in self.columns)
            )
        lines.append(
            "paper mean".ljust(first)
            + "".join(
                (f"{self.paper[c]:.2f}" if c in self.paper else "-").rjust(width)
                for c in self.columns
            )
        )
        if self.thresholds:
            lines.append(
                "threshold".ljust(first)
                + "".join(
                    (
                        f"{self.thresholds[c]:.2f}" if c in self.thresholds else "-"
                    ).rjust(width)
                    for c in self.columns
                )
            )
        if per_case:
            lines.append("-" * (first + width * len(self.columns)))
            for row in self.rows:
                lines.append(
                    str(row["case"]).ljust(first)
                    + "".join(f"{row[c]:.3f}".rjust(width) for c in self.columns)
                )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write one row per case plus mean/std/min/max rows to CSV.

        Parameters
        ----------
        path : str or PathLike
            Output file; written atomically.

        Returns
        -------
        Path
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        summ = self.summary()
        try:
            with open(tmp, "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(["case", *self.columns])
                for row in self.rows:
                    writer.writerow([row["case"], *(row[c] for c in self.columns)])
                for stat in ("mean", "std", "min", "max"):
                    writer.writerow([stat, *(summ[c][stat] for c in self.columns)])
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def stage_columns(cls, n_scales: int) -> Sequence[str]:
        """Column names of the paper's Table 2 for a ConvNet with ``n_scales``."""
        return (
            "Optimal",
            "S_RF",
            "S_RF recall",
            "P(x) Ns=1",
            "G(P(x)) Ns=1",
            f"P(x) Ns={n_scales}",
            f"G(P(x)) Ns={n_scales}",
        )
