"""The README's quoted outputs are what the shipped sample prints.

Every ```console block of README.md (and sample_logs/README.md) holds ``$ runlens ...`` commands,
each followed by its output. The commands are run on the sample as a fresh clone has it (every
file modified just now, as git dates files at checkout), and their output must hold the quoted
lines in order, exactly; a line ``...`` stands for lines left out. Nothing is normalised: the
sample's wall times, sizes and names are in its files, and its runs' checkpoints are settled (their
runlens.json says training ended), so no file age shows.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from runlens.cli import main

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", ROOT / "sample_logs" / "README.md"]
GAP = "..."


def console_examples() -> list[tuple[str, str, list[str]]]:
    """(readme, command, expected lines) for every command in every ```console block."""
    examples = []
    for readme in READMES:
        for block in re.findall(r"^```console\n(.*?)^```", readme.read_text(), re.S | re.M):
            for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
                command, _, output = chunk.partition("\n")
                examples.append((readme.relative_to(ROOT).as_posix(), command, output.splitlines()))
    return examples


EXAMPLES = console_examples()


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory):
    """A folder holding sample_logs/ as a fresh clone has it: every file modified just now."""
    root = tmp_path_factory.mktemp("clone")
    shutil.copytree(ROOT / "sample_logs", root / "sample_logs", ignore=shutil.ignore_patterns("__pycache__"))
    now = time.time()
    for path in (root / "sample_logs").rglob("*"):
        os.utime(path, (now, now))
    return root


def test_the_readmes_quote_outputs():
    assert len(EXAMPLES) >= 4 and all(expected for _, _, expected in EXAMPLES)


@pytest.mark.parametrize("readme, command, expected", EXAMPLES, ids=[c for _, c, _ in EXAMPLES])
def test_a_quoted_command_prints_the_quoted_output(readme, command, expected, fresh_clone, monkeypatch):
    args = shlex.split(command)
    assert args[0] == "runlens", f"{readme}: only runlens commands are run: {command}"
    monkeypatch.chdir(fresh_clone)
    result = CliRunner().invoke(main, args[1:])
    assert result.exit_code == 0, result.output
    missing = unmatched(expected, result.output.splitlines())
    assert not missing, f"{readme}: `{command}` does not print\n{missing}\nit prints:\n{result.output}"


def unmatched(expected: list[str], actual: list[str]) -> str | None:
    """None if ``actual`` holds ``expected``'s stretches (split at ``...`` lines) in order, each
    stretch as consecutive lines; else the first stretch not found."""
    at = 0
    stretches: list[list[str]] = [[]]
    for line in expected:
        if line.strip() == GAP:
            stretches.append([])
        else:
            stretches[-1].append(line.rstrip())
    actual = [line.rstrip() for line in actual]
    for i, stretch in enumerate(s for s in stretches if s):
        anchored = i == 0 and expected[0].strip() != GAP
        starts = [at] if anchored else range(at, len(actual) - len(stretch) + 1)
        found = next((s for s in starts if actual[s : s + len(stretch)] == stretch), None)
        if found is None:
            return "\n".join(stretch)
        at = found + len(stretch)
    return None
