"""Tests for opioidsim.trial.stats and opioidsim.trial.report.

Reference numbers come from outside the code under test: the 2×2 formulas worked by hand here
and scipy.stats.contingency (relative_risk, odds_ratio kind="sample"), scipy's pooled t test,
samples built to have exact means and SDs, a Kaplan–Meier curve and a log-rank statistic worked
by hand on tiny data, the Freireich 6-MP leukaemia data (Gehan 1965) with its textbook KM and
log-rank numbers (Kleinbaum & Klein, Survival Analysis, ch. 2: chi² = 16.79), and a coverage
simulation of the RR interval. The trial Dataset is a fake built with numpy random data.
"""
from __future__ import annotations

import base64
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats
from scipy.stats import contingency

from opioidsim.report.html import RESEARCH_NOTICE
from opioidsim.trial.report import render_trial_report, trial_figure, write_trial_report
from opioidsim.trial.stats import (
    CONSORT_COLUMNS,
    OUTCOME_COLUMNS,
    PUBLISHED_COLUMNS,
    Estimate,
    cohens_d,
    consort_flow,
    consort_text,
    hedges_g,
    kaplan_meier,
    log_rank,
    odds_ratio,
    published_comparison,
    retention_time_event,
    risk_difference,
    risk_ratio,
    subgroup_outcomes,
    trial_outcomes,
)

Z95 = 1.959963984540054


# --------------------------------------------------------------------------- 2×2 measures


def test_risk_ratio_hand_formula_and_scipy():
    # 15/100 events treated vs 30/100 control: RR = 0.5, SE(ln RR) = sqrt(1/15 − 1/100 + 1/30 − 1/100)
    se = math.sqrt(1 / 15 - 1 / 100 + 1 / 30 - 1 / 100)
    assert se == pytest.approx(math.sqrt(0.08))
    est = risk_ratio(15, 100, 30, 100)
    assert isinstance(est, Estimate) and est.measure == "RR"
    assert est.value == pytest.approx(0.5)
    assert est.lower == pytest.approx(0.5 * math.exp(-Z95 * se))  # 0.2872
    assert est.upper == pytest.approx(0.5 * math.exp(Z95 * se))  # 0.8704
    assert (round(est.lower, 4), round(est.upper, 4)) == (0.2872, 0.8704)
    assert est.p_value == pytest.approx(2 * stats.norm.sf(abs(math.log(0.5)) / se))
    ref = contingency.relative_risk(15, 100, 30, 100)
    ci = ref.confidence_interval(0.95)
    assert est.value == pytest.approx(ref.relative_risk)
    assert (est.lower, est.upper) == pytest.approx((ci.low, ci.high))
    ci90 = ref.confidence_interval(0.90)
    est90 = risk_ratio(15, 100, 30, 100, level=0.90)
    assert (est90.lower, est90.upper) == pytest.approx((ci90.low, ci90.high))


def test_odds_ratio_woolf_hand_formula_and_scipy():
    # a, b, c, d = 15, 85, 30, 70: OR = 15·70 / (85·30)
    est = odds_ratio(15, 100, 30, 100)
    se = math.sqrt(1 / 15 + 1 / 85 + 1 / 30 + 1 / 70)
    assert est.value == pytest.approx(1050 / 2550)
    assert est.lower == pytest.approx(1050 / 2550 * math.exp(-Z95 * se))
    assert est.upper == pytest.approx(1050 / 2550 * math.exp(Z95 * se))
    ref = contingency.odds_ratio([[15, 85], [30, 70]], kind="sample")
    ci = ref.confidence_interval(0.95)
    assert est.value == pytest.approx(ref.statistic)
    assert (est.lower, est.upper) == pytest.approx((ci.low, ci.high))


