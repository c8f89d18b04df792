"""``runlens checkpoints list|prune``: what a checkpoint folder holds, and pruning it safely."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from runlens.arguments import Mode
from runlens.cli.output import echo_frame, say
from runlens.cli.shared_options import MODE, min_age_option
from runlens.units import nbytes

if TYPE_CHECKING:
    import pandas as pd

_TEMPLATE = click.option(
    "--template",
    multiple=True,
    metavar="T",
    help="The ModelCheckpoint filepath the files were written with, e.g. "
    "'ckpt_{epoch:02d}_{val_loss:.4f}.keras' (repeatable).",
)
_LOGDIR = click.option(
    "--logdir",
    type=click.Path(),
    metavar="L",
    help="TensorBoard logs of the same runs: full-precision metrics per epoch or validation check "
    "(found on their own for RUN/checkpoints next to RUN/train or Lightning's version_N).",
)


@click.group("checkpoints")
def checkpoints_group() -> None:
    """List checkpoint folders and prune them safely (dry run unless --apply): Keras .keras/.h5
    files, Lightning .ckpt files and HF Trainer checkpoint-N/ folders.

    \b
    Examples:
        runlens checkpoints list runs/exp1
        runlens checkpoints prune runs/exp1 --keep-best 3 --monitor val_loss
    """


@checkpoints_group.command("list")
@click.argument("dir", type=click.Path())
@_TEMPLATE
@_LOGDIR
def list_command(dir: str, template: tuple[str, ...], logdir: str | None) -> None:
    """List the checkpoints under DIR: run, epoch (as the framework prints it: 1-based for Keras
    and HF, 0-based for Lightning), global step, metrics, size, and whether each one is whole.

    \b
    Example:
        runlens checkpoints list runs/ --template 'ckpt_{epoch:02d}_{val_loss:.4f}.keras'
    """
    from runlens.checkpoints.index import read_checkpoints

    table = read_checkpoints(dir, template=template or None, logdir=logdir)
    echo_frame(_for_humans(table, dir))
    _echo_notes(table, dir)
    _echo_framework_best(table, None)


@checkpoints_group.command("prune")
@click.argument("dir", type=click.Path())
@click.option(
    "--keep-best",
    "keep_best",
    type=click.IntRange(min=1),
    required=True,
    metavar="K",
    help="Keep the K best checkpoints of each run by --monitor.",
)
@click.option("--monitor", required=True, metavar="M", help="The metric to rank by, e.g. val_loss.")
@MODE
@click.option("--keep-last", type=click.IntRange(min=1), metavar="N", help="Also keep the N latest.")
@click.option(
    "--keep-every",
    type=click.IntRange(min=1),
    metavar="N",
    help="Also keep every N-th epoch (N, 2N, ... counted from 1).",
)
@_TEMPLATE
@_LOGDIR
@min_age_option(
    "Files modified more recently are neither ranked nor deleted (unless the run's runlens.json "
    "says its training ended)."
)
@click.option("--delete-invalid", is_flag=True, help="Also delete damaged/truncated checkpoints.")
@click.option("--apply", "do_apply", is_flag=True, help="Really delete (default: only print the plan).")
@click.option(
    "--trash",
    type=click.Path(),
    metavar="DIR",
    help="With --apply: move dropped files to this folder (outside DIR, not writable by other "
    "users unless sticky and yours) instead.",
)
def prune_command(
    dir: str,
    keep_best: int,
    monitor: str,
    mode: Mode,
    keep_last: int | None,
    keep_every: int | None,
    template: tuple[str, ...],
    logdir: str | None,
    min_age: float,
    delete_invalid: bool,
    do_apply: bool,
    trash: str | None,
) -> None:
    """Keep the best checkpoints under DIR and delete the rest -- a dry run unless --apply.

    A checkpoint is one only by its content (a Keras .keras archive or HDF5 save, a Lightning
    .ckpt read without running its pickle, an HF checkpoint-N/ folder with its trainer_state.json,
    removed as a whole); other files and damaged ones nothing proves their framework wrote are
    listed as skipped and never touched. Never deletes or follows a symlink, never leaves DIR, keeps
    invalid checkpoints (unless --delete-invalid) and those modified within --min-age (a folder:
    its newest file), never deletes the best valid checkpoint of a run, the resume point
    (Lightning's last.ckpt, the newest HF folder), the best the framework recorded in its newest
    checkpoint, or what a symlink points to, and refuses a plan that would leave a run without a
    valid one. Right before deleting, under a lock on every folder it deletes from, each
    checkpoint must still be the one planned and the kept ones still valid, else nothing is
    deleted (a stale plan: run it again). A prune that is killed can be re-run.

    \b
    Exit codes: 0 done (or dry run), 1 refused (unsafe or stale plan, another prune running,
    a file could not be removed), 2 bad usage.

    \b
    Example:
        runlens checkpoints prune runs/exp1 --keep-best 3 --monitor val_loss --keep-last 1
        runlens checkpoints prune runs/exp1 --keep-best 3 --monitor val_loss --apply
    """
    from runlens.checkpoints.index import read_checkpoints
    from runlens.checkpoints.plan import plan_prune, plan_summary
    from runlens.checkpoints.prune import apply_prune
    from runlens.checkpoints.retention import KeepBestK, KeepEveryN, KeepLastN
    from runlens.manifest import ended_runs

    rules = [KeepBestK(keep_best, monitor, mode)]
    rules += [KeepLastN(keep_last)] if keep_last else []
    rules += [KeepEveryN(keep_every)] if keep_every else []
    table = read_checkpoints(dir, template=template or None, logdir=logdir)
    settled = ended_runs(dir, table["run"].unique())  # after the listing: see ended_runs
    plan = plan_prune(
        table, rules=rules, min_age=min_age, delete_invalid=delete_invalid, settled_runs=settled
    )
    summary = plan_summary(plan)
    echo_frame(_for_humans(plan, dir))
    _echo_notes(table, dir)
    _echo_framework_best(plan, monitor)
    unranked = plan["valid"] & (plan[monitor].isna() if monitor in plan.columns else True)
    if unranked.any():
        say(
            f"{int(unranked.sum())} valid checkpoint(s) have no {monitor} value, so they are kept: "
            "pass --template with the ModelCheckpoint filepath, or --logdir"
        )
    freed = f"{summary['bytes_to_free']:,} bytes ({nbytes(summary['bytes_to_free'])})"
    if not do_apply:
        say("", f"would delete {summary['drop']} of {summary['files']} checkpoints, freeing {freed}")
        where = " (move to --trash)" if trash else ""
        say(f"dry run: nothing was changed; add --apply to delete{where}")
        return
    result = apply_prune(plan, dir, trash=trash)
    verb = "moved" if trash else "deleted"
    for index, path in enumerate(result.removed):
        say(f"{verb} {path}" + (f" -> {result.moved_to[index]}" if trash else ""))
    for path, why in result.skipped:
        say(f"left {path}: {why}")
    say(
        "",
        f"{verb} {len(result.removed)} checkpoints, freed {result.bytes_freed:,} bytes "
        f"({nbytes(result.bytes_freed)})",
    )
    if result.failed:
        for path, why in result.failed:
            say(f"could not remove {path}: {why}", err=True)
        raise SystemExit(1)


def _for_humans(table: pd.DataFrame, root: str) -> pd.DataFrame:
    """The columns worth reading, epochs 1-based, paths relative to DIR, sizes readable."""
    import pandas as pd

    from runlens.checkpoints.index import LEADING_COLUMNS, OPTIONAL_COLUMNS, TRAILING_COLUMNS
    from runlens.name_columns import NAME_DTYPE

    fixed = {*LEADING_COLUMNS, *OPTIONAL_COLUMNS, *TRAILING_COLUMNS, "rank", "keep", "reason"}
    metrics = [c for c in table.columns if c not in fixed and table[c].notna().any()]
    order = ["run", "kind", "epoch", *(["step"] if "step" in table.columns else [])]
    table = table.sort_values(order, kind="stable", na_position="last")
    shown = table["epoch"] + (table["kind"] != "lightning").astype(int)  # Lightning counts from 0
    out = pd.DataFrame({"run": table["run"], "epoch": shown.astype("string").fillna("?")})
    if "step" in table.columns:
        out["step"] = table["step"].astype("string").fillna("")
    out["file"] = pd.array([os.path.relpath(p, root) for p in table["path"]], dtype=NAME_DTYPE)
    out["kind"], out["size"] = table["kind"], [nbytes(b) for b in table["size_bytes"]]
    for metric in metrics:
        out[metric] = [("" if pd.isna(v) else f"{v:.6g}") for v in table[metric]]
    sources = table["metrics_from"].where(table[metrics].notna().any(axis=1), "") if metrics else None
    if sources is not None and sources[sources != ""].nunique() > 1:  # say where each value came from
        out["from"] = sources
    out["valid"] = ["yes" if ok else f"NO: {why}" for ok, why in zip(table["valid"], table["invalid_reason"])]
    if "keep" in table.columns:  # the reason already says why a file is invalid
        out["valid"] = ["yes" if ok else "NO" for ok in table["valid"]]
        out["rank"] = table["rank"].astype("string").fillna("")
        out["action"] = ["keep" if k else "DELETE" for k in table["keep"]]
        out["reason"] = table["reason"]
    return out


def _echo_notes(table: pd.DataFrame, root: str) -> None:
    unplaced = table[table["epoch"].isna()]
    if len(unplaced):
        say(
            "",
            f"{len(unplaced)} file(s) whose epoch could not be read from the name "
            "(pass --template with the ModelCheckpoint filepath):",
        )
        for path in unplaced["path"]:
            say(f"  {os.path.relpath(path, root)}")
    for skipped in table.attrs.get("skipped", []):
        say(f"skipped {skipped['path']}: {skipped['reason']}")
    metrics_from = table["metrics_from"].dropna().unique()
    if len(table):
        sources = ", ".join(sorted(metrics_from)) or "nowhere (no metrics in names or logs)"
        say(f"metrics from: {sources}")


def _echo_framework_best(table: pd.DataFrame, monitor: str | None) -> None:
    """What the newest Lightning/HF checkpoint of each series records as best, beside the ranking."""
    from runlens.checkpoints.framework_state import comparison

    for line, disagrees in comparison(table, monitor):
        say(("DISAGREEMENT: " if disagrees else "") + line)
