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


def test_framework_policies_and_read_evals_import_no_framework(tmp_path):
    """runlens.lightning/.transformers/.torch are pure replays: no torch, lightning or transformers
    (nor TensorFlow) gets imported, and ``import torch`` afterwards still finds the real torch."""
    code = f"""
import sys
import runlens, runlens.lightning, runlens.transformers, runlens.torch
runlens.lightning.EarlyStopping("val_loss").replay([1.0, 2.0])
runlens.transformers.EarlyStoppingCallback().replay([1.0, 2.0])
runlens.torch.ReduceLROnPlateau().replay([1.0, 2.0], initial_lr=0.1)
runlens.read_evals({str(SAMPLE)!r})
heavy = sorted(m for m in sys.modules
               if m.split(".")[0] in ("torch", "lightning", "pytorch_lightning", "transformers", "tensorflow", "keras"))
assert not heavy, heavy
import torch
assert torch.__file__.endswith("torch/__init__.py") and "site-packages" in torch.__file__, torch.__file__
assert hasattr(torch, "tensor") and torch is not runlens.torch
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_the_policies_package_imports_only_pure_code():
    """policies/ imports nothing of events/, report/, checkpoints/, keras/, cli/ (nor a framework)."""
    import ast

    root = Path(__file__).resolve().parent.parent / "src" / "runlens" / "policies"
    banned = ("runlens.events", "runlens.report", "runlens.checkpoints", "runlens.keras", "runlens.cli")
    frameworks = ("torch", "lightning", "pytorch_lightning", "transformers", "tensorflow", "keras")
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert not name.startswith(banned), (path, name)
                assert name.split(".")[0] not in frameworks, (path, name)


def test_running_python_inside_the_package_folder_does_not_pass_runlens_torch_off_as_torch():
    package = Path(__file__).resolve().parent.parent / "src" / "runlens"
    result = subprocess.run(
        [sys.executable, "-c", "import torch"], capture_output=True, text=True, cwd=package
    )
    assert result.returncode != 0 and "run Python outside src/runlens/" in result.stderr
