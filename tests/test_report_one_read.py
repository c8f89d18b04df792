"""The report lists and reads a logdir once (issue 13): hparams from the main read's plugin marks,
runlens.json looked up per run, checkpoints read once for every framework part. Counted with spies
that wrap the real functions (each call still runs them)."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import runlens
import runlens.checkpoints.find
import runlens.checkpoints.index
import runlens.events.logdir
import runlens.hparams
import runlens.report.build.checkpoints
import runlens.report.build.live
from runlens.report.build.live import read_run_manifests

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"


def spy(monkeypatch, modules, name):
    """Wrap ``name`` (the real function) wherever ``modules`` hold it; the list of calls' args."""
    calls = []
    for module in modules:
        if not hasattr(module, name):
            continue
        real = getattr(module, name)

        @functools.wraps(real)
        def counted(*args, _real=real, **kwargs):
            calls.append(args)
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    return calls


def test_a_sweep_report_lists_its_event_files_once_and_finds_every_runs_hparams(sweep_logdir, monkeypatch):
    import runlens.events.read_ahead

    listed = spy(
        monkeypatch,
        [runlens.events.logdir, runlens.events.read_ahead, runlens.report.build.live, runlens.hparams],
        "find_event_files",
    )
    report = runlens.build_report(sweep_logdir)
    # the read's listing (its read-ahead's: a sweep's report makes one), no second one for
    # hparams, no byte scan
    assert len(listed) == 1
    recorded = runlens.read_hparams(sweep_logdir).set_index("run")
    assert len(recorded) == len(report.runs) == 50
    for record in report.runs:
        expected = {k: v for k, v in recorded.loc[record.run].items() if not pd.isna(v)}
        assert {h["name"]: h["value"] for h in record.hparams} == pytest.approx(expected)


def test_a_selected_folder_still_shows_the_hparams_written_beside_it(sweep_logdir):
    """runs= reads run-0003's train and validation folders only; its hparams file is in run-0003
    itself (as runlens.keras writes it): the report looks for it there too."""
    report = runlens.build_report(sweep_logdir, runs=["run-0003/train", "run-0003/validation"])
    recorded = runlens.read_hparams(sweep_logdir, runs="run-0003").set_index("run").loc["run-0003"]
    assert [r.run for r in report.runs] == ["run-0003"]
    assert {h["name"]: h["value"] for h in report.runs[0].hparams} == pytest.approx(dict(recorded))


def test_a_mixed_logdir_reads_its_checkpoints_once_for_every_framework_part(monkeypatch):
    read = spy(monkeypatch, [runlens.report.build.checkpoints, runlens.checkpoints.index], "read_checkpoints")
    report = runlens.build_report(SAMPLE)
    frameworks = [report.settings.framework, *(part.settings.framework for part in report.parts)]
    assert frameworks == ["keras", "lightning", "transformers"]
    assert len(read) == 1
    for part in (report, *report.parts):  # every part still has its checkpoints
        assert any(r.checkpoints is not None for r in part.runs)


def test_manifests_are_found_where_the_runs_are_also_through_a_symlinked_run_folder(tmp_path):
    """runlens.json is looked up per run (no walk of the logdir): for the runs a walk sees, the
    same manifests; a run folder linked into the logdir (whose event files the read follows) now
    has its manifest read too, where os.walk never went."""
    logdir = tmp_path / "logdir"
    shutil.copytree(SAMPLE / "overfits", logdir / "overfits")
    shutil.copytree(SAMPLE / "improving", tmp_path / "elsewhere" / "improving")
    (logdir / "improving").symlink_to(tmp_path / "elsewhere" / "improving", target_is_directory=True)
    (logdir / "no_manifest").mkdir()
    walked = runlens.manifest.find_manifests(logdir)
    assert set(walked) == {"overfits"}
    manifests, warnings = read_run_manifests(logdir, ["overfits", "improving", "no_manifest"])
    assert warnings == [] and set(manifests) == {"overfits", "improving"}
    assert manifests["overfits"] == ("overfits/runlens.json", runlens.read_manifest(walked["overfits"]))
    report = runlens.build_report(logdir)
    assert {r.run: r.live is not None for r in report.runs} == {"overfits": True, "improving": True}


def test_a_broken_manifest_link_is_named_as_the_walk_named_it(tmp_path):
    logdir = tmp_path / "logdir"
    shutil.copytree(SAMPLE / "overfits", logdir / "overfits")
    (logdir / "overfits" / "runlens.json").unlink()
    (logdir / "overfits" / "runlens.json").symlink_to(tmp_path / "gone.json")
    assert set(runlens.manifest.find_manifests(logdir)) == {"overfits"}
    manifests, warnings = read_run_manifests(logdir, ["overfits"])
    assert manifests == {} and len(warnings) == 1 and "runlens.json" in warnings[0]


