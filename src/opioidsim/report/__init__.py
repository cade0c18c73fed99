"""The results report: a standalone HTML file and a one-row-per-readout summary table.

>>> from opioidsim.report import write_report, summary_table, write_summary_csv
>>> write_report(ds, "report.html")          # figures embedded; no external resources
>>> summary_table(ds)                        # pandas DataFrame, one row per readout
>>> write_summary_csv(ds, "summary.csv")

Research and teaching only: never a dosing guide.
"""
from __future__ import annotations

from opioidsim.report.html import RESEARCH_NOTICE, render_report, write_report
from opioidsim.report.summary import MIN_READOUTS, summary_table, write_summary_csv

__all__ = [
    "MIN_READOUTS",
    "RESEARCH_NOTICE",
    "render_report",
    "summary_table",
    "write_report",
    "write_summary_csv",
]
