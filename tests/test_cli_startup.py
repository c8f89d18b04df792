"""The command line answers --help, --version and usage errors without loading the library's heavy
dependencies, and every usage error is one ``Error:`` line with exit code 2 (docs/cli.md's promise).

No timing is asserted: what makes ``runlens --help`` slow is importing pandas/numpy/matplotlib
(0.6-1.8 s), so the tests check that none of them is imported.
"""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from runlens.cli import main

HEAVY = ("pandas", "numpy", "matplotlib", "pyarrow", "tensorflow", "keras")


def command_paths(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and sub-command, as the words that call it."""
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths += command_paths(command, (*prefix, name))
    return paths


def modules_loaded_by(calls: list[list[str]]) -> dict[str, list[str]]:
    """In a fresh interpreter, run the CLI with each argument list in turn and return, per call, the
    heavy modules loaded so far (a call that imports one shows it, and every call after it)."""
    code = f"""
import json, sys
from runlens.cli import main
loaded = {{}}
for args in {calls!r}:
    try:
        main(args, standalone_mode=True, prog_name="runlens")
    except SystemExit:
        pass
    loaded[" ".join(args)] = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
print(json.dumps(loaded))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_help_version_and_usage_errors_import_no_heavy_module():
    calls = [["--help"], ["--version"], ["-h"]]
    calls += [[*path, "--help"] for path in command_paths()]
    calls += [[*path, "--no-such-option"] for path in command_paths()]
    calls += [["report"], ["ls"], ["export", "x"], ["checkpoints", "prune", "x"], ["no-such-command"]]
    loaded = modules_loaded_by(calls)
    assert loaded == {" ".join(args): [] for args in calls}


@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_an_unknown_option_is_one_error_line_naming_it(path):
    result = CliRunner().invoke(main, [*path, "--no-such-option"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "--no-such-option" in lines[0] and f"runlens {' '.join(path)} --help" in lines[0]


@pytest.mark.parametrize(
    "args, named",
    [
        (["report"], "LOGDIR"),
        (["ls"], "PATH"),
        (["export", "logs"], "'-o'"),
        (["checkpoints", "prune", "ckpts"], "--keep-best"),
        (["checkpoints", "prune", "ckpts", "--keep-best", "0", "--monitor", "m"], "--keep-best"),
        (["report", "logs", "--patience", "soon"], "--patience"),
        (["report", "logs", "--format", "pdf"], "--format"),
        (["export", "logs", "-o", "-", "--format", "parquet"], "parquet"),
        (["no-such-command"], "no-such-command"),
        (["--no-such-option"], "--no-such-option"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(args, named):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and named in lines[0], result.output
    assert "Usage:" not in result.output and "Traceback" not in result.output


def test_a_group_without_a_command_still_shows_its_help():
    result = CliRunner().invoke(main, ["checkpoints"])
    assert "Commands:" in result.output and "prune" in result.output


def _console_script(args: list[str], marker: str) -> subprocess.CompletedProcess:
    """Run ``runlens.cli.run`` (the console script) in a fresh interpreter with ``args``; the
    command registers an exit handler on the way, as the library's multiprocessing or temporary
    folders do, which writes ``marker``."""
    code = f"""
import atexit, sys
from runlens import cli
command = cli.main
def registering(*a, **k):
    import gc
    threshold = gc.get_threshold()
    atexit.register(lambda: open({marker!r}, "w").write(f"ran {{threshold[0]}}"))
    return command(*a, **k)
cli.main = registering
sys.argv = ["runlens", *{args!r}]
cli.run()
"""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_the_console_script_ends_with_mains_status_output_and_exit_handlers(tmp_path):
    # run() ends the process with os._exit after main (no teardown): nothing may be lost by it
    marker = tmp_path / "handler-ran"
    done = _console_script(["report", "sample_logs"], str(marker))
    expected = CliRunner().invoke(main, ["report", "sample_logs"])
    assert done.returncode == expected.exit_code == 0
    assert done.stdout == expected.output and len(done.stdout) > 1000
    assert marker.read_text() == "ran 100000"  # the command ran with fewer collections

    marker.unlink()
    failed = _console_script(["report", str(tmp_path / "missing")], str(marker))
    assert failed.returncode == 2
    assert failed.stderr.startswith("Error: ") and failed.stderr.count("\n") == 1
    assert marker.read_text() == "ran 100000"
