"""``runlens report``: what each run's policies would have done, across the logdir, in four formats.

Orchestration apart from presentation, with the records between them:

- :mod:`~runlens.report.model`: the report's records (dataclasses; epochs 0-based), imported by
  both sides and importing neither;
- :mod:`~runlens.report.build`: :func:`build_report` (``runlens.build_report``) and its parts:
  :mod:`~runlens.report.build.runs` (per-run records), :mod:`~runlens.report.build.learning_rate`,
  :mod:`~runlens.report.build.checkpoints`, :mod:`~runlens.report.build.live` (runlens.json's
  decisions vs the replay);
- :mod:`~runlens.report.render`: :func:`render_report` to :mod:`~runlens.report.render.text`,
  :mod:`~runlens.report.render.markdown`, :mod:`~runlens.report.render.json_format`,
  :mod:`~runlens.report.render.html` (plots from :mod:`~runlens.report.render.plots`), all saying
  the same words (:mod:`~runlens.report.render.describe`, :mod:`~runlens.report.render.words`,
  :mod:`~runlens.report.render.describe_sweep`).

>>> report = runlens.build_report("sample_logs", early_stopping=runlens.EarlyStopping(patience=3))  # doctest: +SKIP
>>> print(runlens.render_report(report, "text"))                                                   # doctest: +SKIP
"""
