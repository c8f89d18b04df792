"""`runlens report` through click's CliRunner: every format on sample_logs and on real Keras fits,
checked against runlens.replay/sweep computed here; HTML self-containment and escaping; errors;
the progress line (a real pseudo-terminal vs a pipe).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree

import pandas as pd
import pytest
import writers
from click.testing import CliRunner
from PIL import Image

import runlens
from runlens.cli import main

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"
FORMATS = ("text", "markdown", "json", "html")
KERAS_FIXTURES = ("keras_run", "keras_sparse_validation_run", "keras_plateau_run", "keras_resumed_run")
HOSTILE_RUNS = ("<script>alert(1)</script>", "\"&'")
HOSTILE_METRIC = "<img src=x onerror=alert(1)>$x$"


def invoke(*args):
    return CliRunner().invoke(main, ["report", *[str(a) for a in args]])


def expected(logdir):
    """replay() and sweep() of the report's default settings (ReduceLROnPlateau's with
    --reduce-lr), computed without the report."""
    frame = runlens.read_epochs(logdir)
    monitor = "val_loss"
    policy = runlens.EarlyStopping(monitor=monitor, patience=5, restore_best_weights=True)
    lr = runlens.ReduceLROnPlateau(monitor=monitor)
    table = runlens.replay(frame, policy, lr_policy=lr)
    swept = runlens.sweep(frame, patience=[0, 1, 2, 3, 5, 8, 10, 15, 20, 30], monitor=monitor)
    return table, swept


def check_json(document, table, swept):
    assert document["schema"] == "runlens.report/2" and document["epochs"] == "0-based"
    assert [r["run"] for r in document["runs"]] == table["run"].tolist()
    for got, row in zip(document["runs"], table.to_dict("records")):
        for key in (
            "stopped_epoch",
            "best_epoch",
            "restored_epoch",
            "run_best_epoch",
            "epochs_saved",
            "epochs_trained",
            "epochs_logged",
        ):
            assert got[key] == (None if pd.isna(row[key]) else int(row[key])), key
        assert got["time_saved_s"] == pytest.approx(row["time_saved_s"])
        assert got["regret"] == (None if pd.isna(row["regret"]) else pytest.approx(row["regret"]))
        lr = got["learning_rate"]
        assert lr["replayed_reduced_at"] == list(row["lr_reduced_at"])
        assert lr["diverges_at"] == (None if pd.isna(row["lr_diverges_at"]) else row["lr_diverges_at"])
    rows = document["sweep"]["rows"]
    assert [r["epochs_saved"] for r in rows] == swept.table["epochs_saved"].tolist()
    assert [r["frontier"] for r in rows] == swept.table["frontier"].tolist()
    assert document["sweep"]["recommended"] == swept.recommended
    assert document["totals"]["epochs_saved"] == table["epochs_saved"].sum()


def check_text(text, table):
    for row in table.to_dict("records"):
        block = text.split(f"== {row['run']}\n", 1)[1].split("\n== ", 1)[0]
        if pd.isna(row["stopped_epoch"]):
            assert "does not stop" in block
        else:  # 1-based, as Keras prints "Epoch 12"
            assert f"stops after epoch {row['stopped_epoch'] + 1} " in block
            assert f"the weights of epoch {row['restored_epoch'] + 1} " in block
        if not pd.isna(row["run_best_epoch"]):
            assert f"at epoch {row['run_best_epoch'] + 1}" in block
        assert ("counterfactual" in block) == (not pd.isna(row["lr_diverges_at"]))
    assert "== overview" in text and "== sweep" in text and "recommended" in text and "== runs: " in text
    assert text.index("== overview") < text.index("== sweep") < text.index("== runs: ")


PLOT_ELEMENTS = {"div", "svg", "line", "text", "rect", "polyline", "path", "circle", "polygon"}


def check_html(document):
    """Self-contained (no external resource), no script, every image a decodable PNG, every run
    plot well-formed SVG of drawing elements only: (the PNGs' sources, the plots' trees)."""
    assert document.startswith("<!DOCTYPE html>") and document.rstrip().endswith("</html>")
    assert not re.search(r"<script", document, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", document, re.I)
    assert not re.search(r"@import|url\(", document, re.I)
    sources = re.findall(r'\ssrc="([^"]*)"', document)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert all(h.startswith("#") for h in re.findall(r'\shref="([^"]*)"', document))
    for source in sources:
        data = base64.b64decode(source.split(",", 1)[1], validate=True)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        image = Image.open(io.BytesIO(data))
        image.verify()
        assert image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100
    plots = [ElementTree.fromstring(svg) for svg in re.findall(r'<div class="plot".*?</div>', document, re.S)]
    for plot in plots:  # parsed: no name broke out of its text
        assert {element.tag for element in plot.iter()} <= PLOT_ELEMENTS
    return sources, plots


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_on_sample_logs(fmt):
    result = invoke(SAMPLE, "--format", fmt, "--min-age", "0", "--reduce-lr")  # LR replay on every run
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # not a terminal: no progress line
    table, swept = expected(SAMPLE)
    if fmt == "json":
        check_json(json.loads(result.stdout), table, swept)
    elif fmt == "text":
        check_text(result.stdout, table)
        assert "checkpoints" in result.stdout and "free" in result.stdout
    elif fmt == "markdown":
        assert "| run | epochs | stops | best |" in result.stdout
        for row in table.to_dict("records"):
            assert f"### {row['run'].replace('_', chr(92) + '_')}" in result.stdout
    else:
        sources, plots = check_html(result.stdout)
        # per framework part (the sample's Keras runs, then its Lightning and its HF run): the
        # overlay of every run, the stop/saved distributions, the frontier; a plot per run shown
        # in detail (a small logdir: all of them)
        assert len(sources) == 3 * 3 and len(plots) == len(table) + 2 == 7


@pytest.mark.parametrize("name", KERAS_FIXTURES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_on_real_keras_fits(request, name, fmt, tmp_path):
    fit = request.getfixturevalue(name)
    out = tmp_path / "report.out"
    result = invoke(fit.path, "--format", fmt, "-o", out, "--reduce-lr")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote the {fmt} report on 1 run(s) to {out}\n"
    document = out.read_text(encoding="utf-8")
    table, swept = expected(fit.path)
    if fmt == "json":
        check_json(json.loads(document), table, swept)
    elif fmt == "text":
        check_text(document, table)
    elif fmt == "html":
        check_html(document)
    else:
        assert "## Overview" in document and "## Sweep" in document and "## Runs" in document


def test_output_format_follows_the_extension(tmp_path):
    for name, start in [
        ("r.html", "<!DOCTYPE html>"),
        ("r.md", "# runlens report"),
        ("r.json", "{"),
        ("r.txt", "runlens report: "),
    ]:
        result = invoke(SAMPLE, "-o", tmp_path / name, "--no-checkpoints")
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).read_text(encoding="utf-8").startswith(start)
    document = json.loads((tmp_path / "r.json").read_text())
    assert all(r["checkpoints"] is None for r in document["runs"])
    assert not document["settings"]["checkpoints"]["looked"]


@pytest.fixture(scope="module")
def hostile_logdir(keras_run, tmp_path_factory):
    """Run folders named like markup (a '/' in a name makes a sub-folder, so the run name holds it)
    and a metric whose name is markup and mathtext."""
    root = tmp_path_factory.mktemp("hostile")
    for name in HOSTILE_RUNS:
        shutil.copytree(keras_run.path, root / name)
    series = [(f"epoch_{HOSTILE_METRIC}", step, 1.0 / (step + 1)) for step in range(4)]
    writers.write_raw_protos(root / HOSTILE_RUNS[0] / "train", series=series)
    return root


def test_html_and_markdown_escape_run_and_metric_names(hostile_logdir):
    frame = runlens.read_epochs(hostile_logdir)
    assert set(frame["run"]) == set(HOSTILE_RUNS)
    monitor = f"{HOSTILE_METRIC}/simple_value"
    assert monitor in frame.columns
    for args in ([], ["--monitor", monitor, "--mode", "min"]):
        result = invoke(hostile_logdir, "--format", "html", *args)
        assert result.exit_code == 0, result.output
        document = result.stdout
        _, plots = check_html(document)
        drawn = "".join(text for plot in plots for text in plot.itertext())
        assert (HOSTILE_METRIC in drawn) == bool(args)  # escaped in the markup, the name once parsed
        for name in (*HOSTILE_RUNS, HOSTILE_METRIC):
            assert name not in document
        for name in HOSTILE_RUNS:
            assert html.escape(name) in document
        assert (html.escape(HOSTILE_METRIC) in document) == bool(args)
        markdown = invoke(hostile_logdir, "--format", "markdown", *args).stdout
        assert "<script>" not in markdown and "<img" not in markdown and "&lt;script&gt;" in markdown


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    result = invoke(SAMPLE, "--monitor", "val_los")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "'val_los' is not a logged metric" in result.stderr
    assert "val_loss" in result.stderr and "val_accuracy" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke(empty)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "no event files" in result.stderr
    writers.write_tensorboardx(tmp_path / "no_epochs")  # scalars, but no epoch_* tags
    result = invoke(tmp_path / "no_epochs")
    assert (
        result.exit_code == 2
        and result.stderr.count("\n") == 1
        and "no evaluations found" in result.stderr  # read as generic runs: what was found, what to pass
        and "--monitor" in result.stderr
    )
    result = invoke(SAMPLE, "--sweep-patience", "1,two")
    assert result.exit_code == 2 and "comma-separated" in result.stderr
    result = invoke(SAMPLE, "--no-checkpoints", "-o", tmp_path / "no" / "such" / "folder.txt")
    assert (
        result.exit_code == 2
        and result.stderr.count("\n") == 1
        and "cannot write the report" in result.stderr
    )


def test_help_explains_lr_timing_and_has_examples():
    result = invoke("--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output and "runlens report sample_logs" in result.output
    assert "callback order" in result.output and "already reduced" in result.output


_NOTICE = textwrap.dedent("""
    import sys, time
    from runlens.cli.progress import delayed_notice
    with delayed_notice("reading logs...", delay={delay}):
        time.sleep({sleep})
    print("done", flush=True)
