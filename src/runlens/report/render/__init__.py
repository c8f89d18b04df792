"""Render a :class:`~runlens.report.model.Report` in one of the report formats.

>>> text = render_report(runlens.build_report("sample_logs"), "markdown")   # doctest: +SKIP
"""

from __future__ import annotations

from runlens.errors import RunlensError
from runlens.options import REPORT_FORMATS as FORMATS
from runlens.report.model import Report


def render_report(report: Report, format: str = "text") -> str:
    """The report as ``"text"`` (for a terminal), ``"markdown"``, ``"json"`` (0-based epochs, keys in
    the README) or ``"html"`` (one self-contained file with plots).

    Names from disk are shown escaped in text, Markdown and HTML (:mod:`runlens.textsafe`) and
    kept as they are in JSON (where ``json.dumps`` escapes them: the document is ASCII)."""
    if format == "text":
        from runlens.report.render.text import render_text as render
    elif format == "markdown":
        from runlens.report.render.markdown import render_markdown as render
    elif format == "json":
        from runlens.report.render.json_format import render_json as render
    elif format == "html":
        from runlens.report.render.html import render_html as render
    else:
        raise RunlensError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    # Names from disk: text, Markdown and HTML show them escaped, every line through
    # runlens.textsafe.text_lines; JSON keeps them as data, and json.dumps escapes every character
    # that is not printable ASCII (a byte that is not UTF-8 is the lone surrogate \udcXX).
    return render(report)
