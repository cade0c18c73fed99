"""Random physiology and numerical honesty (issue 9).

`physiology_ranges` gives every model parameter the range a robustness run draws it from:

- a parameter with a between-subject cv: log-uniform over the central 99.7 % of its sourced
  lognormal population distribution (value·exp(±3σ), σ² = ln(1 + cv²)), so the tails people
  actually have are sampled as often as the middle;
- a parameter without a cv: log-uniform from 50 % to 150 % of its value (ASSUMED_SPREAD; an
  assumption, stated as such: none of these has a published population spread in the model);
- kept fixed: definitions rather than physiology — rating-scale definitions, numerical smoothing
  widths, the scenario condition, the allometric reference weight — and genotype indicators,
  which are drawn 0/1 with probability 1/2 so that both genotypes are always exercised.

Fractions by definition (bioavailability, efficacy, maximal inhibition, carrier frequency, dead
space, apnoea fraction, density factors) are capped at 1.

`run_physiology` integrates a stress scenario (every drug by a non-IV and an IV route, an
overdose-range fentanyl dose rescued by naloxone, 24 h) for N random subjects in batches and
checks, per subject: every record finite; concentrations, densities, pressures and ventilation
≥ 0; fractions and flags in [0, 1]; scores within their scales (READOUT_BOUNDS); the final
state within each state's declared bounds; and the engine's per-subject status. `reference_errors`
compares the engine with the Radau reference path on a sample of the same subjects.

One command runs the whole thing and prints the figures RELIABILITY.md reports::

    python -m opioidsim.reliability --compressed --subjects 10000 --reference 40   # or: make reliability
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from opioidsim.engine.core import (STATUS_OK, integrate, make_grid, subject_parameters, subject_uniforms)
from opioidsim.engine.dosing import compile_doses
from opioidsim.engine.reference import simulate_reference
from opioidsim.model import default_model
from opioidsim.model.model import Model
from opioidsim.scenarios import Dose, Scenario

#: assumed spread of a parameter without a population cv: ×0.5 … ×1.5, log-uniform
ASSUMED_SPREAD = (0.5, 1.5)
#: a cv-carrying parameter is drawn within value·exp(±CV_SIGMAS·σ)
CV_SIGMAS = 3.0
FIXED_SOURCES = ("scale definition", "numerical", "scenario condition")
#: kept at their value although not definitions: the allometric reference weight, and the air breathed
#: (inspired PO2 149 mmHg, room air at sea level) — an environment, not a trait of the subject. Drawn ×0.5–1.5
#: it put 785 of 10,000 subjects in oxygen-enriched air, resting above the PaO2 bound of 160 mmHg.
FIXED_NAMES = {"reference_weight", "inspired_po2"}
GENOTYPE_INDICATORS = ("oprm1_g_carrier", "drd2_a1_carrier")
FRACTION_WORDS = ("bioavailability", "efficacy", "max_inhibition", "carrier_frequency", "_fraction",
                  "density_factor")

#: physical bounds of each readout (the readouts page, generated from READOUTS: the definition of each quantity)
_NONNEG = (0.0, math.inf)
READOUT_BOUNDS: dict[str, tuple[float, float]] = {
    **{f"mor_{k}_{r}": (0.0, 1.0) for k in ("occupancy", "signal") for r in ("vta", "dorsal_horn", "brainstem")},
    "d2_activation": (0.0, 1.0), "overdose": (0.0, 1.0), "cardiac_arrest": (0.0, 1.0),
    "spo2": (0.0, 100.0), "pain": (0.0, 10.0), "negative_affect": (0.0, 10.0),
    "hedonic_state": (-10.0, 10.0), "hedonic_set_point": (-10.0, 10.0), "opponent_process": (0.0, 10.0),
    "cows": (0.0, 48.0), "glt1": (0.0, 1.0), "cue_memory": (0.0, 1.0), "cue_incubation": (0.0, 1.0), "cue_craving": (0.0, 10.0),
    "craving": (0.0, 10.0),
    # issue 6: fractions of a baseline or of a population, probabilities and 0-1 scores
    **{k: (0.0, 1.0) for k in ("glial_activation", "white_matter", "hypoxic_injury", "leukoencephalopathy_risk",
                                "executive", "memory", "memory_verbal", "memory_spatial", "attention",
                                "pfc_control")},
    **{f"gmv_{r}": (0.0, 1.0) for r in ("pfc", "acc", "temporal", "insula", "nac", "fusiform")},
    # VBM: % difference from a typical control — a person's own anatomy can be larger or smaller,
    # but no region can lose more than all of it; a BOLD contrast can be of either sign
    **{f"vbm_{r}": (-100.0, math.inf) for r in ("pfc", "acc", "temporal", "insula", "nac", "fusiform")},
    "fmri_cue_nac": (-math.inf, math.inf),
}
#: tolerance on a bound (rounding in the readout arithmetic)
BOUND_TOL = 1e-9
#: bound violations found by this check that belong to the model (model/*.py, another owner), with
#: the most they reach in the random-physiology run; listed so that the run reports them
#: separately, and tests/test_reliability_physiology.py holds a strict xfail that fails once the
#: model is fixed, so the note must then go.
KNOWN_FINDINGS: dict[str, tuple[float, str]] = {
    # readout → (worst value seen, why): model findings the random-physiology run found and that are
    # not fixed yet. Empty: negative_affect's dip below 0 (excess() had a floor of −w·ln 2) is fixed
    # in excess() itself (model/base.py).
}
KEY_READOUTS = ("plasma_morphine", "plasma_fentanyl", "mor_occupancy_vta", "mor_occupancy_brainstem",
                "nac_dopamine", "hedonic_state", "pain", "ventilation", "spo2", "cows")


def bounds_of(name: str) -> tuple[float, float]:
    """Every readout not listed in READOUT_BOUNDS is a concentration, density, relative level,
    pressure or flow: ≥ 0."""
    return READOUT_BOUNDS.get(name, _NONNEG)


def stress_scenario(subjects: int = 1, seed: int = 0, duration: str = "24h", record_every: str = "5min") -> Scenario:
    """Every drug, by IV and by another route, an overdose-range fentanyl dose and naloxone."""
    doses = [Dose("heroin", "20 mg", route="iv", at="10min"), Dose("heroin", "20 mg", route="smoked", at="40min"),
             Dose("morphine", "30 mg", route="oral", at="1h"), Dose("fentanyl", "1 mg", route="iv", at="3h"),
             Dose("naloxone", "2 mg", route="im", at="3h5min"), Dose("naloxone", "4 mg", route="intranasal", at="3h20min"),
             Dose("buprenorphine", "8 mg", route="sublingual", at="6h"), Dose("methadone", "40 mg", route="oral", at="8h"),
             Dose("fentanyl", "0.1 mg", route="intranasal", at="12h"), Dose("morphine", "10 mg", route="im", at="14h")]
    if duration != "24h":
        end = Scenario(duration=duration).duration_min
        doses = [d for d in doses if d.at_min < end]
    return Scenario(name="random-physiology", duration=duration, record_every=record_every, doses=doses,
                    cohort={"subjects": subjects, "seed": seed})


def compressed_stress_scenario(subjects: int = 1, seed: int = 0) -> Scenario:
    """The ten doses of `stress_scenario` (every drug and route, the overdose-range fentanyl and
    both naloxones) within 4 h: the transients overlap and the 10-h washout tail is left out, so a
    subject costs about 60 % of the 24-h run (steps per subject: median 1,305 against 2,113). The
    reference sample uses it (RELIABILITY.md runs the 10,000 subjects through both forms)."""
    doses = [Dose("heroin", "20 mg", route="iv", at="5min"), Dose("heroin", "20 mg", route="smoked", at="20min"),
             Dose("morphine", "30 mg", route="oral", at="30min"), Dose("fentanyl", "1 mg", route="iv", at="1h"),
             Dose("naloxone", "2 mg", route="im", at="1h5min"), Dose("naloxone", "4 mg", route="intranasal", at="1h20min"),
             Dose("buprenorphine", "8 mg", route="sublingual", at="2h"), Dose("methadone", "40 mg", route="oral", at="2h30min"),
             Dose("fentanyl", "0.1 mg", route="intranasal", at="3h"), Dose("morphine", "10 mg", route="im", at="3h30min")]
    return Scenario(name="random-physiology-4h", duration="4h", record_every="5min", doses=doses,
                    cohort={"subjects": subjects, "seed": seed})


def physiology_ranges(model: Model) -> dict[str, dict[str, Any]]:
    """name → {kind, low, high, why}, in internal units."""
    out: dict[str, dict[str, Any]] = {}
    for name, par in model.parameters.items():
        v = par.internal_value
        cap = 1.0 if (par.bounded_fraction or any(w in name for w in FRACTION_WORDS)) else math.inf
        if name in GENOTYPE_INDICATORS:
            out[name] = {"kind": "genotype", "low": 0.0, "high": 1.0, "why": "0/1 with probability 1/2"}
        elif name in FIXED_NAMES or par.source.startswith(FIXED_SOURCES):
            why = "environment: room air at sea level" if name == "inspired_po2" else par.source.split(":")[0]
            out[name] = {"kind": "fixed", "low": v, "high": v, "why": why}
        elif par.cv > 0:
            s = CV_SIGMAS * math.sqrt(math.log1p(par.cv**2))
            out[name] = {"kind": "cv", "low": v * math.exp(-s), "high": min(v * math.exp(s), cap),
                         "why": f"cv {par.cv:g} ({par.cv_source.split(';')[0][:60]}), ±{CV_SIGMAS:g}σ"}
        else:
            lo, hi = sorted((v * ASSUMED_SPREAD[0], v * ASSUMED_SPREAD[1]))
            out[name] = {"kind": "assumed", "low": lo, "high": min(hi, cap) if v > 0 else hi,
                         "why": "assumed ×0.5–1.5 (no population spread sourced)"}
    return out


def random_parameters(model: Model, scenario: Scenario, n: int, seed: int, first: int = 0) -> dict[str, np.ndarray]:
    """Subjects first … first+n−1, each parameter log-uniform within its range (reproducible from
    (seed, name, subject index); the same subject in any batch)."""
    p = subject_parameters(model, scenario, n, seed, variability=False, first=first)
    idx = np.arange(first, first + n)
    for name, r in physiology_ranges(model).items():
        u = subject_uniforms(seed, "physiology:" + name, idx)
        if r["kind"] == "genotype":
            p[name] = (u < 0.5).astype(float)
        elif r["kind"] in ("cv", "assumed") and r["low"] != r["high"]:
            lo, hi = r["low"], r["high"]
            if lo > 0:
                p[name] = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
            elif hi < 0:
                p[name] = -np.exp(np.log(-hi) + u * (np.log(-lo) - np.log(-hi)))
    return p


def check_subjects(model: Model, names: tuple[str, ...], recs: np.ndarray, y_final: np.ndarray,
                   status: np.ndarray) -> list[dict[str, Any]]:
    """One entry per problem found: a subject, what is wrong, where."""
    problems = []
    finite = np.isfinite(recs)
    for i in np.nonzero(~finite.all(axis=(1, 2)))[0]:
        bad = [names[j] for j in np.nonzero(~finite[i].all(axis=0))[0]]
        problems.append({"subject": int(i), "problem": "not finite", "readouts": bad[:5]})
    for j, name in enumerate(names):
        lo, hi = bounds_of(name)
        x = recs[:, :, j]
        with np.errstate(invalid="ignore"):
            out = (x < lo - BOUND_TOL) | (x > hi + BOUND_TOL)
        for i in np.nonzero(out.any(axis=1))[0]:
            worst = float(np.nanmin(x[i]) if np.nanmin(x[i]) < lo - BOUND_TOL else np.nanmax(x[i]))
            known = name in KNOWN_FINDINGS and worst >= KNOWN_FINDINGS[name][0]
            problems.append({"subject": int(i), "problem": f"{name} outside [{lo}, {hi}]",
                             "value": worst, "known": known})
    lower, upper = model.lower, model.upper
    with np.errstate(invalid="ignore"):
        bad_state = (y_final < lower - BOUND_TOL) | (y_final > upper + BOUND_TOL) | ~np.isfinite(y_final)
    for i in np.nonzero(bad_state.any(axis=1))[0]:
        k = int(np.argmax(bad_state[i]))
        problems.append({"subject": int(i), "problem": f"final state {model.state_names[k]} outside its bounds",
                         "value": float(y_final[i, k])})
    for i in np.nonzero(status != STATUS_OK)[0]:
        problems.append({"subject": int(i), "problem": "integration failed (status 1)"})
    return problems


def run_physiology(n_subjects: int, seed: int = 0, batch: int = 500, scenario: Scenario | None = None,
                   progress: bool = False, first: int = 0) -> dict[str, Any]:
    """Integrate random subjects first … first+n_subjects−1 in batches; returns counts, problems
    (with cohort subject numbers) and per-readout extremes. A subject is the same in any batch and
    any process, so a large run can be split into ranges run side by side."""
    model = default_model()
    sc = scenario or stress_scenario()
    grid = make_grid(sc.duration_min, sc.record_every_min)
    names = model.readouts
    problems: list[dict[str, Any]] = []
    failed = 0
    lo = np.full(len(names), np.inf)
    hi = np.full(len(names), -np.inf)
    steps = []
    start_outside: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for a in range(first, first + n_subjects, batch):
        n = min(batch, first + n_subjects - a)
        p = random_parameters(model, sc, n, seed, first=a)
        ev = compile_doses(model, sc.doses, sc.duration_min, grid.h, p)
        st: dict = {}
        y0 = np.asarray(model.initial_state(p))
        # a subject whose drug-free rest lies outside a state's declared bounds: the engine projects
        # the state onto its bounds, so the subject runs clamped; counted, not a failure
        with np.errstate(invalid="ignore"):
            outside = (y0 < model.lower - BOUND_TOL) | (y0 > model.upper + BOUND_TOL)
        for i, k in zip(*np.nonzero(outside)):
            start_outside.append({"subject": int(a + i), "state": model.state_names[k], "value": float(y0[i, k])})
        recs = integrate(model, grid, y0, p, ev, names, stats=st)
        for prob in check_subjects(model, names, recs, st["y_final"], st["status"]):
            prob["subject"] += a
            problems.append(prob)
        failed += int((st["status"] != STATUS_OK).sum())
        with np.errstate(invalid="ignore"):
            lo = np.fmin(lo, np.nanmin(recs, axis=(0, 1)))
            hi = np.fmax(hi, np.nanmax(recs, axis=(0, 1)))
        steps.append(st["steps"])
        if progress:
            print(f"  {a + n - first}/{n_subjects} subjects, {len(problems)} problems, "
                  f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    steps = np.concatenate(steps) if steps else np.zeros(0)
    new = [p for p in problems if not p.get("known")]
    known = [p for p in problems if p.get("known")]
    return {"subjects": n_subjects, "first": first, "seed": seed, "scenario": sc.name, "duration": sc.duration,
            "record_every": sc.record_every, "subjects_with_problems": len({p["subject"] for p in new}),
            "subjects_with_known_findings": len({p["subject"] for p in known}),
            "known_findings": {nm: min((p["value"] for p in problems if p["problem"].startswith(nm + " ")),
                                       default=None) for nm in KNOWN_FINDINGS},
            "subjects_failed": failed, "problems": new[:50],
            "subjects_starting_outside_bounds": len({q["subject"] for q in start_outside}),
            "starting_outside_bounds": start_outside[:50],
            "extremes": {nm: [float(lo[j]), float(hi[j])] for j, nm in enumerate(names)},
            "steps_per_subject": steps.astype(int).tolist(),
            "steps_median": float(np.median(steps)) if steps.size else 0.0,
            "steps_max": int(steps.max()) if steps.size else 0,
            "seconds": round(time.perf_counter() - t0, 1)}


def reference_errors(subjects: list[int], seed: int = 0, scenario: Scenario | None = None,
                     readouts: tuple[str, ...] = KEY_READOUTS, progress: bool = False) -> dict[str, Any]:
    """Engine vs the Radau reference (rtol 1e-8) for the given random subjects: per readout and
    subject, the largest pointwise |engine − reference| relative to the readout's largest magnitude
    in that subject's reference run, and the relative error of its extreme (peak or nadir)."""
    model = default_model()
    sc = scenario or stress_scenario()
    grid = make_grid(sc.duration_min, sc.record_every_min)
    pointwise = {r: [] for r in readouts}
    extreme = {r: [] for r in readouts}
    worst_subject = {r: None for r in readouts}
    t0 = time.perf_counter()
    for k, s in enumerate(subjects):
        p = random_parameters(model, sc, 1, seed, first=s)
        ev = compile_doses(model, sc.doses, sc.duration_min, grid.h, p)
        y0 = model.initial_state(p)
        fast = integrate(model, grid, y0, p, ev, readouts)[0]
        ref = simulate_reference(model, y0, p, ev, 0, grid.h, grid.record_times_min, readouts)
        for j, r in enumerate(readouts):
            scale = np.max(np.abs(ref[:, j]))
            if not scale > 0:
                continue
            e = float(np.max(np.abs(fast[:, j] - ref[:, j])) / scale)
            if not pointwise[r] or e > max(pointwise[r]):
                worst_subject[r] = s
            pointwise[r].append(e)
            up = np.max(ref[:, j]) - ref[0, j] >= ref[0, j] - np.min(ref[:, j])
            want = np.max(ref[:, j]) if up else np.min(ref[:, j])
            got = np.max(fast[:, j]) if up else np.min(fast[:, j])
            extreme[r].append(float(abs(got - want) / scale))
        if progress:
            print(f"  reference {k + 1}/{len(subjects)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr,
                  flush=True)
    table = {}
    for r in readouts:
        if pointwise[r]:
            table[r] = {"median_pointwise": float(np.median(pointwise[r])), "worst_pointwise": float(np.max(pointwise[r])),
                        "median_extreme": float(np.median(extreme[r])), "worst_extreme": float(np.max(extreme[r])),
                        "worst_subject": worst_subject[r], "n": len(pointwise[r])}
    return {"subjects": list(map(int, subjects)), "seed": seed, "errors": table,
            "seconds": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m opioidsim.reliability",
                                 description="Random physiology and engine error against the reference.")
    ap.add_argument("--subjects", type=int, default=10_000)
    ap.add_argument("--reference", type=int, default=40, help="random subjects also run on the Radau reference")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--duration", default="24h",
                    help="length of the stress scenario (default 24h: every drug); a shorter one keeps the doses "
                         "given before its end")
    ap.add_argument("--compressed", action="store_true",
                    help="the stress scenario's ten doses within 4 h (compressed_stress_scenario) instead of 24 h")
    ap.add_argument("--first", type=int, default=0,
                    help="first subject number: runs subjects FIRST … FIRST+SUBJECTS−1 (split a large run into "
                         "ranges run side by side; a subject is the same in any range)")
    ap.add_argument("--json", metavar="FILE", default=None)
    args = ap.parse_args(argv)
    if args.subjects < 0 or args.first < 0 or args.reference < 0 or args.batch < 1:
        ap.error("--subjects, --first and --reference must be ≥ 0 and --batch ≥ 1")
    if args.compressed and args.duration != "24h":
        ap.error("--compressed has its own length (4 h): leave out --duration")
    scenario = compressed_stress_scenario() if args.compressed else stress_scenario(duration=args.duration)
    phys = run_physiology(args.subjects, args.seed, args.batch, scenario=scenario, progress=True, first=args.first)
    print(f"random physiology: {phys['subjects']} subjects, {phys['subjects_with_problems']} with a new problem "
          f"({phys['subjects_with_known_findings']} with a known finding: {phys['known_findings']}), "
          f"{phys['subjects_failed']} failed; {phys['seconds']} s; steps per subject median "
          f"{phys['steps_median']:.0f}, max {phys['steps_max']}")
    for prob in phys["problems"][:10]:
        print("  ", prob)
    if phys["subjects_starting_outside_bounds"]:
        print(f"{phys['subjects_starting_outside_bounds']} subjects rest outside a state's declared bounds and run "
              f"clamped to them, e.g. {phys['starting_outside_bounds'][:3]}")
    rng = np.random.default_rng(args.seed)
    sample = sorted((args.first + rng.choice(args.subjects, size=min(args.reference, args.subjects),
                                             replace=False)).tolist())
    ref = reference_errors(sample, args.seed, scenario=scenario, progress=True)
    print(f"engine vs Radau reference, {len(sample)} of the random subjects ({ref['seconds']} s):")
    print(f"{'readout':26} {'median':>9} {'worst':>9} {'median':>9} {'worst':>9}  worst subject")
    print(f"{'':26} {'pointwise':>9} {'pointwise':>9} {'extreme':>9} {'extreme':>9}")
    for r, e in ref["errors"].items():
        print(f"{r:26} {e['median_pointwise']:9.2e} {e['worst_pointwise']:9.2e} {e['median_extreme']:9.2e} "
              f"{e['worst_extreme']:9.2e}  {e['worst_subject']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"physiology": phys, "reference": ref}, indent=2) + "\n")
    return 1 if phys["subjects_with_problems"] else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