""")


def _notice_output(delay, sleep, *, tty):
    code = _NOTICE.format(delay=delay, sleep=sleep)
    if not tty:
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        return run.stderr
    import pty

    leader, follower = pty.openpty()
    try:
        run = subprocess.run(
            [sys.executable, "-c", code], stderr=follower, stdout=subprocess.DEVNULL, timeout=60
        )
        assert run.returncode == 0
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 1024)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        os.close(leader)


def test_progress_line_only_on_a_terminal_and_only_when_slow():
    assert re.fullmatch(r"reading logs\.\.\. done \(\d+\.\d s\)\r?\n", _notice_output(0.05, 0.4, tty=True))
    assert _notice_output(5.0, 0.0, tty=True) == ""  # quick: nothing
    assert _notice_output(0.05, 0.4, tty=False) == ""  # slow but a pipe: nothing


def test_figures_drawn_in_worker_processes_equal_those_drawn_here():
    # a fresh interpreter: forking is refused in a process that loaded TensorFlow (this session)
    code = textwrap.dedent(f"""
        import runlens
        from runlens.report.render.figures import Figures, figure_workers
        drawers = figure_workers()  # started before the report is built, as the CLI does
        assert drawers is not None
        report = runlens.build_report({str(SAMPLE)!r}, checkpoints=False)
        jobs = [(0, name) for name in ("overlay", "distribution", "frontier")]
        with Figures([report], workers=drawers) as figures:
            assert len(figures._futures) == len(jobs)  # every figure handed to the workers
            started = [figures.get(*job) for job in jobs]
        drawers.shutdown()
        with Figures([report]) as figures:
            assert figures._owned is not None  # workers of its own
            there = [figures.get(*job) for job in jobs]
        with Figures([report], workers=1) as figures:
            assert not figures._futures
            here = [figures.get(*job) for job in jobs]
        assert started == there == here
        import tensorflow  # loaded: every figure is drawn here
        assert figure_workers() is None
        with Figures([report]) as figures:
            assert not figures._futures
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"
