"""Life-course tables, figure and HTML report on a hand-built result whose numbers are known.

The fake cohort: 3 subjects × 30 days, periods community (days 0-9), forced abstinence (10-19),
community (20-29).

- subject 0: uses on days 0, 2, 4, 6, 8 (3 uses each) and every day 20-29 (1 use each).
- subject 1: uses every day 0-9 (1 use each), survives an overdose on day 3, uses on days 20 and
  21, overdoses and dies on day 24 (alive at the end of day 23, not at the end of day 24).
- subject 2: no use in the first period, one use on day 25; in treatment on days 20-29.

Expected values below are worked out by hand from that description, not from the code.
"""
from __future__ import annotations

import html

import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")

from opioidsim.behavior.course_report import (  # noqa: E402
    is_life_result,
    life_figure,
    life_summary_table,
    write_life_report,
)
from opioidsim.report.html import RESEARCH_NOTICE  # noqa: E402

N_SUB, N_DAYS = 3, 30
PY = 365.25


def fake_life(optional: bool = True, n_days: int = N_DAYS, day0: int = 0) -> xr.Dataset:
    uses = np.zeros((N_SUB, n_days))
    uses[0, [0, 2, 4, 6, 8]] = 3
    uses[0, 20:30] = 1
    uses[1, 0:10] = 1
    uses[1, [20, 21]] = 1
    uses[2, 25] = 1
    overdose = np.zeros((N_SUB, n_days))
    overdose[1, 3] = 1
    overdose[1, 24] = 1
    alive = np.ones((N_SUB, n_days))
    alive[1, 24:] = 0
    in_treatment = np.zeros((N_SUB, n_days))
    in_treatment[2, 20:30] = 1
    rng = np.random.default_rng(0)
    period = np.zeros(n_days, dtype=int)
    period[10:20] = 1
    period[20:] = 2
    dv = {
        "use_event": (uses > 0).astype(float), "uses": uses, "overdose": overdose,
        "naloxone_given": overdose.copy(), "alive": alive,
        "attended": in_treatment.copy(), "medication_mg": 60.0 * in_treatment,
        "urine": np.full((N_SUB, n_days), np.nan),
        "craving": rng.uniform(0, 10, (N_SUB, n_days)),
        "drug_value": rng.uniform(0, 1, (N_SUB, n_days)),
    }
    if optional:
        dv.update({
            "in_treatment": in_treatment,
            "dose_multiplier": 1.0 + np.cumsum(uses, axis=1) / 10.0,
            "tolerance": 1.0 + np.cumsum(uses, axis=1) / 20.0,
            "cows": rng.uniform(0, 48, (N_SUB, n_days)),
            "spo2": np.full((N_SUB, n_days), 97.0),
        })
        # physiology after death is garbage in a real run too: the report must ignore it
        dv["cows"][1, 24:] = np.nan
    data = {k: (("subject", "day"), v) for k, v in dv.items()}
    data.update({"overdose_events": ("subject", overdose.sum(1)), "alive_at_end": ("subject", alive[:, -1]),
                 "days_abstinent": ("subject", np.zeros(N_SUB)), "relapse": ("subject", np.array([1.0, 1, 0])),
                 "retained": ("subject", in_treatment[:, -1])})
    ds = xr.Dataset(data, coords={"subject": np.arange(N_SUB), "day": np.arange(n_days) + day0,
                                  "period": ("day", period), "depressed": ("subject", [0, 1, 0]),
                                  "ptsd": ("subject", [0, 0, 1]), "weight_kg": ("subject", [70.0, 80.0, 60.0])})
    ds.attrs.update({"periods": "community,forced_abstinence,community", "scenario_name": "fake life <test>",
                     "research_notice": RESEARCH_NOTICE,
                     "scenario_toml": 'name = "fake"\n[life]\nnote = "a < b & c"\n'})
    return ds


def test_is_life_result():
    ds = fake_life()
    assert is_life_result(ds)
    assert not is_life_result(ds.drop_vars("use_event"))
    no_periods = ds.copy()
    del no_periods.attrs["periods"]
    assert not is_life_result(no_periods)
    assert not is_life_result(xr.Dataset({"use_event": ("session", [1.0])}, attrs={"periods": "community"}))


def test_table_rows_and_periods():
    t = life_summary_table(fake_life())
    assert list(t["period"]) == [1, 2, 3, "all"]
    assert list(t["kind"]) == ["community", "forced_abstinence", "community", "whole course"]
    assert list(t["start_day"]) == [0, 10, 20, 0]
    assert list(t["days"]) == [10, 10, 10, 30]
    assert list(t["alive_at_start"]) == [3, 3, 3, 3]


def test_table_use_share_by_hand():
    t = life_summary_table(fake_life()).set_index("period")
    # period 1: shares 5/10, 10/10, 0/10 -> sorted 0, .5, 1: median .5, q25 .25, q75 .75
    assert t.loc[1, "use_day_share_median"] == pytest.approx(0.5)
    assert t.loc[1, "use_day_share_q25"] == pytest.approx(0.25)
    assert t.loc[1, "use_day_share_q75"] == pytest.approx(0.75)
    # uses per day alive: 15/10, 10/10, 0/10 -> median 1.0
    assert t.loc[1, "uses_per_day_median"] == pytest.approx(1.0)
    # forced abstinence: nobody uses
    for c in ("use_day_share_median", "use_day_share_q25", "use_day_share_q75", "uses_per_day_median",
              "overdoses", "deaths"):
        assert t.loc[2, c] == 0
    # period 3: subject 1 alive on days 20-24 (5 days, the day of death counts), used on 2 of them;
    # shares 10/10, 2/5, 1/10 -> sorted .1, .4, 1: median .4, q25 .25, q75 .7
    assert t.loc[3, "use_day_share_median"] == pytest.approx(0.4)
    assert t.loc[3, "use_day_share_q25"] == pytest.approx(0.25)
    assert t.loc[3, "use_day_share_q75"] == pytest.approx(0.7)
    # whole course: subject 0 15/30 days, subject 1 12/25, subject 2 1/30 -> median 12/25
    assert t.loc["all", "use_day_share_median"] == pytest.approx(12 / 25)


