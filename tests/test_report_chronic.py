"""Tests for the chronic panels of the report (tolerance, withdrawal, dopamine adaptation,
pleasure–pain balance) and the withdrawal / tolerance key numbers.

The datasets are synthetic and small (3 subjects, 30 days every 3 h): the peak COWS score, its
time, the lowest MOR capacities and the final % of baseline are fixed by construction, and the
expected numbers (the COWS band, 1 / capacity) are computed here, not by the code under test.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr

from opioidsim.readouts import READOUTS
from opioidsim.report import render_report
from opioidsim.report.figures import (
    balance_figure,
    dopamine_adaptation_figure,
    tolerance_figure,
    withdrawal_figure,
)
from opioidsim.report.summary import (
    cows_band,
    last_dose_before_washout,
    tolerance_fold_shifts,
    withdrawal_peak,
)

DAYS = 30.0
STEP_DAYS = 0.125  # 3 h: the COWS peak (day 22.5) and the last dose (day 20) lie on the grid
LAST_DOSE_DAY = 20.0
PEAK_DAY = 22.5
COWS_PEAKS = np.array([17.0, 19.0, 21.0])  # median 19
VTA_LOWEST = np.array([0.2, 0.25, 0.5])  # 1 / capacity: 5, 4, 2 -> median 4
DH_LOWEST = 0.5  # 2-fold
BS_LOWEST = 0.625  # 1.6-fold
D2_BASE = np.array([0.8, 1.0, 1.2])  # each subject's own baseline; falls by 20 %

HEADINGS = {
    "tolerance": "<h2>Tolerance</h2>",
    "withdrawal": "<h2>Withdrawal</h2>",
    "dopamine": "<h2>Dopamine adaptation</h2>",
    "balance": "<h2>Pleasure–pain balance</h2>",
}
ALTS = {
    "tolerance": 'alt="tolerance: fold shift',
    "withdrawal": 'alt="withdrawal course',
    "dopamine": 'alt="dopamine adaptation',
    "balance": 'alt="pleasure-pain balance',
}
PANEL_READOUTS = {
    "tolerance": ("mor_capacity_vta", "mor_capacity_dorsal_horn", "mor_capacity_brainstem"),
    "withdrawal": ("cows", "noradrenaline", "camp_lc"),
    "dopamine": ("d2_density", "da_stores", "pet_d2_bp"),
    "balance": ("hedonic_set_point", "opponent_process", "reward_threshold"),
}

# Wesson & Ling 2003, written out independently of the code under test.
_WESSON_LING = ((5, 12, "mild"), (13, 24, "moderate"), (25, 36, "moderately severe"),
                (37, 48, "severe"))


def _band_of(score: int) -> str:
    return next(name for lo, hi, name in _WESSON_LING if lo <= score <= hi)


def make_chronic_ds(names: tuple[str, ...] | None = None, *, days: float = DAYS,
                    step_days: float = STEP_DAYS, last_dose_day: float = LAST_DOSE_DAY
                    ) -> xr.Dataset:
    """3 subjects; use (doses every 12 h) until ``last_dose_day``, then abstinence.

    ramp = 0 → 1 linearly over the use period, then held at 1.
    cows_i = COWS_PEAKS_i · exp(−((d − 22.5)/1.5)²): peak 17/19/21 at day 22.5.
    mor_capacity_vta_i = 1 − (1 − VTA_LOWEST_i)·ramp (lowest 0.2/0.25/0.5), dorsal horn down
    to 0.5, brainstem to 0.625; d2_density_i = D2_BASE_i · (1 − 0.2·ramp): 80 % of baseline at
    the end.
    """
    d = np.arange(0.0, days + step_days / 2, step_days)
    ramp = np.clip(d / last_dose_day, 0.0, 1.0)[None, :]
    bump = np.exp(-(((d - PEAK_DAY) / 1.5) ** 2))[None, :]
    ones = np.ones((3, 1))
    data = {
        "mor_capacity_vta": 1.0 - (1.0 - VTA_LOWEST[:, None]) * ramp,
        "mor_capacity_dorsal_horn": 1.0 - (1.0 - DH_LOWEST) * ramp * ones,
        "mor_capacity_brainstem": 1.0 - (1.0 - BS_LOWEST) * ramp * ones,
        "cows": COWS_PEAKS[:, None] * bump,
        "noradrenaline": 1.0 + 0.8 * bump * ones,
        "camp_lc": 1.0 + 0.5 * bump * ones,
        "d2_density": D2_BASE[:, None] * (1.0 - 0.2 * ramp),
        "da_stores": 1.0 - 0.3 * ramp * ones,
        "pet_d2_bp": 2.5 * (1.0 - 0.15 * ramp) * ones,
        "hedonic_state": -3.0 * ramp * ones,
        "opponent_process": 3.0 * ramp * ones,
        "hedonic_set_point": -2.0 * ramp * ones,
        "reward_threshold": 100.0 + 30.0 * ramp * ones,
        "nac_dopamine": 5.0 + 0.0 * ramp * ones,
    }
    if names is not None:
        data = {k: v for k, v in data.items() if k in names}
    t_ns = (d * 86400e9).round().astype("timedelta64[ns]")
    ds = xr.Dataset(
        {k: (("subject", "time"), np.broadcast_to(v, (3, d.size)).copy(),
             {"units": READOUTS[k].units, "long_name": READOUTS[k].long_name})
         for k, v in data.items()},
        coords={"subject": np.arange(3), "time": t_ns},
    )
    doses = np.arange(0.5, last_dose_day + 1e-9, 0.5) * 1440.0  # last one at last_dose_day
    ds.attrs.update(scenario_name="synthetic-chronic", dose_times_min=[float(t) for t in doses])
    return ds


def _panels_in(text: str) -> set[str]:
    found = {k for k, h in HEADINGS.items() if h in text}
    # a heading never comes without its figure (alt text), nor the figure without its heading
    assert found == {k for k, a in ALTS.items() if a in text}
    return found


def _titles(fig) -> list[str]:  # type: ignore[no-untyped-def]
    return [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]


def _key_row(text: str, label_start: str) -> str:
    match = re.search(r"<tr><td>" + re.escape(label_start) + r".*?</tr>", text)
    assert match, f"no key-number row starting {label_start!r}"
    return match.group(0)


@pytest.fixture(scope="module")
def full_html() -> str:
    return render_report(make_chronic_ds())


# ------------------------------------------------------------------------------------------
# the HTML report


def test_all_four_chronic_panels_with_captions(full_html: str) -> None:
    assert _panels_in(full_html) == set(HEADINGS)
    # in story order, after the key numbers and before the grid of other readouts
    order = [full_html.index(HEADINGS[k]) for k in ("tolerance", "withdrawal", "dopamine",
                                                   "balance")]
    assert order == sorted(order)
    assert full_html.index("<h2>Key numbers</h2>") < order[0]
    assert "without receptor reserve" in full_html
    assert "Wesson &amp; Ling 2003" in full_html
    assert "Koob &amp; Le Moal 2001" in full_html
    assert "zoom in on the days after the last dose" in full_html


def test_panels_shown_only_with_their_readouts() -> None:
    # two renders cover every panel both present and absent: tolerance + dopamine readouts
    # only (the tolerance panel from a single readout), then withdrawal + balance only
    first = render_report(make_chronic_ds(("mor_capacity_vta", "d2_density", "da_stores",
                                           "pet_d2_bp")))
    assert _panels_in(first) == {"tolerance", "dopamine"}
    assert "Largest tolerance, euphoria (VTA)" in first
    assert "Largest tolerance, analgesia" not in first  # only regions recorded are listed
    assert "Peak withdrawal score" not in first  # no cows: no COWS key number
    second = render_report(make_chronic_ds(("camp_lc", "hedonic_set_point", "opponent_process",
                                            "reward_threshold")))
    assert _panels_in(second) == {"withdrawal", "balance"}
    assert "withdrawal and tolerance" not in second  # neither cows nor capacity recorded
    # without cows the withdrawal figure still draws the LC panel, and zooms after the last dose
    ds = make_chronic_ds(("noradrenaline",))
    fig = withdrawal_figure(ds, dose_times_min=ds.attrs["dose_times_min"])
    assert fig is not None
    assert _titles(fig) == ["Locus coeruleus: the withdrawal alarm",
                            "After the last dose: locus coeruleus"]
    for draw in (tolerance_figure, dopamine_adaptation_figure, balance_figure):
        assert draw(ds) is None


def test_short_acute_run_gets_no_chronic_panels() -> None:
    # chronic readouts present, but only 12 h recorded
    ds = make_chronic_ds(days=0.5, step_days=5 / 1440, last_dose_day=0.25)
    for draw in (tolerance_figure, withdrawal_figure, dopamine_adaptation_figure,
                 balance_figure):
        assert draw(ds, dose_times_min=ds.attrs["dose_times_min"]) is None
    # (one readout per panel keeps the grid of other readouts, and the test, small)
    text = render_report(ds[["mor_capacity_vta", "cows", "d2_density", "reward_threshold"]])
    assert _panels_in(text) == set()
    assert "data:image/png;base64," in text  # the rest of the report is still drawn
    assert "Peak withdrawal score" in text  # the key numbers do not depend on the duration


def test_key_numbers_peak_cows_band_and_time_after_last_dose(full_html: str) -> None:
    peak = int(np.median(COWS_PEAKS))
    assert peak == 19
    band = _band_of(peak)
    assert band == "moderate"
    for label in ("Peak withdrawal score (COWS, 0–48), whole run",
                  "Peak withdrawal score (COWS, 0–48) after the last dose"):
        row = _key_row(full_html, label)
        assert f">{peak:.1f} ({band}, 13–24)<" in row
        assert "17.4 – 20.6" in row  # 10–90 % of (17, 19, 21)
    # peak on day 22.5, last dose on day 20
    assert f"{PEAK_DAY:g} d from scenario start" in _key_row(full_html, "Peak withdrawal score")
    assert f"{PEAK_DAY - LAST_DOSE_DAY:g} d after the last dose" in row


def test_peak_after_the_last_dose_can_differ_from_the_whole_run() -> None:
    ds = make_chronic_ds(("cows",))
    # an earlier, higher spike on day 5 (e.g. a missed dose) while still using
    ds["cows"][:, 40] = 30.0
    whole = withdrawal_peak(ds)
    after = withdrawal_peak(ds, after_min=LAST_DOSE_DAY * 1440.0)
    assert whole is not None and after is not None
    assert whole.median == pytest.approx(30.0) and cows_band(whole.median) == _band_of(30)
    assert whole.time_median_min == pytest.approx(5.0 * 1440.0)
    assert after.median == pytest.approx(19.0)
    assert after.time_median_min == pytest.approx(PEAK_DAY * 1440.0)
    assert withdrawal_peak(ds, after_min=(DAYS + 1) * 1440.0) is None


def test_key_numbers_tolerance_fold_shift(full_html: str) -> None:
    # median lowest VTA capacity 0.25 -> 4-fold the dose for the same euphoria
    assert 1 / np.median(VTA_LOWEST) == pytest.approx(4.0)
    vta = _key_row(full_html, "Largest tolerance, euphoria (VTA)")
    assert ">4.0×<" in vta
    assert "2.4× – 4.8×" in vta  # 10–90 % of (2, 4, 5)
    assert ">2.0×<" in _key_row(full_html, "Largest tolerance, analgesia (dorsal horn)")
    assert ">1.6×<" in _key_row(full_html, "Largest tolerance, breathing (brainstem)")


def test_other_grid_does_not_repeat_withdrawal_readouts(full_html: str) -> None:
    assert "Readouts drawn unchanged in the panels above are not repeated." in full_html


# ------------------------------------------------------------------------------------------
# numbers and figures directly


def test_cows_band_edges() -> None:
    assert cows_band(0.0) == cows_band(4.4) == "no active withdrawal"
    for score in range(5, 49):
        assert cows_band(float(score)) == _band_of(score)
    assert cows_band(12.4) == "mild" and cows_band(12.6) == "moderate"  # nearest integer
    assert cows_band(float("nan")) == "–"


def test_withdrawal_and_tolerance_numbers() -> None:
    ds = make_chronic_ds()
    peak = withdrawal_peak(ds)
    assert peak is not None
    assert peak.median == pytest.approx(19.0)
    assert peak.time_median_min == pytest.approx(PEAK_DAY * 1440.0)
    shifts = tolerance_fold_shifts(ds)
    assert shifts["mor_capacity_vta"].median == pytest.approx(4.0)
    assert shifts["mor_capacity_vta"].time_median_min == pytest.approx(LAST_DOSE_DAY * 1440.0)
    assert shifts["mor_capacity_dorsal_horn"].median == pytest.approx(2.0)
    assert withdrawal_peak(make_chronic_ds(("d2_density",))) is None
    assert tolerance_fold_shifts(make_chronic_ds(("cows",))) == {}


def test_last_dose_needs_three_free_days() -> None:
    assert last_dose_before_washout([10.0, 20.0 * 1440], 30 * 1440) == 20.0 * 1440
    assert last_dose_before_washout([10.0, 28.0 * 1440], 30 * 1440) is None
    assert last_dose_before_washout([], 30 * 1440) is None


def test_withdrawal_zoom_after_last_dose() -> None:
    ds = make_chronic_ds()
    fig = withdrawal_figure(ds, dose_times_min=ds.attrs["dose_times_min"])
    assert fig is not None
    titles = _titles(fig)
    assert titles == ["Withdrawal severity (Clinical Opiate Withdrawal Scale)",
                      "Locus coeruleus: the withdrawal alarm",
                      "After the last dose: withdrawal severity",
                      "After the last dose: locus coeruleus"]
    whole, _, zoom, zoom_lc = fig.axes
    assert whole.get_xlim() == pytest.approx((0.0, DAYS))  # default: the whole scenario
    # from 1 day before the last dose to 21 days after, clipped at the end of the run (day 30)
    assert zoom.get_xlim() == pytest.approx((-1.0, DAYS - LAST_DOSE_DAY))
    assert zoom_lc.get_xlabel() == "days since the last dose"
    cows_line = next(line for line in zoom.get_lines() if line.get_label() == "COWS")
    x, y = cows_line.get_data()
    assert x[np.argmax(y)] == pytest.approx(PEAK_DAY - LAST_DOSE_DAY)
    assert np.max(y) == pytest.approx(19.0)
    # the four severity bands are shaded (axhspan patches) on both COWS panels
    assert len(whole.patches) == len(zoom.patches) == 4
    assert [p.get_y() for p in whole.patches] == pytest.approx([4.5, 12.5, 24.5, 36.5])
    # stopping 2 days before the end: no zoom
    late = make_chronic_ds(last_dose_day=28.0)
    fig = withdrawal_figure(late, dose_times_min=late.attrs["dose_times_min"])
    assert fig is not None
    assert not any(t.startswith("After the last dose") for t in _titles(fig))


def test_tolerance_and_dopamine_figures_show_derived_values() -> None:
    ds = make_chronic_ds()
    fig = tolerance_figure(ds)
    assert fig is not None
    (ax,) = fig.axes
    assert ax.get_ylabel() == "fold shift in equi-effective dose (≈ 1/capacity)"
    vta = next(line for line in ax.get_lines() if "VTA" in str(line.get_label()))
    assert np.max(vta.get_ydata()) == pytest.approx(4.0)  # median of 1/capacity
    fig = dopamine_adaptation_figure(ds)
    assert fig is not None
    (ax,) = fig.axes
    d2 = next(line for line in ax.get_lines() if line.get_label() == "D2 receptor density")
    y = np.asarray(d2.get_ydata())
    assert y[0] == pytest.approx(100.0) and y[-1] == pytest.approx(80.0)
    assert ax.get_xlabel().endswith("(days)")  # 30 days: days, not months


def test_balance_figure_and_months_axis_for_long_runs() -> None:
    ds = make_chronic_ds(days=200.0, step_days=2.0, last_dose_day=100.0)
    fig = balance_figure(ds, dose_times_min=ds.attrs["dose_times_min"])
    assert fig is not None
    assert _titles(fig) == ["Pleasure–pain balance", "Reward threshold (brain stimulation, ICSS)"]
    top = fig.axes[0]
    assert any(np.allclose(line.get_ydata(), 0.0) for line in top.get_lines())  # zero line
    assert {"felt state (a − b)", "opponent process (b)", "set point (no drug on board)"} <= {
        str(line.get_label()) for line in top.get_lines()}
    assert fig.axes[-1].get_xlabel().endswith("(months)")
    # only the reward threshold: one panel
    only = balance_figure(make_chronic_ds(("reward_threshold",)))
    assert only is not None and _titles(only) == ["Reward threshold (brain stimulation, ICSS)"]
