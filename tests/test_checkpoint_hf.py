"""HF Trainer ``checkpoint-N/`` folders written by a real Trainer (framework_checkpoint_fits): one
checkpoint per folder, judged by its trainer_state.json and weights, ranked by the Trainer's own
log_history, the newest and the Trainer's best never dropped."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
from framework_checkpoint_fits import NOW, OLD, SCRIPT, facts
from hypothesis import given, settings
from hypothesis import strategies as st

import runlens
from runlens.checkpoints.hf_folder import safetensors_problem

STEPS = [2, 4, 6, 8, 10, 12]


def folders(table):
    return table.assign(name=table["path"].map(os.path.basename)).set_index("name")


def age(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        os.utime(path, (OLD, OLD), follow_symlinks=False)


def variant(hf_copy: Path, step: int, source: int = 2) -> Path:
    """A copy of a real checkpoint folder under another step's name, to damage."""
    target = hf_copy / f"checkpoint-{step}"
    shutil.copytree(hf_copy / f"checkpoint-{source}", target, symlinks=True)
    return target


def test_each_folder_is_one_checkpoint_ranked_by_the_trainers_own_log(hf_copy, framework_fits):
    table = runlens.read_checkpoints(hf_copy)
    assert not table.attrs["skipped"]  # runs/ (the TensorBoard logs) is no checkpoint and not reported
    assert (table["kind"] == "transformers").all() and table["valid"].all() and (table["run"] == ".").all()
    assert table["step"].tolist() == STEPS
    assert table["epoch"].tolist() == [0, 0, 1, 1, 2, 2]  # saved during the 1st, 2nd, 3rd epoch
    assert table["eval_score"].tolist() == SCRIPT  # float64 as the Trainer logged it, not float32
    recorded = facts(framework_fits)["transformers"]
    assert table["eval_score"].tolist() == [recorded["eval_score"][str(s)] for s in STEPS]
    assert (table["metrics_from"] == "trainer_state").all()
    for _, row in table.iterrows():
        files = [p for p in Path(row["path"]).rglob("*") if p.is_file()]
        assert row["size_bytes"] == sum(p.stat().st_size for p in files)
        assert row["mtime"].timestamp() == OLD and len(row["content_digest"]) == 64


def test_the_trainers_best_and_the_newest_are_pinned_and_compared(hf_copy, framework_fits):
    best = facts(framework_fits)["transformers"]["best_model_checkpoint"]
    table = runlens.read_checkpoints(hf_copy)
    [record] = table.attrs["framework_best"]
    assert record["source"] == "trainer_state.json" and record["monitor"] == "eval_score"
    assert os.path.basename(record["best"]) == best == "checkpoint-8" and record["score"] == 0.3
    pinned = folders(table)["pinned"]
    assert "best_model_checkpoint" in pinned["checkpoint-8"] and "newest" in pinned["checkpoint-12"]
    plan = runlens.plan_prune(table, rules=[runlens.KeepBestK(1, "eval_score", mode="min")], now=NOW)
    assert sorted(plan.loc[plan["keep"], "path"].map(os.path.basename)) == ["checkpoint-12", "checkpoint-8"]
    assert plan.attrs["disagreements"] == []
    upside_down = runlens.plan_prune(table, rules=[runlens.KeepBestK(1, "eval_score")], now=NOW)  # auto: max
    [line] = upside_down.attrs["disagreements"]
    assert "checkpoint-8" in line and "checkpoint-2" in line
    kept = folders(upside_down)
    assert (
        kept.loc["checkpoint-8", "keep"]
        and kept.loc["checkpoint-12", "keep"]
        and kept.loc["checkpoint-2", "keep"]
    )


def test_prune_removes_whole_folders_and_the_trainer_resumes_from_what_is_left(hf_copy):
    from transformers.trainer_utils import get_last_checkpoint

    plan = runlens.plan_prune(
        runlens.read_checkpoints(hf_copy), rules=[runlens.KeepBestK(2, "eval_score", mode="min")], now=NOW
    )
    kept = {
        p: sorted(q.relative_to(p).as_posix() for q in Path(p).rglob("*"))
        for p in plan.loc[plan["keep"], "path"]
    }
    result = runlens.apply_prune(plan, hf_copy)
    assert sorted(result.removed) == sorted(plan.loc[~plan["keep"], "path"]) and not result.failed
    assert not any(Path(p).exists() for p in result.removed)
    assert {p: sorted(q.relative_to(p).as_posix() for q in Path(p).rglob("*")) for p in kept} == kept
    assert result.bytes_freed == plan.loc[~plan["keep"], "size_bytes"].sum()
    assert os.path.basename(get_last_checkpoint(str(hf_copy))) == "checkpoint-12"
    assert not [p for p in hf_copy.iterdir() if ".runlens-pruning-" in p.name]
    assert (hf_copy / "runs").is_dir()


