"""The report's layout at sweep scale (issue 13): overview first, a compact runs table whose width
follows the terminal, per-run sections only for --detail runs, --sort and --runs, their errors;
the notebook view and the runs frame; docs/report-at-scale.md's Python examples run. On a
generated Keras sweep of 50 runs (conftest's sweep_logdir) and sample_logs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import runlens
from runlens.cli import main
from runlens.report.build.overview import DETAIL, detail_runs
from runlens.report.render.notebook import ROWS
from runlens.report.render.text import render_text

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_logs"


def report_cli(*args, columns: int | None = None):
    env = {} if columns is None else {"COLUMNS": str(columns)}
    return CliRunner().invoke(main, ["report", *map(str, args)], env=env)


def sections(text: str) -> list[str]:
    return re.findall(r"^== (run-\d+)$", text, re.M)


def table_lines(text: str) -> list[str]:
    block = text.split("\n== runs: ", 1)[1]
    return block.split("\n\n", 1)[0].splitlines()[1:]


def test_the_sweep_reads_overview_first_then_a_line_per_run_then_a_few_runs(sweep_logdir, sweep_report):
    result = report_cli(sweep_logdir, "--no-checkpoints", columns=120)
    assert result.exit_code == 0, result.output
    text = result.output
    order = [text.index(h) for h in ("== overview", "runs worth a look:", "== sweep: ", "== runs: 50")]
    assert order == sorted(order)
    rows = table_lines(text)
    assert rows[0].split()[:3] == ["run", "epochs", "stops"] and len(rows) == 51
    assert [line.split()[0] for line in rows[1:]] == sorted(r.run for r in sweep_report.runs)
    detailed = [r.run for r in detail_runs(sweep_report)]
    assert len(sections(text)) == DETAIL and set(sections(text)) == set(detailed)
    assert text.index("== runs: 50") < text.index(f"== {detailed[0]}\n")
    assert len(text.splitlines()) < 200  # 50 runs: not 50 sections


@pytest.mark.parametrize(("detail", "count"), [("0", 0), ("3", 3), ("all", 50), ("ALL", 50)])
def test_detail_chooses_the_sections(sweep_logdir, detail, count):
    result = report_cli(sweep_logdir, "--no-checkpoints", "--detail", detail)
    assert result.exit_code == 0, result.output
    assert len(sections(result.output)) == count
    markdown = report_cli(sweep_logdir, "--no-checkpoints", "--detail", detail, "--format", "markdown")
    assert len(re.findall(r"^### run-\d+$", markdown.output, re.M)) == count


def test_sort_orders_the_table_and_the_sections(sweep_logdir, sweep_report):
    result = report_cli(sweep_logdir, "--no-checkpoints", "--sort", "saved", "--detail", "all")
    names = [line.split()[0] for line in table_lines(result.output)[1:]]
    saved = {r.run: r.epochs_saved for r in sweep_report.runs}
    assert [saved[n] for n in names] == sorted(saved.values(), reverse=True)
    assert sections(result.output) == names  # the sections follow the table's order


def test_runs_selects_by_printed_name(sweep_logdir):
    result = report_cli(sweep_logdir, "--no-checkpoints", "--runs", "run-000*", "--runs", "run-0042")
    assert result.exit_code == 0, result.output
    names = [line.split()[0] for line in table_lines(result.output)[1:]]
    assert names == [f"run-{i:04d}" for i in range(10)] + ["run-0042"]
    assert "== runs: 11" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--runs", "nope*"), r"no run matches runs='nope\*'; the runs are: run-0000, run-0000/train"),
        (("--detail", "some"), r"'some' is neither a whole number >= 0 nor 'all'"),
        (("--detail", "-2"), r"neither a whole number >= 0 nor 'all'"),
        (("--sort", "size"), r"'size' is not one of 'run', 'saved', 'regret', 'stop', 'best'"),
    ],
)
def test_bad_options_are_one_error_line(sweep_logdir, args, message):
    result = report_cli(sweep_logdir, *args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and re.search(message, lines[0]), result.output


def prose(text: str, source: Path) -> list[str]:
    """The lines before the sweep table, but those naming the source (a path: one long word)."""
    return [line for line in text.split("== sweep: ", 1)[0].splitlines() if str(source) not in line]


def test_the_width_follows_the_terminal(sweep_logdir, sweep_report):
    for width in (80, 100, 160):
        text = render_text(sweep_report, width=width)
        assert max(map(len, prose(text, sweep_logdir))) <= width
        assert max(map(len, table_lines(text))) <= width
    narrow, wide = render_text(sweep_report, width=80), render_text(sweep_report, width=160)
    assert len(narrow.splitlines()) > len(wide.splitlines())  # the prose wraps later when wider


def test_long_names_are_cut_in_the_table_only():
    long = "lr_0.001/dropout_0.25/" + "x" * 80 + "/seed_17"
    frame = pd.DataFrame(
        {
            "run": [long] * 3 + ["short"] * 3,
            "epoch": [0, 1, 2] * 2,
            "wall_time": [1.0, 2.0, 3.0] * 2,
            "val_loss": pd.array([0.5, 0.4, 0.6, 0.3, 0.2, 0.1], dtype="Float64"),
        }
    )
    report = runlens.build_report(frame, early_stopping=runlens.EarlyStopping(patience=0))
    text = render_text(report, width=80)
    assert max(map(len, table_lines(text))) <= 80
    [row] = [line for line in table_lines(text) if "..." in line]
    cut = row.split()[0]
    assert cut.startswith("lr_0") and cut.endswith("_17") and len(cut) < len(long)
    assert any(line.split()[0] == long for line in table_lines(render_text(report, width=300)))
    assert f"== {long}\n" in text  # its section names it whole


def test_the_terminal_width_comes_from_columns(sweep_logdir):
    narrow = report_cli(sweep_logdir, "--no-checkpoints", columns=70).output
    wide = report_cli(sweep_logdir, "--no-checkpoints", columns=200).output
    assert max(map(len, prose(narrow, sweep_logdir))) <= 70
    assert max(map(len, prose(wide, sweep_logdir))) > 110


def test_json_holds_every_run_whatever_the_detail(sweep_logdir):
    result = report_cli(
        sweep_logdir, "--no-checkpoints", "--format", "json", "--detail", "1", "--sort", "regret"
    )
    document = json.loads(result.output)
    assert len(document["runs"]) == 50 and document["overview"]["runs"] == 50
    assert [r["run"] for r in document["runs"]] == sorted(r["run"] for r in document["runs"])


def test_the_notebook_view_is_the_overview_and_the_runs_table(sweep_report):
    html = sweep_report._repr_html_()
    assert "Runs worth a look" in html and "<img" not in html and "<script" not in html
    assert html.count("<tr>") < ROWS + 60  # the table stops at ROWS runs; the overview is short
    body = html.split("<h4>Runs (", 1)[1]
    assert body.count("run-00") == ROWS
    first = [s.run for s in sweep_report.overview.worth_a_look]
    assert body.index(first[0]) < body.index("run-0049") if "run-0049" in body else True


def test_the_notebook_view_escapes_names():
    frame = pd.DataFrame(
        {
            "run": ["<script>alert(1)</script>"] * 3,
            "epoch": [0, 1, 2],
            "wall_time": [1.0, 2.0, 3.0],
            "val_loss": pd.array([0.5, 0.4, 0.6], dtype="Float64"),
        }
    )
    html = runlens.build_report(frame)._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_runs_frame_holds_each_record(sweep_report):
    frame = sweep_report.runs_frame()
    assert frame["run"].tolist() == [r.run for r in sweep_report.runs]
    for row, record in zip(frame.to_dict("records"), sweep_report.runs):
        for key in ("epochs_logged", "stopped_epoch", "restored_epoch", "epochs_saved", "regret"):
            value = row[key]
            assert (None if pd.isna(value) else value) == getattr(record, key), key
    worth = {s.run for s in sweep_report.overview.worth_a_look}
    assert set(frame.loc[frame["worth_a_look"] != "", "run"]) == worth
    assert frame["epochs_saved"].sum() == sweep_report.totals.epochs_saved
    hparams = [c for c in frame.columns if c.startswith("hparams.")]
    assert "hparams.learning_rate" in hparams and "hparams.dropout" in hparams
    for row, record in zip(frame[hparams].to_dict("records"), sweep_report.runs):
        assert {k.removeprefix("hparams."): v for k, v in row.items()} == {
            h["name"]: h["value"] for h in record.hparams
        }


def test_the_docs_python_examples_run(monkeypatch):
    page = (ROOT / "docs" / "report-at-scale.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", page, re.S | re.M)
    assert len(blocks) >= 2
    monkeypatch.chdir(ROOT)
    for block in blocks:
        exec(compile(block, "docs/report-at-scale.md", "exec"), {})