def test_zero_cell_gets_half_added_to_every_cell():
    # 0/20 vs 5/20 → cells 0.5, 20.5, 5.5, 15.5 (Cochrane Handbook; metafor add=1/2 to="only0")
    rr = risk_ratio(0, 20, 5, 20)
    assert rr.value == pytest.approx((0.5 / 21) / (5.5 / 21))
    se = math.sqrt(1 / 0.5 - 1 / 21 + 1 / 5.5 - 1 / 21)
    assert rr.upper == pytest.approx(rr.value * math.exp(Z95 * se))
    orr = odds_ratio(0, 20, 5, 20)
    assert orr.value == pytest.approx((0.5 * 15.5) / (20.5 * 5.5))
    assert orr.lower == pytest.approx(orr.value * math.exp(-Z95 * math.sqrt(1 / .5 + 1 / 20.5 + 1 / 5.5 + 1 / 15.5)))
    # a zero non-event cell (all treated had the event) triggers the same correction
    full = risk_ratio(20, 20, 10, 20)
    assert full.value == pytest.approx((20.5 / 21) / (10.5 / 21))


@pytest.mark.parametrize("table", [(0, 30, 0, 30), (30, 30, 30, 30), (0, 0, 4, 10)])
def test_ratio_not_estimable_is_nan(table):
    for f in (risk_ratio, odds_ratio):
        est = f(*table)
        assert all(math.isnan(v) for v in (est.value, est.lower, est.upper, est.p_value))


def test_bad_counts_raise():
    with pytest.raises(ValueError):
        risk_ratio(11, 10, 1, 10)
    with pytest.raises(ValueError):
        odds_ratio(-1, 10, 1, 10)
    with pytest.raises(ValueError):
        risk_ratio(1.5, 10, 1, 10)
    with pytest.raises(ValueError):
        risk_ratio(1, 10, 1, 10, level=1.0)


def test_risk_difference_wald():
    est = risk_difference(15, 100, 30, 100)
    se = math.sqrt(0.15 * 0.85 / 100 + 0.3 * 0.7 / 100)
    assert est.value == pytest.approx(-0.15)
    assert (est.lower, est.upper) == pytest.approx((-0.15 - Z95 * se, -0.15 + Z95 * se))
    assert est.p_value == pytest.approx(2 * stats.norm.sf(0.15 / se))
    zero = risk_difference(0, 10, 0, 10)
    assert zero.value == 0 and zero.lower == 0 and zero.upper == 0 and math.isnan(zero.p_value)


def test_risk_ratio_ci_coverage_by_simulation():
    # true RR = 0.45 / 0.30 = 1.5; the Katz interval should cover it ~95 % of the time
    rng = np.random.default_rng(20240611)
    n, p_t, p_c, reps = 150, 0.45, 0.30, 2000
    et = rng.binomial(n, p_t, reps)
    ec = rng.binomial(n, p_c, reps)
    hits = 0
    for a, c in zip(et, ec):
        est = risk_ratio(int(a), n, int(c), n)
        hits += est.lower <= 1.5 <= est.upper
    assert 0.93 <= hits / reps <= 0.97


# --------------------------------------------------------------------------- standardised differences


def _sample(mean: float, sd: float, n: int, rng) -> np.ndarray:
    """n values with exactly this mean and sample SD (ddof = 1)."""
    z = rng.standard_normal(n)
    z = (z - z.mean()) / z.std(ddof=1)
    return mean + sd * z


def test_cohens_d_known_means_and_sds():
    rng = np.random.default_rng(1)
    xt, xc = _sample(10.0, 2.0, 20, rng), _sample(8.0, 2.0, 25, rng)
    est = cohens_d(xt, xc)
    assert est.measure == "d"
    assert est.value == pytest.approx(1.0)
    se = math.sqrt(45 / (20 * 25) + 1 / (2 * 45))  # Hedges & Olkin: 0.09 + 1/90
    assert (est.lower, est.upper) == pytest.approx((1 - Z95 * se, 1 + Z95 * se))
    assert (round(est.lower, 4), round(est.upper, 4)) == (0.3768, 1.6232)
    assert est.p_value == pytest.approx(stats.ttest_ind(xt, xc, equal_var=True).pvalue)
    # unequal SDs: pooled SD = sqrt((9·9 + 29·1)/38)
    xt2, xc2 = _sample(5.0, 3.0, 10, rng), _sample(3.0, 1.0, 30, rng)
    assert cohens_d(xt2, xc2).value == pytest.approx(2.0 / math.sqrt(110 / 38))