def test_table_overdoses_deaths_and_rates_by_hand():
    t = life_summary_table(fake_life()).set_index("period")
    py = {1: 30 / PY, 2: 30 / PY, 3: 25 / PY, "all": 85 / PY}
    for p, v in py.items():
        assert t.loc[p, "person_years"] == pytest.approx(v)
    assert list(t["overdoses"]) == [1, 0, 1, 2]
    assert list(t["deaths"]) == [0, 0, 1, 1]
    assert t.loc[1, "overdoses_per_100py"] == pytest.approx(100 * 1 / (30 / PY))   # ≈ 1217.5
    assert t.loc[3, "overdoses_per_100py"] == pytest.approx(100 * 1 / (25 / PY))   # ≈ 1461
    assert t.loc["all", "overdoses_per_100py"] == pytest.approx(100 * 2 / (85 / PY))
    assert t.loc[1, "deaths_per_1000py"] == 0
    assert t.loc[3, "deaths_per_1000py"] == pytest.approx(1000 * 1 / (25 / PY))
    assert t.loc["all", "deaths_per_1000py"] == pytest.approx(1000 * 1 / (85 / PY))
    # in treatment: subject 2 on its 10 days of period 3, out of 25 subject-days alive
    assert t.loc[1, "in_treatment_share"] == 0
    assert t.loc[3, "in_treatment_share"] == pytest.approx(10 / 25)
    assert t.loc["all", "in_treatment_share"] == pytest.approx(10 / 85)


def test_death_on_first_day_of_period_belongs_to_that_period():
    ds = fake_life()
    alive = ds.alive.values.copy()
    alive[1] = 1
    alive[1, 10:] = 0   # alive at the end of day 9, dead at the end of day 10
    ds["alive"] = (("subject", "day"), alive)
    t = life_summary_table(ds)
    assert list(t["deaths"]) == [0, 1, 0, 1]
    assert list(t["alive_at_start"]) == [3, 3, 2, 3]
    # period 2: subject 1 alive on day 10 only -> 10 + 1 + 10 subject-days
    assert t["person_years"][1] == pytest.approx(21 / PY)


def test_missing_variables_give_nan_and_offset_days():
    ds = fake_life(optional=False, day0=-5).drop_vars(["overdose", "alive"])
    t = life_summary_table(ds)
    assert list(t["start_day"]) == [-5, 5, 15, -5]
    for c in ("in_treatment_share", "overdoses", "overdoses_per_100py", "deaths", "deaths_per_1000py"):
        assert t[c].isna().all(), c
    # without `alive` everyone counts as alive every day
    assert t["person_years"].iloc[-1] == pytest.approx(90 / PY)


def _panel_titles(fig) -> list[str]:
    return [tx.get_text() for ax in fig.axes for tx in ax.texts if tx.get_text().startswith("(")]


def test_figure_with_all_panels():
    import matplotlib.pyplot as plt

    fig = life_figure(fake_life())
    titles = _panel_titles(fig)
    assert [s[:3] for s in titles] == ["(a)", "(b)", "(c)", "(d)", "(e)"]
    labels = {tx.get_text() for tx in fig.axes[0].texts}
    assert {"community", "forced abstinence"} <= labels
    assert fig.axes[0].get_xlabel() == "" and any(ax.get_xlabel() == "day" for ax in fig.axes)
    plt.close(fig)


def test_figure_without_optional_variables():
    import matplotlib.pyplot as plt

    ds = fake_life(optional=False).drop_vars("craving")
    fig = life_figure(ds)
    titles = _panel_titles(fig)
    assert len(titles) == 2 and "used" in titles[0] and "overdoses" in titles[1]
    plt.close(fig)


def test_figure_in_years_for_long_course():
    import matplotlib.pyplot as plt

    ds = fake_life(n_days=800 + 30)   # periods 10 / 10 / 810 days
    ds.attrs["periods"] = "community,treatment,community"
    fig = life_figure(ds)
    assert any(ax.get_xlabel() == "years" for ax in fig.axes)
    # the 10-day periods are too narrow to name above the plot: their shade is named in the legend
    assert "treatment" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)


def test_write_life_report(tmp_path):
    ds = fake_life()
    out = tmp_path / "life.html"
    write_life_report(ds, out)
    text = out.read_text(encoding="utf-8")
    assert html.escape(RESEARCH_NOTICE) in text
    for kind in ("community", "forced_abstinence", "whole course"):
        assert kind in text
    assert "data:image/png;base64," in text
    assert html.escape("fake life <test>") in text and "<test>" not in text
    assert html.escape('note = "a < b & c"') in text
    assert [p.name for p in tmp_path.iterdir()] == ["life.html"]   # no temporary file left
    # an explicit TOML replaces the attr; overwriting works
    write_life_report(ds, str(out), scenario_toml="name = 'other'")
    text = out.read_text(encoding="utf-8")
    assert html.escape("name = 'other'") in text and "a &lt; b" not in text
