"""The craving panel of the report: what it draws, from a synthetic dataset whose values are set here."""
from __future__ import annotations

import numpy as np
import xarray as xr

from opioidsim.readouts import READOUTS
from opioidsim.report import render_report
from opioidsim.report.figures import craving_figure


def _ds(names=("craving", "cue_craving", "glt1"), days=60.0):
    d = np.arange(0.0, days + 0.25, 0.5)
    data = {"craving": 6.0 * np.exp(-np.maximum(d - 20.0, 0.0) / 7.0) * (d >= 20.0),
            "cue_craving": np.clip(d / 10.0, 0.0, 5.0),
            "glt1": 1.0 - 0.3 * np.clip(d / 20.0, 0.0, 1.0)}
    t_ns = (d * 86400e9).round().astype("timedelta64[ns]")
    ds = xr.Dataset({k: (("subject", "time"), np.tile(data[k], (2, 1)),
                         {"units": READOUTS[k].units, "long_name": READOUTS[k].long_name}) for k in names},
                    coords={"subject": np.arange(2), "time": t_ns})
    ds.attrs.update(scenario_name="synthetic", dose_times_min=[float(x) * 1440.0 for x in np.arange(0.5, 20.01, 0.5)])
    return ds


def test_craving_figure_draws_both_cravings_and_glt1_as_percent_of_naive():
    fig = craving_figure(_ds())
    assert fig is not None
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles == ["Craving", "Glutamate transport in the nucleus accumbens (GLT-1)"]
    labels = {str(line.get_label()) for line in fig.axes[0].get_lines()}
    assert {"background craving", "craving a drug cue would provoke"} <= labels
    glt = next(line for line in fig.axes[1].get_lines() if line.get_label() == "GLT-1")
    y = np.asarray(glt.get_ydata(), dtype=float)
    assert y[0] == 100.0 and abs(y[-1] - 70.0) < 1e-9  # 1 - 0.3, as a percentage


def test_craving_figure_absent_without_its_readouts_or_for_short_runs():
    assert craving_figure(_ds(("glt1",), days=1.0)) is None
    only = craving_figure(_ds(("glt1",)))
    assert only is not None and [ax.get_title(loc="left") for ax in only.axes] == [
        "Glutamate transport in the nucleus accumbens (GLT-1)"]


def test_report_has_the_craving_section():
    text = render_report(_ds())
    assert "<h2>Craving</h2>" in text and 'alt="craving over time' in text
