"""The brain panels of the report (grey matter, cognition) and the effect-size figure of a synthetic
imaging study, from datasets and tables whose values are set here (no simulation)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from opioidsim.readouts import READOUTS
from opioidsim.report import render_report
from opioidsim.report.figures import (
    GREY_MATTER_READOUTS,
    REGION_LABELS,
    choose_brain_axis,
    cognition_figure,
    effect_size_figure,
    grey_matter_figure,
)

GMV = [n for n in GREY_MATTER_READOUTS if n.startswith("gmv_")]
COGNITION = ["executive", "memory", "attention", "pfc_control"]


def _ds(names, days=120.0, loss=0.05, step=1.0):
    """Use for the first half of the run, abstinence after: every readout falls linearly by `loss`
    (weighted per readout) and recovers half of it."""
    d = np.arange(0.0, days + step / 2, step)
    half = days / 2
    shape = np.where(d <= half, d / half, 1.0 - 0.5 * (d - half) / half)
    t_ns = (d * 86400e9).round().astype("timedelta64[ns]")
    data = {}
    for k, name in enumerate(names):
        line = 1.0 - loss * (1.0 - 0.1 * k) * shape
        data[name] = (("subject", "time"), np.stack([line, line - 0.002]),
                      {"units": READOUTS[name].units, "long_name": READOUTS[name].long_name})
    ds = xr.Dataset(data, coords={"subject": np.arange(2), "time": t_ns})
    ds.attrs.update(scenario_name="synthetic", dose_times_min=[float(x) * 1440.0 for x in np.arange(0.0, half, 1.0)])
    return ds


def _line(ax, label):
    return next(line for line in ax.get_lines() if line.get_label() == label)


def test_region_labels_cover_the_model_regions():
    from opioidsim.model.structure import REGIONS

    assert set(REGION_LABELS) == set(REGIONS)
    assert set(GMV) == {f"gmv_{r}" for r in REGIONS}


def test_grey_matter_panel_draws_each_region_as_percent_of_baseline():
    ds = _ds([*GMV, "white_matter"])
    fig = grey_matter_figure(ds, dose_times_min=ds.attrs["dose_times_min"])
    assert fig is not None
    (ax,) = fig.axes
    assert ax.get_title(loc="left") == "Grey matter by region"
    labels = {str(line.get_label()) for line in ax.get_lines()}
    assert set(REGION_LABELS.values()) | {"white matter (FA)", "last dose"} <= labels
    pfc = np.asarray(_line(ax, "prefrontal cortex").get_ydata(), float)
    # median of the two subjects (1 and 0.998 at the start), in %
    assert pfc[0] == pytest.approx(99.9) and pfc.min() == pytest.approx(94.9)
    assert pfc[-1] == pytest.approx(97.4)  # half the loss recovered
    assert ax.get_ylim()[0] <= 90.0  # a floor, so a small loss is not drawn as a large one
    assert _line(ax, "last dose").get_xdata()[0] == pytest.approx(59.0)  # days


def test_grey_matter_panel_needs_its_readouts_a_long_run_and_change():
    assert grey_matter_figure(_ds(COGNITION)) is None  # no gmv readouts
    assert grey_matter_figure(_ds(["white_matter"])) is None  # white matter alone is not the panel
    assert grey_matter_figure(_ds(GMV, days=1.0, step=0.1)) is None  # shorter than two days
    assert grey_matter_figure(_ds(GMV, loss=0.0)) is None  # nothing changes: flat lines at 100 %
    assert grey_matter_figure(_ds(GMV, loss=5e-4)) is None  # below the 0.1 % rule
    assert grey_matter_figure(_ds(GMV, loss=5e-3)) is not None
    assert grey_matter_figure(_ds(["gmv_nac"])) is not None  # one region is enough


def test_cognition_panel_draws_the_domains_and_pfc_control_dashed():
    fig = cognition_figure(_ds(COGNITION, loss=0.2))
    assert fig is not None
    (ax,) = fig.axes
    assert ax.get_title(loc="left") == "Cognition"
    for label in ("executive function", "working memory"):
        assert _line(ax, label).get_linestyle() == "-"
    assert _line(ax, "attention").get_linestyle() == "--"  # lies close to memory
    assert _line(ax, "PFC control of choice").get_linestyle() == "--"
    assert _line(ax, "PFC control of choice").get_color() != _line(ax, "attention").get_color()
    y = np.asarray(_line(ax, "executive function").get_ydata(), float)
    assert y[0] == pytest.approx(99.9) and y.min() == pytest.approx(79.9)
    assert cognition_figure(_ds(COGNITION, loss=0.0)) is None
    assert cognition_figure(_ds(GMV)) is None


def test_cognition_panel_draws_working_memory_by_domain_where_recorded():
    fig = cognition_figure(_ds(["executive", "memory", "memory_verbal", "memory_spatial"], loss=0.2))
    (ax,) = fig.axes
    labels = {str(line.get_label()) for line in ax.get_lines()}
    assert {"verbal working memory", "spatial working memory"} <= labels
    assert "working memory" not in labels  # their mean would hide which domain falls
    assert _line(ax, "spatial working memory").get_linestyle() == "--"  # may lie on the verbal line


def test_brain_axis_counts_years_for_a_life_course():
    assert choose_brain_axis(10 * 365.25 * 1440.0).unit == "years"
    assert choose_brain_axis(60 * 1440.0).unit == "days"
    fig = grey_matter_figure(_ds(GMV, days=3650.0, step=30.0, loss=0.1))
    assert fig is not None and "years" in fig.axes[0].get_xlabel()


def test_report_has_the_brain_sections_only_when_they_change():
    text = render_report(_ds([*GMV, "white_matter", *COGNITION]))
    assert "<h2>Grey matter</h2>" in text and "<h2>Cognition</h2>" in text
    assert "Other recorded readouts" not in text  # drawn above, not repeated in the grid
    flat = render_report(_ds([*GMV, *COGNITION], loss=0.0))
    assert "<h2>Grey matter</h2>" not in flat and "<h2>Cognition</h2>" not in flat
    assert "Other recorded readouts" in flat  # still shown, as flat lines in the grid


def _table():
    g = np.array([-0.74, -0.82, 0.30, -0.05])
    return pd.DataFrame({"measure": ["vbm_pfc", "vbm_acc", "vbm_temporal", "fmri_cue_nac"], "hedges_g": g,
                         "g_ci_low": g - 0.2, "g_ci_high": g + 0.2, "t": g * 8.0, "p": [1e-6, 1e-7, 0.01, 0.6],
                         "n_users": 240, "n_controls": 120})


def test_effect_size_figure_has_one_bar_per_region_with_the_sign_of_g():
    table = _table()
    fig = effect_size_figure(table)
    (ax,) = fig.axes
    bars = ax.patches
    assert len(bars) == len(table)
    widths = np.array([b.get_width() for b in bars])
    np.testing.assert_allclose(widths, table["hedges_g"])
    negative = {b.get_facecolor() for b, w in zip(bars, widths) if w < 0}
    positive = {b.get_facecolor() for b, w in zip(bars, widths) if w > 0}
    assert len(negative) == 1 and len(positive) == 1 and negative != positive
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks == ["prefrontal cortex", "anterior cingulate", "temporal cortex", "fmri_cue_nac"]
    texts = [t.get_text() for t in ax.texts]
    assert any("g = -0.74" in t and "p = 1e-06" in t for t in texts)
    assert "240 users vs 120 controls" in ax.get_title(loc="left")
    lo, hi = ax.get_xlim()
    assert lo < -1.02 and hi > 0.5  # the whiskers fit


def test_effect_size_figure_groups_a_longitudinal_table_and_rejects_others():
    rows = [{"abstinent_days": d, "measure": m, "hedges_g": g0 * f}
            for d, f in ((7, 1.0), (180, 0.6), (365, 0.5)) for m, g0 in (("vbm_pfc", -0.8), ("vbm_nac", -0.3))]
    fig = effect_size_figure(pd.DataFrame(rows))
    (ax,) = fig.axes
    assert len(ax.patches) == 6
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "day 7 of abstinence", "day 180 of abstinence", "day 365 of abstinence"]
    with pytest.raises(ValueError, match="hedges_g"):
        effect_size_figure(pd.DataFrame({"measure": ["vbm_pfc"], "r": [-0.2]}))


def test_study_tables_carry_the_confidence_interval_of_g():
    from opioidsim import imaging

    assert imaging.hedges_g_ci(0.0, 50, 50) == pytest.approx((-0.392, 0.392), abs=1e-3)  # SE = 0.2
    lo, hi = imaging.hedges_g_ci(-0.8, 30, 34)
    assert lo < -0.8 < hi and hi - (-0.8) > (-0.8) - lo - 1e-12  # symmetric
    rng = np.random.default_rng(0)
    row = imaging.compare_groups({"x": rng.normal(-1, 1, 40)}, {"x": rng.normal(0, 1, 40)}).iloc[0]
    assert row["g_ci_low"] < row["hedges_g"] < row["g_ci_high"] < 0.0
    fig = imaging.StudyResult(imaging.compare_groups({"x": [1.0, 2.0, 3.0]}, {"x": [3.0, 4.0, 5.0]}),
                              pd.DataFrame(), pd.DataFrame(), pd.DataFrame()).figure()
    assert [b.get_width() for b in fig.axes[0].patches] == pytest.approx([-1.6])


def test_life_course_records_become_a_dataset_the_panel_draws():
    from opioidsim import imaging

    t = np.arange(0.0, 3650.0 + 1, 30.0)
    shape = np.where(t < 3000, t / 3000, 1.0)
    recs = np.stack([np.stack([1.0 - 0.08 * shape, 1.0 - 0.05 * shape], axis=-1)] * 3)
    da = xr.DataArray(recs, dims=("subject", "time_days", "measure"),
                      coords={"subject": [0, 1, 2], "time_days": t, "measure": ["gmv_pfc", "white_matter"]})
    ds = imaging.life_course_dataset(da)
    assert ds["gmv_pfc"].dims == ("subject", "time") and ds["gmv_pfc"].attrs["units"] == READOUTS["gmv_pfc"].units
    assert float(ds["time"][-1] / np.timedelta64(1, "D")) == pytest.approx(3630.0)
    fig = grey_matter_figure(ds)
    assert fig is not None
    y = np.asarray(_line(fig.axes[0], "prefrontal cortex").get_ydata(), float)
    assert y[-1] == pytest.approx(92.0)


def test_study_report_prints_the_hand_worked_effect_and_writes_its_tables(tmp_path):
    # users 1,2,3 vs controls 3,4,5: pooled SD 1, g = −2 × (1 − 3/15) = −1.6; Welch t = −2/sqrt(2/3), df 4
    from opioidsim import imaging

    users, controls = {"vbm_pfc": [1.0, 2.0, 3.0]}, {"vbm_pfc": [3.0, 4.0, 5.0]}
    study = imaging.StudyResult(imaging.compare_groups(users, controls),
                                imaging.correlate(users, np.array([1.0, 2.0, 3.0])),
                                pd.DataFrame({"years_of_use": [1.0, 2.0, 3.0], **users}), pd.DataFrame(controls))
    paths = study.report(tmp_path / "study")
    page = paths["html"].read_text()
    assert "-1.60 [" in page and "Welch" in page and "research and teaching tool" in page
    assert f"{-2.0 / np.sqrt(2.0 / 3.0):.2f} (4.0)" in page
    assert "1–3 years of use" in page and "3 drug-free controls" in page
    assert "<td>1.00</td>" in page  # r = 1 with years of use: the users' values rise one per year
    effects = pd.read_csv(paths["effects"])
    assert effects["hedges_g"].iloc[0] == pytest.approx(-1.6)
    subjects = pd.read_csv(paths["subjects"])
    assert list(subjects["group"]) == ["user"] * 3 + ["control"] * 3
    assert sorted(p.name for p in (tmp_path / "study").iterdir()) == [
        "correlation.csv", "effects.csv", "report.html", "subjects.csv"]  # no temporary files left


def test_study_report_of_a_longitudinal_table_shows_the_paired_change(tmp_path):
    from opioidsim.report.study import write_study_report

    rows = [{"abstinent_days": d, "measure": "vbm_pfc", "mean_users": m, "change_from_first": m + 5.0,
             "t_paired": t, "p_paired": p, "hedges_g": g, "g_ci_low": g - 0.3, "g_ci_high": g + 0.3,
             "n_users": 20, "n_controls": 40}
            for d, m, t, p, g in ((7, -5.0, np.nan, np.nan, -0.9), (365, -3.0, 4.2, 0.0004, -0.5))]
    page = write_study_report(tmp_path, pd.DataFrame(rows), title="Across abstinence")["html"].read_text()
    assert "paired t" in page and "&lt; 0.001" in page and "2.000" in page  # change from day 7 to day 365
    assert "Welch t" not in page and "Correlation within users" not in page
