"""What a read of a logdir found beside its frame (:class:`ReadFound`), for callers that would
otherwise list and read the logdir again: the report takes the files holding hparams from it.

>>> ReadFound((), {}, complete=True).files_with("_hparams_/session_start_info", "hparams")
[]
"""

from __future__ import annotations

from dataclasses import dataclass

from runlens.events.files import ChunkRows
from runlens.events.sources import EventFile

# Plugins whose rank-0 tensors are scalars; tensors of tags owned by any other plugin are not.
SCALAR_PLUGINS = frozenset({"scalars"})


@dataclass(frozen=True)
class ReadFound:
    """``files``: the event files read, as :func:`~runlens.events.sources.find_event_files`
    listed them; ``plugins``: for each file (by path) whose tags carry plugin metadata other than
    the scalars plugin's, tag -> the plugin named by the first value of that tag in the file (the
    decoder's plugin marks, kept in the cache's pack too); ``complete``: every event file under
    the path was read (no ``runs=`` selection). Small on purpose: it is not put in
    ``frame.attrs``, which pandas deep-copies at every operation."""

    files: tuple[EventFile, ...]
    plugins: dict[str, dict[str, str]]
    complete: bool

    def files_with(self, tag: str, plugin: str) -> list[EventFile]:
        """The files holding a value of ``tag`` marked as ``plugin``'s, in the listing's order."""
        return [f for f in self.files if self.plugins.get(f.path, {}).get(tag) == plugin]


def plugin_tags(
    files: list[EventFile], chunks: list[ChunkRows], where: list[tuple[int, int]]
) -> dict[str, dict[str, str]]:
    """file path -> {tag: plugin} of the plugin marks other than the scalars plugin's, for the
    files read into ``chunks`` at ``where`` (take it before the frame is built, which frees the
    chunks' columns, not their tags and marks)."""
    out: dict[str, dict[str, str]] = {}
    for file, (number, position) in zip(files, where):
        marks = chunks[number].plugins[position]
        if marks and not SCALAR_PLUGINS.issuperset(marks.values()):
            names = chunks[number].tags
            out[file.path] = {
                names[code]: plugin for code, plugin in marks.items() if plugin not in SCALAR_PLUGINS
            }
    return out
