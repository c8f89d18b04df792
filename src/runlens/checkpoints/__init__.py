"""Checkpoint folders: index (:mod:`.index`), keep rules (:mod:`.retention`), plans (:mod:`.plan`)
and the one place that deletes (:mod:`.prune`). The public names are re-exported from ``runlens``.
"""
