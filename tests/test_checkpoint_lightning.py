"""Lightning ``.ckpt`` files written by real fits (framework_checkpoint_fits): read by content
without running their pickle, ranked by the logs, ModelCheckpoint's own record beside the
ranking, last.ckpt and its symlink kept, damaged and crafted files reported and never run."""

from __future__ import annotations

import hashlib
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from checkpoint_damage import listed, read_damaged
from click.testing import CliRunner
from framework_checkpoint_fits import NOW, OLD, SCRIPT, facts
from hostile_pickles import Exec, SystemCall
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import runlens
from runlens.checkpoints.names import HF_KIND
from runlens.cli import main

VERSIONS = "lightning_logs/version_{}"


def ckpts(root: Path, version: int) -> Path:
    return root / VERSIONS.format(version) / "checkpoints"


def rows(table, version):
    return (
        table[table["run"] == VERSIONS.format(version)].sort_values(["step", "path"]).reset_index(drop=True)
    )


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def f32(value):
    return float(np.float32(value))


def rezip(source: Path, dest: Path, *, drop=(), replace=None, compression=zipfile.ZIP_STORED) -> Path:
    """A copy of a torch.save zip with members dropped or replaced (``{suffix: bytes}``)."""
    replace = replace or {}
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(dest, "w", compression) as out:
        for info in src.infolist():
            suffix = info.filename.partition("/")[2]
            if suffix in drop:
                continue
            out.writestr(info.filename, replace.get(suffix, src.read(info)))
    os.utime(dest, (OLD, OLD))
    return dest


def test_real_checkpoints_are_read_from_inside_and_ranked_by_the_logs(lightning_copy, framework_fits):
    table = runlens.read_checkpoints(lightning_copy)
    assert (table["kind"] == "lightning").all() and table["valid"].all()
    first = rows(table, 0)
    epoch_files = first[first["path"].map(lambda p: not p.endswith("last.ckpt"))]
    # epoch and global step as Lightning wrote them inside each file, and as it named the files
    for path, epoch, step in zip(epoch_files["path"], epoch_files["epoch"], epoch_files["step"]):
        assert os.path.basename(path) == f"epoch={epoch}-step={step}.ckpt"
    assert epoch_files["step"].tolist() == [2, 4, 6, 8, 10, 12]
    # the value logged at the check each was saved after (step - 1), as ModelCheckpoint scored it
    assert epoch_files["val_loss"].tolist() == [f32(v) for v in SCRIPT]
    best_k = facts(framework_fits)["lightning"]["version_0"]["best_k_models"]
    assert dict(zip(map(os.path.basename, epoch_files["path"]), epoch_files["val_loss"])) == best_k
    assert (first["metrics_from"] == "logs").all()
    evals = runlens.read_evals(lightning_copy)
    logged = evals[evals["run"] == VERSIONS.format(0)].set_index("step")["val_loss"]
    assert [logged[s - 1] for s in epoch_files["step"]] == epoch_files["val_loss"].tolist()
    last = first[first["path"].str.endswith("last.ckpt")].iloc[0]
    assert (last["epoch"], last["step"]) == (2, 12)  # a copy of the latest state


def test_each_row_says_where_its_value_came_from_when_the_sources_differ(lightning_copy):
    for events in (lightning_copy / VERSIONS.format(2)).glob("events.out.tfevents.*"):
        events.unlink()  # version_2's logs are gone: ModelCheckpoint's stored scores remain
    table = runlens.read_checkpoints(lightning_copy)
    assert set(rows(table, 0)["metrics_from"]) == {"logs"}
    assert set(rows(table, 2)["metrics_from"]) == {"checkpoint"}
    assert rows(table, 2)["val_loss"].notna().all()
    result = CliRunner().invoke(main, ["checkpoints", "list", str(lightning_copy)])
    assert result.exit_code == 0, result.output
    header, *lines = result.output.splitlines()
    assert header.split()[-2:] == ["from", "valid"]
    for line in lines:
        if line.startswith(VERSIONS.format(0) + " "):
            assert line.split()[-2] == "logs"
        elif line.startswith(VERSIONS.format(2) + " "):
            assert line.split()[-2] == "checkpoint"
    assert "metrics from: checkpoint, logs" in result.output


