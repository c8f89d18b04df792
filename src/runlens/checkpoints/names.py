"""Checkpoint file names: which files are checkpoints, and the epoch and metrics their names hold.

Keras' ``ModelCheckpoint`` names each file with ``filepath.format(epoch=epoch + 1, **logs)`` (Keras 3,
``keras/src/callbacks/model_checkpoint.py``, ``_get_file_path``; ``batch=batch + 1`` too when saving
every n batches), so ``{epoch}`` in a name is 1-based and any ``str.format`` spec may appear
(``{epoch:02d}``, ``{val_loss:.4f}``, ``{val_loss:.2e}``, ``{epoch:03}``). :class:`Template` turns
such a ``filepath`` back into a regular expression; :func:`guess_name` recognises the common
patterns when no template is known.

>>> Template("ckpt_{epoch:02d}_{val_loss:.4f}.keras").parse("runs/a/ckpt_07_0.4512.keras")
ParsedName(epoch=6, batch=None, metrics={'val_loss': 0.4512})
>>> guess_name("weights.07-0.45.weights.h5").epoch
6

Lightning's ``ModelCheckpoint`` names files ``epoch={epoch}-step={step}.ckpt`` by default, and a
``filename`` template such as ``"{epoch}-{val_loss:.2f}"`` becomes ``epoch=3-val_loss=0.12.ckpt``
(``auto_insert_metric_name``); a name taken already gets ``-v1``, ``-v2``, ...; ``last.ckpt`` is the
latest state (lightning/pytorch/callbacks/model_checkpoint.py, ``_format_checkpoint_name``,
``format_checkpoint_name``, ``CHECKPOINT_NAME_LAST``). Its ``{epoch}`` is 0-based
(``trainer.current_epoch``): :func:`lightning_name` keeps it so. The HF Trainer saves folders
``checkpoint-<global_step>`` (transformers/trainer_utils.py, ``PREFIX_CHECKPOINT_DIR``).

>>> lightning_name("epoch=3-val_loss=0.12-v1.ckpt")
(ParsedName(epoch=3, batch=None, metrics={'val_loss': 0.12}), None)
>>> folder_kind("checkpoint-500"), hf_step("checkpoint-500")
('transformers', 500)
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field

from runlens.errors import RunlensError

# checkpoint suffix -> kind; ".weights.h5" must be tried before ".h5"
CHECKPOINT_SUFFIXES: dict[str, str] = {
    ".weights.h5": "weights",
    ".keras": "keras",
    ".h5": "h5",
    ".ckpt": "lightning",
}
KERAS_KINDS = ("keras", "weights", "h5")
HF_KIND = "transformers"  # a whole checkpoint-N/ folder of the HF Trainer
_HF_FOLDER = re.compile(r"checkpoint-(\d+)")  # transformers.trainer_utils._re_checkpoint
_LIGHTNING_LAST = re.compile(r"last(-v\d+)?\.ckpt")  # CHECKPOINT_NAME_LAST, with a version suffix
_VERSION_SUFFIX = re.compile(r"-v\d+$")

_SPEC = re.compile(
    r"(?:(?P<fill>.)?(?P<align>[<>=^]))?(?P<sign>[-+ ])?z?(?P<alt>\#)?(?P<zero>0)?(?P<width>\d+)?"
    r"(?P<grouping>[,_])?(?:\.(?P<precision>\d+))?(?P<type>[a-zA-Z%])?",
    re.DOTALL,
)
_SPECIAL = r"(?i:nan|inf)"  # Python prints 'nan'/'inf' (upper case for the F/E/G types)
_EXPONENT = r"[eE][-+]\d+"
_INT_FIELDS = ("epoch", "batch")


@dataclass(frozen=True)
class ParsedName:
    """What a checkpoint's name says: 0-based ``epoch``/``batch`` (None when unknown), metrics."""

    epoch: int | None
    batch: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def checkpoint_kind(name: str) -> str | None:
    """``"keras"``, ``"weights"`` (``.weights.h5``) or ``"h5"`` for a checkpoint name, else None.

    >>> checkpoint_kind("w.03.weights.h5"), checkpoint_kind("notes.txt")
    ('weights', None)
    """
    for suffix, kind in CHECKPOINT_SUFFIXES.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return kind
    return None


def folder_kind(name: str) -> str | None:
    """``"transformers"`` for an HF Trainer checkpoint folder's name (``checkpoint-500``), else None."""
    return HF_KIND if _HF_FOLDER.fullmatch(name) else None


def hf_step(name: str) -> int | None:
    """The global step in an HF checkpoint folder's name."""
    match = _HF_FOLDER.fullmatch(name)
    return int(match[1]) if match else None


