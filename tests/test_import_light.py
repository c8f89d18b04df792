"""`import runlens` and the CLI never import TensorFlow, Keras or a framework (they cost seconds); what
`runlens report` runs before or beside its pandas import imports no numpy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"


# The one check that nothing a user calls, outside runlens.keras, imports TensorFlow, Keras or a
# framework: every public reader, the framework policies and every CLI command (the report in every
# format), run in one fresh interpreter. (tests/test_layering.py checks the source for the same;
# this checks what really gets imported, through dependencies too.)
HEAVY = ("tensorflow", "keras", "tf_keras", "torch", "lightning", "pytorch_lightning", "transformers")


def test_nothing_outside_runlens_keras_imports_tensorflow_keras_or_a_framework(tmp_path):
    sample, out = str(SAMPLE), str(tmp_path)
    code = f"""
import sys
import runlens, runlens.lightning, runlens.transformers, runlens.torch
from runlens.cli import main

def cli(*args):
    try:
        main(list(args), standalone_mode=False)
    except SystemExit:
        pass

runlens.read_scalars({sample!r}); runlens.read_epochs({sample!r}); runlens.read_evals({sample!r})
assert len(runlens.read_hparams({sample!r})) and runlens.read_manifest({sample + "/overfits"!r})
runlens.read_checkpoints({sample!r})
runlens.lightning.EarlyStopping("val_loss").replay([1.0, 2.0])
runlens.transformers.EarlyStoppingCallback().replay([1.0, 2.0])
runlens.torch.ReduceLROnPlateau().replay([1.0, 2.0], initial_lr=0.1)
cli("--help")
for name in list(main.commands):
    cli(name, "--help")
cli("ls", {sample!r}); cli("export", {sample!r}, "-o", {out + "/x.csv"!r})
cli("checkpoints", "list", {sample!r})
cli("checkpoints", "prune", {sample + "/unpruned"!r}, "--keep-best", "3", "--monitor", "val_loss")
for fmt in ("text", "json", "markdown"):
    cli("report", {sample!r}, "--format", fmt, "-o", {out + "/r"!r})
assert "matplotlib" not in sys.modules, "matplotlib imported for a report format without plots"
cli("report", {sample!r}, "-o", {out + "/r.html"!r})
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
assert not heavy, heavy
import torch
assert torch.__file__.endswith("torch/__init__.py") and "site-packages" in torch.__file__, torch.__file__
assert hasattr(torch, "tensor") and torch is not runlens.torch
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
    assert (tmp_path / "r.html").stat().st_size > 0 and (tmp_path / "x.csv").stat().st_size > 0


def test_running_python_inside_the_package_folder_does_not_pass_runlens_torch_off_as_torch():
    package = Path(__file__).resolve().parent.parent / "src" / "runlens"
    result = subprocess.run(
        [sys.executable, "-c", "import torch"], capture_output=True, text=True, cwd=package
    )
    assert result.returncode != 0 and "run Python outside src/runlens/" in result.stderr


# What `runlens report` starts before pandas is imported, or runs in a read-ahead worker for the
# report, imports neither numpy nor pandas (nor the C CRC: a read-ahead worker imports it itself):
# the read-ahead (events/read_ahead.py), whose workers import the decoder while the command imports
# pandas, and the checkpoint walk (checkpoints/find.py), queued behind the read's files.
@pytest.mark.parametrize(
    ("code", "then"),
    [  # the modules are looked at before the read-ahead's first results arrive (they are numpy)
        ("from runlens.events.read_ahead import ReadAhead; ahead = ReadAhead(SAMPLE)", "ahead.shutdown()"),
        (
            "from runlens.checkpoints.find import find_checkpoints; assert find_checkpoints(Path(SAMPLE)).found",
            "",
        ),
    ],
    ids=["read-ahead", "checkpoint-walk"],
)
def test_what_runs_before_or_beside_the_pandas_import_imports_no_numpy(code, then):
    code = f"import sys; from pathlib import Path; SAMPLE = {str(SAMPLE)!r}; {code}; " + (
        f"print(sorted({{'numpy', 'pandas', 'crc32c'}} & set(sys.modules))); {then}"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