def test_collision_suffixes_and_metric_names_are_read(lightning_copy):
    table = runlens.read_checkpoints(lightning_copy)
    collided = rows(table, 2)
    assert [os.path.basename(p) for p in collided["path"]] == [
        "epoch=0.ckpt",
        "epoch=0-v1.ckpt",
        "epoch=1.ckpt",
        "epoch=1-v1.ckpt",
        "epoch=2.ckpt",
        "epoch=2-v1.ckpt",
    ]
    assert collided["epoch"].tolist() == [0, 0, 1, 1, 2, 2] and collided["step"].tolist() == [
        2,
        4,
        6,
        8,
        10,
        12,
    ]
    for event in ckpts(lightning_copy, 1).parent.glob("events.out.tfevents.*"):
        event.unlink()  # no logs: ModelCheckpoint's own score stored in each file
    named = rows(runlens.read_checkpoints(lightning_copy), 1)
    assert (named["metrics_from"] == "checkpoint").all()
    assert named["val_loss"].tolist() == [f32(v) for v in SCRIPT]  # exact, not the names' 0.90
    assert [os.path.basename(p) for p in named["path"]] == [
        f"epoch={i // 2}-val_loss={v:.2f}.ckpt" for i, v in enumerate(SCRIPT)
    ]


def test_last_ckpt_is_kept_unranked_and_a_symlinked_one_is_never_followed(lightning_copy, framework_fits):
    table = runlens.read_checkpoints(lightning_copy)
    link = ckpts(lightning_copy, 1) / "last.ckpt"
    assert os.path.islink(link)
    skipped = {s["path"]: s for s in table.attrs["skipped"]}
    assert skipped[str(link)]["category"] == "symlink"
    target = ckpts(lightning_copy, 1) / os.readlink(link)
    pinned = table.set_index("path")["pinned"]
    assert "a symlink points to it (last.ckpt)" in pinned[str(target)]
    plan = runlens.plan_prune(table, rules=[runlens.KeepBestK(1, "val_loss")], now=NOW)
    last = plan[plan["path"] == str(ckpts(lightning_copy, 0) / "last.ckpt")].iloc[0]
    assert last["keep"] and pd_na(last["rank"]) and "the resume point" in last["reason"]
    before = sha(target)
    result = runlens.apply_prune(plan, lightning_copy)
    assert result.removed and not result.failed
    assert os.path.islink(link) and os.readlink(link) == os.path.basename(target) and sha(target) == before
    left = {p.name for p in ckpts(lightning_copy, 0).iterdir() if p.suffix == ".ckpt"}
    best = facts(framework_fits)["lightning"]["version_0"]["best_model_path"]
    assert left == {"last.ckpt", best}  # the best by val_loss is ModelCheckpoint's best too


def pd_na(value) -> bool:
    import pandas as pd

    return value is pd.NA


def test_modelcheckpoint_state_is_shown_beside_the_ranking_and_a_disagreement_flagged(
    lightning_copy, framework_fits
):
    recorded = facts(framework_fits)["lightning"]
    table = runlens.read_checkpoints(lightning_copy)
    records = {r["run"]: r for r in table.attrs["framework_best"]}
    for version in (0, 1, 2):
        record = records[VERSIONS.format(version)]
        assert record["source"] == "ModelCheckpoint" and record["monitor"] == "val_loss"
        assert os.path.basename(record["best"]) == recorded[f"version_{version}"]["best_model_path"]
        assert record["best_k"] == recorded[f"version_{version}"]["best_k_models"]
    plan = runlens.plan_prune(table, rules=[runlens.KeepBestK(1, "val_loss")], now=NOW)
    [line] = plan.attrs["disagreements"]  # version_1 kept the highest val_loss: mode="max"
    assert (
        VERSIONS.format(1) in line
        and "epoch=0-val_loss=0.90.ckpt" in line
        and "epoch=1-val_loss=0.30.ckpt" in line
    )
    kept = plan.set_index("path").loc[str(ckpts(lightning_copy, 1) / "epoch=0-val_loss=0.90.ckpt")]
    assert kept["keep"] and kept["rank"] == 6 and "ModelCheckpoint's best_model_path" in kept["reason"]
    args = ["checkpoints", "prune", str(lightning_copy), "--keep-best", "1", "--monitor", "val_loss"]
    result = CliRunner().invoke(main, [*args, "--min-age", "0"])
    assert result.exit_code == 0, result.output
    flagged = [line for line in result.output.splitlines() if line.startswith("DISAGREEMENT:")]
    assert len(flagged) == 1 and VERSIONS.format(1) in flagged[0]
    assert sum("runlens' #1 by val_loss is the same" in line for line in result.output.splitlines()) == 2