def test_hedges_g_small_sample_correction():
    rng = np.random.default_rng(2)
    xt, xc = _sample(10.0, 2.0, 20, rng), _sample(8.0, 2.0, 25, rng)
    j = 1 - 3 / (4 * 43 - 1)
    g, d = hedges_g(xt, xc), cohens_d(xt, xc)
    assert g.measure == "g"
    assert g.value == pytest.approx(j * 1.0)
    assert g.upper - g.lower == pytest.approx(j * (d.upper - d.lower))
    assert g.p_value == pytest.approx(d.p_value)


def test_cohens_d_drops_nan_and_degenerate_cases():
    a = cohens_d([1.0, 2.0, np.nan, 3.0], [2.0, 3.0, 4.0])
    assert a.value == pytest.approx(cohens_d([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]).value)
    assert math.isnan(cohens_d([1.0], [1.0, 2.0]).value)
    assert math.isnan(cohens_d([1.0, 1.0], [1.0, 1.0]).value)


# --------------------------------------------------------------------------- survival


def test_kaplan_meier_hand_worked():
    km = kaplan_meier([1, 2, 2, 3, 4, 5], [1, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(km.time, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(km.n_at_risk, [6, 5, 3, 2, 1])
    np.testing.assert_array_equal(km.n_events, [1, 1, 1, 0, 1])
    np.testing.assert_array_equal(km.n_censored, [0, 1, 0, 1, 0])
    np.testing.assert_allclose(km.survival, [5 / 6, 2 / 3, 4 / 9, 4 / 9, 0.0])
    # Greenwood at t = 3: (4/9)² (1/30 + 1/20 + 1/6) = 4/81 → SE 2/9
    assert km.std_err[2] == pytest.approx(2 / 9)
    assert km.std_err[0] == pytest.approx(5 / 6 * math.sqrt(1 / 30))
    assert math.isnan(km.std_err[4])
    assert km.survival_at(0.5) == 1.0 and km.survival_at(2.5) == pytest.approx(2 / 3)


# Freireich et al. 1963 6-MP maintenance data (Gehan 1965); + = censored
MP_TIME = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
MP_EVENT = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
PL_TIME = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]


def test_kaplan_meier_freireich_textbook():
    km = kaplan_meier(MP_TIME, MP_EVENT)
    # Kleinbaum & Klein, Survival Analysis, table of S(t) for the 6-MP group
    expect = {6: 0.857, 7: 0.807, 10: 0.753, 13: 0.690, 16: 0.627, 22: 0.538, 23: 0.448}
    for t, s in expect.items():
        assert km.survival_at(t) == pytest.approx(s, abs=5e-4)
    assert km.std_err[0] == pytest.approx(18 / 21 * math.sqrt(3 / (21 * 18)))  # 0.0764


def test_log_rank_freireich_textbook():
    lr = log_rank(MP_TIME + PL_TIME, MP_EVENT + [1] * 21, ["6-MP"] * 21 + ["placebo"] * 21)
    assert lr.groups == ("6-MP", "placebo") and lr.df == 1
    np.testing.assert_array_equal(lr.observed, [9, 21])
    np.testing.assert_allclose(lr.expected, [19.25, 10.75], atol=0.01)
    assert lr.chi2 == pytest.approx(16.79, abs=0.01)
    assert lr.p_value == pytest.approx(stats.chi2.sf(16.79, 1), rel=0.01)  # 4.2e-5


def test_log_rank_hand_worked():
    # A dies at 1 and 3, B at 2 and 4: O_A − E_A = 2 − 4/3, V = 1/4 + 2/9 + 1/4 = 13/18 → 8/13
    lr = log_rank([1, 3, 2, 4], [1, 1, 1, 1], ["A", "A", "B", "B"])
    assert lr.expected[0] == pytest.approx(4 / 3)
    assert lr.chi2 == pytest.approx(8 / 13)
    assert lr.p_value == pytest.approx(stats.chi2.sf(8 / 13, 1))


def test_log_rank_k_groups_does_not_depend_on_group_order():
    rng = np.random.default_rng(3)
    t = rng.exponential(10, 90).round()
    e = rng.random(90) < 0.8
    g = np.repeat(["a", "b", "c"], 30)
    t[g == "c"] *= 1.8
    lr1 = log_rank(t, e, g)
    order = np.argsort(np.where(g == "c", 0, np.where(g == "a", 1, 2)), kind="stable")
    lr2 = log_rank(t[order], e[order], g[order])
    assert lr1.df == lr2.df == 2
    assert lr1.chi2 == pytest.approx(lr2.chi2)
    assert lr2.groups == ("c", "a", "b")


def fake_trial(n_per_arm: int = 40, arms=("treatment as usual", "methadone"), weeks: int = 12,
               seed: int = 0, rule: str = "positive") -> xr.Dataset:
    """A trial results Dataset with the agreed layout, filled with random but coherent data."""
    rng = np.random.default_rng(seed)
    k = np.repeat(np.arange(len(arms)), n_per_arm)
    n, days = k.size, weeks * 7
    alive = rng.random(n) > np.array([0.08, 0.03, 0.05])[k]
    death_day = np.where(alive, np.nan, rng.integers(1, days, n).astype(float))
    started = rng.random(n) < 0.9
    retained = started & alive & (rng.random(n) < np.array([0.3, 0.65, 0.5])[k])
    dropout_day = np.where(retained, np.nan,
                           np.where(started, rng.integers(1, days, n).astype(float), 0.0))
    dropout_day = np.where(~alive & ~retained, np.fmin(dropout_day, death_day), dropout_day)
    days_in_treatment = np.where(retained, float(days), dropout_day)
    ltfu = ~retained & alive & (rng.random(n) < 0.35)
    day = np.arange(days)
    in_treatment = day[None, :] < days_in_treatment[:, None]
    use = rng.random((n, days)) < np.where(in_treatment, 0.1, 0.4) * np.array([1.0, 0.6, 0.8])[k][:, None]
    week = np.arange(1, weeks + 1)
    urine = (rng.random((n, weeks)) < np.array([0.7, 0.35, 0.5])[k][:, None]).astype(float)
    last_seen = np.where(ltfu, dropout_day, np.where(alive, np.inf, death_day))
    urine[week[None, :] * 7 > last_seen[:, None]] = np.nan
    ds = xr.Dataset(
        {
            "enrolled": ("subject", np.ones(n, int)),
            "started_treatment": ("subject", started.astype(int)),
            "retained": ("subject", retained.astype(int)),
            "days_in_treatment": ("subject", days_in_treatment),
            "dropout_day": ("subject", dropout_day),
            "relapse": ("subject", (rng.random(n) < np.array([0.6, 0.35, 0.45])[k]).astype(int)),
            "overdose_events": ("subject", rng.poisson(np.array([0.3, 0.1, 0.2])[k])),
            "alive": ("subject", alive.astype(int)),
            "death_day": ("subject", death_day),
            "days_abstinent": ("subject", (days - use.sum(axis=1)).astype(float)),
            "lost_to_follow_up": ("subject", ltfu.astype(int)),
            "urine_positive": (("subject", "week"), urine),
            "in_treatment": (("subject", "day"), in_treatment.astype(int)),
            "use_event": (("subject", "day"), use.astype(int)),
        },
        coords={"subject": np.arange(n), "arm": ("subject", np.array(arms)[k]), "week": week, "day": day},
        attrs={"trial_name": "Fake methadone trial", "arms": ",".join(arms), "control_arm": arms[0],
               "follow_up_weeks": weeks, "missing_urine_rule": rule},
    )
    return ds


def _counts(ds: xr.Dataset, arm: str, hit: np.ndarray, ok: np.ndarray | None = None) -> tuple[int, int]:
    m = ds["arm"].values == arm
    if ok is not None:
        m &= ok
    return int((hit & m).sum()), int(m.sum())


def test_trial_outcomes_rows_and_counts():
    ds = fake_trial()
    out = trial_outcomes(ds)
    assert list(out.columns) == OUTCOME_COLUMNS
    assert list(zip(out.outcome, out.measure)) == [
        ("retention", "RR"), ("retention", "OR"), ("urine_positive_final", "RR"),
        ("urine_negative_proportion", "d"), ("relapse", "RR"), ("overdose", "RR"),
        ("mortality", "RR"), ("days_abstinent", "d")]
    assert set(out.arm) == {"methadone"} and set(out.control) == {"treatment as usual"}
    ctrl, arm = "treatment as usual", "methadone"
    binary = {
        "retention": ds.retained.values == 1,
        "relapse": ds.relapse.values == 1,
        "overdose": ds.overdose_events.values >= 1,
        "mortality": ds.alive.values == 0,
    }
    for name, hit in binary.items():
        row = out[(out.outcome == name) & (out.measure == "RR")].iloc[0]
        (et, nt), (ec, nc) = _counts(ds, arm, hit), _counts(ds, ctrl, hit)
        ref = risk_ratio(et, nt, ec, nc)
        assert (row.n_arm, row.n_control, row.events_arm, row.events_control) == (nt, nc, et, ec)
        assert row.value_arm == pytest.approx(et / nt)
        assert (row.estimate, row.lower, row.upper, row.p_value) == pytest.approx(
            (ref.value, ref.lower, ref.upper, ref.p_value), nan_ok=True)
    ret_or = out[(out.outcome == "retention") & (out.measure == "OR")].iloc[0]
    r = binary["retention"]
    assert ret_or.estimate == pytest.approx(odds_ratio(*_counts(ds, arm, r), *_counts(ds, ctrl, r)).value)
    # final urine, missing = positive: everyone analysed, a missed sample is a positive
    u = ds.urine_positive.sel(week=12).values
    pos = (u == 1) | np.isnan(u)
    row = out[out.outcome == "urine_positive_final"].iloc[0]
    assert row.estimate == pytest.approx(risk_ratio(*_counts(ds, arm, pos), *_counts(ds, ctrl, pos)).value)
    assert row.n_arm == 40 and row.n_control == 40
    # negative-urine fraction among the urines given, Cohen's d
    given = np.isfinite(ds.urine_positive.values).sum(axis=1)
    frac = np.where(given > 0, (ds.urine_positive.values == 0).sum(axis=1) / np.maximum(given, 1), np.nan)
    row = out[out.outcome == "urine_negative_proportion"].iloc[0]
    a = ds["arm"].values
    assert row.estimate == pytest.approx(cohens_d(frac[a == arm], frac[a == ctrl]).value)
    assert row.n_arm == int(((a == arm) & (given > 0)).sum())
    row = out[out.outcome == "days_abstinent"].iloc[0]
    assert row.value_arm == pytest.approx(ds.days_abstinent.values[a == arm].mean())


def test_trial_outcomes_missing_urine_exclude_rule():
    ds = fake_trial(rule="exclude", seed=4)
    u = ds.urine_positive.sel(week=12).values
    assert np.isnan(u).any()
    ok = np.isfinite(u)
    row = trial_outcomes(ds).query("outcome == 'urine_positive_final'").iloc[0]
    (et, nt), (ec, nc) = _counts(ds, "methadone", u == 1, ok), _counts(ds, "treatment as usual", u == 1, ok)
    assert (row.n_arm, row.n_control) == (nt, nc) and nt < 40
    assert row.estimate == pytest.approx(risk_ratio(et, nt, ec, nc).value)
    bad = ds.assign_attrs(missing_urine_rule="ignore")
    with pytest.raises(ValueError, match="missing_urine_rule"):
        trial_outcomes(bad)


def test_trial_outcomes_three_arms_and_other_control():
    ds = fake_trial(n_per_arm=30, arms=("placebo", "methadone", "buprenorphine"), seed=5)
    out = trial_outcomes(ds)
    assert len(out) == 16 and list(pd.unique(out.arm)) == ["methadone", "buprenorphine"]
    out2 = trial_outcomes(ds, control="methadone")
    assert set(out2.control) == {"methadone"} and set(out2.arm) == {"placebo", "buprenorphine"}
    with pytest.raises(ValueError):
        trial_outcomes(ds, control="naltrexone")


def test_consort_flow_and_text():
    ds = fake_trial(seed=6)
    flow = consort_flow(ds)
    assert list(flow.columns) == CONSORT_COLUMNS
    assert list(flow.index) == ["treatment as usual", "methadone"]
    for arm, r in flow.iterrows():
        m = ds["arm"].values == arm
        assert r.randomised == 40
        assert r.started_treatment == int(ds.started_treatment.values[m].sum())
        assert r.retained == int(ds.retained.values[m].sum())
        assert r.lost_to_follow_up == int(ds.lost_to_follow_up.values[m].sum())
        assert r.died == int((ds.alive.values[m] == 0).sum())
        assert r.analysed == 40  # missing = positive: everyone analysed
    excl = consort_flow(ds.assign_attrs(missing_urine_rule="exclude"))
    given = np.isfinite(ds.urine_positive.sel(week=12).values)
    assert excl.loc["methadone", "analysed"] == int((given & (ds["arm"].values == "methadone")).sum())
    text = consort_text(ds)
    assert "Randomised: n = 80" in text
    assert "simple randomisation" in text  # a dataset without the attribute was simply randomised
    assert "permuted blocks of 4" in consort_text(ds.assign_attrs(randomisation="permuted blocks of 4, 1:1 within each block"))
    assert "Allocated to treatment as usual (control): n = 40" in text
    assert f"Died: {flow.loc['methadone', 'died']}" in text
    # boxes: every box line of one stage has the same width
    widths = {len(line) for line in text.splitlines() if line.startswith("+")}
    assert len(widths) <= 2


def test_retention_time_event():
    ds = fake_trial(seed=7)
    t, e = retention_time_event(ds)
    ret = ds.retained.values == 1
    assert np.all(t[ret] == 84) and np.all(e[ret] == 0)
    np.testing.assert_array_equal(t[~ret], ds.dropout_day.values[~ret])
    assert np.all(e[~ret] == 1)


# --------------------------------------------------------------------------- report


def test_write_trial_report(tmp_path: Path):
    ds = fake_trial(seed=8)
    toml = '[trial]\nname = "fake <methadone> trial"\n'
    paths = write_trial_report(ds, tmp_path / "out", scenario_toml=toml)
    for p in paths.values():
        assert p.exists() and p.stat().st_size > 0
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]
    page = paths["html"].read_text(encoding="utf-8")
    assert "treatment as usual" in page and "methadone" in page
    assert RESEARCH_NOTICE in page
    assert "Fake methadone trial" in page
    assert "&lt;methadone&gt;" in page  # scenario TOML escaped inside <pre>
    assert "80 subjects randomised (simple randomisation)" in page
    m = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert m and base64.b64decode(m.group(1))[:8] == b"\x89PNG\r\n\x1a\n"
    out = pd.read_csv(paths["outcomes"])
    assert list(out.columns) == OUTCOME_COLUMNS
    assert len(out) == 8
    assert set(out.outcome) == {"retention", "urine_positive_final", "urine_negative_proportion",
                                "relapse", "overdose", "mortality", "days_abstinent"}
    # RR in outcomes.csv equals risk_ratio on the counts taken from ds here
    for name, hit in {"retention": ds.retained.values == 1, "mortality": ds.alive.values == 0,
                      "relapse": ds.relapse.values == 1}.items():
        row = out[(out.outcome == name) & (out.measure == "RR")].iloc[0]
        ref = risk_ratio(*_counts(ds, "methadone", hit), *_counts(ds, "treatment as usual", hit))
        assert (row.estimate, row.lower, row.upper) == pytest.approx((ref.value, ref.lower, ref.upper))
    consort = pd.read_csv(paths["consort"], index_col="arm")
    pd.testing.assert_frame_equal(consort, consort_flow(ds), check_dtype=False)


def _stratified(seed: int) -> xr.Dataset:
    ds = fake_trial(seed=seed)
    rng = np.random.default_rng(seed + 100)
    n = ds.sizes["subject"]
    ds["depressed"] = ("subject", (rng.random(n) < 0.3).astype(float))
    ds["ptsd"] = ("subject", (rng.random(n) < 0.4).astype(float))
    return ds.assign_attrs(stratified_by="depression,ptsd")


def test_subgroup_outcomes_are_the_trial_analysis_within_each_stratum():
    ds = _stratified(9)
    sub = subgroup_outcomes(ds)
    dep, ptsd = ds.depressed.values == 1, ds.ptsd.values == 1
    labels = list(dict.fromkeys(sub.subgroup))
    assert labels == ["depression: no, ptsd: no", "depression: no, ptsd: yes", "depression: yes, ptsd: no",
                      "depression: yes, ptsd: yes"]
    for label, members in zip(labels, [~dep & ~ptsd, ~dep & ptsd, dep & ~ptsd, dep & ptsd]):
        mine = sub[sub.subgroup == label].drop(columns="subgroup").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, trial_outcomes(ds.isel(subject=members)), check_dtype=False)
    # the strata partition the randomised subjects
    retention = sub[(sub.outcome == "retention") & (sub.measure == "RR")]
    assert int((retention.n_arm + retention.n_control).sum()) == ds.sizes["subject"]
    assert subgroup_outcomes(ds, by=["ptsd"]).subgroup.unique().tolist() == ["ptsd: no", "ptsd: yes"]
    assert subgroup_outcomes(ds.assign_attrs(stratified_by="")).empty
    with pytest.raises(ValueError, match="no such per-subject trait"):
        subgroup_outcomes(ds, by=["anxiety"])


