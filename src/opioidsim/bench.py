"""`opioidsim bench`: the engine's speed and accuracy on one standard scenario, measured side by side.

The standard scenario is a cohort in daily heroin use for 30 days (20 mg IV three times a day),
genetic and between-subject variability on, recorded hourly. In one process and one run:

- **engine**: the batched, adaptive engine (its default method, ROS34PW2) on the whole cohort, in
  subject-days per second.
  Compilation (or loading the compiled program from the persistent cache) runs first on a short run
  of the same shapes and is reported apart;
- **scipy path**: the Radau reference (`simulate_reference`), one subject at a time, at its
  production tolerance (rtol 1e-6), on the first `reference_subjects` subjects; the solver's time
  only (the JAX tracing of its vector field is reported apart);
- **libRoadRunner** on the exported SBML (`opioidsim.io.sbml`), doses as events: one RoadRunner
  instance (CVODE at the scipy path's production tolerance, rtol 1e-6; export and LLVM compilation
  reported apart), per subject reset, given that subject's parameters and initial state (the same
  as the engine's), and run over the same record times, on the first `roadrunner_subjects` of the
  cohort (4 by default: one subject at a time, so the rate does not depend on how many); its error
  against the same Radau reference is reported too;
- **accuracy**: for subject 0, the engine against a Radau rtol 1e-8 reference on the key
  readouts, each error relative to the reference's largest magnitude of that readout;
- **how close to the machine**: state updates per second (attempted steps × states) of the engine,
  against the same machine's throughput for the simplest possible update of the same states
  (y ← a·y + b, jit-compiled, in place), measured in the same process.

Timings depend on the machine and on what else it runs: compare ratios from one run, not seconds
across machines. Used by `opioidsim bench` and `benchmarks/`.
"""
from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass

import numpy as np

#: the readouts whose accuracy is reported: one per mechanism a chronic course is about
KEY_READOUTS = ("mor_occupancy_vta", "nac_dopamine", "hedonic_state", "ventilation", "pain", "camp_lc", "crf",
                "cows", "mor_capacity_vta", "d2_density", "da_stores", "hedonic_set_point")
REFERENCE_RTOL = 1e-8
SCIPY_PATH_RTOL = 1e-6


@dataclass(frozen=True)
class BenchConfig:
    subjects: int = 256
    days: float = 30.0
    reference_subjects: int = 1
    seed: int = 0
    #: subjects of the cohort run in libRoadRunner (the first ones; it runs one subject at a time, so
    #: its subject-days per second do not depend on how many): 4 subjects × 30 days take minutes on 2 cores,
    #: the whole cohort of 256 hours
    roadrunner_subjects: int = 4
    #: times each path is run, in turn (engine, scipy, libRoadRunner, engine, ...); each keeps its
    #: fastest run. This machine's speed drifts by up to 2× within minutes (benchmarks/README.md,
    #: *The inverses*), which a single run of each path puts straight into their ratios
    rounds: int = 1

    @classmethod
    def quick(cls) -> "BenchConfig":
        return cls(subjects=4, days=2.0, reference_subjects=1)


def standard_scenario(cfg: BenchConfig):
    from .scenarios import Dose, Scenario

    return Scenario(name="bench-daily-heroin", duration=f"{cfg.days:g}d", record_every="1h",
                    description="daily IV heroin, 20 mg three times a day, variability on",
                    cohort={"subjects": cfg.subjects, "seed": cfg.seed},
                    doses=[Dose("heroin", "20 mg", route="iv", at="8h", every="8h", until=f"{cfg.days:g}d")])


def _setup(model, sc):
    from .engine import make_grid, subject_parameters
    from .engine.dosing import compile_doses

    grid = make_grid(sc.duration_min, sc.record_every_min)
    p = subject_parameters(model, sc, sc.cohort.subjects, sc.cohort.seed)
    events = compile_doses(model, sc.doses, sc.duration_min, grid.h, p)
    return grid, p, events, model.initial_state(p)


