"""Calibration benchmark: the three choices behind opioidsim.calibration, measured.

1. Sub-model: one forward-mode Jacobian of plasma morphine (4.5 h, 15 s steps) on the PK module
   alone against the full model (compile excluded; `--no-full` skips the full model, whose
   compile takes minutes).
2. Fixed steps: the derivative of the loss with respect to morphine clearance by central finite
   differences through the engine's *adaptive* path, for shrinking differences, against the
   fixed-step path and its forward-mode derivative. Adaptive step decisions make the loss jump,
   so its finite differences do not settle.
3. Optimizer: Levenberg-Marquardt against optax.adam from the same start (×2, ×1/1.5).

    PYTHONPATH=src python benchmarks/bench_calibration.py [--no-full]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from opioidsim.calibration import calibrate, observations_from_arrays
from opioidsim.calibration.forward import ForwardProblem, submodel
from opioidsim.engine.core import compile_doses, integrate, make_grid, subject_parameters
from opioidsim.model.model import default_model
from opioidsim.scenarios import Cohort, Dose, Scenario

SCENARIO = Scenario(name="morphine-iv", duration="4h30min", record_every="5min", cohort=Cohort(subjects=1),
                    doses=[Dose("morphine", "10 mg", route="iv", at="10min")])
TIMES = 10.0 + np.arange(1, 17) * 15.0
NAMES = ("morphine_clearance", "morphine_volume")


def truth_data():
    cl, v = 1.6, 200.0
    return 1000 * 10.0 / v * np.exp(-cl / v * (TIMES - 10.0))


def problem(model, prune=True):
    base = subject_parameters(model, SCENARIO, 1, 0, variability=False)
    return ForwardProblem(model=model, parameters=NAMES, readouts=("plasma_morphine",), base=base,
                          doses=list(SCENARIO.doses), duration_min=SCENARIO.duration_min,
                          obs_unit=np.zeros(len(TIMES), int), obs_time_min=TIMES, obs_readout=np.zeros(len(TIMES), int), prune=prune)


def timed(f, repeat=3):
    f()  # compile
    t = time.perf_counter()
    for _ in range(repeat):
        f()
    return (time.perf_counter() - t) / repeat


def table(title, head, rows):
    print(f"\n{title}")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


def bench_submodel(full: bool):
    model = default_model()
    theta = np.array([[1.3, 250.0]])
    rows = []
    sub = problem(submodel(model, ("plasma_morphine",)))
    t_sub = timed(lambda: sub.predict_with_jacobian(theta))
    rows.append(["PK module only", str(sub.model.n_states), f"{t_sub * 1e3:.1f}", "1.0"])
    if full:
        whole = problem(model, prune=False)
        t0 = time.perf_counter()
        whole.predict_with_jacobian(theta)
        compile_s = time.perf_counter() - t0
        t_full = timed(lambda: whole.predict_with_jacobian(theta), repeat=1)
        np.testing.assert_allclose(whole.predict(theta), sub.predict(theta), rtol=1e-9)
        rows.append([f"full model (compile {compile_s:.0f} s)", str(model.n_states), f"{t_full * 1e3:.1f}",
                     f"{t_full / t_sub:.0f}"])
    table("1. one Jacobian (2 parameters, 1080 steps of 15 s)", ["model", "states", "ms", "× PK only"], rows)


HEROIN = Scenario(name="heroin-iv", duration="4h30min", record_every="5min", cohort=Cohort(subjects=1),
                  doses=[Dose("heroin", "10 mg", route="iv", at="10min")])
#: (scenario, readout, parameter, value, value that made the data)
SMOOTHNESS_CASES = ((SCENARIO, "plasma_morphine", "morphine_clearance", 1.3, 1.6),
                    (HEROIN, "plasma_6mam", "heroin_clearance", 2.0, 2.6),
                    (HEROIN, "plasma_6mam", "sixmam_volume", 50.0, 65.0))


def bench_smoothness():
    model = default_model()
    for scenario, readout, name, value, true_value in SMOOTHNESS_CASES:
        sub = submodel(model, (readout,))
        base = subject_parameters(sub, scenario, 1, 0, variability=False)
        fixed = ForwardProblem(model=sub, parameters=(name,), readouts=(readout,), base=base,
                               doses=list(scenario.doses), duration_min=scenario.duration_min,
                               obs_unit=np.zeros(len(TIMES), int), obs_time_min=TIMES,
                               obs_readout=np.zeros(len(TIMES), int))
        data = fixed.predict(np.array([[true_value]]))
        pred, jac = fixed.predict_with_jacobian(np.array([[value]]))
        ad = float(jac[:, 0] @ (pred - data))
        grid = make_grid(scenario.duration_min, scenario.record_every_min)
        idx = np.round(TIMES / scenario.record_every_min).astype(int)
        assert np.allclose(grid.record_times_min[idx], TIMES)  # the data times are records

        def adaptive_loss(x):
            p = dict(base)
            p[name] = np.array([x])
            ev = compile_doses(sub, scenario.doses, scenario.duration_min, grid.h, p)
            rec = integrate(sub, grid, sub.initial_state(p), p, ev, (readout,))
            return 0.5 * np.sum((rec[0, idx, 0] - data) ** 2)

        def fixed_loss(x):
            return 0.5 * np.sum((fixed.predict(np.array([[x]])) - data) ** 2)

        rows = []
        for rel in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6):
            d = value * rel
            fd_a = (adaptive_loss(value + d) - adaptive_loss(value - d)) / (2 * d)
            fd_f = (fixed_loss(value + d) - fixed_loss(value - d)) / (2 * d)
            rows.append([f"{rel:g}", f"{fd_a:.6g}", f"{fd_a / ad - 1:+.1e}", f"{fd_f:.6g}", f"{fd_f / ad - 1:+.1e}"])
        table(f"2. {scenario.name}, {readout}: d loss / d {name} at {value:g} (forward-mode AD, fixed steps: {ad:.6g})",
              ["relative δ", "FD adaptive engine", "vs AD", "FD fixed step", "vs AD"], rows)


def bench_optimizers():
    obs = observations_from_arrays(TIMES, "plasma_morphine", truth_data())
    start = {"morphine_clearance": 1.227 * 2, "morphine_volume": 245 / 1.5}
    rows = []
    for method, kw in (("lm", {}), ("adam", {"learning_rate": 0.05}), ("adam", {"learning_rate": 0.2})):
        calibrate(SCENARIO, obs, NAMES, start=start, method=method, iterations=2, curves=False, **kw)  # compile
        t = time.perf_counter()
        res = calibrate(SCENARIO, obs, NAMES, start=start, method=method, iterations=500, curves=False, **kw)
        wall = time.perf_counter() - t
        hist = np.array(res.loss_history)
        hit = np.nonzero(hist < 1e-6 * hist[0])[0]
        err = np.max(np.abs(res.fitted[0] / np.array([1.6, 200.0]) - 1))
        rows.append([method + (f" lr {kw['learning_rate']}" if kw else ""), str(res.iterations),
                     str(hit[0]) if len(hit) else "never", f"{wall:.2f}", f"{err:.1e}"])
    table("3. optimizers, noise-free IV morphine data (truth CL 1.6 L/min, V 200 L), at most 500 iterations",
          ["method", "iterations", "to loss < 1e-6·start", "wall s", "max rel. error"], rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-full", action="store_true", help="skip the full-model comparison (minutes of compile)")
    ap.add_argument("--only", choices=("1", "2", "3"), default=None, help="run one part")
    args = ap.parse_args()
    if args.only in (None, "1"):
        bench_submodel(full=not args.no_full)
    if args.only in (None, "2"):
        bench_smoothness()
    if args.only in (None, "3"):
        bench_optimizers()


if __name__ == "__main__":
    main()