def test_a_report_given_an_executor_walks_for_checkpoints_in_its_worker(monkeypatch, tmp_path):
    """The walk for checkpoints is queued behind the read in the executor's workers; once it is
    done, they read the runs' runlens.json (which then also say which runs ended) and open and
    check every file it found (forked here: the spies below are theirs too, but what they call is
    not counted in this process). Every checkpoint is just written: only the runs known to have
    ended are planned without the min-age, so a wrong "ended" changes the report."""
    import os

    from runlens.events.read_ahead import ReadAhead
    from runlens.report.render import render_report

    logdir = tmp_path / "logs"
    shutil.copytree(SAMPLE, logdir, symlinks=True)
    for path in logdir.rglob("*"):
        os.utime(path, follow_symlinks=False)
    walked = spy(monkeypatch, [runlens.checkpoints.index], "find_checkpoints")
    settled = spy(monkeypatch, [runlens.report.build.checkpoints], "ended_runs")
    opened = spy(monkeypatch, [runlens.checkpoints.find], "inspect_file")
    serial = runlens.build_report(logdir)
    fresh = {r.run: r.checkpoints.fresh for r in serial.runs if r.checkpoints}
    assert fresh["overfits"] == 0 and fresh["plateau"] == 0  # their runlens.json say they ended
    assert len(walked) == 1
    asked_here = {run for _, runs in settled for run in runs}
    assert {"overfits", "improving", "plateau"} <= asked_here
    assert {Path(path).suffix for path, _ in opened} >= {".keras", ".ckpt"}
    settled.clear()
    opened.clear()
    with ReadAhead(logdir) as ahead:
        ahead_report = runlens.build_report(logdir, executor=ahead)
    assert len(walked) == 1  # not walked in this process
    assert opened == []  # nor any checkpoint opened
    # which runs ended is read in the workers, after the walk: only runs it did not name (the HF
    # output dir's checkpoints, reported under its logged run) are asked here
    assert not {run for _, runs in settled for run in runs} & {"overfits", "improving", "plateau"}
    assert render_report(ahead_report, "json") == render_report(serial, "json")


def test_manifests_read_ahead_in_workers_are_the_ones_read_here(tmp_path):
    """runlens report reads a sweep's runlens.json in its read's workers (ReportReads.manifests_ahead,
    from every name a run may have): the same manifests and warnings as read_run_manifests, a run
    the workers were not asked for read in this process."""
    from concurrent.futures import ProcessPoolExecutor

    from runlens.report.build.source import ReportReads

    logdir = tmp_path / "logdir"
    for run in ("overfits", "improving", "broken"):
        shutil.copytree(SAMPLE / "plateau" if run == "broken" else SAMPLE / run, logdir / run)
    (logdir / "broken" / "runlens.json").write_text("{not json", encoding="utf-8")
    runs = ["broken", "improving", "no_such_run", "overfits"]
    with ProcessPoolExecutor(2) as pool:
        reads = ReportReads(None, pool)
        reads.manifests_ahead(logdir, ["overfits", "broken", "overfits/train"])  # not "improving"
        got = reads.manifests(logdir, runs)
    expected = read_run_manifests(logdir, runs)
    assert got == expected
    assert set(got[0]) == {"improving", "overfits"} and len(got[1]) == 1 and "broken" in got[1][0]


@pytest.mark.parametrize("walked_first", [True, False])
def test_manifests_read_after_the_checkpoint_walk_are_read_once_for_both_uses(tmp_path, walked_first):
    """In a folder being walked for checkpoints the workers read runlens.json once the walk is
    done (ReportReads.checkpoints_ahead): the same manifests as read_run_manifests, and which runs
    ended as ended_runs says; when no part asks for the checkpoints first, manifests() starts them."""
    from concurrent.futures import ProcessPoolExecutor

    from runlens.manifest import ended_runs
    from runlens.report.build.source import ReportReads

    logdir = tmp_path / "logdir"
    for run in ("overfits", "improving", "broken", "running"):
        shutil.copytree(SAMPLE / ("plateau" if run in ("broken", "running") else run), logdir / run)
    (logdir / "broken" / "runlens.json").write_text("{not json", encoding="utf-8")
    manifest = json.loads((logdir / "running" / "runlens.json").read_text(encoding="utf-8"))
    manifest.update(status="running", ended_normally=False)  # a fit writing the run now
    (logdir / "running" / "runlens.json").write_text(json.dumps(manifest), encoding="utf-8")
    runs = ["broken", "improving", "no_such_run", "overfits", "running"]
    with ProcessPoolExecutor(2) as pool:
        reads = ReportReads(None, pool)
        reads.walk_ahead(logdir)
        reads.manifests_ahead(logdir, ["overfits", "broken", "running", "overfits/train"])  # not "improving"
        if walked_first:
            reads.checkpoints_ahead(logdir)
        got = reads.manifests(logdir, runs)
        ended = reads.ended(logdir)
    assert got == read_run_manifests(logdir, runs)
    settled = ended_runs(logdir, ["broken", "improving", "overfits", "running"])
    assert settled == {"improving", "overfits"}
    if walked_first:
        assert ended == {run: run in settled for run in ["broken", "improving", "overfits", "running"]}
    else:
        assert ended is None  # nothing read ahead for it: checkpoint_summaries reads it itself


def test_a_sweep_report_from_python_is_built_with_worker_processes_to_the_same_report(tmp_path, monkeypatch):
    """build_report(logdir) with no executor makes one for a sweep (report_workers; here nested a
    folder deep, logdir/sweep-a/run-NNN): the workers read and check what the CLI's do (no
    checkpoint opened in this process), and the report is the one built all in this process. (A test session that loaded TensorFlow would build it
    in this process, not to start workers from scratch: made to start them here anyway.)"""
    import runlens.report.build.source as source
    from runlens.report.render import render_report

    monkeypatch.setattr(source, "fork_is_safe", lambda: True)  # workers from a forkserver if not

    logdir, runs = tmp_path / "sweep", source.SWEEP_RUNS
    for i in range(runs):
        shutil.copytree(SAMPLE / "plateau", logdir / "sweep-a" / f"run-{i:03d}")
    opened = spy(monkeypatch, [runlens.checkpoints.find], "inspect_file")
    with_workers = runlens.build_report(logdir)
    assert opened == []
    monkeypatch.setattr(source, "SWEEP_RUNS", runs + 2)  # sweep-a and its runs: too few for workers
    alone = runlens.build_report(logdir)
    assert len(opened) == runs * len(list((SAMPLE / "plateau" / "checkpoints").iterdir()))
    assert render_report(with_workers, "json") == render_report(alone, "json")