def _engine(model, sc, setup, names) -> tuple[dict, np.ndarray]:
    from .engine import integrate, make_grid

    grid, p, events, y0 = setup
    short = make_grid(sc.record_every_min, sc.record_every_min)
    t0 = time.perf_counter()
    integrate(model, short, y0, p, events, names)  # compile (or load from the cache)
    compile_s = time.perf_counter() - t0
    stats: dict = {}
    t0 = time.perf_counter()
    records = integrate(model, grid, y0, p, events, names, stats=stats)
    run_s = time.perf_counter() - t0
    days = sc.cohort.subjects * sc.duration_min / 1440.0
    updates = float(stats["steps"].sum()) * model.n_states
    whole = getattr(model, "full", model).n_states
    devices = stats["devices"]
    note = "; ".join(
        ([f"integrates {model.n_states} of the model's {whole} states: no dose reaches the rest "
          "(engine/inert.py)"] if model.n_states < whole else [])
        + ([f"its subjects split over {devices} devices, one per core (engine/devices.py)"] if devices > 1 else []))
    return {"path": "engine (ROS34PW2, batched, adaptive)", "note": note, "subjects": sc.cohort.subjects,
            "devices": devices,
            "compile_s": compile_s, "run_s": run_s, "subject_days_per_s": days / run_s,
            "state_updates_per_s": updates / run_s,
            "steps_per_subject_day": float(stats["steps"].mean()) / (sc.duration_min / 1440.0)}, records


class SolverClock:
    """Stands in for the reference module's `solve_ivp`: evaluates the vector field and its Jacobian
    once (so that their JAX tracing and compilation happen outside the clock), then times the
    solver. `seconds` accumulates over calls."""

    def __init__(self, solve_ivp):
        self.solve_ivp, self.seconds = solve_ivp, 0.0

    def __call__(self, fun, t_span, y0, **kw):
        y = np.asarray(y0, dtype=float)
        for t in (float(t_span[0]), np.float64(t_span[0])):  # JAX compiles once per argument type
            fun(t, y)
            if callable(kw.get("jac")):
                kw["jac"](t, y)
        t0 = time.perf_counter()
        try:
            return self.solve_ivp(fun, t_span, y0, **kw)
        finally:
            self.seconds += time.perf_counter() - t0


def _reference(model, setup, names, subjects: range, rtol: float, atol: float) -> tuple[dict, list[np.ndarray]]:
    """Radau one subject at a time; the clock covers solve_ivp only (JAX tracing is warmed first)."""
    from .engine import reference

    grid, p, events, y0 = setup
    clock = SolverClock(reference.solve_ivp)
    reference.solve_ivp = clock
    out = []
    t0 = time.perf_counter()
    try:
        for s in subjects:
            out.append(reference.simulate_reference(model, y0, p, events, s, grid.h, grid.record_times_min, names,
                                                    rtol=rtol, atol=atol))
    finally:
        reference.solve_ivp = clock.solve_ivp
    total = time.perf_counter() - t0
    days = len(subjects) * grid.record_times_min[-1] / 1440.0
    return {"path": f"scipy Radau, one subject at a time (rtol {rtol:g})", "subjects": len(subjects),
            "compile_s": total - clock.seconds, "run_s": clock.seconds,
            "subject_days_per_s": days / clock.seconds}, out


def _roadrunner(model, sc, setup, names, subjects: range) -> tuple[dict, np.ndarray]:
    """libRoadRunner on the exported SBML, doses as events: one instance (its LLVM compilation is
    reported apart), per subject reset + that subject's parameters and initial state + simulate,
    over the same record times as the engine, for `subjects` of its cohort."""
    from .io.roadrunner import IsolatedRoadRunner
    from .io.sbml import export_sbml

    grid, p, _events, y0 = setup
    t0 = time.perf_counter()
    export = export_sbml(model, sc, check=False)
    export_s = time.perf_counter() - t0
    # libRoadRunner runs in a child process (its LLVM beside XLA's aborted JAX: io/roadrunner.py);
    # run_s is the child's own simulation time, compile_s the export plus the child's LLVM build
    with IsolatedRoadRunner(export, names, rtol=SCIPY_PATH_RTOL, atol=1e-8) as rr:
        records = rr.simulate_cohort(grid.record_times_min, p, y0, model.state_names, subjects)
        run_s, compile_s = rr.last_run_s, export_s + rr.compile_s
    days = len(subjects) * sc.duration_min / 1440.0
    return {"path": "libRoadRunner, exported SBML (CVODE)", "subjects": len(subjects),
            "compile_s": compile_s, "run_s": run_s, "subject_days_per_s": days / run_s,
            "note": f"rtol {rr.rtol:g}, atol {rr.atol:g} per state; compile = export + LLVM"}, records


