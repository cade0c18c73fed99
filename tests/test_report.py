"""Tests for opioidsim.report: summary statistics, figures and the standalone HTML report.

The datasets are synthetic, built here with curves whose peaks, nadirs and times are known by
construction (Gaussian bumps on a grid that contains the peak times), so the expected numbers
come from the construction, not from the code under test.
"""
from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from opioidsim.readouts import READOUTS
from opioidsim.report import (
    RESEARCH_NOTICE,
    render_report,
    summary_table,
    write_report,
    write_summary_csv,
)
from opioidsim.report.figures import cascade_figure, choose_time_axis
from opioidsim.report.summary import ever_fraction, nan_quantiles

STEP_MIN = 0.5
SIGMA_MIN = 4.0
TOML = """[scenario]
name = "synthetic-test"
description = "synthetic <b>bump</b> curves"
duration = "2h"
record_every = "30s"

[cohort]
subjects = 30
seed = 7
"""


def _bump(t: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Unit-height Gaussian per subject: (subjects, time), exactly 1 at ``centre``."""
    return np.exp(-((t[None, :] - centre[:, None]) ** 2) / (2 * SIGMA_MIN**2))


def make_ds(n_subjects: int = 30, duration_min: float = 120.0,
            names: tuple[str, ...] | None = None, attrs: bool = True) -> xr.Dataset:
    """A cohort with known extremes.

    nac_dopamine = 5 + A_i·bump(t − (20 + i)),  A_i = linspace(5, 15): peaks 10..20 at 20+i min.
    spo2 = 97 − D_i·bump(t − 60),  D_i = linspace(20, 40): nadirs 77..57 at 60 min.
    ventilation = 6 − 4·bump(t − 45): nadir 2 L/min at 45 min.
    pain = 5 − 3·bump(t − 30); mor_occupancy_vta = 0.8·bump(t − 25);
    plasma_heroin = 1000·bump(t − 10) and plasma_morphine = 2·bump(t − 40) (peaks 500× apart);
    overdose = 1 for the first third of subjects around 60 min, else 0.
    With one subject: A = 10 (dopamine peak 15 at 30 min) and D = 30 (SpO2 nadir 67).
    """
    t = np.arange(0.0, duration_min + STEP_MIN / 2, STEP_MIN)
    idx = np.arange(n_subjects)
    if n_subjects == 1:
        amp, dip, t_da = np.array([10.0]), np.array([30.0]), np.array([30.0])
    else:
        amp = np.linspace(5.0, 15.0, n_subjects)
        dip = np.linspace(20.0, 40.0, n_subjects)
        t_da = 20.0 + idx
    ones = np.ones(n_subjects)
    data = {
        "nac_dopamine": 5.0 + amp[:, None] * _bump(t, t_da),
        "spo2": 97.0 - dip[:, None] * _bump(t, 60.0 * ones),
        "ventilation": 6.0 - 4.0 * _bump(t, 45.0 * ones),
        "pain": 5.0 - 3.0 * _bump(t, 30.0 * ones),
        "mor_occupancy_vta": 0.8 * _bump(t, 25.0 * ones),
        "hedonic_state": 6.0 * _bump(t, 28.0 * ones),
        "plasma_heroin": 1000.0 * _bump(t, 10.0 * ones),
        "plasma_morphine": 2.0 * _bump(t, 40.0 * ones),
        "paco2": 40.0 + 15.0 * _bump(t, 62.0 * ones),
        "overdose": ((idx[:, None] < n_subjects / 3) & (np.abs(t[None, :] - 60.0) < 5.0))
        .astype(float),
    }
    if names is not None:
        data = {k: v for k, v in data.items() if k in names}
    ds = xr.Dataset(
        {k: (("subject", "time"), v, {"units": READOUTS[k].units,
                                      "long_name": READOUTS[k].long_name})
         for k, v in data.items()},
        coords={"subject": idx,
                "time": (t * 60e9).round().astype("timedelta64[ns]")},
    )
    if attrs:
        ds.attrs.update(scenario_name="synthetic-test", opioidsim_version="0.1.0-test",
                        seed=7, scenario_toml=TOML, description="synthetic bump curves",
                        dose_times_min=[10.0, 40.0])
    return ds


def _row(table: pd.DataFrame, name: str) -> pd.Series:
    return table.set_index("readout").loc[name]


# ------------------------------------------------------------------------------------------
# statistics


def test_nan_quantiles_matches_numpy_and_ignores_nan() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(37, 50))
    a[rng.random(a.shape) < 0.2] = np.nan
    a[:, 3] = np.nan  # an all-NaN column gives NaN, not an error
    qs = [0.1, 0.5, 0.9]
    ours = nan_quantiles(a, qs, axis=0)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        ref = np.nanquantile(a, qs, axis=0)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, equal_nan=True)
    assert np.all(np.isnan(ours[:, 3]))
    # the fast path (no NaN) is numpy's own
    b = rng.normal(size=(11, 4))
    np.testing.assert_allclose(nan_quantiles(b, 0.3, axis=0), np.quantile(b, [0.3], axis=0))


def test_summary_finds_known_peak_spread_and_time() -> None:
    table = summary_table(make_ds(30))
    da = _row(table, "nac_dopamine")
    assert da["kind"] == "max"
    assert da["units"] == "nM"
    # peaks are 5 + linspace(5, 15, 30) = linspace(10, 20, 30); with 30 evenly spaced values
    # the median is 15, and the linear 10 %/90 % quantiles sit at positions 2.9 and 26.1 of
    # 29 steps of 10/29: exactly 11 and 19.
    assert da["peak_median"] == pytest.approx(15.0, abs=1e-9)
    assert da["peak_p10"] == pytest.approx(11.0, abs=1e-9)
    assert da["peak_p90"] == pytest.approx(19.0, abs=1e-9)
    # peak times are 20 + i for i = 0..29: median 34.5 min
    assert da["time_of_peak_median_min"] == pytest.approx(34.5, abs=1e-9)
    assert da["baseline_median"] == pytest.approx(5.0, abs=0.01)
    assert da["final_median"] == pytest.approx(5.0, abs=1e-6)


def test_summary_uses_minimum_for_readouts_opioids_lower_and_max_otherwise() -> None:
    table = summary_table(make_ds(30))
    spo2 = _row(table, "spo2")
    assert spo2["kind"] == "min"
    # nadirs are 97 - linspace(20, 40, 30): median 97 - 30 = 67, all at 60 min
    assert spo2["peak_median"] == pytest.approx(67.0, abs=1e-9)
    assert spo2["peak_p10"] < spo2["peak_median"] < spo2["peak_p90"]
    assert spo2["time_of_peak_median_min"] == pytest.approx(60.0)
    assert spo2["baseline_median"] == pytest.approx(97.0, abs=1e-6)
    vent = _row(table, "ventilation")
    assert vent["kind"] == "min"
    assert vent["peak_median"] == pytest.approx(2.0, abs=1e-9)
    assert vent["time_of_peak_median_min"] == pytest.approx(45.0)
    # pain is relieved by opioids: its nadir 5 − 3 = 2 at 30 min is the figure of interest
    pain = _row(table, "pain")
    assert pain["kind"] == "min"
    assert pain["peak_median"] == pytest.approx(2.0, abs=1e-6)
    assert pain["time_of_peak_median_min"] == pytest.approx(30.0)
    assert _row(table, "nac_dopamine")["kind"] == "max"


def test_summary_columns_and_csv_round_trip(tmp_path: Path) -> None:
    ds = make_ds(30)
    table = summary_table(ds)
    assert list(table.columns) == ["readout", "units", "kind", "baseline_median", "peak_median",
                                   "peak_p10", "peak_p90", "time_of_peak_median_min",
                                   "final_median"]
    # one row per readout present, in contract order
    assert list(table["readout"]) == [n for n in READOUTS if n in ds.data_vars]
    path = tmp_path / "summary.csv"
    write_summary_csv(ds, path)
    back = pd.read_csv(path)
    assert list(back.columns) == list(table.columns)
    assert _row(back, "nac_dopamine")["peak_median"] == pytest.approx(15.0)
    assert _row(back, "spo2")["kind"] == "min"


def test_summary_single_subject_and_nan_subject() -> None:
    one = summary_table(make_ds(1))
    da = _row(one, "nac_dopamine")
    assert da["peak_median"] == pytest.approx(15.0)  # 5 + 10
    assert da["peak_p10"] == da["peak_p90"] == da["peak_median"]
    assert da["time_of_peak_median_min"] == pytest.approx(30.0)
    # a failed subject (all NaN) is ignored, not propagated
    ds = make_ds(30)
    ds["nac_dopamine"][0, :] = np.nan
    row = _row(summary_table(ds), "nac_dopamine")
    assert np.isfinite(row["peak_median"]) and np.isfinite(row["time_of_peak_median_min"])
    assert row["peak_median"] > 15.0  # the lowest-peaked subject dropped out


def test_overdose_fraction() -> None:
    assert ever_fraction(make_ds(30), "overdose") == pytest.approx(10 / 30)
    assert ever_fraction(make_ds(30, names=("spo2",)), "overdose") is None


# ------------------------------------------------------------------------------------------
# figures


def test_time_axis_unit_follows_duration() -> None:
    assert choose_time_axis(180.0).unit == "min"
    assert choose_time_axis(181.0).unit == "h"
    assert choose_time_axis(181.0).convert(120.0) == pytest.approx(2.0)


def test_cascade_panels_band_and_scale() -> None:
    fig = cascade_figure(make_ds(30), dose_times_min=[10.0])
    assert fig is not None
    axes = [ax for ax in fig.axes if ax.get_title(loc="left")]
    titles = [ax.get_title(loc="left") for ax in axes]
    assert titles[0] == "Drug in plasma" and titles[-1] == "Breathing"
    # heroin and morphine peaks differ 500-fold: log scale so morphine stays visible
    assert axes[0].get_yscale() == "log"
    # a cohort gets a shaded band (a PolyCollection from fill_between) on the dopamine panel
    da_ax = axes[titles.index("Dopamine in the nucleus accumbens")]
    assert any(type(c).__name__ in ("PolyCollection", "FillBetweenPolyCollection")
               for c in da_ax.collections)
    assert "dose" in [t.get_text() for t in axes[0].get_legend().get_texts()]
    # one subject: just the line, no band
    single = cascade_figure(make_ds(1, names=("nac_dopamine",)))
    assert single is not None
    (ax,) = single.axes
    assert not any("Poly" in type(c).__name__ for c in ax.collections)
    # nothing of the cascade recorded: no figure
    assert cascade_figure(make_ds(5, names=("paco2",))) is None


# ------------------------------------------------------------------------------------------
# HTML report

_EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
_PNG = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")


def _check_self_contained(text: str) -> None:
    assert "data:image/png;base64," in text
    assert not _EXTERNAL.search(text), "report refers to an external resource"
    assert "<script" not in text.lower()
    assert "<link" not in text.lower()
    for payload in _PNG.findall(text):
        assert base64.b64decode(payload).startswith(b"\x89PNG\r\n\x1a\n")


@pytest.fixture(scope="module")
def cohort_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_report(make_ds(30), path)
    assert path.exists() and path.stat().st_size > 10_000
    return path.read_text(encoding="utf-8")


def test_report_is_self_contained_and_tells_what_was_run(cohort_html: str) -> None:
    _check_self_contained(cohort_html)
    assert "synthetic-test" in cohort_html
    assert RESEARCH_NOTICE in cohort_html
    assert "not medical advice" in cohort_html and "never a dosing guide" in cohort_html
    assert "0.1.0-test" in cohort_html  # version
    assert "<th>seed</th><td>7</td>" in cohort_html
    assert "<th>subjects</th><td>30</td>" in cohort_html
    assert "120 min" in cohort_html  # duration (≤ 3 h: minutes)
    assert "10, 40" in cohort_html  # dose times
    # overdose headline: 10 of 30 subjects
    assert "10 of 30 subjects" in cohort_html
    # the scenario TOML appears, HTML-escaped, in a <pre> block
    assert "<pre>" in cohort_html and "&lt;b&gt;bump&lt;/b&gt;" in cohort_html
    assert "<b>bump</b>" not in cohort_html
    # key numbers: the known dopamine peak median and the spo2 nadir
    assert "nadir (min)" in cohort_html
    assert ">15.00<" in cohort_html and ">67.00<" in cohort_html
    assert "34.5 min" in cohort_html


def test_report_with_few_readouts_and_one_subject(tmp_path: Path) -> None:
    few = make_ds(1, names=("spo2", "pain"))
    path = tmp_path / "few.html"
    write_report(few, path)
    text = path.read_text(encoding="utf-8")
    _check_self_contained(text)
    assert "arterial oxygen saturation" in text and "perceived pain" in text
    assert "nac_dopamine" not in text
    assert "<th>subjects</th><td>1</td>" in text
    assert "One subject" in text


def test_report_without_cascade_or_readouts_or_attrs(tmp_path: Path) -> None:
    # only a non-cascade readout, no attrs at all: name and seed come from the TOML argument
    ds = make_ds(5, names=("paco2",), attrs=False)
    text = render_report(ds, TOML)
    assert "None of the cascade readouts" in text
    assert "synthetic-test" in text and "<th>seed</th><td>7</td>" in text
    assert "data:image/png;base64," in text  # paco2 still drawn in the other-readouts grid
    # no readouts and no scenario text: still a valid report
    empty = make_ds(3, names=(), attrs=False)
    path = tmp_path / "empty.html"
    write_report(empty, path)
    text = path.read_text(encoding="utf-8")
    assert "No readouts were recorded" in text
    assert RESEARCH_NOTICE in text and "unnamed scenario" in text


def test_report_after_netcdf_style_attrs_and_long_run() -> None:
    # After a NetCDF round trip list attrs come back as arrays; a single dose as a scalar.
    ds = make_ds(4, duration_min=600.0, names=("nac_dopamine", "ventilation"))
    ds.attrs["dose_times_min"] = np.float64(30.0)
    text = render_report(ds)
    _check_self_contained(text)
    assert "10 h" in text  # duration > 3 h: hours
    assert "<th>dose times (min)</th><td>30</td>" in text


def test_large_cohort_report_stays_small(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ds = make_ds(1000, names=("nac_dopamine", "spo2", "ventilation", "pain", "plasma_heroin"))
    for name in ds.data_vars:  # subject-level noise so the bands are not degenerate
        ds[name] = ds[name] * rng.lognormal(0.0, 0.05, size=(1000, 1))
    path = tmp_path / "big.html"
    write_report(ds, path)
    assert path.stat().st_size < 3_000_000
    _check_self_contained(path.read_text(encoding="utf-8"))
