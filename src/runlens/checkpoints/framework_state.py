"""What Lightning and the HF Trainer recorded about their own checkpoints, beside runlens' view.

The newest valid checkpoint of a series (one run, one kind; newest by global step, then mtime)
holds the framework's own bookkeeping: Lightning's ``ModelCheckpoint`` state (``monitor``,
``best_model_path``, ``best_model_score``, ``best_k_models``, ``last_model_path``), the HF
Trainer's ``trainer_state.json`` (``best_model_checkpoint``, ``best_metric``). From it:

- :func:`pins`: the checkpoints a prune never drops, whatever the rules, and why -- the resume
  point (Lightning's ``last.ckpt`` and the file ``last_model_path`` names; the HF folder with the
  highest step, which ``get_last_checkpoint`` resumes from and ``rotate_checkpoints`` keeps), the
  framework's own best in that newest state, and every checkpoint a symlink under the folder points
  to (a ``last.ckpt`` link made by ``save_last="link"`` would dangle otherwise);
- :func:`best_records`: per series, the framework's best and its score, for
  :func:`disagreements` to set beside runlens' ranking.

Paths recorded by a framework are those of the machine that trained; they are matched by name in
the newest checkpoint's folder.

>>> records = best_records(table, contents)        # doctest: +SKIP
>>> disagreements(plan, "val_loss")                 # doctest: +SKIP
["run 'lightning_logs/version_0': ModelCheckpoint (val_loss) in last.ckpt names ..."]
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from runlens.checkpoints.hf_folder import TrainerContent
from runlens.checkpoints.lightning_ckpt import LightningContent
from runlens.checkpoints.names import HF_KIND, is_lightning_last

LAST_PIN = "Lightning's last checkpoint (the resume point)"
_HF_NEWEST_PIN = "the newest checkpoint (the HF Trainer resumes from it)"


def pins(table: pd.DataFrame, contents: dict[Any, Any], links: dict[str, str]) -> pd.Series:
    """Why each row must be kept whatever the rules ('' for none), by row."""
    reasons: dict[Any, list[str]] = {i: [] for i in table.index}
    by_path = {os.path.abspath(p): i for i, p in table["path"].items()}
    for target, link in links.items():
        if target in by_path:
            reasons[by_path[target]].append(f"a symlink points to it ({os.path.basename(link)})")
    for index, path, kind in zip(table.index, table["path"], table["kind"]):
        if kind == "lightning" and is_lightning_last(os.path.basename(path)):
            reasons[index].append(LAST_PIN)
    for record in _newest(table, contents):
        newest, content, series = record
        if isinstance(content, TrainerContent):
            reasons[newest].append(_HF_NEWEST_PIN)
            best = _match(series, table.at[newest, "path"], content.best_model_checkpoint)
            if best is not None:
                reasons[best].append("trainer_state.json's best_model_checkpoint (in the newest checkpoint)")
            continue
        for state in content.model_checkpoints:
            for recorded, why in (
                (state.best_model_path, "ModelCheckpoint's best_model_path (in the newest checkpoint)"),
                (state.last_model_path, "ModelCheckpoint's last_model_path (the resume point)"),
            ):
                found = _match(series, table.at[newest, "path"], recorded)
                if found is not None and why not in reasons[found]:
                    reasons[found].append(why)
    return pd.Series(["; ".join(r) for r in reasons.values()], index=table.index, dtype="str")


def best_records(table: pd.DataFrame, contents: dict[Any, Any]) -> list[dict[str, Any]]:
    """Per series with a framework record: ``{"run", "kind", "newest", "source", "monitor",
    "best", "recorded", "score", "best_k"}`` -- ``best`` is the table's path of the framework's
    best (None when it is not in the folder), ``recorded`` the path as the framework wrote it,
    ``best_k`` ModelCheckpoint's ``best_k_models`` (name -> score; empty for HF)."""
    records = []
    for newest, content, series in _newest(table, contents):
        run, kind, path = table.at[newest, "run"], table.at[newest, "kind"], table.at[newest, "path"]
        if isinstance(content, TrainerContent):
            states = [
                (
                    "trainer_state.json",
                    content.best_metric_name,
                    content.best_model_checkpoint,
                    content.best_metric,
                    {},
                )
            ]
        else:
            states = [
                ("ModelCheckpoint", s.monitor, s.best_model_path, s.best_model_score, s.best_k_models)
                for s in content.model_checkpoints
            ]
        for source, monitor, recorded, score, best_k in states:
            if recorded is None:
                continue
            best = _match(series, path, recorded)
            records.append(
                {
                    "run": run,
                    "kind": kind,
                    "newest": path,
                    "source": source,
                    "monitor": monitor,
                    "best": None if best is None else table.at[best, "path"],
                    "recorded": recorded,
                    "score": score,
                    "best_k": {_name(k): v for k, v in best_k.items()},
                }
            )
    return records