def test_a_stratified_trial_report_has_its_subgroups(tmp_path: Path):
    paths = write_trial_report(_stratified(10), tmp_path / "s")
    sub = pd.read_csv(paths["subgroups"])
    assert list(sub.columns) == ["subgroup"] + OUTCOME_COLUMNS and sub.subgroup.nunique() == 4
    page = paths["html"].read_text(encoding="utf-8")
    assert "Subgroups (the strata of the randomisation)" in page and "<h3>depression: yes, ptsd: no</h3>" in page
    plain = write_trial_report(fake_trial(seed=10), tmp_path / "p")  # unstratified: no subgroups
    assert "subgroups" not in plain and not (tmp_path / "p" / "subgroups.csv").exists()
    assert "Subgroups" not in plain["html"].read_text(encoding="utf-8")


def test_write_trial_report_is_atomic(tmp_path: Path, monkeypatch):
    ds = fake_trial(seed=9)
    paths = write_trial_report(ds, tmp_path)
    before = paths["outcomes"].read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk gone"):
        write_trial_report(fake_trial(seed=10), tmp_path)
    assert paths["outcomes"].read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_trial_figure_and_report_cope_with_no_events():
    ds = fake_trial(seed=11)
    ds["alive"][:] = 1
    ds["death_day"][:] = np.nan
    ds["overdose_events"][:] = 0
    out = trial_outcomes(ds)
    assert out.query("outcome == 'mortality'").estimate.isna().all()
    fig = trial_figure(ds, out)
    assert len(fig.axes) == 5
    page = render_trial_report(ds)
    assert "not estimable" in page


