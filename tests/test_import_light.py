"""`import runlens` and the CLI never import TensorFlow or Keras (they cost seconds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"


def test_library_and_every_cli_command_run_without_importing_tensorflow(tmp_path):
    code = f"""
import sys
import runlens
from runlens.cli import main
runlens.read_epochs({str(SAMPLE)!r})
for args in (["ls", {str(SAMPLE)!r}], ["export", {str(SAMPLE)!r}, "-o", {str(tmp_path / "x.csv")!r}], ["--help"]):
    try:
        main(args, standalone_mode=False)
    except SystemExit:
        pass
for name in list(main.commands):
    try:
        main([name, "--help"], standalone_mode=False)
    except SystemExit:
        pass
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
assert not heavy, heavy
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
