"""``python -m runlens`` is the ``runlens`` command."""

from runlens.cli import run

run()
