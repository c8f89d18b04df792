"""``.h5`` / ``.weights.h5`` files: is this HDF5 file one Keras wrote?

Read with h5py (imported on first use), through the descriptor runlens opened, never by path. A
file is a Keras checkpoint when it carries one of the layouts Keras writes:

- legacy full model (``model.save("m.h5")``: Keras 2, tf-keras, Keras 3's
  ``legacy_h5_format.save_model_to_hdf5``): a ``model_config`` root attribute and a
  ``model_weights`` group with a ``layer_names`` attribute;
- legacy weights (``save_weights("w.h5")`` in Keras 2 / tf-keras, ``save_weights_to_hdf5_group``
  on the root): ``layer_names`` and ``keras_version`` or ``backend`` root attributes;
- Keras 3 / tf-keras weights (``save_weights("w.weights.h5")``, ``saving_lib.H5IOStore``): the
  model's own ``vars`` group at the root, every root member a group, and every member of ``vars``
  a dataset named by its index (``"0"``, ``"1"``, ...).

A file without the HDF5 signature (at offset 0 or after a 512, 1024, 2048, ... byte user block)
is not a checkpoint. A file with the signature that HDF5 refuses to open (cut short: its
superblock records a longer file) cannot be told apart from someone else's damaged data, so it
is reported and never deleted. Damage inside the body of a file HDF5 opens is not detected.

>>> with open("w.weights.h5", "rb") as f:                     # doctest: +SKIP
...     check_keras_hdf5(f, os.fstat(f.fileno()).st_size).checkpoint
True
"""

from __future__ import annotations

from typing import Any, BinaryIO

from runlens.checkpoints.validate import Validity

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# what h5py raises on a damaged or hostile structure (OverflowError: a length field too large, seen
# when fuzzing real saves with flipped bytes)
_HDF5_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError, OverflowError, IndexError)


def check_keras_hdf5(file: BinaryIO, size: int) -> Validity:
    """The verdict on an open HDF5 candidate of ``size`` bytes (see the module docstring)."""
    if not _has_signature(file, size):
        return Validity(False, "not a Keras checkpoint: not an HDF5 file", checkpoint=False)
    import h5py

    file.seek(0)
    try:
        with h5py.File(file, "r") as h5:
            layout = _keras_layout(h5, h5py)
    except _HDF5_ERRORS as exc:
        return Validity(
            False, f"damaged HDF5 file ({exc}): cannot tell whether Keras wrote it", checkpoint=None
        )
    if layout is None:
        return Validity(
            False,
            "not a Keras checkpoint: an HDF5 file without the attributes or layout Keras writes",
            checkpoint=False,
        )
    return Validity(True)


def _has_signature(file: BinaryIO, size: int) -> bool:
    offset = 0
    while offset + len(HDF5_SIGNATURE) <= size:  # user blocks are 0, 512, 1024, 2048, ... bytes
        file.seek(offset)
        if file.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
            return True
        offset = 512 if offset == 0 else offset * 2
    return False


def _keras_layout(h5: Any, h5py: Any) -> str | None:
    """Which Keras layout the open file has, or None. Only names and object types are looked at:
    reading an attribute's value from a damaged file can send the HDF5 library into an endless
    loop (seen with a few flipped bytes in a variable-length string), and names and types say
    enough."""
    attrs = h5.attrs
    weights = h5.get("model_weights", getclass=True)
    if "model_config" in attrs and weights is h5py.Group and "layer_names" in h5["model_weights"].attrs:
        return "model"
    if "layer_names" in attrs and ("keras_version" in attrs or "backend" in attrs):
        return "weights"
    if h5.get("vars", getclass=True) is h5py.Group:
        own = h5["vars"]
        if all(h5.get(name, getclass=True) is h5py.Group for name in h5) and all(
            name.isdigit() and own.get(name, getclass=True) is h5py.Dataset for name in own
        ):
            return "weights"
    return None