def test_files_that_are_not_lightning_checkpoints_are_never_touched(lightning_copy):
    import torch

    folder = ckpts(lightning_copy, 0)
    torch.save({"layer.weight": torch.zeros(2, 2)}, folder / "weights_only.ckpt")  # a plain state dict
    with zipfile.ZipFile(folder / "archive.ckpt", "w") as zf:
        zf.writestr("notes/readme.txt", "not torch")
    (folder / "notes.ckpt").write_text("epoch=3")
    others = [folder / n for n in ("weights_only.ckpt", "archive.ckpt", "notes.ckpt")]
    for path in others:
        os.utime(path, (OLD, OLD))
    before = {p: sha(p) for p in others}
    table = runlens.read_checkpoints(lightning_copy)
    skipped = {Path(s["path"]).name: s for s in table.attrs["skipped"]}
    for path in others:
        assert skipped[path.name]["category"] == "not a checkpoint", skipped[path.name]
    assert "without Lightning's epoch" in skipped["weights_only.ckpt"]["reason"]
    result = CliRunner().invoke(
        main,
        ["checkpoints", "prune", str(lightning_copy), "--keep-best", "1", "--monitor", "val_loss"]
        + ["--min-age", "0", "--delete-invalid", "--apply"],
    )
    assert result.exit_code == 0, result.output
    assert {p: sha(p) for p in others} == before


def test_damaged_checkpoints_are_invalid_or_undetermined_and_only_invalid_ones_go(lightning_copy):
    folder = ckpts(lightning_copy, 0)
    source = folder / "epoch=0-step=2.ckpt"
    data = source.read_bytes()
    with zipfile.ZipFile(source) as zf:
        pickle_end = zf.infolist()[0].header_offset + 200 + zf.infolist()[0].file_size
    cases = {
        "cut_after_pickle.ckpt": data[: max(pickle_end, len(data) - 300)],  # no central directory
        "cut_in_pickle.ckpt": data[:120],
        "empty.ckpt": b"",
    }
    for name, content in cases.items():
        (folder / name).write_bytes(content)
        os.utime(folder / name, (OLD, OLD))
    flipped = bytearray(data)
    with zipfile.ZipFile(source) as zf:
        storage = next(i for i in zf.infolist() if "/data/" in i.filename)
    name_length, extra_length = struct.unpack_from("<HH", data, storage.header_offset + 26)
    flipped[storage.header_offset + 30 + name_length + extra_length] ^= 0xFF  # a byte of a tensor
    (folder / "crc.ckpt").write_bytes(bytes(flipped))
    os.utime(folder / "crc.ckpt", (OLD, OLD))
    rezip(source, folder / "missing.ckpt", drop={"data/0"})
    rezip(source, folder / "deflated.ckpt", compression=zipfile.ZIP_DEFLATED)
    table = runlens.read_checkpoints(lightning_copy)
    by_name = table.assign(name=table["path"].map(os.path.basename)).set_index("name")
    skipped = {Path(s["path"]).name: s for s in table.attrs["skipped"]}
    assert "cut short while saving" in by_name.loc["cut_after_pickle.ckpt", "invalid_reason"]
    assert by_name.loc["cut_after_pickle.ckpt", "step"] == 2  # read from the data.pkl that is there
    assert "fails its CRC check" in by_name.loc["crc.ckpt", "invalid_reason"]
    assert "storage 0 is missing" in by_name.loc["missing.ckpt", "invalid_reason"]
    for name in ("cut_in_pickle.ckpt", "empty.ckpt", "deflated.ckpt"):
        assert skipped[name]["category"] == "cannot tell", skipped[name]
    undetermined = {n: sha(folder / n) for n in ("cut_in_pickle.ckpt", "empty.ckpt", "deflated.ckpt")}
    plan = runlens.plan_prune(table, rules=[runlens.KeepBestK(1, "val_loss")], now=NOW, delete_invalid=True)
    runlens.apply_prune(plan, lightning_copy)
    assert {n: sha(folder / n) for n in undetermined} == undetermined
    assert not any((folder / n).exists() for n in ("cut_after_pickle.ckpt", "crc.ckpt", "missing.ckpt"))


