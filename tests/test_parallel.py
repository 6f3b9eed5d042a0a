"""parallel_map: order, shared arguments, and progress bars that suit a log file."""

from __future__ import annotations

import time

import pytest

from pancreas import _parallel
from pancreas._parallel import parallel_map


def _slow_square(x: int, delay: float) -> int:
    time.sleep(delay)
    return x * x


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_parallel_map_keeps_order_and_passes_args(n_jobs):
    assert parallel_map(_slow_square, range(6), n_jobs=n_jobs, args=(0.0,)) == [
        0,
        1,
        4,
        9,
        16,
        25,
    ]


def _updates(text: str) -> int:
    # in a log file each update is a plain line: no carriage return redraws
    # and no terminal escape sequences
    assert "\r" not in text and "\x1b" not in text, repr(text[:200])
    return sum(line.startswith("cases:") for line in text.splitlines())


def test_progress_bar_in_a_log_file_is_updated_rarely(capsys, monkeypatch):
    # stderr captured by pytest is not a terminal, as when a run logs to a file
    parallel_map(_slow_square, range(40), verbose=1, desc="cases", args=(0.02,))
    rare = _updates(capsys.readouterr().err)
    monkeypatch.setattr(_parallel, "LOG_BAR_INTERVAL", 0.001)
    parallel_map(_slow_square, range(40), verbose=1, desc="cases", args=(0.02,))
    frequent = _updates(capsys.readouterr().err)
    assert rare <= 3  # start and end
    assert frequent > 20  # the same loop with terminal-like updates


def test_progress_bar_interval_on_a_terminal(monkeypatch):
    from tqdm import tqdm

    class Terminal:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(_parallel.sys, "stderr", Terminal())
    assert _parallel._bar_interval(tqdm) == 0.1
    monkeypatch.setattr(_parallel.sys, "stderr", None)
    assert _parallel._bar_interval(tqdm) == _parallel.LOG_BAR_INTERVAL
