"""Names from disk are data, never markup or terminal control: every command, in every format, on a
logdir whose own path, run folders, event files, tags and checkpoint files are named with line
breaks, carriage returns, ANSI/OSC escapes, bidi controls, Unicode line separators, Markdown/HTML
syntax and bytes that are not UTF-8.

Checked on every output: it is UTF-8, no line holds a character ``str.isprintable`` rejects (a
control, a bidi override, a line separator, a lone surrogate), no line is forged (a name's line
break must not start a new ``== ...`` heading or report line), Markdown tables keep their columns
and HTML holds no markup from a name. Data outputs keep names faithful instead (JSON escapes them,
CSV holds their bytes). ``checkpoints list|prune``, ``ls`` and ``report`` also run under a real
pseudo-terminal, where click does not strip ANSI sequences as it does for pipes.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
import tty
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import writers
from checkpoint_fits import copy_fitted
from click.testing import CliRunner

import runlens
from runlens.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:keras.*")

FORGED = "run\n== forged run\n(no problems: every file is intact)"
HOSTILE = [
    FORGED,
    "cr\rred\x1b[31mosc\x1b]0;pwned\x07",
    "bidi\u202eevil\u2066iso\u2069 nel\x85 ls\u2028end",
    "md|<script>alert(1)</script>`tick`*b*_i_[l](u)# x",
    os.fsdecode(b"bytes\xff\xfe"),
]
ROOT_NAME = os.fsdecode(b"logs\xff \x1b[2J") + "\u202e"
TAG = "batch_\n== forged tag\x1b[31m\u202e|"
METRIC = "epoch_\n== forged metric\x1b]0;pwned\x07\u2066"
CHECKPOINT = "epoch_03-\n== forged\x1b]0;pwned\x07\u202e.keras"  # no epoch readable: listed in notes
EVENT_FILE = "events.out.tfevents.1.\n== forged file\x1b]0;pwned\x07\u202e"
TIMEOUT = 120


def escaped(name: str) -> str:
    """How runlens shows a name (docs/names.md): every character ``str.isprintable`` rejects
    as ``\\xNN`` (a byte that is not UTF-8 too), ``\\uNNNN`` or ``\\UNNNNNNNN``."""
    out = []
    for char in name:
        code = ord(char)
        if char.isprintable():
            out.append(char)
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


@pytest.fixture(scope="module")
def hostile(fitted, tmp_path_factory):
    """Five copies of a real Keras fit (TensorBoard logs + ModelCheckpoint files), one per hostile
    run name, under a hostile logdir path; in the first, a checkpoint and a (cut) event file with
    hostile names; beside them a run with hostile tags."""
    base = tmp_path_factory.mktemp("hostile")
    root = base / ROOT_NAME
    root.mkdir()
    for name in HOSTILE:
        copy = copy_fitted(fitted, base / "copy")
        shutil.move(copy.root / "exp", root / name)
        shutil.rmtree(copy.root)
    first = root / HOSTILE[0]
    checkpoint = next((first / "checkpoints").glob("epoch_03-*.keras"))
    checkpoint.rename(checkpoint.with_name(CHECKPOINT))
    event_file = next((first / "validation").glob("*tfevents*"))
    writers.truncate(event_file, -5)  # a damaged file: its path is in a problem message
    event_file.rename(event_file.with_name(EVENT_FILE))
    # tensorboard's own writer (tensorboardX and tf.summary would clean these tag names up)
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(base / "tagged"))  # (its file API cannot open a non-UTF-8 path)
    for step in range(3):
        values = [summary_pb2.Summary.Value(tag=tag, simple_value=1.0 / (step + 1)) for tag in (TAG, METRIC)]
        writer.add_event(
            event_pb2.Event(wall_time=1.0 + step, step=step, summary=summary_pb2.Summary(value=values))
        )
    writer.close()
    shutil.move(base / "tagged", root / "tagged")
    return root


def check_text(output: bytes | str, where: str) -> str:
    """Terminal/text output: UTF-8, every line printable, no forged line; returns it decoded."""
    text = output.decode("utf-8") if isinstance(output, bytes) else output  # raw non-UTF-8: fails
    for line in text.split("\n"):
        assert line.isprintable(), f"{where}: raw control/bidi/separator in {line!r}"
        assert not re.match(r"\s*(- |\| )?(== forged|\(no problems)", line), f"{where}: forged {line!r}"
    return text


def cli(*args: str) -> tuple[bytes, bytes, int]:
    """A command in this process, with click's colour on (it would strip ANSI sequences from
    output that is not a terminal, hiding exactly what this test looks for)."""
    result = CliRunner().invoke(main, list(args), color=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.stdout_bytes, result.stderr_bytes, result.exit_code


def under_pty(*args: str) -> tuple[bytes, int]:
    """A command in a real process whose stdout and stderr are a pseudo-terminal (raw mode: the
    bytes as written); everything it wrote, and its exit code."""
    import pty

    leader, follower = pty.openpty()
    tty.setraw(follower)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "runlens", *args],
            stdout=follower,
            stderr=follower,
            stdin=subprocess.DEVNULL,
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other end is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
        code = process.wait(timeout=TIMEOUT)
        return b"".join(chunks), code
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)


def check_markdown(text: str) -> None:
    """Every row of a table has the columns of its header (no name adds or hides a ``|``)."""
    cells = None
    for line in text.split("\n"):
        if not line.startswith("|"):
            cells = None
            continue
        count = len(re.findall(r"(?<!\\)\|", line))
        cells = count if cells is None else cells
        assert count == cells, f"markdown table row with {count} cells, header {cells}: {line!r}"
    for name in HOSTILE:
        assert name not in text
    assert "<script" not in text and "`tick`" not in text


def check_html(text: str) -> None:
    assert "<script" not in text and "\u202e" not in text and "\x1b" not in text
    for name in HOSTILE[:4]:
        assert html.escape(escaped(name)) in text  # shown, visibly, as escaped text


def test_ls_and_every_report_format_on_stdout(hostile):
    out, err, code = cli("ls", str(hostile), "--tags")
    assert code == 0
    text = check_text(out, "ls --tags")
    check_text(err, "ls --tags (stderr)")
    for name in [*HOSTILE, TAG]:
        assert escaped(name) in text
    assert escaped(EVENT_FILE) in err.decode()  # the cut file's problem
    for fmt in ("text", "markdown", "json", "html"):
        out, err, code = cli("report", str(hostile), "--format", fmt)
        assert code == 0, err
        text = check_text(out, f"report --format {fmt}")
        check_text(err, f"report --format {fmt} (stderr)")
        if fmt == "text":
            for name in HOSTILE:
                assert f"== {escaped(name)}" in text.split("\n")
        if fmt == "markdown":
            check_markdown(text)
        if fmt == "html":
            check_html(text)
        if fmt == "json":  # data: names as they are, JSON escapes them (ASCII only)
            document = json.loads(text)
            assert {r["run"] for r in document["runs"]} == {*HOSTILE, "tagged"}
            assert text.isascii()


@pytest.mark.parametrize("suffix", [".txt", ".md", ".json", ".html"])
def test_report_files_are_as_safe_as_stdout(hostile, tmp_path, suffix):
    target = tmp_path / f"report{suffix}"
    out, err, code = cli("report", str(hostile), "-o", str(target))
    assert code == 0, err
    check_text(out + err, f"report -o {suffix} (terminal)")
    text = check_text(target.read_bytes(), f"report -o {suffix}")
    if suffix == ".md":
        check_markdown(text)
    if suffix == ".html":
        check_html(text)


def test_export_keeps_names_faithful_in_data_files(hostile, tmp_path):
    frame = runlens.read_scalars(hostile)
    runs = frame["run"].astype(object).tolist()
    folders = {run.rsplit("/", 1)[0] for run in frame["run"].cat.categories}
    assert folders >= set(HOSTILE)  # the names as the OS gives them
    assert os.fsencode(HOSTILE[-1]) == b"bytes\xff\xfe"
    for suffix in (".csv", ".json", ".parquet"):
        target = tmp_path / f"scalars{suffix}"
        out, err, code = cli("export", str(hostile), "-o", str(target))
        assert code == 0, err
        check_text(out + err, f"export -o {suffix} (terminal)")
        if suffix == ".csv":  # the names' bytes, as on disk; quoted where they hold line breaks
            with open(target, encoding="utf-8", errors="surrogateescape", newline="") as f:
                back = [row["run"] for row in csv.DictReader(f)]
            assert back == runs
        elif suffix == ".json":
            assert [row["run"] for row in json.loads(target.read_text(encoding="ascii"))] == runs
        else:  # Arrow strings are UTF-8: a byte that is not is written escaped (docs/names.md)
            back = pq.read_table(target).column("run").to_pylist()
            assert back == [escaped(r) if any(0xDC80 <= ord(c) <= 0xDCFF for c in r) else r for r in runs]
    target = tmp_path / "epochs.csv"
    out, err, code = cli("export", str(hostile), "--epochs", "-o", str(target))
    assert code == 0, err
    with open(target, encoding="utf-8", errors="surrogateescape", newline="") as f:
        assert {row["run"] for row in csv.DictReader(f)} == {*HOSTILE, "tagged"}


def test_read_evals_and_stdout_exports_keep_names_faithful_and_terminals_get_them_escaped(hostile):
    evals = runlens.read_evals(hostile)
    epochs = runlens.read_epochs(hostile)
    assert set(evals["run"].astype(object)) == set(epochs["run"].astype(object)) >= set(HOSTILE)
    runs = runlens.read_scalars(hostile)["run"].astype(object).tolist()
    out, err, code = cli("export", str(hostile), "-o", "-")  # piped: data, byte for byte
    assert code == 0, err
    text = out.decode("utf-8", errors="surrogateescape")
    assert [row["run"] for row in csv.DictReader(io.StringIO(text, newline=""))] == runs
    out, code = under_pty("export", str(hostile), "-o", "-")  # a terminal: shown escaped
    assert code == 0
    check_text(out.replace(b"\r\n", b"\n"), "export -o - (terminal)")


def test_checkpoints_list_and_prune_under_a_terminal(hostile, tmp_path):
    listed, code = under_pty("checkpoints", "list", str(hostile))
    assert code == 0, listed
    text = check_text(listed, "checkpoints list")
    assert escaped(CHECKPOINT) in text
    for name in HOSTILE:
        assert escaped(name) in text
    prune = ["--keep-best", "1", "--monitor", "val_loss", "--min-age", "0"]
    planned, code = under_pty("checkpoints", "prune", str(hostile), *prune)
    assert code == 0, planned
    check_text(planned, "checkpoints prune")
    copy = tmp_path / "copy"
    shutil.copytree(hostile, copy)
    applied, code = under_pty("checkpoints", "prune", str(copy), *prune, "--apply")
    assert code == 0, applied
    text = check_text(applied, "checkpoints prune --apply")
    assert "deleted" in text


def test_ls_and_report_under_a_terminal(hostile):
    for args in (["ls", str(hostile), "--tags"], ["report", str(hostile)]):
        output, code = under_pty(*args)
        assert code == 0, output
        check_text(output, " ".join(args[:1]))


def test_error_lines_are_one_line_and_escaped(hostile):
    for args, wanted in (
        (["report", str(hostile), "--monitor", "nosuch"], "is not a logged metric"),  # lists METRIC
        (["ls", str(hostile), "--runs", "nosuch"], "no run matches"),
        (["export", str(hostile / HOSTILE[0] / "checkpoints"), "-o", "x.csv"], "no event files"),
    ):
        output, code = under_pty(*args)
        assert code == 2, output
        text = check_text(output, args[0])
        assert text.count("\n") == 1 and text.startswith("Error: ") and wanted in text, text
        assert escaped(ROOT_NAME) in text or escaped(METRIC[len("epoch_") :]) in text


def test_library_messages_are_printable(hostile):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = runlens.read_scalars(hostile)
    messages = [str(w.message) for w in caught] + [p["message"] for p in frame.attrs["problems"]]
    assert messages
    for message in messages:
        assert message.isprintable() and escaped(EVENT_FILE) in message
    assert any(p["path"].endswith(EVENT_FILE) for p in frame.attrs["problems"])  # data: as it is
    with pytest.raises(runlens.RunlensError) as error:
        runlens.read_scalars(hostile, runs="nosuch")
    assert str(error.value).isprintable() and escaped(ROOT_NAME) in str(error.value)


def test_the_progress_line_shows_the_path_escaped():
    import pty

    from runlens.cli.progress import delayed_notice

    leader, follower = pty.openpty()
    try:
        with (
            open(follower, "w", closefd=False) as terminal,
            delayed_notice(f"reading {ROOT_NAME}...", stream=terminal, delay=0),
        ):
            time.sleep(0.2)
        ready, _, _ = select.select([leader], [], [], 10)
        assert ready, "nothing written to the terminal"
        text = os.read(leader, 4096).decode("utf-8")
    finally:
        os.close(follower)
        os.close(leader)
    assert escaped(ROOT_NAME) in text
    check_text(text.replace("\r", ""), "progress")


_PRINTERS = {
    "print",
    "click.echo",
    "click.secho",
    "sys.stdout.write",
    "sys.stderr.write",
    "click.echo_via_pager",
}


def test_only_the_cli_output_module_prints_and_renderers_join_lines_through_text_lines():
    # The choke point: every CLI line goes through runlens.cli.output.say (each line shown
    # escaped), every text/Markdown/HTML report through runlens.textsafe.text_lines. A new
    # command or renderer that prints or joins lines on its own fails here.
    import ast

    import runlens.cli
    import runlens.report.render

    def calls(path):
        return [
            (ast.unparse(node.func), node)
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call)
        ]

    for module in Path(runlens.cli.__file__).parent.glob("*.py"):
        for name, node in calls(module):
            if module.name != "output.py":
                assert name not in _PRINTERS, (
                    f"cli/{module.name}:{node.lineno} prints with {name}: use output.say"
                )
    for name in ("text.py", "markdown.py", "html.py"):
        found = calls(Path(runlens.report.render.__file__).parent / name)
        assert any(called == "text_lines" for called, _ in found), f"report/{name} does not use text_lines"
        for called, node in found:
            assert (
                not called.endswith(".join")
                or not isinstance(node.func.value, ast.Constant)
                or (node.func.value.value != "\n")
            ), f"report/{name}:{node.lineno} joins lines itself"