@pytest.fixture(scope="module")
def real_ckpts(framework_fits):
    return [(p.name, p.read_bytes()) for p in sorted(ckpts(framework_fits / "lightning", 0).glob("*.ckpt"))]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_to_a_real_checkpoint_is_reported_never_raised(real_ckpts, tmp_path_factory, data):
    table, path, intact = read_damaged(data, tmp_path_factory, real_ckpts, flips=(0, 20))
    assert listed(table) == [str(path)]
    if len(table) and intact:
        assert table["valid"].all()


def test_a_crafted_checkpoint_whose_pickle_would_run_code_runs_nothing(lightning_copy, tmp_path):
    sentinel = tmp_path / "SENTINEL"
    folder = ckpts(lightning_copy, 0)
    source = folder / "epoch=0-step=2.ckpt"
    touch = f"open({str(sentinel)!r}, 'w').close()"
    hostile = {
        "epoch": 0,
        "global_step": 2,
        "pytorch-lightning_version": "2.6.6",
        "state_dict": {"layer.weight": SystemCall(f"touch {sentinel}")},
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val_loss'}": {
                "monitor": "val_loss",
                "best_model_path": Exec(touch),
                "best_k_models": {"x.ckpt": SystemCall(f"touch {sentinel}")},
                "best_model_score": Exec(touch),
            }
        },
    }
    rezip(source, folder / "epoch=0-step=2-v1.ckpt", replace={"data.pkl": pickle.dumps(hostile, protocol=2)})
    epoch_is_code = dict(hostile, epoch=Exec(touch))
    rezip(
        source,
        folder / "epoch=0-step=2-v2.ckpt",
        replace={"data.pkl": pickle.dumps(epoch_is_code, protocol=4)},
    )
    table = runlens.read_checkpoints(lightning_copy)
    result = CliRunner().invoke(
        main,
        ["checkpoints", "prune", str(lightning_copy), "--keep-best", "1", "--monitor", "val_loss"]
        + ["--min-age", "0", "--delete-invalid", "--apply"],
    )
    assert result.exit_code == 0, result.output
    assert not sentinel.exists()
    by_name = table.assign(name=table["path"].map(os.path.basename)).set_index("name")
    assert by_name.loc["epoch=0-step=2-v1.ckpt", "valid"]  # Lightning's dict; its code never runs
    assert "not a whole number" in by_name.loc["epoch=0-step=2-v2.ckpt", "invalid_reason"]


def test_the_reports_checkpoint_section_plans_them_and_notes_the_disagreement(lightning_copy):
    from runlens.report.build.checkpoints import checkpoint_summaries

    evals = runlens.read_evals(lightning_copy)
    runs = [VERSIONS.format(v) for v in range(3)]
    rules = [runlens.KeepBestK(1, "val_loss"), runlens.KeepLastN(1)]
    summaries, warnings = checkpoint_summaries(
        lightning_copy, evals, runs=runs, rules=rules, min_age=0, restored={}
    )
    assert [summaries[run].files for run in runs] == [7, 6, 6]  # version_1's last.ckpt is a symlink
    first = summaries[runs[0]]
    assert (first.keep, first.drop) == (3, 4)  # the best, the last epoch file, last.ckpt
    assert first.kept_epochs == [1, 2, 2] and first.note is None
    [disagreement] = [w for w in warnings if "runlens' #1" in w]
    assert runs[1] in disagreement and "epoch=0-val_loss=0.90.ckpt" in disagreement
    assert any("last.ckpt" in w and "symlink" in w for w in warnings)


