"""docs/checkpoints-frameworks.md's quoted outputs are what the commands print (its ```python
blocks are run by test_readme_examples, as every docs page's are).

Every ```text block that starts with ``$ runlens`` holds commands and their output (as the
```console blocks test_readme_examples runs on the sample: quoted lines in order, ``...`` for lines
left out), run in a folder holding the test suite's real fits (framework_checkpoint_fits) as the
page says: ``lightning_logs/`` and ``output/`` (the HF Trainer's), dated long ago. Sizes are
compared as ``<size>``: the frameworks write the absolute paths of the fit's folder (and HF its
timings) into the checkpoints, so their sizes differ from one fit to the next by a few bytes; and
the test's folder is shown as the page's (``--trash old`` prints where ``old`` resolves to).
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner
from framework_checkpoint_fits import copy_tree
from test_readme_examples import blocks, unmatched

from runlens.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "checkpoints-frameworks.md"


COMMANDS = [
    (command, output.splitlines())
    for block in blocks(PAGE, "text")
    if block.startswith("$ runlens")
    for command, _, output in (chunk.partition("\n") for chunk in re.split(r"^\$ ", block, flags=re.M)[1:])
]


SIZES = re.compile(r"\b\d+(?:\.\d)? (?:B|KiB|MiB)\b|\b[\d,]+ bytes\b")


def sizeless(lines: list[str], folder: Path) -> list[str]:
    return [SIZES.sub("<size>", line.replace(f"{folder}{os.sep}", "")) for line in lines]


def test_the_page_quotes_outputs_of_both_kinds():
    quoted = " ".join(command for command, _ in COMMANDS)
    assert len(COMMANDS) >= 3 and "lightning_logs" in quoted and "output" in quoted


@pytest.mark.parametrize("command, expected", COMMANDS, ids=[c for c, _ in COMMANDS])
def test_a_quoted_command_prints_the_quoted_output(command, expected, framework_fits, tmp_path, monkeypatch):
    copy_tree(framework_fits / "lightning" / "lightning_logs", tmp_path / "lightning_logs")
    copy_tree(framework_fits / "transformers", tmp_path / "output")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, shlex.split(command)[1:])
    assert result.exit_code == 0, result.output
    missing = unmatched(sizeless(expected, tmp_path), sizeless(result.output.splitlines(), tmp_path))
    assert not missing, f"`{command}` does not print\n{missing}\nit prints:\n{result.output}"
