"""The distribution's name: "runlens" on PyPI is an unrelated project, so runlens is installed as
runlens-ml (import name and command: runlens). Every install line runlens prints names it."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import runlens
from runlens.cli import main
from runlens.options import DISTRIBUTION, install_hint

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_installed_distribution_is_runlens_ml_at_runlens_version():
    assert PYPROJECT["project"]["name"] == DISTRIBUTION == "runlens-ml"
    assert importlib.metadata.version(DISTRIBUTION) == runlens.__version__
    assert "runlens" in PYPROJECT["project"]["scripts"]  # the command keeps its name


def test_extras_refer_to_the_distribution_by_its_name():
    extras = PYPROJECT["project"]["optional-dependencies"]
    self_references = [d for deps in extras.values() for d in deps if re.match(r"runlens\b", d)]
    assert self_references and all(d.startswith(f"{DISTRIBUTION}[") for d in self_references)
    assert extras["parquet"] == ["pyarrow>=14"] and not any(
        d.startswith("pyarrow") for d in PYPROJECT["project"]["dependencies"]
    )


def test_version_names_the_package_to_install():
    result = CliRunner().invoke(main, ["--version"])
    assert result.output == f"runlens {runlens.__version__} (pip package: {DISTRIBUTION})\n"


def test_every_install_line_in_the_docs_and_the_code_names_the_distribution():
    texts = [p.read_text() for p in (ROOT / "README.md", *(ROOT / "docs").glob("*.md"))]
    texts += [p.read_text() for p in (ROOT / "src" / "runlens").rglob("*.py")]
    lines = [m for text in texts for m in re.findall(r"pip install [^`\n)]*", text)]
    assert any(DISTRIBUTION in line for line in lines)
    assert not [line for line in lines if re.search(r"'runlens\[|\brunlens\[", line)], lines
    assert install_hint("remote") == "pip install 'runlens-ml[remote]'"