# -- [[trial.published]]: the simulated estimates beside the published ones -----------------------
def _with_published(ds: xr.Dataset, entries: list[dict]) -> xr.Dataset:
    ds = ds.copy()
    ds.attrs["published"] = json.dumps(entries)
    return ds


def test_published_comparison_sets_each_figure_beside_the_same_estimate():
    """Both flags follow from the numbers, worked here by hand from the risk ratio of the counts:
    a published CI that holds the simulated estimate and one that does not; a paper without a CI
    (the first flag is then empty); an outcome the simulated trial did not estimate."""
    ds = fake_trial(seed=8)
    hit = ds.retained.values == 1
    ref = risk_ratio(*_counts(ds, "methadone", hit), *_counts(ds, "treatment as usual", hit))
    entries = [
        dict(outcome="retention", arm="methadone", measure="RR", estimate=ref.value, lower=ref.value / 2,
             upper=ref.value * 2, source="a paper that found the same"),
        dict(outcome="retention", arm="methadone", measure="OR", estimate=1e3, lower=500.0, upper=2e3,
             source="a paper far off"),
        dict(outcome="days_abstinent", arm="methadone", measure="d", estimate=0.0, source="no interval given"),
        dict(outcome="mortality", arm="methadone", measure="OR", estimate=1.0, source="not an outcome measure here"),
    ]
    out = published_comparison(_with_published(ds, entries))
    assert list(out.columns) == PUBLISHED_COLUMNS and len(out) == 4
    same, far, no_ci, missing = (out.iloc[i] for i in range(4))
    simulated = (same.simulated, same.simulated_lower, same.simulated_upper)
    assert simulated == pytest.approx((ref.value, ref.lower, ref.upper))
    assert bool(same.simulated_in_published_ci) and bool(same.published_in_simulated_ci)
    assert not bool(far.simulated_in_published_ci) and not bool(far.published_in_simulated_ci)
    assert no_ci.simulated_in_published_ci is pd.NA and math.isnan(no_ci.published_lower)
    d = cohens_d(ds.days_abstinent.values[ds.arm.values == "methadone"],
                 ds.days_abstinent.values[ds.arm.values == "treatment as usual"])
    assert bool(no_ci.published_in_simulated_ci) == (d.lower <= 0.0 <= d.upper)
    assert math.isnan(missing.simulated) and missing.published_in_simulated_ci is pd.NA
    assert list(out.source) == [e["source"] for e in entries]


