"""A `jungle stack` killed (SIGKILL) or stopped (Ctrl-C) after some finished trials and run again
ends with the same study and the same model as one that was never interrupted: the trial the
kill left RUNNING is failed and drawn again, and every trial's sampling depends only on the seed
and the trials finished before it.

Real processes: the uninterrupted run and the interrupted ones are the real CLI on copies of one
real workspace; the signal comes once the Optuna storage holds three finished trials."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from _robustness_helpers import takes_ctrl_c

from jungle.interrupts import ctrl_c_within
from _stack_helpers import make_stack_workspace

TRIALS = 8
KILL_AFTER = 3


def _command(ws: Path) -> list[str]:
    return [sys.executable, "-m", "jungle.cli", "stack", "--features", "meta,hist_lite0", "--trials", str(TRIALS),
            "--threads", "1", "--no-build", "-q", "-w", str(ws)]


def _states(ws: Path) -> dict[str, int]:
    try:
        con = sqlite3.connect(ws / "optuna.db", timeout=10)
        try:
            return dict(con.execute("SELECT state, count(*) FROM trials GROUP BY state").fetchall())
        finally:
            con.close()
    except sqlite3.Error:  # not created yet, or being written
        return {}


def _trials(ws: Path) -> list[tuple]:
    """(state, value, params) of every trial that finished, in the order they were made."""
    con = sqlite3.connect(ws / "optuna.db")
    try:
        rows = con.execute(
            "SELECT t.trial_id, t.state, v.value FROM trials t LEFT JOIN trial_values v USING (trial_id) "
            "WHERE t.state IN ('COMPLETE', 'PRUNED') ORDER BY t.number").fetchall()
        params = {}
        for trial_id, name, value in con.execute("SELECT trial_id, param_name, param_value FROM trial_params"):
            params.setdefault(trial_id, {})[name] = value
    finally:
        con.close()
    return [(state, value, params.get(trial_id)) for trial_id, state, value in rows]


def _model(ws: Path) -> tuple[dict, pl.DataFrame, dict]:
    folder = ws / "models" / (ws / "models" / "latest").read_text().strip()
    manifest = json.loads((folder / "manifest.json").read_text())
    return (json.loads((folder / "member-0.json").read_text()), pl.read_parquet(folder / "oof.parquet"),
            manifest["members"][0]["params"])


def _interrupt(ws: Path, env: dict, how: signal.Signals) -> dict[str, int]:
    """Start the stack on ``ws``, send ``how`` once three trials finished; return the trial states left."""
    run = subprocess.Popen(_command(ws), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                           preexec_fn=takes_ctrl_c)
    deadline = time.monotonic() + 600
    while _states(ws).get("COMPLETE", 0) + _states(ws).get("PRUNED", 0) < KILL_AFTER:
        assert run.poll() is None, run.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)  # into the next trial
    run.send_signal(how)
    _, stderr = run.communicate(timeout=120)
    if how == signal.SIGINT:  # Ctrl-C: one line, exit 130
        assert run.returncode == 130 and "Traceback" not in stderr.decode(), stderr.decode()[-2000:]
    left = _states(ws)
    assert sum(left.get(s, 0) for s in ("COMPLETE", "PRUNED")) < TRIALS
    return left


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_stack_killed_or_stopped_mid_study_resumes_to_the_uninterrupted_model(tmp_path):
    make_stack_workspace(tmp_path / "whole")
    for copy in ("killed", "stopped"):
        shutil.copytree(tmp_path / "whole", tmp_path / copy)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(_command(tmp_path / "whole"), capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    whole_booster, whole_oof, whole_params = _model(tmp_path / "whole")

    for copy, how in (("killed", signal.SIGKILL), ("stopped", signal.SIGINT)):
        ws = tmp_path / copy
        left = _interrupt(ws, env, how)
        assert how != signal.SIGKILL or left.get("RUNNING", 0) <= 1
        again = subprocess.run(_command(ws), capture_output=True, text=True, env=env, timeout=600)
        assert again.returncode == 0, again.stderr
        assert "Traceback" not in again.stderr and "Warning" not in again.stderr, again.stderr
        after = _states(ws)
        assert after.get("RUNNING", 0) == 0, (copy, after)
        assert after.get("FAIL", 0) == left.get("RUNNING", 0) + left.get("FAIL", 0), (copy, left, after)

        assert _trials(ws) == _trials(tmp_path / "whole"), copy  # the same trials, in the same order
        booster, oof, params = _model(ws)
        assert params == whole_params, copy
        assert booster == whole_booster, copy
        assert oof.equals(whole_oof), copy


def test_trial_seeds_depend_on_the_seed_and_the_place_only():
    from jungle.meta.tuning import trial_seed

    assert trial_seed(0, 3) == trial_seed(0, 3)
    assert len({trial_seed(seed, index) for seed in range(3) for index in range(50)}) == 150


def _optuna_like_trial(interrupt: bool) -> None:
    """What Optuna's trial runner does: a ``finally`` that reads a variable the interrupted line never set."""
    try:
        if interrupt:
            raise KeyboardInterrupt
        state = "COMPLETE"
    finally:
        if state == "COMPLETE":  # noqa: F821 (unset when the Ctrl-C came first: UnboundLocalError)
            pass


def test_an_error_raised_while_a_ctrl_c_unwinds_is_the_ctrl_c():
    with pytest.raises(UnboundLocalError):  # what reached the CLI as a traceback
        _optuna_like_trial(interrupt=True)
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_within():
            _optuna_like_trial(interrupt=True)
    with pytest.raises(ZeroDivisionError):  # other errors stay what they are
        with ctrl_c_within():
            1 / 0
    with ctrl_c_within():
        _optuna_like_trial(interrupt=False)
