"""``runlens report``: when each run should have stopped, what it cost, what to keep."""

from __future__ import annotations

import contextlib
import sys
from typing import Any, get_args

import click

from runlens.arguments import LRTiming, Semantics
from runlens.cli.output import say, say_text, write_output
from runlens.cli.progress import delayed_notice
from runlens.cli.shared_options import MODE, format_option, framework_option, min_age_option, output_option
from runlens.options import (
    REPORT_DETAIL,
    REPORT_FORMATS,
    REPORT_SMALL_LOGDIR,
    REPORT_SORTS,
    REPORT_SUFFIXES,
    STDOUT,
    SWEEP_PATIENCE,
    format_from_name,
)


class _NumberList(click.ParamType):
    """A comma-separated list of numbers: ``0,1,2,5``."""

    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.name = f"{kind.__name__},..."

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple:
        if isinstance(value, tuple):
            return value
        try:
            items = tuple(self.kind(v) for v in str(value).split(",") if v.strip())
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of {self.kind.__name__} values", param, ctx)
        if not items:
            self.fail("give at least one value", param, ctx)
        return items


class _Detail(click.ParamType):
    """``--detail``: a whole number >= 0 or ``all``."""

    name = "N|all"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | str:
        text = str(value).strip().lower()
        if text == "all":
            return "all"
        if text.isdigit():
            return int(text)
        self.fail(f"{value!r} is neither a whole number >= 0 nor 'all'", param, ctx)


