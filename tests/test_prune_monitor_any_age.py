"""`checkpoints prune --monitor M` with an M no checkpoint has is the same error whatever the
files' ages: before, files within --min-age were set aside first and the bad monitor became a
"pass --template/--logdir" hint with exit code 0, although the logs were found."""

from __future__ import annotations

import time

import pytest
from checkpoint_fits import OLD, copy_fitted
from click.testing import CliRunner

from runlens.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:keras.*")


@pytest.mark.parametrize("age", ["fresh", "old"])
def test_an_unknown_monitor_is_an_error_for_fresh_and_old_files(fitted, tmp_path, age):
    folder = copy_fitted(fitted, tmp_path / "runs", mtime=time.time() if age == "fresh" else OLD)
    args = ["checkpoints", "prune", str(folder.root / "exp"), "--keep-best", "2", "--monitor", "val_acc"]
    results = [CliRunner().invoke(main, [*args, "--min-age", min_age]) for min_age in ("0", "300")]
    for result in results:
        assert result.exit_code == 2, result.output
        assert result.output.startswith("Error: no checkpoint has a 'val_acc' value to rank by")
        assert "val_accuracy" in result.output  # the metrics the logs do have
    assert results[0].output == results[1].output