def describe(record: dict[str, Any]) -> str:
    """One line: what the framework's newest checkpoint says is best."""
    monitor = f" ({record['monitor']})" if record["monitor"] else ""
    score = "" if record["score"] is None else f", {record['score']:.6g}"
    best = _name(record["recorded"]) + ("" if record["best"] is not None else " -- not in the folder")
    text = f"{record['source']}{monitor} in {_name(record['newest'])}: best {best}{score}"
    if record["best_k"]:
        text += f"; best_k_models: {len(record['best_k'])} ({', '.join(sorted(record['best_k'])[:4])}"
        text += ", ...)" if len(record["best_k"]) > 4 else ")"
    return text


def comparison(plan: pd.DataFrame, monitor: str | None) -> list[tuple[str, bool]]:
    """One ``(line, disagrees)`` per framework record of the plan (or table): what the framework
    calls best, and whether runlens' #1 by ``monitor`` is the same checkpoint (not compared when
    the framework judged by another metric, or without a ranking)."""
    out = []
    records = plan.attrs.get("framework_best", [])
    firsts = _ranked_first(plan) if records and "rank" in plan.columns else {}
    for record in records:
        line = f"run {record['run']!r}: {describe(record)}"
        if monitor is None or "rank" not in plan.columns:
            out.append((line, False))
            continue
        if record["monitor"] != monitor:
            out.append((f"{line}; not compared with the ranking by {monitor}", False))
            continue
        first = firsts.get((record["run"], record["kind"]))
        if first is None:
            out.append((f"{line}; runlens ranked none of this series", False))
        elif record["best"] == first:
            out.append((f"{line}; runlens' #1 by {monitor} is the same", False))
        else:
            ours = _name(first)
            out.append(
                (
                    f"{line}; but runlens' #1 by {monitor} is {ours} (the logs' values differ, or that best is gone)",
                    True,
                )
            )
    return out


def _ranked_first(plan: pd.DataFrame) -> dict[tuple[str, str], str]:
    """``(run, kind)`` -> the path of the series' first row ranked #1, in the plan's order: one
    pass for every record (a row mask per record cost a 2,000-run Lightning sweep minutes)."""
    table = plan[["run", "kind", "path", "rank"]]
    table.attrs = {}  # one copy of the plan's attrs (its framework records), not one per column
    first = (table["rank"] == 1).fillna(False).to_numpy(dtype=bool)
    columns = (table[name].to_numpy(dtype=object)[first] for name in ("run", "kind", "path"))
    out: dict[tuple[str, str], str] = {}
    for run, kind, path in zip(*columns):
        out.setdefault((run, kind), path)
    return out


def disagreements(plan: pd.DataFrame, monitor: str) -> list[str]:
    """The lines of :func:`comparison` where the framework's best is not runlens' #1."""
    return [line for line, disagrees in comparison(plan, monitor) if disagrees]


def _newest(
    table: pd.DataFrame, contents: dict[Any, Any]
) -> list[tuple[Any, Any, dict[tuple[str, str], Any]]]:
    """(row of the newest valid checkpoint with a record, its content, its series' rows by folder
    and name) per series (run and kind, in the table's order): the newest by step, then mtime
    (unknown first; the later row on ties). One sort of the table, not one frame per series: a
    2,000-run sweep's series cost seconds each way (the series' rows were matched against every
    content's row per series)."""
    framework = table[table["kind"].isin(["lightning", HF_KIND]) & table["run"].notna()]
    rows: dict[tuple[Any, Any], dict[tuple[str, str], Any]] = {}  # series -> (folder, name) -> first row
    for index, run, kind, path in zip(
        framework.index, framework["run"], framework["kind"], framework["path"]
    ):
        rows.setdefault((run, kind), {}).setdefault((os.path.dirname(path), os.path.basename(path)), index)
    candidates = framework[framework.index.isin(list(contents)) & framework["valid"].to_numpy(dtype=bool)]
    if candidates.empty:  # a table of Keras checkpoints alone has no step column
        return []
    newest: dict[tuple[Any, Any], Any] = {}
    order = candidates.sort_values(["step", "mtime"], na_position="first", kind="stable")
    for index, run, kind in zip(order.index, order["run"], order["kind"]):
        newest[(run, kind)] = index  # the last in the order: the newest of its series
    return [
        (newest[key], contents[newest[key]], found)
        for key, found in rows.items()
        if key in newest and isinstance(contents[newest[key]], (LightningContent, TrainerContent))
    ]


def _match(rows: dict[tuple[str, str], Any], newest: str, recorded: str | None) -> Any:
    """The row of a series (``rows``: by folder and name) in ``newest``'s folder named like the
    ``recorded`` path, or None."""
    if not recorded:
        return None
    return rows.get((os.path.dirname(newest), _name(recorded)))


def _name(path: str) -> str:
    return os.path.basename(path.rstrip("/\\").replace("\\", "/"))
