"""The README's and the docs' examples do what they say, on the shipped sample.

Quoted outputs: every ```console block of README.md, docs/*.md and sample_logs/README.md holds
``$ runlens ...`` commands, each followed by its output. The commands are run on the sample as a
fresh clone has it (every file modified just now, as git dates files at checkout), and their output
must hold the quoted lines in order, exactly; a line ``...`` stands for lines left out. Nothing is
normalised: the sample's wall times, sizes and names are in its files, and its runs' checkpoints are
settled (their runlens.json says training ended), so no file age shows.

Python examples: the ```python blocks of each page are run, in order, as one script in a fresh
interpreter (as a user pastes them), in a folder holding a fresh clone's ``sample_logs/``. A block fails the test by raising (the examples hold
``assert`` lines where they state a result).

Links: every relative link of those pages names a file that exists and, with ``#anchor``, a heading
of that file (GitHub's anchors).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from runlens.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
READMES = [*PAGES, ROOT / "sample_logs" / "README.md"]
GAP = "..."


def blocks(page: Path, language: str) -> list[str]:
    """The ```language blocks of a page, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M)


def console_examples() -> list[tuple[str, str, list[str]]]:
    """(readme, command, expected lines) for every command in every ```console block."""
    examples = []
    for readme in READMES:
        for block in blocks(readme, "console"):
            for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
                command, _, output = chunk.partition("\n")
                examples.append((readme.relative_to(ROOT).as_posix(), command, output.splitlines()))
    return examples


EXAMPLES = console_examples()
PYTHON_PAGES = [page for page in PAGES if blocks(page, "python")]


def fresh_sample(root: Path) -> Path:
    """``root/sample_logs`` as a fresh clone has it: every file modified just now."""
    shutil.copytree(ROOT / "sample_logs", root / "sample_logs", ignore=shutil.ignore_patterns("__pycache__"))
    now = time.time()
    for path in (root / "sample_logs").rglob("*"):
        os.utime(path, (now, now))
    return root


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory):
    """A folder holding sample_logs/ as a fresh clone has it: every file modified just now."""
    return fresh_sample(tmp_path_factory.mktemp("clone"))


def test_generate_frameworks_writes_the_shipped_lightning_and_hf_runs(tmp_path):
    """The script the docs name writes (with the real frameworks) what sample_logs/ ships."""
    import runlens

    script = ROOT / "sample_logs" / "generate_frameworks.py"
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name, monitor in (("lightning", "val_loss"), ("transformers", "eval_loss")):
        ours, shipped = (runlens.read_evals(root / name) for root in (tmp_path, ROOT / "sample_logs"))
        assert list(ours.columns) == list(shipped.columns)
        # What the fits decide by (not the run's name, by time and host, nor timings such as eval_runtime).
        columns = ["framework", "eval", "step", "epoch", monitor]
        pd.testing.assert_frame_equal(ours[columns], shipped[columns], check_exact=False, rtol=1e-6)


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


def test_the_readme_and_the_reference_pages_have_python_examples():
    names = {page.name for page in PYTHON_PAGES}
    assert {
        "README.md",
        "reading.md",
        "policies.md",
        "report.md",
        "checkpoints.md",
        "keras-callbacks.md",
    } <= names


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PYTHON_PAGES])
def test_a_pages_python_examples_run(page, tmp_path, request):
    script = "\n\n".join(blocks(page, "python"))
    fresh_sample(tmp_path)
    (tmp_path / "examples.py").write_text(script, encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "examples.py"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600
    )
    assert done.returncode == 0, f"{page.relative_to(ROOT)}'s python examples fail:\n{done.stderr[-4000:]}"


def anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces -> '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {anchor(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}


LINKS = [
    (page, target)
    for page in READMES
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8"))
    if "://" not in target
]


@pytest.mark.parametrize("page, target", LINKS, ids=[f"{p.name}->{t}" for p, t in LINKS])
def test_a_link_leads_to_a_page_and_heading(page, target):
    path, _, fragment = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    assert file.exists(), f"{page.relative_to(ROOT)} links to {target}: no such file"
    if fragment and file.suffix == ".md":
        assert fragment in anchors(file), f"{page.relative_to(ROOT)} links to {target}: no such heading"


def test_the_readme_links_every_docs_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    unlinked = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if f"](docs/{p.name}" not in readme]
    assert not unlinked, f"README.md does not link {unlinked}"


def test_every_docs_page_starts_with_a_title_and_ends_with_its_limitations():
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        assert text.startswith("# "), f"{page.name} does not start with a '# Title'"
        if page.name not in ("limitations.md", "contributing.md"):
            assert "\n## Limitations\n" in text, f"{page.name} has no '## Limitations' section"


def commands(group, prefix=()):
    """(name words, click command) for every command under ``group``."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def test_every_command_and_option_is_documented():
    # the report's options are in its own page's table; every other command's in cli.md
    cli = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    undocumented = []
    for words, command in commands(main):
        page = (ROOT / "docs" / "report.md").read_text(encoding="utf-8") if words == ("report",) else cli
        if f"runlens {' '.join(words)} " not in cli:
            undocumented.append(" ".join(words))
        for param in command.params:
            names = [n for n in (*param.opts, *param.secondary_opts) if n.startswith("--") and n != "--help"]
            undocumented += [
                f"{' '.join(words)} {n}" for n in names if not re.search(rf"(?<![\w-]){n}(?![\w-])", page)
            ]
    assert not undocumented, f"docs/cli.md (report: docs/report.md) does not document {undocumented}"


def test_the_readmes_test_command_is_what_ci_runs():
    commands = [line for block in blocks(ROOT / "README.md", "bash") for line in block.splitlines()]
    [test_command] = [line for line in commands if "pytest" in line]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci[-1] == test_command
