"""``runlens report``: what each run's policies would have done, across the logdir, in four formats.

- :mod:`~runlens.report.model`: the report's data (dataclasses; epochs 0-based);
- :mod:`~runlens.report.build`: :func:`build_report` (``runlens.build_report``);
- :mod:`~runlens.report.learning_rate`, :mod:`~runlens.report.checkpoint_section`: its parts;
- :mod:`~runlens.report.describe`: the report in words, shared by the renderers;
- :mod:`~runlens.report.render`: :func:`render_report` to :mod:`~runlens.report.text`,
  :mod:`~runlens.report.markdown`, :mod:`~runlens.report.json_format`, :mod:`~runlens.report.html`
  (plots from :mod:`~runlens.report.plots`);
- :mod:`~runlens.report.progress`: the CLI's "reading ..." line on slow reads.

>>> report = runlens.build_report("sample_logs", patience=3)          # doctest: +SKIP
>>> print(runlens.render_report(report, "text"))                      # doctest: +SKIP
"""
