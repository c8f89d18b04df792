"""Which framework wrote each run of a logdir, and why runlens thinks so.

Signs, checked in this order for every folder that holds event files:

- **keras**: a ``train`` or ``validation`` folder with ``epoch_*`` tags (Keras' TensorBoard callback;
  the two become one run named after their parent), or any folder with ``epoch_*`` tags;
- **transformers**: a ``train/epoch`` tag (HF Trainer's TensorBoardCallback logs the epoch with every
  log), evaluations as ``eval/*`` tags;
- **lightning**: an ``epoch`` tag (Lightning's TensorBoardLogger writes it with every
  ``log_metrics``), a ``version_N`` folder, or ``hparams.yaml`` beside the events;
- **generic**: anything else; read with a ``monitor`` tag.

>>> detect_folders({"lightning_logs/version_0": {"val_loss", "epoch"}})["lightning_logs/version_0"].why
"tag 'epoch', folder 'version_0' (Lightning's TensorBoardLogger)"
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from runlens.arguments import choice
from runlens.epochs import split_keras_run
from runlens.options import FRAMEWORKS  # the CLI offers them too

_VERSION = re.compile(r"^version_\d+$")
# A tag path component that names validation: val_loss, val/acc, valid-f1, validation, loss/val.
_VALIDATION = re.compile(r"^(val|valid|validation)($|[_\-./])", re.IGNORECASE)


@dataclass(frozen=True)
class Detected:
    """One folder's verdict: the run it belongs to, the framework, and the signs seen."""

    run: str
    framework: str
    why: str


def is_validation_tag(tag: str) -> bool:
    """True for names that say validation in one of their ``/`` parts (``val_loss``, ``loss/val``).

    >>> [is_validation_tag(t) for t in ("val_loss", "metrics/valid_acc", "interval", "train_loss")]
    [True, True, False, False]
    """
    return any(_VALIDATION.match(part) for part in tag.split("/"))


def detect_folders(
    tags_by_folder: dict[str, set[str]],
    *,
    framework: str = "auto",
    has_hparams: Callable[[str], bool] | None = None,
) -> dict[str, Detected]:
    """The verdict for every folder from its tag names (``has_hparams(folder)`` looks for a
    Lightning ``hparams.yaml`` beside the events; None: not looked for).

    >>> found = detect_folders({"exp/train": {"epoch_loss"}, "runs/x": {"train/epoch", "eval/loss"}})
    >>> [(d.run, d.framework) for d in found.values()]
    [('exp', 'keras'), ('runs/x', 'transformers')]
    """
    folders = list(tags_by_folder)
    parents, splits = split_keras_run(folders)
    return {
        folder: _detect(folder, tags_by_folder[folder], parent, split, framework, has_hparams)
        for folder, parent, split in zip(folders, parents, splits)
    }


def _detect(
    folder: str,
    tags: set[str],
    parent: str,
    split: str,
    framework: str,
    has_hparams: Callable[[str], bool] | None,
) -> Detected:
    epoch_tags = any(t.startswith("epoch_") for t in tags)
    if framework != "auto":
        run = parent if framework == "keras" else folder
        return Detected(run, framework, f"framework={framework!r} was passed")
    if split and epoch_tags:
        return Detected(parent, "keras", f"{split}/ folder with epoch_* tags (Keras' TensorBoard callback)")
    if "train/epoch" in tags:
        evals = " and eval/* tags" if any(t.startswith("eval/") for t in tags) else ", no eval/* tags"
        return Detected(
            folder, "transformers", f"tag 'train/epoch'{evals} (HF Trainer's TensorBoardCallback)"
        )
    if epoch_tags:
        return Detected(folder, "keras", "epoch_* tags (Keras' TensorBoard callback)")
    signs = []
    if "epoch" in tags:
        signs.append("tag 'epoch'")
    name = folder.rpartition("/")[2]
    if _VERSION.match(name):
        signs.append(f"folder {name!r}")
    if has_hparams is not None and has_hparams(folder):
        signs.append("hparams.yaml")
    if signs:
        return Detected(folder, "lightning", f"{', '.join(signs)} (Lightning's TensorBoardLogger)")
    return Detected(folder, "generic", "no Keras, Lightning or HF Trainer layout")


def check_framework(framework: str) -> None:
    """A RunlensError naming ``framework=`` unless it is ``"auto"`` or a known framework."""
    choice("framework", framework, ("auto", *FRAMEWORKS))
