"""Every file the CLI writes (report -o, export -o, any format) appears whole or not at all: it is
written under a temporary name in the same folder and renamed into place when complete, so a
write that fails midway leaves what was there untouched, and no temporary file behind.

A real failure midway: the process' file-size limit (``RLIMIT_FSIZE``, as a full disk would) is
set below the output's size, so the write fails with EFBIG after some bytes went out.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"
LIMITED = textwrap.dedent("""
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), no kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
    from runlens.cli import main
    main(sys.argv[1:])
""")
COMMANDS = [
    ("report", "report.txt"),
    ("report", "report.md"),
    ("report", "report.json"),
    ("report", "report.html"),
    ("export", "scalars.csv"),
    ("export", "scalars.parquet"),
    ("export", "scalars.json"),
]


@pytest.mark.parametrize(("command", "name"), COMMANDS)
def test_a_write_that_fails_midway_leaves_the_old_file_untouched(tmp_path, command, name):
    target = tmp_path / name
    target.write_bytes(b"what was there before\n")
    run = subprocess.run(
        [sys.executable, "-B", "-c", LIMITED, command, str(SAMPLE), "-o", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and run.stderr.startswith(f"Error: {target}: cannot write")
    assert target.read_bytes() == b"what was there before\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


@pytest.mark.parametrize(("command", "name"), COMMANDS)
def test_the_written_file_replaces_the_old_one_with_the_usual_permissions(tmp_path, command, name):
    from click.testing import CliRunner

    from runlens.cli import main

    target = tmp_path / name
    target.write_bytes(b"old")
    usual = tmp_path / "made-by-open"
    usual.write_bytes(b"")
    options = ["--no-checkpoints"] if command == "report" else []
    result = CliRunner().invoke(main, [command, str(SAMPLE), "-o", str(target), *options])
    assert result.exit_code == 0, result.output
    assert target.read_bytes() != b"old" and target.stat().st_size > 1000
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(usual.stat().st_mode)  # umask, not 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "made-by-open"])


def test_an_output_named_by_a_symlink_replaces_the_link_not_the_file_it_points_to(tmp_path):
    from click.testing import CliRunner

    from runlens.cli import main

    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"someone else's file")
    link = tmp_path / "report.txt"
    os.symlink(outside, link)
    result = CliRunner().invoke(main, ["report", str(SAMPLE), "--no-checkpoints", "-o", str(link)])
    assert result.exit_code == 0, result.output
    assert outside.read_bytes() == b"someone else's file"
    assert not link.is_symlink() and link.read_text().startswith("runlens report")