@click.command("report")
@click.argument("logdir", type=click.Path())
@click.option(
    "--runs",
    "run_patterns",
    multiple=True,
    metavar="GLOB",
    help="Only the runs of this name or glob, as the report prints them (repeatable); an error "
    "lists the runs there are when one matches nothing.",
)
@click.option(
    "--sort",
    type=click.Choice(REPORT_SORTS),
    default="run",
    show_default=True,
    help="Order of the runs table: by name, most epochs saved, largest regret, earliest stop, "
    "best monitored value.",
)
@click.option(
    "--detail",
    type=_Detail(),
    help="Runs shown in detail below the runs table (text, Markdown, HTML): N (the runs worth a look "
    f"first) or all.  [default: all of a logdir of up to {REPORT_SMALL_LOGDIR} runs, else {REPORT_DETAIL}]",
)
@framework_option(
    "Read and replay every run as this framework's (auto: each run by its layout: Keras' "
    "train/validation folders, Lightning's version_N, the HF Trainer's eval/* tags; anything else is "
    "generic and needs --monitor)."
)
@click.option(
    "--monitor",
    metavar="M",
    help="Metric both policies watch; for runs of no known framework, the tag to read one evaluation "
    "per logged value of (e.g. val/loss).  [default: Keras val_loss if logged, else loss; "
    "Lightning val_loss; HF eval_loss]",
)
@MODE
@click.option(
    "--patience",
    type=click.IntRange(min=0),
    help="EarlyStopping: epochs (Lightning: validation checks; HF: evaluations, its "
    "early_stopping_patience) without improvement before stopping.  [default: 5 for Keras runs, "
    "each framework's own otherwise: Lightning 3, HF 1]",
)
@click.option(
    "--min-delta",
    type=float,
    help="EarlyStopping: smallest change that counts as an improvement (HF: early_stopping_threshold).  "
    "[default: 0]",
)
@click.option("--baseline", type=float, help="EarlyStopping: stop unless the monitor beats this.")
@click.option(
    "--start-from-epoch",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="EarlyStopping: epochs before this one (0-based, as in Keras) are not monitored.",
)
@click.option(
    "--restore-best-weights/--no-restore-best-weights",
    default=True,
    show_default=True,
    help="EarlyStopping: whether fit returns the best epoch's weights.",
)
@click.option(
    "--semantics",
    type=click.Choice(get_args(Semantics)),
    default="keras3",
    show_default=True,
    help="Decide as Keras 3.x, as tf-keras 2.x (on NumPy >= 2) or as tf-keras 2.x on NumPy 1.x "
    "(TensorFlow <= 2.17) did.",
)
@click.option(
    "--reduce-lr",
    is_flag=True,
    help="Replay ReduceLROnPlateau on every run (Keras' defaults, or the --lr-* options; giving any "
    "--lr-* option asks for it too). Without it, only runs whose runlens.json says they used "
    "ReduceLROnPlateau get an LR replay, with their own settings.",
)
@click.option(
    "--lr-factor", type=float, help="ReduceLROnPlateau: the rate is multiplied by this.  [default: 0.1]"
)
@click.option(
    "--lr-patience",
    type=click.IntRange(min=0),
    help="ReduceLROnPlateau: epochs without improvement before reducing.  [default: 10]",
)
@click.option(
    "--lr-min-delta",
    type=float,
    help="ReduceLROnPlateau: smallest change that counts as an improvement.  [default: 0.0001]",
)
@click.option(
    "--lr-cooldown",
    type=click.IntRange(min=0),
    help="ReduceLROnPlateau: epochs to wait after a reduction.  [default: 0]",
)
@click.option("--lr-min-lr", type=float, help="ReduceLROnPlateau: lower bound of the rate.  [default: 0]")
@click.option(
    "--lr-timing",
    type=click.Choice(get_args(LRTiming)),
    default="used",
    show_default=True,
    help="Which rate the log holds for an epoch, which depends on the callback order: 'used' = the "
    "rate used during the epoch (TensorBoard before ReduceLROnPlateau in callbacks=, the usual "
    "order); 'after' = the rate after the epoch's decision, i.e. already reduced "
    "(ReduceLROnPlateau before TensorBoard).",
)
@click.option(
    "--initial-lr",
    type=float,
    help="Rate every ReduceLROnPlateau replay starts from.  [default: each run's first logged rate]",
)
@click.option(
    "--sweep-patience",
    type=_NumberList(int),
    default=",".join(map(str, SWEEP_PATIENCE)),
    show_default=True,
    help="Patiences the sweep tries (--patience is always added; HF: early_stopping_patience).",
)
@click.option(
    "--sweep-min-delta",
    type=_NumberList(float),
    help="min_delta values the sweep tries (--min-delta is always added).  [default: --min-delta]",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Largest max regret a recommended setting may have.",
)
@click.option(
    "--keep-best",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Checkpoint plan: keep the K best of each run by --monitor.",
)
@click.option(
    "--keep-last",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Checkpoint plan: also keep the N latest (0: no such rule).",
)
@min_age_option("Checkpoint plan: files modified more recently are kept, not ranked.")
@click.option("--no-checkpoints", is_flag=True, help="Do not look for checkpoints.")
@format_option(REPORT_FORMATS, "from the -o file's extension (.txt, .md, .json, .html), else text")
@output_option("Write the report to this file instead of stdout ('-': stdout).")
def report_command(
    logdir: str,
    run_patterns: tuple[str, ...],
    sort: str,
    detail: int | str | None,
    fmt: str | None,
    output: str | None,
    no_checkpoints: bool,
    min_age: float,
    monitor: str | None,
    mode: str,
    semantics: str,
    reduce_lr: bool,
    lr_timing: str,
    initial_lr: float | None,
    sweep_patience: tuple[int, ...],
    sweep_min_delta: tuple[float, ...] | None,
    tolerance: float,
    keep_best: int,
    keep_last: int,
    framework: str,
    **options: Any,
) -> None:
    """Replay EarlyStopping (and ReduceLROnPlateau) on every run under LOGDIR, exactly as Keras
    decides, and report where each run should have stopped, what that would have saved, what
    it would have cost (regret), the learning-rate schedule a replay gives beside the logged one
    (for runs whose runlens.json says they used ReduceLROnPlateau, or every run with
    --reduce-lr), a sweep of EarlyStopping settings with a recommendation, and the checkpoints a
    keep-best/keep-last plan would keep (RUN/checkpoints/, else the run folder; nothing is
    deleted). Epochs are printed 1-based, as Keras prints them; JSON keeps them 0-based.

    Lightning and HF Trainer runs are replayed with their own framework's callback and its
    defaults (Lightning's EarlyStopping, patience 3 on val_loss; the Trainer's
    EarlyStoppingCallback, patience 1 on eval_loss), numbered as their users know them (validation
    check 7, epoch 13; evaluation at step 1200, epoch 2.4); --patience, --min-delta, --monitor and
    --mode set that callback's arguments, --reduce-lr/--lr-* replay torch's ReduceLROnPlateau.

    \b
    Examples:
        runlens report sample_logs
        runlens report logs/ --patience 3 --min-delta 0.001 --monitor val_accuracy
        runlens report logs/ --lr-factor 0.5 --lr-patience 2 --lr-timing used
        runlens report logs/ --sweep-patience 1,2,3,5,10 --tolerance 0.01
        runlens report sweep/ --sort regret --detail 10 --runs 'lr_1e-3*'
        runlens report logs/ -o report.html
        runlens report sample_logs/lightning --patience 5 --reduce-lr --lr-patience 1 --lr-factor 0.5
        runlens report runs/ --monitor val/loss          # plain PyTorch logs: no framework layout
        runlens report logs/ --format json | jq '.runs[] | {run, stopped_epoch}'
    """
    output = None if output == STDOUT else output
    if fmt is None:  # an extension that names no format is an error, before any reading
        fmt = format_from_name(output, REPORT_SUFFIXES) if output else "text"
    runs = list(run_patterns) or None
    with contextlib.ExitStack() as stack:
        ahead = stack.enter_context(_read_ahead(logdir, runs))
        from runlens.report.build import build_report
        from runlens.report.build.frameworks import STOPPING_CLASSES, lr_arguments, stopping_arguments
        from runlens.report.render import render_report
        from runlens.report.render.figures import figure_workers

        # The HTML's figure workers import matplotlib while the report is built.
        drawers = figure_workers() if fmt == "html" else None
        if drawers is not None:
            stack.callback(drawers.shutdown, cancel_futures=True)

        # The policies as their Keras arguments: build_report makes the objects, the monitor
        # defaulting to what the logs hold (val_loss if logged, else loss) when --monitor is not given.
        watched = {} if monitor is None else {"monitor": monitor}
        early_stopping = {**watched, "mode": mode, "semantics": semantics}
        for name in ("min_delta", "patience", "baseline", "restore_best_weights", "start_from_epoch"):
            early_stopping[name] = options.pop(name)
        neutral = {
            "monitor": monitor,
            "patience": early_stopping["patience"],
            "min_delta": early_stopping["min_delta"],
        }
        early_stopping["patience"] = 5 if neutral["patience"] is None else neutral["patience"]  # the report's
        early_stopping["min_delta"] = neutral["min_delta"] or 0.0
        # Other frameworks' runs: their own class, these options in its arguments (report/build/frameworks.py).
        policies: dict[str, Any] = {
            fw: stopping_arguments(fw, mode=mode, **neutral) for fw in STOPPING_CLASSES
        }
        lr_given = {name[3:]: value for name, value in options.items() if value is not None}
        lr_policy = None
        if reduce_lr or lr_given:
            lr_policy = {**watched, "mode": mode, "semantics": semantics, **lr_given}
            policies["torch"] = lr_arguments(lr_given, mode=mode)
        sweep = {"patience": sweep_patience, "tolerance": tolerance}
        if sweep_min_delta is not None:
            sweep["min_delta"] = sweep_min_delta
        with delayed_notice(f"reading {logdir}...", stream=sys.stderr):
            report = build_report(
                logdir,
                runs=runs,
                early_stopping=early_stopping,
                reduce_lr=lr_policy,
                framework=framework,
                monitor=monitor,
                policies=policies,
                sweep=sweep,
                checkpoints=not no_checkpoints,
                keep_best=keep_best,
                keep_last=keep_last,
                checkpoint_min_age=min_age,
                initial_lr=initial_lr,
                lr_timing=lr_timing,
                executor=ahead,
            )
        with delayed_notice(f"writing the {fmt} report...", stream=sys.stderr):
            rendered = render_report(report, fmt, detail=detail, sort=sort, figure_workers=drawers)
        if output is None:
            say_text(rendered)
            return
        write_output(output, rendered, what="the report")
        say(f"wrote the {fmt} report on {len(report.runs)} run(s) to {output}")


def _read_ahead(logdir: str, runs: list[str] | None) -> Any:
    """LOGDIR's event files read in worker processes from now on, while the library (pandas) is
    imported (:mod:`runlens.events.read_ahead`, which imports neither); nothing read ahead for a
    URL."""
    from runlens.events.read_ahead import ReadAhead
    from runlens.events.sources import is_url

    return contextlib.nullcontext() if is_url(logdir) else ReadAhead(logdir, runs=runs)