def test_the_trial_report_and_its_files_show_the_published_figures(tmp_path: Path):
    ds = _with_published(fake_trial(seed=8), [dict(outcome="retention", arm="methadone", measure="RR", estimate=4.44,
                                                   lower=3.26, upper=6.04, source="Mattick 2009 & co")])
    paths = write_trial_report(ds, tmp_path / "out")
    table = pd.read_csv(paths["published"])
    assert list(table.columns) == PUBLISHED_COLUMNS and table.published.tolist() == [4.44]
    page = paths["html"].read_text(encoding="utf-8")
    assert "Against the published record" in page and "Mattick 2009 &amp; co" in page
    # without published figures: neither the file nor the section
    plain = write_trial_report(fake_trial(seed=8), tmp_path / "plain")
    assert "published" not in plain and "Against the published record" not in plain["html"].read_text()


def test_a_published_figure_names_an_outcome_and_measure_the_trial_estimates():
    """The scenario's table of outcomes and measures is the one trial_outcomes computes."""
    from opioidsim.scenarios.course import TRIAL_OUTCOME_MEASURES

    out = trial_outcomes(fake_trial())
    computed = {(o, m) for o, m in zip(out.outcome, out.measure)}
    assert computed == {(o, m) for o, ms in TRIAL_OUTCOME_MEASURES.items() for m in ms}