def is_lightning_last(name: str) -> bool:
    """Whether ``name`` is Lightning's default ``last.ckpt`` (or ``last-vN.ckpt``).

    >>> is_lightning_last("last.ckpt"), is_lightning_last("last-v1.ckpt"), is_lightning_last("epoch=1.ckpt")
    (True, True, False)
    """
    return bool(_LIGHTNING_LAST.fullmatch(name))


def lightning_name(name: str) -> tuple[ParsedName, int | None]:
    """``(ParsedName, step)`` from a Lightning checkpoint's name: its ``key=value`` pairs, the
    epoch as written (0-based, as Lightning counts), ``step``, the metrics; ``-vN`` ignored."""
    stem = _VERSION_SUFFIX.sub("", _strip_suffix(name.replace("\\", "/").rsplit("/", 1)[-1]))
    pairs = {k: float(v) for k, v in _PAIR.findall(stem)}
    epoch, step = pairs.pop("epoch", None), pairs.pop("step", None)

    def whole(value: float | None) -> int | None:
        return int(value) if value is not None and value >= 0 and value % 1 == 0 else None

    return ParsedName(epoch=whole(epoch), metrics=pairs), whole(step)


def _strip_suffix(name: str) -> str:
    for suffix in CHECKPOINT_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _number_pattern(spec: str, *, template: str, field_name: str) -> tuple[str, str, str]:
    """Regexes (padding, padding after the sign, number) for any ``format(value, spec)``."""
    m = _SPEC.fullmatch(spec)
    if m is None or "{" in spec:
        raise RunlensError(
            f"template {template!r}: cannot parse back field {{{field_name}:{spec}}}; "
            "use a plain format spec such as :02d or :.4f"
        )
    kind, precision = m["type"], m["precision"]
    if m["grouping"]:  # 1_234_567; only zero padding puts zeros before the first digit ("0_001")
        first = r"\d{1,3}" if m["zero"] or (m["fill"] == "0" and m["width"]) else r"(?:0|[1-9]\d{0,2})"
        digits = rf"{first}(?:{m['grouping']}\d{{3}})*"
    else:
        digits = r"\d+"
    if kind in ("f", "F", "%"):
        places = 6 if precision is None else int(precision)
        frac = rf"\.\d{{{places}}}" if places else (r"\." if m["alt"] else "")
        core = digits + frac + ("%" if kind == "%" else "")
    elif kind in ("e", "E"):
        places = 6 if precision is None else int(precision)
        frac = rf"\.\d{{{places}}}" if places else (r"\.?" if m["alt"] else "")
        core = rf"\d{frac}[eE][-+]\d{{2,}}"
    elif kind == "d" or (kind is None and field_name in _INT_FIELDS and precision is None):
        core = digits
    elif kind in ("g", "G", "n"):
        fraction = r"\.\d*" if m["alt"] else r"\.\d*[1-9]"  # 'g' drops trailing zeros
        core = rf"{digits}(?:{fraction})?|\d(?:{fraction})?{_EXPONENT}"  # fixed | scientific
    elif kind is None:  # a float's str(): always a '.' or an exponent ('0.5', '1e-05')
        core = _repr_pattern(digits)
    else:
        raise RunlensError(
            f"template {template!r}: format type {kind!r} in field {{{field_name}:{spec}}} "
            "is not supported; use d, f, e, g or %"
        )
    fill = m["fill"] or ("0" if m["zero"] else " ")
    if fill.isdigit() and m["align"] in ("<", "^"):
        raise RunlensError(
            f"template {template!r}: field {{{field_name}:{spec}}} pads with digits on the right, "
            "so its values cannot be read back from names"
        )
    pad = f"(?:{re.escape(fill)})*" if m["width"] else ""
    after_sign = m["align"] == "=" or (m["zero"] and m["align"] is None)  # "-0005", "+***1.50"
    number = f"{core}|{_SPECIAL}" + ("%" if kind == "%" else "")
    return ("", pad, number) if after_sign else (pad, "", number)


def _repr_pattern(digits: str) -> str:
    return rf"{digits}\.(?:0|\d*[1-9])|\d(?:\.\d*[1-9])?{_EXPONENT}"  # repr: '1.0', '1.5e-07'


def _to_number(text: str) -> float:
    text = text.replace(",", "").replace("_", "").strip()
    if text.endswith("%"):
        return float(text[:-1]) / 100.0
    return float(text)


