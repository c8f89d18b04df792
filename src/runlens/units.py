"""Numbers written for people."""

from __future__ import annotations


def nbytes(n: int | None) -> str:
    """A byte count in binary units ("n/a" for None).

    >>> nbytes(812032), nbytes(512), nbytes(None)
    ('793.0 KiB', '512 B', 'n/a')
    """
    if n is None:
        return "n/a"
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, "KiB"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{value:.1f} {unit}"