def test_the_report_plans_every_lightning_run_at_once_as_each_run_alone(lightning_copy):
    """The report plans all of a part's runs in one plan_prune, Lightning's too (its
    ModelCheckpoint records compared inside it, in the runs' order): each run's summary and the
    disagreement the plan finds are those of a plan of the run alone."""
    from runlens.report.build.checkpoints import checkpoint_summaries

    frame = runlens.read_evals(lightning_copy)
    runs = sorted(frame["run"].astype(str).unique())
    assert len(runs) == 3
    rules = [runlens.KeepBestK(1, "val_loss")]
    together, warnings = checkpoint_summaries(
        lightning_copy, frame, runs=runs, rules=rules, min_age=0, restored={}
    )
    [flagged] = [w for w in warnings if "but runlens' #1" in w]  # version_1 kept by mode="max"
    assert VERSIONS.format(1) in flagged
    alone_warnings = []
    for run in runs:
        alone, notes = checkpoint_summaries(
            lightning_copy, frame, runs=[run], rules=rules, min_age=0, restored={}
        )
        assert alone[run] == together[run]
        alone_warnings += [w for w in notes if w.startswith("checkpoints of run")]
    assert [w for w in warnings if w.startswith("checkpoints of run")] == alone_warnings


def _newest_series_by_series(table, contents):
    """The reference for framework_state._newest: each (run, kind) series on its own, in the table's
    order, its newest valid checkpoint with a content by (step, mtime), unknown first, the later row
    on ties; the series' rows by (folder, name), the first row of each."""
    import os

    from runlens.checkpoints.framework_state import LightningContent, TrainerContent

    out = []
    framework = table[table["kind"].isin(["lightning", HF_KIND])]
    for _, series in framework.groupby(["run", "kind"], sort=False):
        candidates = series[series.index.isin(list(contents)) & series["valid"].to_numpy(dtype=bool)]
        if candidates.empty:
            continue
        newest = candidates.sort_values(["step", "mtime"], na_position="first", kind="stable").index[-1]
        if isinstance(contents[newest], (LightningContent, TrainerContent)):
            rows = {}
            for index, path in series["path"].items():
                rows.setdefault((os.path.dirname(path), os.path.basename(path)), index)
            out.append((newest, contents[newest], rows))
    return out


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["r1", "r2", "r3", None]),
            st.sampled_from(["lightning", HF_KIND, "keras"]),
            st.sampled_from(["a/x.ckpt", "a/y.ckpt", "b/x.ckpt", "a/last.ckpt"]),
            st.one_of(st.none(), st.integers(0, 3)),
            st.one_of(st.none(), st.integers(0, 3)),
            st.booleans(),
            st.sampled_from(["lightning", "trainer", "other", None]),
        ),
        max_size=14,
    )
)
@example(  # an unknown step first, a tie broken by the table's order, a name written twice
    rows=[
        ("r1", "lightning", "a/x.ckpt", None, 1, True, "lightning"),
        ("r1", "lightning", "a/x.ckpt", 2, 0, True, "lightning"),
        ("r1", "lightning", "a/y.ckpt", 2, 0, True, "lightning"),
        ("r2", HF_KIND, "b/x.ckpt", 1, None, True, "trainer"),
        ("r2", HF_KIND, "b/x.ckpt", 1, 2, False, "trainer"),
    ]
)
def test_the_newest_checkpoint_of_each_series_is_found_in_one_pass_as_series_by_series(rows):
    # a 2,000-run sweep's series were a frame each, matched against every content (seconds each
    # way): one sort of the table must find the same newest rows, contents and rows by name
    from runlens.checkpoints.framework_state import _newest
    from runlens.checkpoints.hf_folder import TrainerContent
    from runlens.checkpoints.lightning_ckpt import LightningContent

    made = {
        "lightning": LightningContent(epoch=1, global_step=2, version="2.0"),
        "trainer": TrainerContent(global_step=2, epoch=1.0),
        "other": object(),
    }
    table = pd.DataFrame(
        {
            "run": np.array([r[0] for r in rows], dtype=object),
            "kind": [r[1] for r in rows],
            "path": [r[2] for r in rows],
            "step": pd.array([r[3] for r in rows], dtype="Int64"),
            "mtime": pd.to_datetime([r[4] for r in rows], unit="s", utc=True),
            "valid": [r[5] for r in rows],
        },
        index=pd.RangeIndex(len(rows)) * 3 + 7,  # row labels that are not positions
    )
    contents = {index: made[r[6]] for index, r in zip(table.index, rows) if r[6] is not None}
    assert _newest(table, contents) == _newest_series_by_series(table, contents)