class Template:
    """A ModelCheckpoint ``filepath`` compiled into a parser for the names it produces.

    Leading directories without a field are dropped, so the absolute path used during training
    still matches files copied elsewhere; the rest is matched against the end of each path.

    >>> t = Template("/tmp/ckpt/w.{epoch:03}-{loss:.2e}.weights.h5")
    >>> t.parse("backup/w.012-4.51e-01.weights.h5")
    ParsedName(epoch=11, batch=None, metrics={'loss': 0.451})
    >>> t.parse("other.keras") is None
    True
    """

    def __init__(self, template: str) -> None:
        self.template = template
        parts = template.replace("\\", "/").split("/")
        first = next((i for i, p in enumerate(parts) if "{" in p.replace("{{", "")), len(parts) - 1)
        tail = "/".join(parts[first:])
        self.depth = tail.count("/") + 1
        pattern, self.fields = [], []
        try:
            parsed = list(string.Formatter().parse(tail))
        except ValueError as exc:
            raise RunlensError(f"template {template!r} is not a valid format string: {exc}") from exc
        for literal, name, spec, conversion in parsed:
            pattern.append(re.escape(literal))
            if name is None:
                continue
            if not name.isidentifier():
                raise RunlensError(
                    f"template {template!r}: field {{{name}}} is not a plain name; "
                    "ModelCheckpoint fills only {epoch}, {batch} and the logs keys"
                )
            pad, inner, number = _number_pattern(spec, template=template, field_name=name)
            if conversion:  # !r / !s: str(value) first, then the spec pads it
                number = _repr_pattern(r"\d+") + "|" + _SPECIAL
            i = len(self.fields)
            pattern.append(f"{pad}(?P<s{i}>[-+ ]?){inner}(?P<f{i}>{number}){pad}")
            self.fields.append(name)
        self._regex = re.compile("".join(pattern))

    def parse(self, path: str) -> ParsedName | None:
        """The epoch/batch/metrics in ``path``'s name, or None when the template does not match."""
        tail = "/".join(path.replace("\\", "/").split("/")[-self.depth :])
        m = self._regex.fullmatch(tail)
        if m is None:
            return None
        values: dict[str, float] = {}
        for i, name in enumerate(self.fields):
            values.setdefault(name, _to_number(m[f"s{i}"] + m[f"f{i}"]))
        epoch, batch = values.pop("epoch", None), values.pop("batch", None)
        return ParsedName(epoch=_zero_based(epoch), batch=_zero_based(batch), metrics=values)

    def __repr__(self) -> str:
        return f"Template({self.template!r})"


def _zero_based(one_based: float | None) -> int | None:
    """ModelCheckpoint writes ``epoch + 1``; 0 or a fraction cannot come from it: unknown."""
    if one_based is None or one_based != one_based or one_based < 1 or one_based % 1:
        return None
    return int(one_based) - 1


_NUMBER = re.compile(r"(?<![A-Za-z0-9])(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![A-Za-z0-9])")
_PAIR = re.compile(r"(?<![A-Za-z0-9])([A-Za-z][A-Za-z0-9_]*)=(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")
_NAMED_EPOCH = re.compile(r"(?<![A-Za-z])(?:epoch|ep)[-_.]?(\d+)(?![\d.])", re.IGNORECASE)
_NAMED_METRIC = re.compile(
    r"(?<![A-Za-z0-9])((?:val_)?[A-Za-z]+(?:_[A-Za-z]+)*)[-_]?(\d+\.\d+(?:[eE][-+]?\d+)?)(?![\d.])"
)


def guess_name(name: str) -> ParsedName:
    """Best-effort epoch and metrics from a name written without a known template.

    Recognises ``name=value`` pairs (``epoch=3-val_loss=0.45``), a named epoch (``epoch_03``,
    ``ep3``), named metrics (``val_loss_0.4512``, ``acc0.91``) and otherwise the one integer token
    of the name (``ckpt-03``, ``cp-0004``, ``weights.03-0.45``, ``model_03_0.4512``). Numbers after
    the epoch that carry no name are not kept; a name with several bare integers has no epoch.

    >>> guess_name("epoch=3-val_loss=0.45.keras")
    ParsedName(epoch=2, batch=None, metrics={'val_loss': 0.45})
    >>> guess_name("model_03_0.4512.keras")
    ParsedName(epoch=2, batch=None, metrics={})
    """
    stem = _strip_suffix(name.replace("\\", "/").rsplit("/", 1)[-1])
    pairs = {k: float(v) for k, v in _PAIR.findall(stem)}
    if pairs:
        epoch = pairs.pop("epoch", pairs.pop("ep", None))
        return ParsedName(epoch=_zero_based(epoch), metrics=pairs)
    metrics = {k: float(v) for k, v in _NAMED_METRIC.findall(stem) if k.lower() not in ("epoch", "ep")}
    named = _NAMED_EPOCH.findall(stem)
    if named:
        return ParsedName(epoch=_zero_based(int(named[0])), metrics=metrics)
    integers = [t for t in _NUMBER.findall(stem) if t.isdigit()]
    epoch = _zero_based(int(integers[0])) if len(integers) == 1 else None
    return ParsedName(epoch=epoch, metrics=metrics)