def test_opioidsim_trial_prints_and_writes_the_published_comparison(tmp_path: Path, monkeypatch, capsys):
    """The command's wiring, with the simulation replaced by the fake trial (as it would come back
    from simulate_trial: the scenario's [[trial.published]] in its attrs)."""
    from opioidsim import cli

    toml = tmp_path / "t.toml"
    toml.write_text('[scenario]\nname = "t"\n[cohort]\nsubjects = 80\n[trial]\nhistory = "14d"\nfollow_up = "12w"\n'
                    '[[trial.arm]]\nname = "tau"\n[[trial.arm]]\nname = "methadone"\nmedication = "methadone"\n'
                    '[[trial.published]]\noutcome = "retention"\narm = "methadone"\nmeasure = "RR"\nestimate = 4.44\n'
                    'lower = 3.26\nupper = 6.04\nsource = "Mattick RP et al. 2009"\n')
    entries = [dict(outcome="retention", arm="methadone", measure="RR", estimate=4.44, lower=3.26, upper=6.04,
                    source="Mattick RP et al. 2009")]
    monkeypatch.setattr(cli, "_simulate", lambda scenario, progress: _with_published(
        fake_trial(seed=8, arms=("tau", "methadone")), entries))
    assert cli.main(["trial", str(toml), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "against the published record" in out
    row = next(line for line in out.splitlines() if line.split()[:3] == ["retention", "methadone", "RR"])
    table = pd.read_csv(tmp_path / "out" / "published.csv")
    sim = table.iloc[0]
    assert "4.44 (3.26 to 6.04)" in row and ("yes" if sim.simulated_in_published_ci else "no") in row.split()[-2:]
    assert table.source.tolist() == ["Mattick RP et al. 2009"]
