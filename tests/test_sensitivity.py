"""Global sensitivity analysis (issue 7: `opioidsim sensitivity`).

The SALib wrapper is checked on its own first, against closed forms: the Ishigami function's
analytic Sobol' indices (Ishigami & Homma 1990; Sobol' & Levitan 1999) and the exact elementary
effects of a linear function with an inert input (Morris). On the engine, a short IV heroin
scenario: the one-compartment heroin model gives plasma heroin in closed form (C = D/V·e^(−CL/V·t)),
so the per-sample statistics are checked against it, a pain parameter cannot move plasma heroin
(ST ≈ 0), clearance must dominate the AUC (AUC = D/CL) and volume the first concentration (D/V).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opioidsim import cli
from opioidsim.sensitivity import (Output, ParameterRange, SensitivityError, analyse_function,
                                   batch_size, lognormal_percentile_range, parameter_ranges,
                                   parse_outputs, reduce_records, run_sensitivity)

PI = math.pi


# ---------------------------------------------------------------------------------------------
# the wrapper on functions with known indices
# ---------------------------------------------------------------------------------------------
def ishigami(v: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    return np.sin(v[:, 0]) + a * np.sin(v[:, 1]) ** 2 + b * v[:, 2] ** 4 * np.sin(v[:, 0])


def ishigami_indices(a: float = 7.0, b: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form first-order and total indices of the Ishigami function on [−π, π]³."""
    v1 = 0.5 * (1 + b * PI**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * PI**8 * (1 / 18 - 1 / 50)
    var = v1 + v2 + v13
    s1 = np.array([v1, v2, 0.0]) / var
    st = np.array([v1 + v13, v2, v13]) / var
    return s1, st


def _box(n: int) -> list[ParameterRange]:
    return [ParameterRange(f"x{i + 1}", -PI, PI, scale="linear", source="test") for i in range(n)]


def test_closed_form_matches_published_ishigami_values():
    s1, st = ishigami_indices()
    np.testing.assert_allclose(s1, [0.3139, 0.4424, 0.0], atol=1e-4)
    np.testing.assert_allclose(st, [0.5576, 0.4424, 0.2437], atol=1e-4)


def test_sobol_pipeline_recovers_ishigami_indices():
    res = analyse_function(ishigami, _box(3), [Output("f", "value")], method="sobol", samples=8192, seed=11)
    s1, st = ishigami_indices()
    t = res.table.set_index("parameter").loc[["x1", "x2", "x3"]]
    assert res.evaluations == 8192 * 5  # N·(D+2) without second order
    for col, exact in (("S1", s1), ("ST", st)):
        est, conf = t[col].to_numpy(), t[f"{col}_conf"].to_numpy()
        assert (conf < 0.05).all(), conf  # precise enough for the comparison to mean something
        # within SALib's sampling error: 2 × the 95 % bootstrap half-width (≈ 4 standard errors)
        assert (np.abs(est - exact) <= 2 * conf).all(), (col, est, exact, conf)


def test_sobol_is_reproducible_and_seed_dependent():
    run = lambda seed: analyse_function(ishigami, _box(3), [Output("f", "value")], samples=256, seed=seed)  # noqa: E731
    a, b, c = run(3), run(3), run(4)
    np.testing.assert_array_equal(a.x, b.x)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not np.array_equal(a.x, c.x)


def test_morris_elementary_effects_and_inert_input():
    # f = 3·x1 + x2² + 0·x3: every elementary effect of x1 is 3 × its range (2π) per unit of the
    # normalised range, x3 has none at all, x2's change sign (sigma > 0)
    f = lambda v: 3 * v[:, 0] + v[:, 1] ** 2  # noqa: E731
    res = analyse_function(f, _box(3), [Output("f", "value")], method="morris", samples=30, seed=2)
    t = res.table.set_index("parameter")
    assert res.evaluations == 30 * 4
    assert t.loc["x1", "mu_star"] == pytest.approx(3 * 2 * PI, rel=1e-9)
    assert t.loc["x1", "sigma"] == pytest.approx(0.0, abs=1e-9)
    assert t.loc["x3", "mu_star"] == 0.0 and t.loc["x3", "sigma"] == 0.0
    assert t.loc["x2", "mu_star"] > 0 and t.loc["x2", "sigma"] > 0
    ranking = t["mu_star"].sort_values(ascending=False).index.tolist()
    assert ranking[-1] == "x3"


def test_failed_and_constant_outputs_give_nan_not_numbers():
    """A sample whose integration failed (NaN) or an output that never varies has no defined
    indices: NaN, with the failed samples counted, never a number computed around them."""
    f = lambda v: np.column_stack([np.where(v[:, 0] > 3.0, np.nan, v[:, 0]), np.ones(len(v)), v[:, 1]])  # noqa: E731
    outputs = [Output("failing", "peak"), Output("constant", "peak"), Output("fine", "peak")]
    res = analyse_function(f, _box(2), outputs, samples=64, seed=1)
    t = res.table.set_index(["readout", "parameter"])
    assert t.loc["failing", ["S1", "ST"]].isna().all().all()
    assert (t.loc["failing", "failed_samples"] == int(np.isnan(res.y[:, 0]).sum())).all()
    assert t.loc["failing", "failed_samples"].iloc[0] > 0
    assert t.loc["constant", ["S1", "ST"]].isna().all().all() and (t.loc["constant", "output_sd"] == 0).all()
    assert t.loc[("fine", "x2"), "ST"] == pytest.approx(1.0, abs=0.1)
    assert res.failed == t.loc["failing", "failed_samples"].iloc[0]


def test_log_scale_samples_stay_in_range_and_are_log_uniform():
    r = [ParameterRange("k", 0.5, 8.0, "1/min", "log", "test", 2.0)]
    res = analyse_function(lambda v: v[:, 0], r, [Output("k", "value")], samples=1024, seed=1)
    v = res.values[:, 0]
    assert v.min() >= 0.5 and v.max() <= 8.0
    # uniform in log: the geometric midpoint 2 splits the samples in halves
    assert abs((v < 2.0).mean() - 0.5) < 0.02


# ---------------------------------------------------------------------------------------------
# ranges, outputs, statistics
# ---------------------------------------------------------------------------------------------
def test_lognormal_percentile_range_closed_form():
    # cv 0.3: σ = sqrt(ln 1.09) = 0.293560; 5th-95th percentiles at exp(∓1.644854·σ)
    lo, hi = lognormal_percentile_range(2.0, 0.3)
    assert lo == pytest.approx(2.0 * math.exp(-1.6448536 * 0.2935604), rel=1e-6)
    assert hi == pytest.approx(2.0 * math.exp(1.6448536 * 0.2935604), rel=1e-6)
    # and they are the percentiles of the distribution the engine draws from (cohort of 200,000)
    rng = np.random.default_rng(0)
    draws = 2.0 * np.exp(0.2935604 * rng.standard_normal(200_000))
    np.testing.assert_allclose(np.percentile(draws, [5, 95]), [lo, hi], rtol=0.01)


def test_parameter_ranges_sources():
    from opioidsim.model.model import default_model

    m = default_model()
    cl, vol, smoked = parameter_ranges(m, ["heroin_clearance", "heroin_volume", "heroin_smoked_bioavailability"])
    p = m.parameters
    assert (cl.low, cl.high) == pytest.approx(lognormal_percentile_range(p["heroin_clearance"].value, 0.3))
    assert cl.unit == "L/min" and cl.scale == "log" and "population cv 0.3" in cl.source
    assert (vol.low, vol.high) == pytest.approx((p["heroin_volume"].value / 2, p["heroin_volume"].value * 2))
    assert vol.source.startswith("assumed")
    assert smoked.high <= 1.0  # a fraction stays a fraction
    (given,) = parameter_ranges(m, ["heroin_volume"], explicit={"heroin_volume": (5.0, 20.0)})
    assert (given.low, given.high, given.source) == (5.0, 20.0, "given (--range)")
    (wide,) = parameter_ranges(m, ["heroin_volume"], factor=3.0)
    assert wide.high == pytest.approx(3 * p["heroin_volume"].value)


@pytest.mark.parametrize("names, explicit, words", [
    (["heroin_clearence"], None, ["heroin_clearence", "heroin_clearance"]),
    (["heroin_volume", "heroin_volume"], None, ["twice"]),
    (["oprm1_g_carrier"], None, ["--range oprm1_g_carrier=LOW:HIGH"]),
    (["heroin_volume"], {"heroin_volume": (20.0, 5.0)}, ["LOW must be below HIGH"]),
    (["heroin_volume"], {"heroin_clearance": (1.0, 2.0)}, ["not among the --parameters"]),
    (["heroin_smoked_bioavailability"], {"heroin_smoked_bioavailability": (0.5, 1.5)}, ["within 0:1"]),
])
def test_bad_ranges_are_named(names, explicit, words):
    from opioidsim.model.model import default_model

    with pytest.raises(SensitivityError) as exc:
        parameter_ranges(default_model(), names, explicit=explicit)
    for w in words:
        assert w in str(exc.value)


def test_parse_outputs():
    readouts = ("plasma_heroin", "spo2")
    assert parse_outputs(["plasma_heroin", "spo2:trough"], "peak", readouts) == [
        Output("plasma_heroin", "peak"), Output("spo2", "trough")]
    with pytest.raises(SensitivityError, match="did you mean spo2"):
        parse_outputs(["sp02"], "peak", readouts)
    with pytest.raises(SensitivityError, match="statistic 'max'"):
        parse_outputs(["spo2:max"], "peak", readouts)


def test_statistics_on_known_curves():
    t = np.linspace(0.0, 10.0, 101)
    y = np.stack([np.sin(t * PI / 10.0), t], axis=-1)[None]  # one sample, two readouts
    stats = ["peak", "trough", "final", "mean", "auc", "time_to_peak"]
    got = reduce_records(np.repeat(y[:, :, :1], 6, axis=2), t, stats)[0]
    # ∫ sin(πt/10) over [0, 10] = 20/π; the trapezoid rule with h = 0.1 is within 1e-3 of it
    assert got[0] == pytest.approx(1.0) and got[1] == pytest.approx(0.0, abs=1e-12)
    assert got[2] == pytest.approx(0.0, abs=1e-12)
    assert got[4] == pytest.approx(20 / PI, rel=1e-3) and got[3] == pytest.approx(2 / PI, rel=1e-3)
    assert got[5] == pytest.approx(5.0)
    lin = reduce_records(y[:, :, 1:], t, ["auc"])[0, 0]
    assert lin == pytest.approx(50.0, rel=1e-12)  # exact for a straight line
    nan = reduce_records(np.where(t > 5, np.nan, y[:, :, 1])[:, :, None], t, ["peak"])
    assert np.isnan(nan).all()


def test_batch_size_splits_evenly_and_pads_little():
    assert [batch_size(n, 512) for n in (1, 2, 3, 5, 20, 40, 64, 65, 512)] == [2, 2, 4, 8, 24, 40, 64, 72, 512]
    assert batch_size(600, 512) == 304  # two batches of 300 → 304, not 512 + 512
    assert batch_size(37, 8) == 8
    for n in range(1, 2000, 7):
        b = batch_size(n, 512)
        batches = math.ceil(n / b)
        assert b <= 512 and batches == math.ceil(n / 512) and batches * b - n < 8 * batches


# ---------------------------------------------------------------------------------------------
# on the engine: 10 mg IV heroin at t = 0, 30 min, records every 30 s
# ---------------------------------------------------------------------------------------------
ENGINE_TOML = """\
[scenario]
name = "sensitivity-heroin-iv"
duration = "30min"
record_every = "30s"

[cohort]
subjects = 1
seed = 3

[[dose]]
drug = "heroin"
route = "iv"
amount = "10 mg"
at = "0min"
"""
DOSE_MG = 10.0
ENGINE_PARAMETERS = ["heroin_clearance", "heroin_volume", "sp_signal_half"]
ENGINE_OUTPUTS = "plasma_heroin:auc,plasma_heroin:peak,pain:trough"
# 4 · (3 + 2) = 20 evaluations (one batch of 24; the CLI test reuses its compiled program): a
# small base sample, enough for an inert parameter (ST ≈ 0 whatever N) and a dominant one; 12
# subject-hours of engine time. A slow test repeats the checks with N = 32.
ENGINE_SAMPLES = 4


@pytest.fixture(scope="module")
def engine_result():
    from opioidsim.scenarios import Scenario

    scenario = Scenario.from_toml_text(ENGINE_TOML)
    outputs = [Output(*o.split(":")) for o in ENGINE_OUTPUTS.split(",")]
    return run_sensitivity(scenario, ENGINE_PARAMETERS, outputs, samples=ENGINE_SAMPLES, seed=5)


def test_engine_statistics_follow_the_one_compartment_solution(engine_result):
    """Each sample's plasma heroin against C(t) = D/V·e^(−CL/V·t) on the record grid: the sampled
    values reach the engine in the right units, and each sample is its own subject."""
    res = engine_result
    cl, vol = res.values[:, 0], res.values[:, 1]  # L/min, L (weight = reference: no allometry)
    t = np.arange(0.0, 30.0 + 1e-9, 0.5)
    conc = DOSE_MG / vol[:, None] * np.exp(-(cl / vol)[:, None] * t[None, :]) * 1000.0  # ng/mL
    conc[:, 0] = 0.0  # the record at the dose time is taken before the bolus
    auc = ((conc[:, 1:] + conc[:, :-1]) * 0.25).sum(axis=1)
    np.testing.assert_allclose(res.y[:, 0], auc, rtol=0.01)
    np.testing.assert_allclose(res.y[:, 1], conc[:, 1], rtol=0.01)


def _check_engine_indices(table) -> None:
    t = table.set_index(["readout", "statistic", "parameter"]).sort_index()
    for stat in ("auc", "peak"):
        # the pain pathway cannot move plasma heroin
        assert abs(t.loc[("plasma_heroin", stat, "sp_signal_half"), "ST"]) < 0.01
    auc = t.loc[("plasma_heroin", "auc")]["ST"]
    peak = t.loc[("plasma_heroin", "peak")]["ST"]
    assert auc.idxmax() == "heroin_clearance"  # AUC = D/CL
    assert auc["heroin_clearance"] > 0.5
    assert peak.idxmax() == "heroin_volume"  # the first concentration ≈ D/V


def test_engine_indices_inert_and_dominant_parameters(engine_result):
    _check_engine_indices(engine_result.table)
    assert engine_result.failed == 0


@pytest.mark.slow
def test_engine_indices_with_a_larger_sample():
    from opioidsim.scenarios import Scenario

    outputs = [Output(*o.split(":")) for o in ENGINE_OUTPUTS.split(",")]
    res = run_sensitivity(Scenario.from_toml_text(ENGINE_TOML), ENGINE_PARAMETERS, outputs, samples=32, seed=5)
    _check_engine_indices(res.table)
    t = res.table.set_index(["readout", "statistic", "parameter"]).sort_index()
    assert t.loc[("plasma_heroin", "auc", "heroin_clearance"), "ST"] > 0.8
    assert t.loc[("pain", "trough", "sp_signal_half"), "ST"] > 0.05  # the pain parameter does move pain


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------
def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("opioidsim: error: "), err
    return lines[0]


def _nothing_written(parent: Path, name: str) -> None:
    left = [p for p in os.listdir(parent) if p == name or p.startswith(f".{name}.")]
    assert left == [], left


@pytest.mark.parametrize("flags, words", [
    (["--parameters", "heroin_clearence"], ["--parameters", "'heroin_clearence'", "heroin_clearance"]),
    (["--readouts", "plasma_heorin"], ["--readouts", "'plasma_heorin'", "plasma_heroin"]),
    (["--method", "fast"], ["--method", "'fast'", "sobol, morris"]),
    (["--statistic", "max"], ["--statistic", "'max'", "peak"]),
    (["--samples", "100"], ["--samples 100", "power of two"]),
    (["--range", "heroin_volume=20"], ["--range", "NAME=LOW:HIGH"]),
    (["--range", "heroin_volume=20:5"], ["LOW must be below HIGH"]),
    (["--cluster", "remote"], ["--cluster", "'remote'"]),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, flags, words):
    args = {"--readouts": "plasma_heroin", "--parameters": "heroin_clearance,heroin_volume"}
    for k, v in zip(flags[::2], flags[1::2]):
        args[k] = v
    argv = ["sensitivity", "acute-heroin-iv", "--out", str(tmp_path / "sa")]
    for k, v in args.items():
        argv += [k, v]
    assert cli.main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    for w in words:
        assert w in line, line
    _nothing_written(tmp_path, "sa")


def test_cli_refuses_existing_results_before_running(tmp_path, capsys):
    out = tmp_path / "sa"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert cli.main(["sensitivity", "acute-heroin-iv", "--readouts", "plasma_heroin",
                     "--parameters", "heroin_clearance", "--out", str(out)]) == 2
    assert "already exists and is not empty" in _one_error_line(capsys.readouterr().err)
    assert os.listdir(out) == ["keep.txt"]


def test_cli_writes_table_and_figure(engine_result, tmp_path, capsys):
    scenario = tmp_path / "iv.toml"
    scenario.write_text(ENGINE_TOML, encoding="utf-8")
    out = tmp_path / "sa"
    rc = cli.main(["sensitivity", str(scenario), "--readouts", ENGINE_OUTPUTS, "--parameters",
                   ",".join(ENGINE_PARAMETERS), "--samples", str(ENGINE_SAMPLES), "--seed", "5",
                   "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert rc == 0
    assert sorted(os.listdir(out)) == sorted(["indices.csv", "ranges.csv", "samples.csv", "sensitivity.png",
                                              "scenario.toml", "run.json"])
    assert (out / "sensitivity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(out / "indices.csv")
    # the command computes what the API computes with the same seed
    np.testing.assert_allclose(table["ST"].to_numpy(), engine_result.table["ST"].to_numpy(), rtol=0, atol=0)
    ranges = pd.read_csv(out / "ranges.csv").set_index("parameter")
    assert ranges.loc["heroin_volume", "range_source"].startswith("assumed")
    assert "population cv" in ranges.loc["heroin_clearance", "range_source"]
    assert "range source" in printed and "heroin_clearance" in printed and "ST" in printed
    assert len(pd.read_csv(out / "samples.csv")) == ENGINE_SAMPLES * 5


# ---------------------------------------------------------------------------------------------
# Dask: batches as tasks, gathered in sample order
# ---------------------------------------------------------------------------------------------
def test_dask_batches_gather_in_sample_order(monkeypatch):
    """Each batch is a Dask task (here on two thread workers); the gathered outputs equal the
    in-process ones row for row. The engine is replaced by a function of each row alone, which is
    what the engine is (a subject is computed the same in any batch: engine.core.MIN_BATCH); the
    engine on real worker processes is the slow test below."""
    from opioidsim import cluster, sensitivity

    def fake_chunk(scenario, ranges, values, outputs, batch, model=None):
        # a function of each row alone, plus the batch it ran in (the task is pickled to the worker)
        return np.column_stack([values.sum(axis=1), values[:, 0] * 10, np.full(len(values), batch)])

    monkeypatch.setattr(sensitivity, "evaluate_chunk", fake_chunk)
    monkeypatch.setattr(cluster, "LOCAL_PROCESSES", False)
    values = np.arange(37 * 2, dtype=float).reshape(37, 2)
    outputs = [Output("a", "peak"), Output("b", "peak"), Output("batch", "peak")]
    here = sensitivity.evaluate_samples(None, [], values, outputs)
    with cluster.Connection(cluster.parse_cluster("local:2")) as conn:
        there = sensitivity.evaluate_samples(None, [], values, outputs, connection=conn, chunk=8)
    np.testing.assert_array_equal(here[:, :2], there[:, :2])
    np.testing.assert_array_equal(here[:, 0], values.sum(axis=1))
    assert (here[:, 2] == 40).all()  # in process: one batch of 37 padded to 40
    assert (there[:, 2] == 8).all()  # on Dask: five tasks of (at most) 8


@pytest.mark.slow
def test_dask_worker_processes_give_the_in_process_numbers(engine_result):
    """The engine itself on two worker processes (a fresh compile in each: minutes)."""
    from opioidsim import cluster
    from opioidsim.scenarios import Scenario

    scenario = Scenario.from_toml_text(ENGINE_TOML)
    outputs = [Output(*o.split(":")) for o in ENGINE_OUTPUTS.split(",")]
    with cluster.Connection(cluster.parse_cluster("local:2")) as conn:
        res = run_sensitivity(scenario, ENGINE_PARAMETERS, outputs, samples=ENGINE_SAMPLES, seed=5,
                              connection=conn)
    np.testing.assert_array_equal(res.y, engine_result.y)