def machine_update_ceiling(n_states: int, subjects: int, repeats: int = 200) -> float:
    """State updates per second of the simplest update y ← a·y + b over (subjects, n_states) float64,
    jit-compiled and looped on the devices, the subjects split between them as the engine's are
    (engine/devices.py): what this machine does when a step costs nothing."""
    import jax

    from .engine.devices import available, padded_rows, shards_for, split_by_subject

    shards = shards_for(subjects, available())
    subjects = padded_rows(subjects, shards)

    def body(y):
        return jax.lax.fori_loop(0, repeats, lambda i, v: 0.999 * v + 1e-3, y)

    loop, place = split_by_subject(jax.jit(body), shards, (0,), 0)
    y = place(np.ones((subjects, n_states)))
    loop(y).block_until_ready()
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        loop(y).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return subjects * n_states * repeats / best


def accuracy(records: np.ndarray, ref: np.ndarray, names: tuple) -> dict[str, float]:
    """Largest pointwise error of each key readout, relative to the reference's largest magnitude."""
    out = {}
    for name in KEY_READOUTS:
        if name in names:
            i = names.index(name)
            scale = float(np.max(np.abs(ref[:, i])))
            out[name] = float(np.max(np.abs(records[:, i] - ref[:, i]))) / max(scale, 1e-300)
    return out


def _fastest_round(rows: list[dict]) -> dict:
    """A path's row of its fastest round, with the first round's compile time (later rounds reuse
    the compiled program) and every round's run time."""
    best = min(rows, key=lambda r: r["run_s"])
    return {**best, "compile_s": rows[0]["compile_s"], "run_s_rounds": [r["run_s"] for r in rows]}


def run_bench(cfg: BenchConfig, progress=print) -> dict:
    import jax

    from .model import default_model

    if cfg.subjects < 1 or cfg.reference_subjects < 1 or cfg.reference_subjects > cfg.subjects or cfg.days <= 0 \
            or cfg.roadrunner_subjects < 1 or cfg.rounds < 1:
        raise ValueError(f"bench needs subjects ≥ 1, 1 ≤ reference_subjects ≤ subjects, days > 0 and rounds ≥ 1, "
                         f"got {cfg}")
    from .engine.core import run_model

    model = default_model()
    sc = standard_scenario(cfg)
    setup = _setup(model, sc)
    # the engine integrates the model as `simulate` does, without the states no dose reaches; the
    # reference paths the whole model
    engine_model = run_model(sc, model)
    engine_setup = _setup(engine_model, sc)
    names = tuple(n for n in KEY_READOUTS if n in model.readouts)
    rr_subjects = range(min(cfg.roadrunner_subjects, cfg.subjects))
    runs: dict[str, list[dict]] = {"engine": [], "scipy": [], "roadrunner": []}
    records: dict[str, np.ndarray] = {}  # the first round's (every round gives the same)
    for k in range(cfg.rounds):
        of = f" (round {k + 1} of {cfg.rounds})" if cfg.rounds > 1 else ""
        progress(f"engine: {cfg.subjects} subjects × {cfg.days:g} days{of} …")
        row, recs = _engine(engine_model, sc, engine_setup, names)
        runs["engine"].append(row)
        records.setdefault("engine", recs)
        progress(f"scipy path: {cfg.reference_subjects} subject(s) at rtol {SCIPY_PATH_RTOL:g}{of} …")
        runs["scipy"].append(_reference(model, setup, names, range(cfg.reference_subjects), SCIPY_PATH_RTOL, 1e-8)[0])
        progress(f"libRoadRunner: {len(rr_subjects)} subject(s) × {cfg.days:g} days on the exported SBML{of} …")
        row, recs = _roadrunner(model, sc, setup, names, rr_subjects)
        runs["roadrunner"].append(row)
        records.setdefault("roadrunner", recs)
    progress(f"accuracy reference: subject 0 at rtol {REFERENCE_RTOL:g} …")
    _, (ref,) = _reference(model, setup, names, range(1), REFERENCE_RTOL, 1e-10)
    errors = accuracy(records["engine"][0], ref, names)
    rr_errors = accuracy(records["roadrunner"][0], ref, names)
    engine_row, scipy_row, rr_row = (_fastest_round(runs[path]) for path in ("engine", "scipy", "roadrunner"))
    rr_row["max_relative_error"] = max(rr_errors.values())
    per_round = {other: [e["subject_days_per_s"] / o["subject_days_per_s"] for e, o in zip(runs["engine"], runs[other])]
                 for other in ("scipy", "roadrunner")}
    ceiling = machine_update_ceiling(engine_model.n_states, cfg.subjects)
    return {
        "scenario": sc.description, "subjects": cfg.subjects, "days": cfg.days, "rounds": cfg.rounds,
        "engine_subject_days_per_s": engine_row["subject_days_per_s"],
        "engine_devices": engine_row["devices"],
        "scipy_subject_days_per_s": scipy_row["subject_days_per_s"],
        "roadrunner_subject_days_per_s": rr_row["subject_days_per_s"],
        "engine_over_scipy": engine_row["subject_days_per_s"] / scipy_row["subject_days_per_s"],
        "engine_over_roadrunner": engine_row["subject_days_per_s"] / rr_row["subject_days_per_s"],
        "engine_over_scipy_rounds": per_round["scipy"], "engine_over_roadrunner_rounds": per_round["roadrunner"],
        "roadrunner_max_relative_error": rr_row["max_relative_error"],
        "max_relative_error": max(errors.values()),
        "errors": errors,
        "state_updates_per_s": engine_row["state_updates_per_s"],
        "machine_state_updates_per_s": ceiling,
        "fraction_of_machine": engine_row["state_updates_per_s"] / ceiling,
        "rows": [engine_row, scipy_row, rr_row],
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "jax": jax.__version__,
                    "backend": jax.default_backend(), "cpus": os.cpu_count()},
    }


