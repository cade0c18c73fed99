"""Calibration (issue 7): recovering known parameters, the forward-mode gradient, bounds, data errors, CLI.

Synthetic data come from closed-form solutions the code does not use: an IV morphine bolus in the
model's one-compartment description is C(t) = D/V·exp(−CL/V·(t − t_dose)); an IM dose adds first-
order absorption (the Bateman function). Both are the model's PK equations solved by hand
(model/pk.py: morphine_central gains the dose, loses CL/V per minute; plasma = amount/V), so the
fitted values can be compared with the truth used to make the data. The slow test takes its data
from the engine's adaptive integrator instead (heroin → 6-MAM → morphine).

All IV tests share one data shape (two subjects, 16 times each) so that they share one compiled
forward model.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from opioidsim import cli
from opioidsim.calibration import (CalibrationDataError, CalibrationError, calibrate, observations_from_arrays,
                                   read_observations)
from opioidsim.calibration.forward import ForwardProblem, submodel
from opioidsim.engine.core import subject_parameters
from opioidsim.model.model import default_model
from opioidsim.scenarios import Cohort, Dose, Scenario

DOSE_MG = 10.0
DOSE_AT_MIN = 10.0
TIMES_MIN = DOSE_AT_MIN + np.arange(1, 17) * 15.0  # 25 min … 4 h 10 min
#: two subjects' true (clearance L/min, volume L); the model's typical values are 1.227 and 245
TRUTH = {"A": (1.6, 200.0), "B": (0.9, 320.0)}
FITTED = ("morphine_clearance", "morphine_volume")
IV = Scenario(name="morphine-iv-test", duration="4h30min", cohort=Cohort(subjects=1),
              doses=[Dose("morphine", f"{DOSE_MG:g} mg", route="iv", at=f"{DOSE_AT_MIN:g}min")])


def iv_concentration(t_min, clearance, volume):
    """ng/mL after the bolus: (mg / L) × 1000."""
    return 1000.0 * DOSE_MG / volume * np.exp(-clearance / volume * (t_min - DOSE_AT_MIN))


def iv_observations(noise_cv: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    t, v, unit = [], [], []
    for name, (cl, vol) in TRUTH.items():
        c = iv_concentration(TIMES_MIN, cl, vol)
        if noise_cv:
            c = c * np.exp(noise_cv * rng.standard_normal(c.shape))
        t += list(TIMES_MIN)
        v += list(c)
        unit += [name] * len(c)
    return observations_from_arrays(t, "plasma_morphine", v, unit=unit)


START = {"morphine_clearance": 1.227 * 2.0, "morphine_volume": 245.0 / 1.5}  # off by ×2 and ×1/1.5


def test_recovers_known_clearance_and_volume_per_subject():
    res = calibrate(IV, iv_observations(), FITTED, start=START, curves=False)
    assert res.converged
    assert res.fit_units == ("A", "B")
    for u, name in enumerate(res.fit_units):
        np.testing.assert_allclose(res.fitted[u], TRUTH[name], rtol=2e-3)
    assert res.loss_history[-1] < 1e-6 * res.loss_history[0]
    assert res.units == ("L/min", "L")


def test_noisy_data_truth_lies_within_the_reported_standard_errors():
    # 5 % multiplicative noise, fitted on the log scale (where the noise is additive)
    res = calibrate(IV, iv_observations(noise_cv=0.05, seed=7), FITTED, start=START, log_scale=True, curves=False)
    assert res.converged
    for u, name in enumerate(res.fit_units):
        truth = np.array(TRUTH[name])
        assert np.all(np.isfinite(res.se[u]))
        # a useful SE: not zero, not larger than the value; 16 points at 5 % pin CL and V to a few %
        assert np.all((res.se[u] > 1e-4 * truth) & (res.se[u] < 0.1 * truth)), res.se[u]
        assert np.all(np.abs(res.fitted[u] - truth) < 3.0 * res.se[u]), (res.fitted[u], truth, res.se[u])
        assert not np.allclose(res.fitted[u], truth, rtol=1e-4)  # the noise did move the fit


def test_known_measurement_sds_and_estimated_scatter_give_consistent_standard_errors():
    # Gauss-Newton: SE with the sds taken as known (5 % of each value: 0.05 on the log scale) and SE
    # scaled by the residual scatter differ exactly by the factor s / 0.05, with
    # s² = Σ (log obs − log fit)² / (n − k) computed here from the residuals
    noisy = iv_observations(noise_cv=0.05, seed=7)
    estimated = calibrate(IV, noisy, FITTED, start=START, log_scale=True, curves=False)
    with_sd = observations_from_arrays(noisy.time_min, noisy.readout, noisy.value, sd=0.05 * noisy.value,
                                       unit=[noisy.fit_units[i] for i in noisy.unit_index])
    known = calibrate(IV, with_sd, FITTED, start=START, log_scale=True, curves=False)
    np.testing.assert_allclose(known.fitted, estimated.fitted, rtol=1e-6)  # equal weights: same optimum
    for u in range(2):
        rows = noisy.unit_index == u
        r = np.log(noisy.value[rows]) - np.log(estimated.predicted[rows])
        s = math.sqrt(np.sum(r**2) / (rows.sum() - 2))
        np.testing.assert_allclose(estimated.se[u], known.se[u] * s / 0.05, rtol=1e-4)


def test_optimum_beyond_the_bounds_ends_at_the_bound_never_past_it():
    # both subjects' clearances (1.6 and 0.9 L/min) lie above this upper bound
    res = calibrate(IV, iv_observations(), FITTED, start={"morphine_clearance": 0.5, "morphine_volume": 250.0},
                    bounds={"morphine_clearance": (0.3, 0.8)}, curves=False)
    cl = res.fitted[:, 0]
    assert np.all(cl <= 0.8)
    np.testing.assert_allclose(cl, 0.8, rtol=1e-3)
    assert res.at_bound[:, 0].all() and not res.at_bound[:, 1].any()


IM = Scenario(name="morphine-im-test", duration="6h", cohort=Cohort(subjects=1),
              doses=[Dose("morphine", "10 mg", route="im", at="0min")])
IM_FITTED = ("morphine_im_bioavailability", "morphine_im_absorption_rate", "morphine_clearance")
IM_TIMES = np.arange(1, 25) * 15.0


def bateman(f, ka, cl, v=245.0, t=IM_TIMES):
    """Plasma morphine (ng/mL) after 10 mg IM: first-order absorption of F·dose, one compartment."""
    ke = cl / v
    return 1000 * 10.0 * f * ka / (v * (ka - ke)) * (np.exp(-ke * t) - np.exp(-ka * t))


def test_data_that_fix_only_a_combination_get_no_standard_errors():
    # two samples at one time: any (CL, V) on a curve through that concentration fits exactly, so
    # J^T J has rank one
    t = np.array([130.0, 130.0])
    obs = observations_from_arrays(t, "plasma_morphine", iv_concentration(t, 1.6, 200.0))
    res = calibrate(IV, obs, FITTED, start=START, curves=False)
    assert np.isnan(res.se).all()
    assert "do not fix every parameter" in res.table()
    # whereas the 16-sample design of the other tests pins both, with a strong but finite correlation
    full = calibrate(IV, iv_observations(noise_cv=0.05, seed=7), FITTED, start=START, curves=False)
    assert np.isfinite(full.se).all() and np.all(np.abs(full.correlation[:, 0, 1]) < 0.999)


def test_forward_mode_gradient_matches_central_finite_differences():
    """IM morphine: the dose enters a depot scaled by the fitted bioavailability, so the gradient
    runs through the dose amounts as well as the ROS2 steps."""
    model = default_model()
    base = subject_parameters(model, IM, 1, 0, variability=False)
    assert base["morphine_volume"][0] == pytest.approx(245.0)
    n = len(IM_TIMES)
    problem = ForwardProblem(model=model, parameters=IM_FITTED, readouts=("plasma_morphine",), base=base,
                             doses=list(IM.doses), duration_min=IM.duration_min, obs_unit=np.zeros(n, int),
                             obs_time_min=IM_TIMES, obs_readout=np.zeros(n, int))
    # first, the predictions themselves against the closed form
    observed = bateman(0.8, 0.05, 1.5)
    np.testing.assert_allclose(problem.predict(np.array([[0.8, 0.05, 1.5]])), observed, rtol=2e-3)

    theta = np.array([[0.6, 0.08, 1.1]])  # away from the optimum: a gradient well above zero

    def loss(th):
        return 0.5 * np.sum((problem.predict(th) - observed) ** 2)

    pred, jac = problem.predict_with_jacobian(theta)
    grad = jac.T @ (pred - observed)
    for j in range(3):
        d = 1e-5 * theta[0, j]
        up, down = theta.copy(), theta.copy()
        up[0, j] += d
        down[0, j] -= d
        fd = (loss(up) - loss(down)) / (2 * d)
        assert grad[j] == pytest.approx(fd, rel=1e-5), (IM_FITTED[j], grad[j], fd)


def test_recovers_bioavailability_absorption_and_clearance_of_an_im_dose():
    obs = observations_from_arrays(IM_TIMES, "plasma_morphine", bateman(0.7, 0.06, 1.6))
    res = calibrate(IM, obs, IM_FITTED, start={"morphine_im_bioavailability": 0.4, "morphine_im_absorption_rate": 0.1,
                                               "morphine_clearance": 0.8}, curves=False)
    assert res.converged
    np.testing.assert_allclose(res.fitted[0], [0.7, 0.06, 1.6], rtol=3e-3)
    assert np.all(res.fitted[0, 0] <= 1.0)  # a fraction's default bounds are [0, 1]


def test_submodel_keeps_only_what_the_readouts_need():
    model = default_model()
    assert [m.name for m in submodel(model, ("plasma_morphine",)).modules] == ["pk"]
    occ = [m.name for m in submodel(model, ("mor_occupancy_vta",)).modules]
    assert "pk" in occ and "receptor" in occ and "structure" not in occ


# --- bad input ------------------------------------------------------------------------------
def _write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, expected", [
    ("time [h],readout\n1,plasma_morphine\n", ["data.csv", "missing column 'value'"]),
    ("readout,value\nplasma_morphine,3\n", ["data.csv", "missing column 'time [UNIT]'"]),
    ("time,readout,value\n1,plasma_morphine,3\n", ["data.csv", "needs its unit"]),
    ("time [h],readout,value\n1,plasma_morphine,3\n2,plasma_morphine,abc\n",
     ["data.csv", "column 'value'", "line 3", "'abc' is not a number"]),
    ("time [h],readout,value\n1,plasma_morfine,3\n", ["data.csv", "column 'readout'", "line 2", "'plasma_morfine'",
                                                     "not a readout"]),
    ("time [h],plasma_morphine,pulse\n1,3,4\n", ["data.csv", "column 'pulse'", "not a readout"]),
    ("time [kg],readout,value\n1,plasma_morphine,3\n", ["data.csv", "'kg' is not a time unit"]),
    ("time [h],readout,value\n-1,plasma_morphine,3\n", ["data.csv", "line 2", "negative"]),
    ("subject,group,time [h],readout,value\nA,g,1,plasma_morphine,3\n", ["data.csv", "'subject' and 'group'"]),
    ("time [h],readout,value,sd\n1,plasma_morphine,3,0\n", ["data.csv", "column 'sd'", "line 2", "> 0"]),
    ("time [h],readout,value,unit\n1,plasma_morphine,3,mmHg\n", ["data.csv", "column 'unit'", "line 2", "'mmHg'"]),
    ("time [h],readout,value\n", ["data.csv", "no observations"]),
])
def test_bad_data_files_get_one_message_naming_file_column_and_line(tmp_path, text, expected):
    with pytest.raises(CalibrationDataError) as err:
        read_observations(_write(tmp_path, text))
    message = str(err.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, (part, message)


def test_data_file_forms_are_read_in_internal_units(tmp_path):
    long = read_observations(_write(tmp_path, "subject,time [h],readout,value,unit\nA,0.5,plasma_morphine,0.03,ug/mL\n"
                                              "B,1,plasma_morphine,20,ng/mL\n"))
    assert long.fit_units == ("A", "B") and long.kind == "subject"
    np.testing.assert_allclose(long.time_min, [30.0, 60.0])
    np.testing.assert_allclose(long.value, [30.0, 20.0])  # 0.03 µg/mL = 30 ng/mL
    wide = read_observations(_write(tmp_path, "group,time_min,plasma_morphine,plasma_6mam\ng1,5,30,\ng1,10,25,4\n",
                                    "wide.csv"))
    assert wide.kind == "group" and wide.fit_units == ("g1",)
    assert wide.readout == ("plasma_morphine", "plasma_morphine", "plasma_6mam")
    np.testing.assert_allclose(wide.value, [30.0, 25.0, 4.0])


def test_bad_calibration_requests_are_named():
    obs = iv_observations()
    with pytest.raises(CalibrationError, match="'morphine_clearence' is not a model parameter"):
        calibrate(IV, obs, ["morphine_clearence"])
    with pytest.raises(CalibrationError, match="outside its bounds"):
        calibrate(IV, obs, FITTED, bounds={"morphine_clearance": (2.0, 3.0)})
    with pytest.raises(CalibrationError, match="'morphine_mor_kd' does not change the observed readouts"):
        # receptor binding does not feed back on plasma levels: found without compiling anything
        calibrate(IV, obs, ["morphine_mor_kd"], curves=False)
    late = observations_from_arrays([300.0], "plasma_morphine", [1.0], source="late.csv")
    with pytest.raises(CalibrationDataError, match="late.csv.*after the end of scenario"):
        calibrate(IV, late, FITTED)


# --- command line ---------------------------------------------------------------------------
def _iv_csv(tmp_path):
    lines = ["subject,time [min],readout,value"]
    for name, (cl, vol) in TRUTH.items():
        lines += [f"{name},{t:g},plasma_morphine,{float(c)!r}" for t, c in zip(TIMES_MIN, iv_concentration(TIMES_MIN, cl, vol))]
    return _write(tmp_path, "\n".join(lines) + "\n", "plasma.csv")


def _iv_toml(tmp_path):
    return _write(tmp_path, '[scenario]\nname = "morphine-iv"\nduration = "4h30min"\n\n'
                            '[[dose]]\ndrug = "morphine"\nroute = "iv"\namount = "10 mg"\nat = "10min"\n', "iv.toml")


def test_cli_calibrate_prints_the_table_and_writes_the_folder(tmp_path, capsys):
    out = tmp_path / "fit"
    code = cli.main(["calibrate", str(_iv_toml(tmp_path)), "--data", str(_iv_csv(tmp_path)),
                     "--parameters", "morphine_clearance,morphine_volume",
                     "--start", "morphine_clearance=2.45", "morphine_volume=163", "--out", str(out)])
    captured = capsys.readouterr()
    printed = captured.out
    assert code == 0, captured.err
    assert "morphine_clearance" in printed and "L/min" in printed and "converged" in printed
    assert sorted(p.name for p in out.iterdir()) == ["fit.svg", "parameters.csv", "residuals.csv", "run.json"]
    import csv

    rows = list(csv.DictReader((out / "parameters.csv").open()))
    fitted = {(r["fit"], r["parameter"]): float(r["fitted"]) for r in rows}
    assert fitted[("B", "morphine_volume")] == pytest.approx(320.0, rel=2e-3)
    assert fitted[("A", "morphine_clearance")] == pytest.approx(1.6, rel=2e-3)
    assert (out / "fit.svg").read_text().lstrip().startswith("<?xml")
    # an existing folder is refused, before any work, and left as it was
    code = cli.main(["calibrate", str(_iv_toml(tmp_path)), "--data", str(_iv_csv(tmp_path)),
                     "--parameters", "morphine_clearance", "--out", str(out)])
    assert code == 2 and "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("args, expected", [
    (["--parameters", "morphine_clearance", "--bounds", "morphine_clearance=1"], "NAME=LO:HI"),
    (["--parameters", "morphine_clearance", "--bounds", "morphine_clearance=a:2"], "'a' is not a number"),
    (["--parameters", "morphine_clearence"], "'morphine_clearence' is not a model parameter"),
    (["--parameters", "morphine_clearance", "--iterations", "-3"], "--iterations"),
])
def test_cli_bad_flags_get_one_line(tmp_path, capsys, args, expected):
    data = _write(tmp_path, "time [h],readout,value\n1,plasma_morphine,3\n")
    code = cli.main(["calibrate", str(_iv_toml(tmp_path)), "--data", str(data), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("opioidsim: error:") and expected in err, err


def test_cli_bad_data_file_names_it(tmp_path, capsys):
    data = _write(tmp_path, "time [h],readout,value\n1,plasma_morphine,x\n")
    code = cli.main(["calibrate", str(_iv_toml(tmp_path)), "--data", str(data), "--parameters", "morphine_volume"])
    err = capsys.readouterr().err
    assert code == 2 and "data.csv: column 'value', line 2: 'x' is not a number" in err, err


# --- the engine's own trajectories as data (slow: compiles the adaptive engine too) ----------
@pytest.mark.slow
def test_recovers_parameters_from_the_engines_adaptive_heroin_run():
    from opioidsim.engine.core import compile_doses, integrate, make_grid

    model = default_model()
    s = Scenario(name="heroin-iv", duration="4h", record_every="5min", cohort=Cohort(subjects=1),
                 doses=[Dose("heroin", "10 mg", route="iv", at="10min")])
    names = ("plasma_6mam", "plasma_morphine")
    sub = submodel(model, names)
    p = subject_parameters(sub, s, 1, 0, variability=False)
    truth = {"morphine_clearance": 1.6, "morphine_volume": 200.0, "sixmam_volume": 45.0}
    for k, v in truth.items():
        p[k] = np.array([v])
    grid = make_grid(s.duration_min, s.record_every_min)
    recs = integrate(sub, grid, sub.initial_state(p), p, compile_doses(sub, s.doses, s.duration_min, grid.h, p), names)
    t = grid.record_times_min[3:]  # from 15 min: after the dose
    obs = observations_from_arrays(np.concatenate([t, t]), [names[0]] * len(t) + [names[1]] * len(t),
                                   np.concatenate([recs[0, 3:, 0], recs[0, 3:, 1]]))
    res = calibrate(s, obs, tuple(truth), start={"morphine_clearance": 2.4, "morphine_volume": 350.0,
                                                 "sixmam_volume": 90.0}, log_scale=True, curves=False)
    # the engine's adaptive run differs from the fixed-step fit by its tolerance (rtol 3e-3)
    np.testing.assert_allclose(res.fitted[0], list(truth.values()), rtol=1e-2)
    assert math.isfinite(res.se[0, 0])