def test_min_age_looks_at_the_newest_file_in_a_folder(hf_copy):
    os.utime(hf_copy / "checkpoint-2" / "optimizer.pt", (NOW - 10, NOW - 10))  # still being written?
    plan = runlens.plan_prune(
        runlens.read_checkpoints(hf_copy), rules=[runlens.KeepBestK(1, "eval_score", mode="min")], now=NOW
    )
    row = folders(plan).loc["checkpoint-2"]
    assert row["keep"] and "min-age" in row["reason"]


def truncate(path: Path, keep: int) -> None:
    os.truncate(path, keep)


def test_damaged_and_foreign_folders(hf_copy, fitted, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    cut = variant(hf_copy, 20)
    truncate(cut / "model.safetensors", (cut / "model.safetensors").stat().st_size - 4)
    state_cut = variant(hf_copy, 22)
    truncate(state_cut / "trainer_state.json", 300)
    no_state = variant(hf_copy, 24)
    (no_state / "trainer_state.json").unlink()
    (hf_copy / "checkpoint-26").mkdir()
    optimizer_cut = variant(hf_copy, 28)
    truncate(optimizer_cut / "optimizer.pt", 500)
    binary = variant(hf_copy, 30)  # the layout older Trainers wrote without safetensors
    torch.save(load_file(binary / "model.safetensors"), binary / "pytorch_model.bin")
    (binary / "model.safetensors").unlink()
    sharded = variant(hf_copy, 32)
    weights = load_file(sharded / "model.safetensors")
    (sharded / "model.safetensors").unlink()
    index = {"metadata": {}, "weight_map": {}}
    for i, (name, tensor) in enumerate(sorted(weights.items())):
        shard = f"model-0000{i + 1}-of-0000{len(weights)}.safetensors"
        save_file({name: tensor}, sharded / shard)
        index["weight_map"][name] = shard
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    shard_lost = variant(hf_copy, 34, source=32)
    (shard_lost / "model-00001-of-00002.safetensors").unlink()
    deepspeed = variant(hf_copy, 36)
    (deepspeed / "model.safetensors").unlink()
    (deepspeed / "global_step36").mkdir()
    (deepspeed / "global_step36" / "mp_rank_00_model_states.pt").write_bytes(b"\0" * 100)
    keras_inside = hf_copy / "checkpoint-7"  # someone's folder that happens to be named so
    keras_inside.mkdir()
    shutil.copy(fitted.files("every")[0], keras_inside / "epoch_01-0.5000.keras")
    age(hf_copy)

    table = runlens.read_checkpoints(hf_copy)
    rows = folders(table)
    skipped = {Path(s["path"]).name: s for s in table.attrs["skipped"]}
    assert "model.safetensors" in rows.loc["checkpoint-20", "invalid_reason"]
    assert "cut short" in rows.loc["checkpoint-20", "invalid_reason"]
    assert "trainer_state.json is cut short" in rows.loc["checkpoint-22", "invalid_reason"]
    assert "optimizer.pt: not a complete zip" in rows.loc["checkpoint-28", "invalid_reason"]
    assert "model-00001-of-00002.safetensors is missing" in rows.loc["checkpoint-34", "invalid_reason"]
    assert rows.loc["checkpoint-30", "valid"] and rows.loc["checkpoint-32", "valid"]
    for name in ("checkpoint-24", "checkpoint-26", "checkpoint-36"):
        assert skipped[name]["category"] == "cannot tell", skipped[name]
    assert "checkpoint-7" not in rows.index and rows.loc["epoch_01-0.5000.keras", "kind"] == "keras"
    undetermined = {
        n: tree(hf_copy / n) for n in ("checkpoint-24", "checkpoint-26", "checkpoint-36", "checkpoint-7")
    }
    plan = runlens.plan_prune(
        table, rules=[runlens.KeepBestK(1, "eval_score", mode="min")], now=NOW, delete_invalid=True
    )
    plan = plan[plan["kind"] == "transformers"]
    runlens.apply_prune(plan, hf_copy)
    assert {n: tree(hf_copy / n) for n in undetermined} == undetermined
    for name in ("checkpoint-20", "checkpoint-22", "checkpoint-28", "checkpoint-34"):
        assert not (hf_copy / name).exists()


def tree(root: Path) -> dict[str, object]:
    import hashlib

    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


# ------------------------------------------------- safetensors headers, against the real library


tensors = st.dictionaries(
    st.text("abcdef.", min_size=1, max_size=6),
    st.tuples(
        st.sampled_from(["float32", "float16", "int64", "uint8", "bool"]),
        st.lists(st.integers(0, 4), max_size=3),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(spec=tensors, data=st.data())
def test_the_safetensors_check_agrees_with_the_safetensors_library(spec, data, tmp_path_factory):
    """Whole files written by safetensors itself, then cut short or with bytes changed: runlens
    calls a file whole exactly when the real library loads every tensor of it."""
    from safetensors import SafetensorError
    from safetensors.numpy import load, save

    arrays = {name: np.zeros(shape, dtype=dtype) for name, (dtype, shape) in spec.items()}
    content = bytearray(save(arrays, metadata={"format": "np"} if data.draw(st.booleans()) else None))
    header_end = 8 + struct.unpack_from("<Q", content)[0]
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.integers(0, min(len(content), header_end + 8) - 1))
        content[at] = data.draw(st.sampled_from([ord(c) for c in '{}[]",:0123456789 ']) | st.integers(0, 255))
    if data.draw(st.booleans()):
        content = content[: data.draw(st.integers(0, len(content)))]
    path = tmp_path_factory.mktemp("st") / "model.safetensors"
    path.write_bytes(bytes(content))
    fd = os.open(path, os.O_RDONLY)
    try:
        problem = safetensors_problem(fd, len(content))
    finally:
        os.close(fd)
    try:
        load(bytes(content))
        loads = True
    except (SafetensorError, ValueError, TypeError):
        loads = False
    if problem is not None and problem.startswith("cannot tell: "):
        assert not loads or "dtype" in problem
        return
    assert (problem is None) == loads, problem


def test_the_reports_checkpoint_section_plans_the_folders_under_the_run_of_their_logs(hf_copy):
    from runlens.report.build.checkpoints import checkpoint_summaries

    rules = [runlens.KeepBestK(1, "eval_score", mode="min")]
    evals = runlens.read_evals(hf_copy)
    [run] = evals["run"].unique()  # OUTPUT/runs/<date>_<host>: the Trainer's logging_dir
    summaries, warnings = checkpoint_summaries(
        hf_copy, evals, runs=[run], rules=rules, min_age=0, restored={}
    )
    summary = summaries[run]
    assert (summary.files, summary.valid, summary.keep, summary.drop) == (6, 6, 2, 4)
    assert summary.kept_epochs == [1, 2] and summary.folder == "." and not warnings
    assert summary.bytes_to_free == sum(
        p.stat().st_size for step in (2, 4, 6, 10) for p in (hf_copy / f"checkpoint-{step}").rglob("*")
    )


def test_a_resumed_trainers_checkpoints_are_reported_under_its_last_logged_run(hf_copy):
    from runlens.report.build.checkpoints import checkpoint_summaries

    [logs] = (hf_copy / "runs").iterdir()
    earlier = hf_copy / "runs" / "Zzz_first_attempt"  # named to sort last: the wall times decide
    shutil.copytree(logs, earlier)
    for event_file in earlier.iterdir():  # the first attempt logged only its first records
        data, ends = event_file.read_bytes(), [0]
        while ends[-1] < len(data):  # whole TFRecords: 8-byte length, 4-byte CRC, data, 4-byte CRC
            ends.append(ends[-1] + 16 + struct.unpack_from("<Q", data, ends[-1])[0])
        event_file.write_bytes(data[: ends[len(ends) // 2]])
    evals = runlens.read_evals(hf_copy)
    runs = sorted(evals["run"].unique())
    assert len(runs) == 2
    ends = evals.groupby("run", observed=True)["wall_time"].max()
    rules = [runlens.KeepBestK(1, "eval_score", mode="min")]
    summaries, warnings = checkpoint_summaries(hf_copy, evals, runs=runs, rules=rules, min_age=0, restored={})
    assert list(summaries) == [ends.idxmax()] and not [w for w in warnings if "left out" in w]
