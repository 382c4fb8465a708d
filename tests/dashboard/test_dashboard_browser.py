"""``raysweep dashboard`` in a real headless browser: the page, its plots and trials
table match the store, and a trial that finishes after the page opened shows up."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import raysweep
from raysweep.store import NewTrial, SQLiteStore, TrialUpdate
from raysweep.trial import TrialState
from tests.conftest import REPO_ROOT, process_ended, wait_until
from tests.report.browser import console_errors, plot_data, screenshot
from tests.report.helpers import make_sweep

PLOTS = ("history", "parallel", "importance", "slices", "contour", "intermediate", "timeline")


def start_dashboard(directory: Path) -> tuple[subprocess.Popen[str], str]:
    """``raysweep dashboard DIR --port 0`` as a user runs it; its process and URL."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "raysweep.cli", "dashboard", str(directory), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()

    def started() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"the dashboard exited: {proc.stderr.read() if proc.stderr else ''}")
        return not lines.empty()

    wait_until(started, "the dashboard's first line")
    line = lines.get()
    assert " on http://127.0.0.1:" in line, line
    return proc, line.split(" on ")[1].split()[0]


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to the dashboard this test started (by its PID), then wait for it to end."""
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: proc.poll() is not None or process_ended(proc.pid), "the dashboard to stop")
    proc.wait()


def table_ids(browser: Any) -> list[int]:
    return [
        int(i)
        for i in browser.execute_script(
            "return Array.from(document.querySelectorAll('#trials-table tbody tr'))"
            ".map(r => r.dataset.id)"
        )
    ]


def finish_a_trial(directory: Path, trial_id: int, loss: float) -> None:
    """What the runner does for a new trial (staged RUNNING, then COMPLETED), through the
    store API it uses, from another thread while the dashboard reads."""
    store = SQLiteStore.open(directory)
    try:
        # Right after the simulated trials (their clock is virtual), so the timeline
        # of the screenshot stays readable.
        now = max(t.ended_at or 0.0 for t in store.trials()) + 1.0
        store.commit(new=[NewTrial(trial_id, {"x": 0.3, "lr": 1e-3, "act": "relu"},
                                   TrialState.RUNNING, now, queued_at=now)])  # fmt: skip
        store.commit(
            updates=[TrialUpdate(trial_id, state=TrialState.COMPLETED, metrics={"loss": loss},
                                 started_at=now, ended_at=now + 1.0, node="simulated",
                                 attempts=1, reports=[{"step": 0, "loss": loss}])]
        )  # fmt: skip
    finally:
        store.close()


def test_dashboard_matches_the_store_and_shows_a_trial_finished_later(
    browser: Any, tmp_path: Path
) -> None:
    """Plots and table hold the stored trials; a trial written after the page loaded
    appears in the table and the history without reloading; no console error."""
    directory = make_sweep(tmp_path)
    proc, url = start_dashboard(directory)
    try:
        browser.get(url)
        wait_until(
            lambda: (
                browser.execute_script("return document.querySelectorAll('.js-plotly-plot').length")
                == len(PLOTS)
            ),
            "the dashboard's plots",
        )
        exp = raysweep.load(directory)
        wait_until(lambda: len(table_ids(browser)) == len(exp.trials), "the trials table")
        assert sorted(table_ids(browser)) == [t.trial_id for t in exp.trials]
        losses = {t.trial_id: t.metrics["loss"] for t in exp.trials if t.state.value == "COMPLETED"}
        _, dots = plot_data(browser, "history")
        assert dict(zip(dots["x"], dots["y"], strict=True)) == pytest.approx(losses)

        # Filter and sort, as a person would.
        browser.find_element("id", "trials-filter").send_keys("state=FAILED")
        failed = [t.trial_id for t in exp.trials if t.state is TrialState.FAILED]
        wait_until(lambda: table_ids(browser) == failed, "the table filtered to FAILED")
        browser.find_element("id", "trials-filter").clear()
        browser.execute_script(
            "document.getElementById('trials-filter').dispatchEvent(new Event('input'))"
        )
        heading = browser.find_element("css selector", "#trials-table th[data-column='trial_id']")
        heading.click()
        heading = browser.find_element("css selector", "#trials-table th[data-column='trial_id']")
        heading.click()  # descending
        wait_until(
            lambda: table_ids(browser) == sorted((t.trial_id for t in exp.trials), reverse=True),
            "the table sorted by trial id, descending",
        )

        new_id = len(exp.trials)
        writer = threading.Thread(target=finish_a_trial, args=(directory, new_id, 0.125))
        writer.start()
        writer.join()
        wait_until(lambda: new_id in table_ids(browser), f"trial {new_id} in the table")
        wait_until(
            lambda: new_id in plot_data(browser, "history")[1]["x"], f"trial {new_id} in history"
        )
        _, dots = plot_data(browser, "history")
        assert dict(zip(dots["x"], dots["y"], strict=True))[new_id] == pytest.approx(0.125)
        assert console_errors(browser) == []
        screenshot(browser, "dashboard")
    finally:
        stop(proc)