def _fmt(x, width: int) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–".rjust(width)
    return (f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}").rjust(width)


def format_table(result: dict) -> str:
    lines = [f"opioidsim bench: {result['subjects']} subjects × {result['days']:g} days, {result['scenario']}",
             f"jax {result['machine']['jax']} on {result['machine']['backend']}, {result['machine']['cpus']} CPUs", ""]
    widths = (48, 9, 10, 10, 16)
    head = ("path", "subjects", "compile s", "run s", "subject-days/s")
    lines.append("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths))))
    lines.append("  ".join("-" * w for w in widths))
    for r in result["rows"]:
        lines.append("  ".join([r["path"].ljust(widths[0]), str(r["subjects"]).rjust(widths[1]),
                                _fmt(r["compile_s"], widths[2]), _fmt(r["run_s"], widths[3]),
                                _fmt(r["subject_days_per_s"], widths[4])]))
        if r.get("note"):
            lines.append(f"    {r['note']}")
    def spread(key):  # the ratio of each round, where there were several
        rounds = result.get(f"{key}_rounds", [])
        return f" (rounds: {min(rounds):,.3g}-{max(rounds):,.3g}×)" if len(rounds) > 1 else ""

    if result.get("rounds", 1) > 1:
        lines.append(f"    fastest of {result['rounds']} runs of each path, taken in turn")
    lines += ["", f"ratio engine / scipy path: {result['engine_over_scipy']:,.1f}×{spread('engine_over_scipy')}",
              f"ratio engine / libRoadRunner: {result['engine_over_roadrunner']:,.2f}×{spread('engine_over_roadrunner')} "
              f"(libRoadRunner vs Radau rtol {REFERENCE_RTOL:g}, subject 0: {result['roadrunner_max_relative_error']:.1e})",
              f"state updates per second: engine {result['state_updates_per_s']:.3g}, machine ceiling (y ← a·y + b) "
              f"{result['machine_state_updates_per_s']:.3g}: {100 * result['fraction_of_machine']:.2g} % of it",
              "", f"engine vs Radau rtol {REFERENCE_RTOL:g}, subject 0 (largest error / largest magnitude):"]
    lines += [f"  {name:<22}{err:10.2e}" for name, err in result["errors"].items()]
    return "\n".join(lines)
