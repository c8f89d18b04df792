"""Checkpoint names: templates parsed back, and common patterns recognised without one.

ModelCheckpoint names files with ``filepath.format(epoch=epoch + 1, **logs)`` (Keras 3
``keras/src/callbacks/model_checkpoint.py``, ``_get_file_path``), so the tests format names with
``str.format`` exactly that way and check the parse recovers the 0-based epoch and a value that
formats back to the same text.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from runlens.checkpoints.names import Template, checkpoint_kind, guess_name
from runlens.errors import RunlensError

EPOCH_SPECS = ["", "d", "02d", "03", "03d", ">4", "<3", "^5", "04", ",d", "_d", "+d", ".1f", "05.1f"]
METRIC_SPECS = [
    "",
    ".4f",
    ".2f",
    ".0f",
    "#.0f",
    ".2e",
    ".3E",
    "e",
    "g",
    ".3g",
    ".4G",
    ".1%",
    "08.3f",
    "+.3f",
    " .2f",
    "*>10.3f",
    "_.2f",
    ",.3f",
    "=+9.2f",
    "f",
    "F",
    "n",
]
SEPARATORS = ["_", "-", ".", "__", "-val-"]
values = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.floats(min_value=1e-12, max_value=1e-3),
    st.sampled_from([0.0, math.nan, math.inf, -math.inf, 1e20, 0.1 + 0.2]),
)


@settings(max_examples=1000, deadline=None)
@given(
    epoch=st.integers(min_value=0, max_value=100_000),
    epoch_spec=st.sampled_from(EPOCH_SPECS),
    specs=st.lists(st.sampled_from(METRIC_SPECS), min_size=1, max_size=2),
    metric_values=st.lists(values, min_size=2, max_size=2),
    seps=st.lists(st.sampled_from(SEPARATORS), min_size=4, max_size=4),
    epoch_first=st.booleans(),
    suffix=st.sampled_from([".keras", ".weights.h5", ".h5"]),
)
# '1_100_000.00': epoch 1, val_loss 100,000 -- not epoch 1,100 and a '000.00' no format writes
@example(0, "_d", ["_.2f"], [100000.0, 0.0], ["_"] * 4, True, ".keras")
# '1_100_100.00' is written by both epoch 1, val_loss 100,100 and epoch 1,100, val_loss 100
@example(0, "_d", ["_.2f"], [100100.0, 0.0], ["_"] * 4, True, ".keras")
def test_template_parses_back_what_str_format_wrote(
    epoch, epoch_spec, specs, metric_values, seps, epoch_first, suffix
):
    names = ["val_loss", "accuracy"][: len(specs)]
    fields = [f"{{{n}:{s}}}" if s else f"{{{n}}}" for n, s in zip(names, specs)]
    epoch_field = f"{{epoch:{epoch_spec}}}" if epoch_spec else "{epoch}"
    fields = [epoch_field, *fields] if epoch_first else [*fields, epoch_field]
    template = "/train/out/ckpt" + seps[0] + "".join(f + sep for f, sep in zip(fields, seps[1:]))
    template = template.rstrip("_-.") + suffix
    logs = dict(zip(names, metric_values))
    name = template.format(epoch=epoch + 1, **logs)

    parsed = Template(template).parse("copied/elsewhere/" + name.rsplit("/", 1)[1])

    assert parsed is not None, (template, name)
    assert template.format(epoch=parsed.epoch + 1, **parsed.metrics) == name  # explains the name
    grouping = {c for spec in [epoch_spec, *specs] for c in "_," if c in spec}
    # '.' between two general floats can be read two ways ('0.1.0'), and so can a separator that
    # is also a field's thousands separator ('1_100_100.00': epoch 1 or 1,100)
    if "." not in seps and not grouping & set(seps):
        assert parsed.epoch == epoch
        for metric, spec in zip(names, specs):
            assert format(parsed.metrics[metric], spec) == format(logs[metric], spec), (template, name)


@pytest.mark.parametrize(
    ("template", "name", "epoch", "metrics"),
    [
        (
            "weights.{epoch:02d}-{val_loss:.2f}.hdf5.keras",
            "weights.07-0.45.hdf5.keras",
            6,
            {"val_loss": 0.45},
        ),
        ("{epoch:02d}{val_loss:.4f}.keras", "030.4512.keras", 2, {"val_loss": 0.4512}),
        ("m_{val_accuracy:.1%}_{epoch}.keras", "m_91.2%_12.keras", 11, {"val_accuracy": 0.912}),
        ("run/{epoch:03d}/model.keras", "a/run/004/model.keras", 3, {}),
        ("b{batch:04d}e{epoch:02d}.keras", "b0120e03.keras", 2, {}),
        ("ck_{epoch}_{val_loss!r}.keras", "ck_3_0.30000000000000004.keras", 2, {"val_loss": 0.1 + 0.2}),
        ("ck_{{literal}}_{epoch}.keras", "ck_{literal}_9.keras", 8, {}),
        ("best.keras", "best.keras", None, {}),
    ],
)
def test_template_examples(template, name, epoch, metrics):
    parsed = Template(template).parse(name)
    assert parsed is not None
    assert parsed.epoch == epoch
    assert parsed.metrics == metrics


def test_batch_is_zero_based_too():
    # save_freq=<int>: ModelCheckpoint formats batch=batch + 1 as well.
    assert Template("b{batch:04d}e{epoch:02d}.keras").parse("b0120e03.keras").batch == 119


@pytest.mark.parametrize("name", ["ckpt_07_0.45.h5", "epoch_07-0.4512.keras.bak", "ckpt_xx_0.45.keras"])
def test_template_does_not_match_other_names(name):
    assert Template("ckpt_{epoch:02d}_{val_loss:.2f}.keras").parse(name) is None


def test_epoch_zero_in_a_name_is_unknown_not_minus_one():
    # ModelCheckpoint's {epoch} starts at 1: a 0 was written by something else.
    assert Template("e{epoch}.keras").parse("e0.keras").epoch is None


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("ckpt_{epoch:x}.keras", "format type 'x'"),
        ("ckpt_{logs[val_loss]}.keras", "not a plain name"),
        ("ckpt_{epoch.real}.keras", "not a plain name"),
        ("ckpt_{epoch:02d.keras", "not a valid format string"),
        ("ckpt_{epoch:0<3}.keras", "pads with digits"),
    ],
)
def test_bad_templates_name_the_template(template, fragment):
    with pytest.raises(RunlensError, match="template") as info:
        Template(template)
    assert fragment in str(info.value)
    assert template in str(info.value)


@pytest.mark.parametrize(
    ("name", "epoch", "metrics"),
    [
        ("epoch_03.keras", 2, {}),
        ("epoch-3.weights.h5", 2, {}),
        ("ep12_val_loss_0.4512.keras", 11, {"val_loss": 0.4512}),
        ("ckpt-03.keras", 2, {}),
        ("cp-0004.weights.h5", 3, {}),
        ("weights.03-0.45.h5", 2, {}),
        ("model_03_0.4512.keras", 2, {}),
        ("resnet50_07.keras", 6, {}),
        ("epoch=3-val_loss=0.45.keras", 2, {"val_loss": 0.45}),
        ("epoch=10-step=500-val_acc=0.91.keras", 9, {"step": 500.0, "val_acc": 0.91}),
        ("model-epoch07-acc0.91.keras", 6, {"acc": 0.91}),
        ("best.keras", None, {}),
        ("model_2_03.keras", None, {}),  # two bare integers: which one is the epoch?
        ("epoch_00.keras", None, {}),
    ],
)
def test_guess_name_common_patterns(name, epoch, metrics):
    parsed = guess_name(name)
    assert (parsed.epoch, parsed.metrics) == (epoch, metrics)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.keras", "keras"),
        ("a.weights.h5", "weights"),
        ("a.h5", "h5"),
        (".keras", None),
        ("a.keras.tmp", None),
        ("notes.txt", None),
        (".runlens-prune.lock", None),
        ("a.hdf5", None),
    ],
)
def test_checkpoint_kind(name, kind):
    assert checkpoint_kind(name) == kind
