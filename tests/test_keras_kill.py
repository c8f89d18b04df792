"""``kill -9`` at random moments of a real fit with the bundle and Keras' BackupAndRestore, then the
same fit started again, over and over: no start ever ends in a traceback, and the run that comes
out is one whole run (manifest, history.csv, checkpoints and report agreeing).

The moments are seeded (``RUNLENS_KILL_SEED``); CI kills a few times, ``RUNLENS_KILL_TRIALS=25``
kills 25 times. Half the moments are a random point of an epoch, half a random point of the writes
after an epoch's end (the bundle's, then Keras' backup; their length measured on an earlier
epoch), so kills land in training, in runlens' writes and in Keras' backup alike.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import threading
import time
from pathlib import Path

import pandas
from _fit_process import spawn

import runlens

KILLS = int(os.environ.get("RUNLENS_KILL_TRIALS", "3"))
SEED = int(os.environ.get("RUNLENS_KILL_SEED", "13"))
EPOCHS = 3 * KILLS + 3  # a start trains an epoch or two before its kill; no early stop comes first
FINISHED = "holds a finished run"  # the one refusal a kill can lead to: it came after the run ended


class Fit:
    """One process of the fit; ``lines`` gets (time, line) for each ``epoch K`` / ``end K`` it prints."""

    def __init__(self, run: Path, backup: Path, placement: str, log: Path):
        self.log = log
        with open(log, "w") as stderr:
            self.process = spawn(
                run,
                *("--epochs", EPOCHS, "--patience", EPOCHS, "--width", 512, "--backup", backup),
                *("--backup-placement", placement, "--print-ends"),
                stderr=stderr,
            )
        self.lines: queue.Queue[tuple[float, str | None]] = queue.Queue()
        self.ended = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put((time.monotonic(), line.strip()))
        self.lines.put((time.monotonic(), None))

    def next(self, kind: str) -> float:
        """When the next ``kind`` line (``epoch`` or ``end``) came; raises EOFError once the process ended."""
        while not self.ended:
            at, line = self.lines.get(timeout=600)
            if line is None:
                self.ended = True
            elif line.split()[0] == kind:
                return at
        raise EOFError

    def kill_at_random(self, rng: random.Random) -> bool:
        """Kill the process at a random moment -- within an epoch, or within the writes that follow
        its end (the bundle's and Keras' backup) -- and return True; False if it ended first."""
        try:
            began, ended, next_began = self.next("epoch"), self.next("end"), self.next("epoch")
            if rng.random() < 0.5:
                at, length = (self.next("epoch") if rng.random() < 0.5 else next_began), next_began - began
            else:
                at, length = self.next("end"), next_began - ended
        except EOFError:
            return False
        time.sleep(max(0.0, at + rng.random() * length - time.monotonic()))
        self.process.send_signal(signal.SIGKILL)
        return True

    def wait(self) -> tuple[int, str]:
        self.process.wait(timeout=600)
        return self.process.returncode, self.log.read_text()


def test_kill_9_at_random_moments_never_ends_a_start_in_a_traceback(tmp_path):
    rng = random.Random(SEED)
    run, backup = tmp_path / "run", tmp_path / "backup"
    kills, rebuilt, outcome = 0, 0, None
    for start in range(KILLS + 1):
        # every other start places BackupAndRestore by hand after the bundle, as older READMEs said
        fit = Fit(run, backup, "bundle" if start % 2 == 0 else "after", tmp_path / f"stderr-{start}.txt")
        killed = start < KILLS and fit.kill_at_random(rng)
        code, stderr = fit.wait()
        rebuilt += "could not have resumed" in stderr
        assert "Traceback" not in stderr, f"start {start} ended in a traceback:\n{stderr}"
        if killed and code == -signal.SIGKILL:
            kills += 1
            continue
        assert code in (0, 3), stderr
        outcome = stderr.strip().splitlines()[-1] if code == 3 else "finished"
        break
    print(f"{kills} kills, {rebuilt} backups rebuilt, then {outcome}")
    assert outcome == "finished" or (outcome.startswith("Error: ") and FINISHED in outcome), outcome
    assert_one_whole_run(run)


def assert_one_whole_run(run: Path) -> None:
    m = runlens.read_manifest(run)
    assert m["ended_normally"] and m["status"] in ("completed", "stopped_early")
    epochs = [e["epoch"] for e in m["epochs"]]
    assert epochs == list(range(len(epochs)))
    csv = pandas.read_csv(run / "history.csv")
    assert list(csv["epoch"]) == epochs
    assert csv["val_loss"].tolist() == [e["logs"]["val_loss"] for e in m["epochs"]]
    table = runlens.read_checkpoints(run / "checkpoints")
    assert table["valid"].all() and epochs[-1] in set(table["epoch"])
    assert not (run / ".runlens-saving").exists() or not any((run / ".runlens-saving").iterdir())
    live = runlens.build_report(run, checkpoint_min_age=0).run(".").live
    assert live.agrees, live.disagreements
