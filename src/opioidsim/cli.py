"""The ``opioidsim`` command.

One function per subcommand (``cmd_<name>(args) -> int``), registered in ``_build_parser``;
later subcommands (bench, trial, explore, export-sbml) slot in the same way.

Bad input (a scenario problem, a unit that can't be read, a bad flag) prints ONE line,
``opioidsim: error: <message>``, on stderr and exits with code 2; nothing is run or written.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from opioidsim.errors import OutputExistsError, ScenarioError
from opioidsim.units import UnitError

PROG = "opioidsim"

DESCRIPTION = """\
opioidsim simulates the brain under heroin and other opioids: how a dose given into a vein,
smoked or snorted reaches the brain, occupies mu-opioid receptors, raises dopamine in the
nucleus accumbens, relieves pain and depresses breathing (overdose, naloxone rescue), in one
virtual subject or a cohort of many. Scenarios are TOML files or built-in names; each run writes
a results folder (NetCDF data, summary table, HTML report, the scenario, version and seed).

Research and teaching use only: opioidsim is not medical advice and never a dosing guide for a
person."""

EPILOG = """\
examples:
  opioidsim scenarios                                   list the built-in scenarios
  opioidsim run acute-heroin-iv --out out/demo          run one, write results to out/demo
  opioidsim run my-scenario.toml --out out/x --subjects 100 --seed 7
  opioidsim validate --only V-AC                        compare with published findings

'opioidsim COMMAND --help' explains one command."""

MAX_SUBJECTS = 1_000_000
MAX_SEED = 2**32 - 1


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


class Unavailable(Exception):
    """A part of opioidsim this command needs cannot be imported (exit code 1, one line)."""


class Failed(Exception):
    """The command could not finish for a reason outside the input (exit code 1, one line)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line (raised, so main() decides what happens)."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)


# ---------------------------------------------------------------------------------------------
# flag types
# ---------------------------------------------------------------------------------------------
def _int_range(lo: int, hi: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""), 10)
        except (ValueError, AttributeError):
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {lo:,} to {hi:,} (got {text!r})") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {lo:,} to {hi:,} (got {text!r})")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


def _results_folder(text: str) -> str:
    """--out DIR of a command that creates a results folder: a folder name, not '', '.', '..' or '/'
    (results replace the folder as a whole, so it must be a folder of its own)."""
    name = os.path.basename(os.path.normpath(text)) if text.strip() else ""
    if not name or name in (".", "..") or "\x00" in text:
        raise argparse.ArgumentTypeError(f"must name a results folder, such as out/my-run (got {text!r})")
    return text


def _number(what: str) -> Callable[[str], float]:
    """Any finite number (the range is the scenario's to check, so that it says it once)."""
    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except (ValueError, AttributeError):
            value = math.nan
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a number, e.g. 1e-5 (got {text!r})")
        return value

    parse.__name__ = what
    return parse


def _float_range(lo: float, hi: float, what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except (ValueError, AttributeError):
            value = math.nan
        if not lo <= value <= hi:  # also false for NaN
            raise argparse.ArgumentTypeError(f"must be a number from {lo:g} to {hi:g} (got {text!r})")
        return value

    parse.__name__ = what
    return parse


# ---------------------------------------------------------------------------------------------
# indirections (tests replace these; they also keep the heavy imports lazy)
# ---------------------------------------------------------------------------------------------
def _simulate(scenario: Any, progress: Callable[[float], None]) -> Any:
    """Run the engine: ``opioidsim.engine.simulate(scenario, progress=callback)`` → Dataset.

    The run's checkpoint (if any) travels as ``progress.checkpoint`` (see `_Progress`), so that
    this indirection keeps its two-argument form."""
    try:
        from opioidsim.engine import simulate
    except ImportError as exc:
        raise Unavailable(f"the simulation engine cannot be loaded ({exc})") from exc
    checkpoint = getattr(progress, "checkpoint", None)
    if getattr(scenario, "paradigm", None) is not None:  # an animal experiment: the behaviour layer
        from opioidsim.behavior import simulate_paradigm

        return simulate_paradigm(scenario, progress=progress, checkpoint=checkpoint)
    if getattr(scenario, "trial", None) is not None:  # a virtual clinical trial
        from opioidsim.trial.simulate import simulate_trial

        return simulate_trial(scenario, progress=progress, checkpoint=checkpoint)
    if getattr(scenario, "life", None) is not None:  # a human life course
        from opioidsim.behavior.course import simulate_life

        return simulate_life(scenario, progress=progress, checkpoint=checkpoint)
    if checkpoint is None:
        return simulate(scenario, progress=progress)
    return simulate(scenario, progress=progress, checkpoint=checkpoint)


def _run_validation(only: Optional[str], reduced: bool = False,
                    parameters: Optional[dict[str, Any]] = None) -> list[dict[str, Any]]:
    try:
        from opioidsim.validation import run_validation
    except ImportError as exc:
        raise Unavailable(f"the validation targets cannot be loaded ({exc})") from exc
    return run_validation(only=only, reduced=reduced, parameters=parameters)


def _report_helpers() -> tuple[Callable[[Any], Any], Optional[Callable[[Any, Path, str], None]]]:
    """(summary_table, report_writer) from opioidsim.report, with plain fallbacks."""
    try:
        import opioidsim.report as report  # noqa: WPS433 (lazy on purpose)
    except ImportError:
        report = None
    summary_table = getattr(report, "summary_table", None) or fallback_summary_table
    report_writer = getattr(report, "write_report", None) or _fallback_report
    return summary_table, report_writer


# ---------------------------------------------------------------------------------------------
# fallbacks (used only until/unless opioidsim.report provides the real ones)
# ---------------------------------------------------------------------------------------------
def fallback_summary_table(ds: Any):
    """Per readout: baseline, extreme (max or min) across subjects, time of extreme, final.

    Same columns as ``opioidsim.report.summary_table``, used when that is not importable.
    """
    import numpy as np
    import pandas as pd

    t = ds["time"].values
    if np.issubdtype(t.dtype, np.timedelta64):
        t_min = t / np.timedelta64(1, "m")
    else:
        t_min = np.asarray(t, dtype=float)
    rows = []
    for name, var in ds.data_vars.items():
        if "time" not in var.dims:
            continue
        other = [d for d in var.dims if d not in ("subject", "time")]
        if other:
            continue
        arr = var.transpose(*(d for d in ("subject", "time") if d in var.dims)).values
        arr = np.atleast_2d(np.asarray(arr, dtype=float))
        if arr.size == 0:
            continue
        base = arr[:, 0]
        rise = np.nanmax(arr, axis=1) - base
        fall = base - np.nanmin(arr, axis=1)
        kind = "max" if np.nanmedian(rise) >= np.nanmedian(fall) else "min"
        idx = np.nanargmax(arr, axis=1) if kind == "max" else np.nanargmin(arr, axis=1)
        ext = arr[np.arange(arr.shape[0]), idx]
        rows.append({
            "readout": name,
            "units": var.attrs.get("units", ""),
            "baseline_median": float(np.nanmedian(base)),
            "peak_median": float(np.nanmedian(ext)),
            "peak_p10": float(np.nanpercentile(ext, 10)),
            "peak_p90": float(np.nanpercentile(ext, 90)),
            "time_of_peak_median_min": float(np.nanmedian(t_min[idx])),
            "final_median": float(np.nanmedian(arr[:, -1])),
            "kind": kind,
        })
    return pd.DataFrame(rows, columns=[
        "readout", "units", "baseline_median", "peak_median", "peak_p10", "peak_p90",
        "time_of_peak_median_min", "final_median", "kind"])


def _fallback_report(ds: Any, path: Path, scenario_toml: str) -> None:
    import html

    table = fallback_summary_table(ds)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>opioidsim results</title></head>"
        "<body><h1>opioidsim results</h1>"
        "<p><strong>Research and teaching use only: never a dosing guide.</strong></p>"
        f"<h2>Summary</h2>{table.to_html(index=False, float_format=lambda x: f'{x:.4g}')}"
        f"<h2>Scenario</h2><pre>{html.escape(scenario_toml)}</pre></body></html>\n"
    )
    Path(path).write_text(page, encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# printing helpers
# ---------------------------------------------------------------------------------------------
def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, (int, float)) or hasattr(x, "item"):
        try:
            v = float(x)
        except (TypeError, ValueError):
            return str(x)
        if math.isnan(v):
            return "nan"
        return f"{v:.4g}"
    return str(x)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# subcommands
# ---------------------------------------------------------------------------------------------
def cmd_scenarios(args: argparse.Namespace) -> int:
    from opioidsim.scenarios import builtin_scenarios, load_scenario

    if args.name:
        print(load_scenario(args.name).to_toml(), end="")
        return 0
    items = builtin_scenarios()
    width = max((len(n) for n in items), default=0)
    for name, desc in items.items():
        print(f"{name.ljust(width)}  {desc}")
    print(f"\nrun one with: {PROG} run NAME --out DIR   (show its TOML: {PROG} scenarios NAME)")
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    from opioidsim.overrides import READ_BY, SET_ELSEWHERE, declared, known_parameters, parameter_layer

    known = known_parameters()
    if args.csv:  # the whole table (or the names containing TEXT), for a paper's supplement
        import csv

        text = (args.text or "").lower()
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["name", "value", "unit", "cv", "source", "cv_source", "note", "set_by", "read_by"])
        for name, par in sorted(known.items()):
            if text in name.lower():
                writer.writerow([name, f"{par.value:.12g}", par.unit, f"{par.cv:g}", par.source, par.cv_source,
                                 par.note, SET_ELSEWHERE.get(name, "[parameters]"), parameter_layer(name)])
        return 0
    if args.text in known:  # one parameter, whole
        par = known[args.text]
        print(f"{par.name}: {declared(par)}" + (f" (between-subject cv {par.cv:g}: {par.cv_source})"
                                                         if par.cv else ""))
        print(f"source: {par.source}")
        if par.note:
            print(f"note: {par.note}")
        where = SET_ELSEWHERE.get(par.name)
        print(f"set by {where}" if where else f"set it with [parameters] {par.name} = ... or --set {par.name}=...")
        print(f"read by {READ_BY[parameter_layer(par.name)]}")
        return 0
    text = (args.text or "").lower()
    rows = [par for name, par in sorted(known.items()) if text in name.lower()]
    if not rows:
        raise UsageError(f"no parameter name contains {args.text!r}; '{PROG} params' lists them all")
    width = max(len(par.name) for par in rows)
    for par in rows:
        source = par.source if len(par.source) <= 90 else par.source[:89] + "…"
        print(f"{par.name.ljust(width)}  {declared(par):<16}  {source}")
    print(f"\n{len(rows)} parameter{'s' if len(rows) != 1 else ''}; one in full: {PROG} params NAME; set one: [parameters] in a scenario "
          f"or --set NAME=VALUE")
    return 0


class _Progress:
    """The progress callback of `run` (a tqdm bar), carrying the run's checkpoint."""

    def __init__(self, bar: Any, checkpoint: Any = None) -> None:
        self.bar = bar
        self.checkpoint = checkpoint

    def __call__(self, fraction: float) -> None:
        try:
            target = int(round(min(max(float(fraction), 0.0), 1.0) * 1000))
        except (TypeError, ValueError):
            return
        if target > self.bar.n:
            self.bar.update(target - self.bar.n)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an exception so that the run saves its checkpoint and cleans up."""


def _on_sigterm(signum, frame):  # pragma: no cover - exercised through a subprocess
    raise _Terminated()


INCOMPLETE_SUFFIX = ".incomplete"
INCOMPLETE_NOTE = "INCOMPLETE.txt"


def incomplete_dir(out: str | Path) -> Path:
    """Where an interrupted run into ``out`` keeps its progress: ``<out>.incomplete``."""
    out = Path(str(out).rstrip("/\\") or ".")
    return out.with_name(out.name + INCOMPLETE_SUFFIX)


def _resume_target(text: str) -> tuple[Path, Path]:
    """(results folder, its .incomplete folder) for ``--resume TEXT`` (either may be given)."""
    path = Path(text.rstrip("/\\") or ".")
    if path.name.endswith(INCOMPLETE_SUFFIX) and len(path.name) > len(INCOMPLETE_SUFFIX):
        return path.with_name(path.name[: -len(INCOMPLETE_SUFFIX)]), path
    return path, incomplete_dir(path)


def _fingerprint(scenario: Any) -> dict[str, Any]:
    from opioidsim.io.results import package_version

    return {"scenario_toml": scenario.to_toml(), "opioidsim_version": package_version()}


def _with_solver_flags(scenario: Any, args: argparse.Namespace) -> Any:
    """The scenario with --rtol / --smallest-step / --method / --records in its [solver] table; a
    bad value is one line naming the flag."""
    rtol, step = getattr(args, "rtol", None), getattr(args, "smallest_step", None)  # `trial` has neither
    method, records = getattr(args, "method", None), getattr(args, "records", None)
    if rtol is None and step is None and method is None and records is None:
        return scenario
    try:
        return scenario.with_solver(rtol=rtol, smallest_step=step, method=method, records=records)
    except ScenarioError as exc:
        flag = {"solver.rtol": "--rtol", "solver.smallest_step": "--smallest-step",
                "solver.method": "--method", "solver.records": "--records"}.get(exc.field)
        if flag is None:
            raise
        raise UsageError(f"{flag} {exc.value!r}: {exc.allowed}") from None


def _with_parameter_flags(scenario: Any, args: argparse.Namespace) -> Any:
    """The scenario with each --set NAME=VALUE in its [parameters]; a bad one is one line naming
    the flag, the value and what is allowed."""
    settings = _set_flags(args)
    if not settings:
        return scenario
    with _set_flag_errors():
        return scenario.with_parameters(settings)


@contextmanager
def _set_flag_errors():
    """A ScenarioError of parameters.NAME as one line naming --set NAME=VALUE."""
    try:
        yield
    except ScenarioError as exc:
        if not exc.field.startswith("parameters."):
            raise
        raise UsageError(f"--set {exc.field.split('.', 1)[1]}={exc.value!r}: {exc.allowed}") from None


def _set_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The --set NAME=VALUE flags as name → value (a number, or a quantity's text for the
    scenario's check); a flag without NAME=VALUE is one line saying how to write it."""
    given = getattr(args, "set_parameters", None) or []
    settings: dict[str, Any] = {}
    for item in given:
        name, eq, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not eq or not name or not text:
            raise UsageError(f"--set {item!r}: write NAME=VALUE, e.g. --set quit_brake=0.5 or "
                             "--set \"heroin_clearance=120 L/h\"")
        try:
            settings[name] = float(text)
        except ValueError:
            settings[name] = text  # a quantity with a unit (checked by the scenario)
    return settings


def _accuracy_note(ds: Any) -> Optional[str]:
    """One line when steps of the smallest size were accepted above the tolerance
    (`steps_over_tolerance` of the results): the run is less accurate than rtol says there.
    Read before the results are written (a Dask run's store is moved then)."""
    import numpy as np

    if "steps_over_tolerance" not in getattr(ds, "coords", {}):
        return None
    over = np.asarray(ds["steps_over_tolerance"].values)
    if not over.any():
        return None
    rtol = ds.attrs.get("solver_rtol")
    step_rtol = ds.attrs.get("solver_step_rtol", rtol)
    tolerance = f"rtol {rtol:g}" if step_rtol == rtol else \
        f"the steps' tolerance {step_rtol:g} (rtol {rtol:g} tightened, the records being interpolated)"
    step_s = 60.0 * float(ds.attrs.get("integration_step_min", np.nan))
    return (f"note: {int(over.sum()):,} steps in {int(np.count_nonzero(over)):,} of {over.size:,} subjects "
            f"were taken at the smallest step ({step_s:g} s, or a sub-step of it) with an error estimate "
            f"above {tolerance}, typically just after an IV dose; a smaller [solver] smallest_step "
            "(--smallest-step) makes the run more accurate there (docs/guide/11-engine.md)")


def cmd_run(args: argparse.Namespace) -> int:
    import shutil

    from opioidsim.io.checkpoint import Checkpoint
    from opioidsim.io.results import check_out_dir, package_version, write_results
    from opioidsim.scenarios import Scenario, load_scenario

    overwrite = args.overwrite
    spec = _dask_spec(args)  # None: one process
    chunk_subjects = args.chunk_subjects
    if args.resume is not None:
        if args.scenario is not None or args.subjects is not None or args.seed is not None \
                or any(getattr(args, f, None) is not None for f in ("rtol", "smallest_step", "method",
                                                                    "records", "set_parameters")):
            raise UsageError("--resume DIR continues the run exactly as it was started: give no scenario, "
                             "--subjects, --seed, --rtol, --smallest-step, --method, --records or --set with it")
        out_path, inc = _resume_target(args.resume)
        out = str(out_path)
        try:
            started = json.loads((inc / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            started = {}
        on_dask = started.get("mode") == "dask" and (inc / "scenario.toml").is_file()
        if not on_dask and not (inc / "checkpoint" / "state.npz").is_file():
            done = out_path / "run.json"
            if done.is_file() and '"complete"' in done.read_text(encoding="utf-8", errors="replace"):
                raise UsageError(f"'{out}' is a complete results folder; there is nothing to resume")
            raise UsageError(f"no interrupted run to resume at '{out}' (no '{inc}' with a "
                             "checkpoint); start it with: opioidsim run NAME_OR_FILE --out DIR")
        if on_dask:
            spec, chunk_subjects = _dask_resume_spec(args, started, spec)
        elif spec is not None or chunk_subjects is not None:
            raise UsageError(f"the run into '{out}' was started in one process: resume it the same "
                             "way, without --cluster, --scheduler or --chunk-subjects")
        scenario = Scenario.from_file(inc / "scenario.toml")
        overwrite = overwrite or bool(started.get("overwrite", False))
        # temporary folders left by a results write that was killed (ours: same target name)
        for stale in out_path.parent.glob(f".{out_path.name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
    else:
        if args.scenario is None:
            raise UsageError("give a scenario (a built-in name or a .toml file), or --resume DIR")
        scenario = load_scenario(args.scenario)
        scenario = scenario.with_cohort(subjects=args.subjects, seed=args.seed)
        scenario = _with_solver_flags(scenario, args)
        scenario = _with_parameter_flags(scenario, args)
        out = args.out if args.out is not None else str(Path("out") / scenario.name)
        inc = incomplete_dir(out)
        if (inc.exists() or inc.is_symlink()) and not overwrite:
            raise UsageError(f"'{inc}' holds an interrupted run into '{out}': continue it with "
                             f"'opioidsim run --resume {out}', or pass --overwrite to start again")
    check_out_dir(out, overwrite=overwrite)  # refuse before spending time simulating
    _check_writable(out)
    if args.resume is None and (inc.exists() or inc.is_symlink()):  # --overwrite: start again
        shutil.rmtree(inc) if inc.is_dir() and not inc.is_symlink() else inc.unlink()
    course = next((k for k in ("paradigm", "life", "trial") if getattr(scenario, k) is not None), None)
    if spec is not None and course is not None:
        raise UsageError(f"scenarios with a [{course}] run in one process in this version: leave out "
                         "--cluster/--scheduler")
    if getattr(args, "require_trial", False) and scenario.trial is None:
        raise UsageError(f"'{scenario.name}' has no [trial] table: 'opioidsim trial' runs virtual trials "
                         "(see the built-in ones with 'opioidsim scenarios'); run other scenarios with "
                         "'opioidsim run'")
    if spec is not None:
        return _run_on_dask(args, scenario, out, inc, overwrite, spec, chunk_subjects)

    def mark_incomplete() -> None:
        """Before the first checkpoint: make the folder say what it is and how to continue."""
        inc.mkdir(parents=True, exist_ok=True)
        (inc / "scenario.toml").write_text(scenario.to_toml(), encoding="utf-8")
        (inc / "run.json").write_text(json.dumps({
            "status": "incomplete", "opioidsim_version": package_version(),
            "scenario": str(scenario.name), "seed": int(scenario.cohort.seed),
            "subjects": int(scenario.cohort.subjects), "results_folder": out,
            "overwrite": bool(overwrite), "resume_with": f"opioidsim run --resume {out}",
        }, indent=2) + "\n", encoding="utf-8")
        (inc / INCOMPLETE_NOTE).write_text(
            f"This is NOT a results folder: the run into '{out}' was interrupted or is still "
            "running.\nIt holds the progress saved so far (checkpoint/), no results.\n"
            f"Continue it with:  opioidsim run --resume {out}\n", encoding="utf-8")

    checkpoint = Checkpoint(inc / "checkpoint", _fingerprint(scenario), every_s=args.checkpoint_every,
                            on_first_save=mark_incomplete)
    verb = "resuming" if args.resume is not None else "running"
    print(f"{PROG}: {verb} '{scenario.name}' ({scenario.duration}, "
          f"{scenario.cohort.subjects} subject{'s' if scenario.cohort.subjects != 1 else ''}, "
          f"seed {scenario.cohort.seed})", file=sys.stderr)
    from tqdm import tqdm

    bar = tqdm(total=1000, desc=scenario.name, file=sys.stderr, leave=False,
               disable=True if args.no_progress else None,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
    progress = _Progress(bar, checkpoint)

    import signal

    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave SIGTERM alone
        previous = None
    t0 = time.perf_counter()
    try:
        ds = _simulate(scenario, progress)
        progress(1.0)
    except KeyboardInterrupt as exc:
        bar.close()
        code = 143 if isinstance(exc, _Terminated) else 130
        if checkpoint.exists():
            print(f"{PROG}: interrupted; no results were written. The progress so far is saved "
                  f"in '{inc}': continue with 'opioidsim run --resume {out}'", file=sys.stderr)
        else:
            print(f"{PROG}: interrupted; nothing was written", file=sys.stderr)
        return code
    finally:
        bar.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    wall = time.perf_counter() - t0

    summary_table, report_writer = _report_helpers()
    if getattr(scenario, "paradigm", None) is not None:  # one row per session, and the experiment's report
        from opioidsim.behavior.report import paradigm_summary_table, write_paradigm_report

        summary_table, report_writer = paradigm_summary_table, write_paradigm_report
    if getattr(scenario, "trial", None) is not None:  # effect estimates per outcome, and the trial's report
        from opioidsim.trial.report import write_trial_report_file
        from opioidsim.trial.stats import trial_outcomes

        summary_table, report_writer = trial_outcomes, write_trial_report_file
    if getattr(scenario, "life", None) is not None:  # one row per period, and the life course's report
        from opioidsim.behavior.course_report import life_summary_table, write_life_report

        summary_table, report_writer = life_summary_table, write_life_report

    def summary_writer(d: Any, path: Path) -> None:
        summary_table(d).to_csv(path, index=False)

    failed = int(ds.attrs.get("subjects_failed", 0)) if hasattr(ds, "attrs") else 0
    note = _accuracy_note(ds)
    extra: dict[str, Any] = {"simulation_wall_time_s": round(wall, 3), "subjects_failed": failed}
    if args.resume is not None:
        extra["resumed"] = True
    try:
        write_results(
            ds, out, scenario,
            report_writer=report_writer, summary_writer=summary_writer, overwrite=overwrite,
            command=[PROG] + list(args._argv), extra=extra,
        )
    except OutputExistsError:
        raise
    except OSError as exc:
        kept = (f"; the computed progress is kept in '{inc}': free space and run "
                f"'opioidsim run --resume {out}'") if checkpoint.exists() else "; nothing was written"
        raise Failed(f"could not write results to '{out}': {exc}{kept}") from exc
    if inc.exists():
        shutil.rmtree(inc, ignore_errors=True)

    _print_summary(summary_table(ds), scenario.cohort.subjects)
    if getattr(scenario, "trial", None) is not None and scenario.trial.published:
        from opioidsim.trial.stats import published_comparison

        _print_published(published_comparison(ds))
    if note:  # on stdout with the summary: information about the results, not a warning
        print(note)
    if failed:
        print(f"{PROG}: warning: {failed} of {scenario.cohort.subjects} subjects failed to "
              "integrate (a state became NaN or infinite); they are marked status = 1 in "
              "results.nc, with NaN records from failed_at_min on", file=sys.stderr)
    print(f"results written to {out} (simulated in {wall:.1f} s)")
    return 0


# ---------------------------------------------------------------------------------------------
# run on Dask (--cluster / --scheduler): see opioidsim.cluster
# ---------------------------------------------------------------------------------------------
def _dask_spec(args: argparse.Namespace) -> Any:
    """The cluster the flags ask for (an `opioidsim.cluster.ClusterSpec`), or None: one process."""
    from opioidsim.cluster import ClusterError, parse_cluster, parse_scheduler

    if args.cluster is not None and args.scheduler is not None:
        raise UsageError(f"--cluster {args.cluster!r} and --scheduler {args.scheduler!r}: give one of "
                         "them, not both (--cluster local[:WORKERS] starts a Dask cluster on this "
                         "machine, --scheduler ADDRESS uses a running Dask scheduler)")
    try:
        if args.cluster is not None:
            return parse_cluster(args.cluster)
        if args.scheduler is not None:
            return parse_scheduler(args.scheduler)
    except ClusterError as exc:
        raise UsageError(str(exc)) from None
    if args.chunk_subjects is not None and args.resume is None:
        raise UsageError(f"--chunk-subjects {args.chunk_subjects}: only a run on Dask is cut into "
                         "chunks; add --cluster local[:WORKERS] or --scheduler ADDRESS")
    return None


def _dask_resume_spec(args: argparse.Namespace, started: dict[str, Any], spec: Any) -> tuple[Any, int]:
    """(cluster, chunk size) to resume a Dask run: the flags given now, else those it started with."""
    from opioidsim.cluster import ClusterError, parse_cluster, parse_scheduler

    chunk = started.get("chunk_subjects")
    if not isinstance(chunk, int) or chunk < 1:
        raise UsageError("cannot resume: the interrupted run's run.json has no chunk size; start it "
                         "again with --overwrite")
    if args.chunk_subjects is not None and args.chunk_subjects != chunk:
        raise UsageError(f"--chunk-subjects {args.chunk_subjects}: the interrupted run was cut into "
                         f"chunks of {chunk} subjects and continues so (leave out --chunk-subjects)")
    if spec is None:
        flags = started.get("dask") or ["--cluster", "local"]
        try:
            spec = parse_cluster(flags[1]) if flags[0] == "--cluster" else parse_scheduler(flags[1])
        except (ClusterError, IndexError, TypeError) as exc:
            raise UsageError(f"cannot resume on the cluster the run started on ({exc}); give "
                             "--cluster or --scheduler") from None
    return spec, chunk


def _run_on_dask(args: argparse.Namespace, scenario: Any, out: str, inc: Path, overwrite: bool,
                 spec: Any, chunk_subjects: Optional[int]) -> int:
    """`run` with the cohort in chunks on Dask: the workers write ``<out>.incomplete/results.zarr.part``
    (chunks that finished are kept there, and ``--resume`` runs only the others); the results
    folder, with results.zarr in place of results.nc, appears only when complete."""
    import shutil
    import signal

    from opioidsim import cluster
    from opioidsim.io.results import package_version, write_results

    resuming = args.resume is not None
    version = package_version()
    store, done_dir = inc / cluster.STORE_PART, inc / cluster.DONE_DIR
    n = int(scenario.cohort.subjects)
    verb = "resuming" if resuming else "running"
    print(f"{PROG}: {verb} '{scenario.name}' ({scenario.duration}, {n} subject{'s' if n != 1 else ''}, "
          f"seed {scenario.cohort.seed}) on {spec.describe()}", file=sys.stderr)

    t0 = time.perf_counter()
    conn = cluster.Connection(spec)
    created_inc = False
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave SIGTERM alone
        previous = None
    try:
        try:
            conn.__enter__()
            conn.check_workers(version)
        except cluster.ClusterError as exc:
            raise UsageError(str(exc)) from None
        threads = conn.threads()
        if chunk_subjects is None:
            empty, _ = cluster.store_layout(scenario, 1)
            chunk_subjects = cluster.default_chunk_subjects(
                n, threads, empty.sizes["time"], len(empty.data_vars))
        if not resuming or cluster.store_matches(store, scenario.to_toml(), version) != chunk_subjects:
            if resuming:
                print(f"{PROG}: the partial results in '{inc}' cannot be reused; computing every "
                      "chunk again", file=sys.stderr)
                shutil.rmtree(done_dir, ignore_errors=True)
            else:
                created_inc = True
            _mark_incomplete_dask(inc, scenario, out, overwrite, spec, chunk_subjects, version)
            cluster.create_store(store, scenario, chunk_subjects)
        done_dir.mkdir(parents=True, exist_ok=True)
        blind = conn.unreachable(inc / INCOMPLETE_NOTE)
        if blind:
            raise UsageError(
                f"{len(blind)} Dask worker(s) cannot see the results folder's location '{inc.parent}' "
                f"(e.g. {blind[0]}): with --scheduler, --out must be on storage every worker "
                "reaches, such as a shared file system mounted at the same path")

        from tqdm import tqdm

        bar = tqdm(total=1, desc=scenario.name, file=sys.stderr, leave=False,
                   disable=True if args.no_progress else None,
                   bar_format="{desc}: {n_fmt}/{total_fmt} chunks|{bar}| {elapsed}<{remaining}")

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            cluster.run_chunks(conn, scenario, store, chunk_subjects, done_dir, version, progress=progress)
        finally:
            bar.close()
    except UsageError:
        conn.close()
        if created_inc:
            shutil.rmtree(inc, ignore_errors=True)  # bad input: nothing is left written
        raise
    except KeyboardInterrupt as exc:
        conn.close()
        code = 143 if isinstance(exc, _Terminated) else 130
        print(f"{PROG}: interrupted; {_dask_kept(store, done_dir, inc, out, 'continue')}", file=sys.stderr)
        return code
    except (cluster.ChunkFailed, OSError, TimeoutError) as exc:
        conn.close()
        raise Failed(f"{exc}; {_dask_kept(store, done_dir, inc, out, 'fix the cause and continue')}") from exc
    finally:
        conn.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    wall = time.perf_counter() - t0

    failed = cluster.finish_store(store)
    ds = cluster.open_results(store)
    summary_table, report_writer = _report_helpers()
    table = summary_table(ds)  # once: it reads the whole store, a block at a time
    note = _accuracy_note(ds)

    def summary_writer(d: Any, path: Path) -> None:
        table.to_csv(path, index=False)

    extra: dict[str, Any] = {
        "simulation_wall_time_s": round(wall, 3), "subjects_failed": failed,
        "dask": {"cluster": " ".join(spec.flags), "worker_threads": threads,
                 "chunk_subjects": chunk_subjects,
                 "chunks": len(cluster.chunks_of(n, chunk_subjects))}}
    if resuming:
        extra["resumed"] = True
    try:
        write_results(ds, out, scenario, report_writer=report_writer, summary_writer=summary_writer,
                      overwrite=overwrite, command=[PROG] + list(args._argv), extra=extra, store=store)
    except OutputExistsError:
        raise
    except OSError as exc:
        raise Failed(f"could not write results to '{out}': {exc}; the computed results are kept in "
                     f"'{inc}': free space and run 'opioidsim run --resume {out}'") from exc
    finally:
        ds.close()
    shutil.rmtree(inc, ignore_errors=True)
    _print_summary(table, n)
    if note:  # on stdout with the summary: information about the results, not a warning
        print(note)
    if failed:
        print(f"{PROG}: warning: {failed} of {n} subjects failed to integrate (a state became NaN or "
              "infinite); they are marked status = 1 in results.zarr, with NaN records from "
              "failed_at_min on", file=sys.stderr)
    print(f"results written to {out} (simulated in {wall:.1f} s on {spec.describe()})")
    return 0


def _dask_kept(store: Path, done_dir: Path, inc: Path, out: str, then: str) -> str:
    """What an interrupted or failed Dask run leaves, and how to continue it."""
    from opioidsim.cluster import done_chunks

    if not store.exists():
        return "nothing was written"
    return (f"no results were written. The {len(done_chunks(done_dir))} finished chunk(s) of subjects "
            f"are kept in '{inc}': {then} with 'opioidsim run --resume {out}'")


def _mark_incomplete_dask(inc: Path, scenario: Any, out: str, overwrite: bool, spec: Any,
                          chunk_subjects: int, version: str) -> None:
    inc.mkdir(parents=True, exist_ok=True)
    (inc / "scenario.toml").write_text(scenario.to_toml(), encoding="utf-8")
    (inc / "run.json").write_text(json.dumps({
        "status": "incomplete", "mode": "dask", "opioidsim_version": version,
        "scenario": str(scenario.name), "seed": int(scenario.cohort.seed),
        "subjects": int(scenario.cohort.subjects), "results_folder": out,
        "overwrite": bool(overwrite), "dask": spec.flags, "chunk_subjects": int(chunk_subjects),
        "resume_with": f"opioidsim run --resume {out}",
    }, indent=2) + "\n", encoding="utf-8")
    (inc / INCOMPLETE_NOTE).write_text(
        f"This is NOT a results folder: the run into '{out}' on Dask was interrupted or is still "
        "running.\nIt holds the chunks of subjects finished so far (results.zarr.part, done/), "
        f"no results.\nContinue it with:  opioidsim run --resume {out}\n", encoding="utf-8")


def _print_summary(table: Any, n_subjects: int) -> None:
    if {"outcome", "measure", "estimate"} <= set(table.columns):  # a trial: effect estimates
        _print_trial_summary(table, n_subjects)
        return
    if {"period", "kind", "person_years"} <= set(table.columns):  # a life course: one row per period
        _print_life_summary(table, n_subjects)
        return
    if "group" in table.columns:  # an experiment with groups: one row per group and session
        cols = ["group", "session", "kind", "trigger", "length_h", "session_infusions", "session_presses",
                "breakpoint", "cpp_score"]
        rows = [[_fmt(r[c]) if c in ("group", "session", "kind", "trigger", "length_h") else
                 _fmt(r[f"{c}_mean"]) + ("" if r[f"{c}_sem"] != r[f"{c}_sem"] else f" ± {_fmt(r[f'{c}_sem'])}")
                 for c in cols] for r in table.to_dict("records")]
        print(f"means ± SEM per group ({n_subjects} subjects in all):")
        print(_table(["group", "session", "kind", "trigger", "hours", "infusions", "presses", "breakpoint",
                      "CPP (s)"], rows))
        return
    if "session" in table.columns:  # an experiment: one row per session
        cols = ["session", "kind", "trigger", "session_infusions_median", "session_presses_median",
                "breakpoint_median", "cpp_score_median"]
        rows = [[_fmt(r[c]) for c in cols] for r in table.to_dict("records")]
        print(f"medians over {n_subjects} subject(s):")
        print(_table(["session", "kind", "trigger", "infusions", "presses", "breakpoint", "CPP (s)"], rows))
        return
    cols = [c for c in ("readout", "units", "baseline_median", "peak_median",
                        "time_of_peak_median_min", "final_median", "kind") if c in table.columns]
    headers = {"baseline_median": "baseline", "peak_median": "peak/nadir",
               "time_of_peak_median_min": "at (min)", "final_median": "final"}
    rows = [[_fmt(r[c]) for c in cols] for r in table.to_dict("records")]
    if rows:
        print(f"medians over {n_subjects} subject(s):")
        print(_table([headers.get(c, c) for c in cols], rows))


def _estimate_text(r: dict) -> str:
    if r["estimate"] != r["estimate"]:  # NaN: not estimable (no events in either arm, no variance)
        return "not estimable"
    return f"{_fmt(r['estimate'])} ({_fmt(r['lower'])} to {_fmt(r['upper'])})"


def _print_trial_summary(table: Any, n_subjects: int) -> None:
    """Each arm against the control, one row per outcome and measure, as summary.csv holds them."""
    def share_or_mean(v: Any, measure: str) -> str:
        return _fmt(v) if measure in ("d", "g") else (f"{100 * float(v):.1f} %" if v == v else "nan")

    rows = [[str(r["outcome"]), f"{r['arm']} vs {r['control']}", f"{_fmt(r['n_arm'])} / {_fmt(r['n_control'])}",
             share_or_mean(r["value_arm"], r["measure"]), share_or_mean(r["value_control"], r["measure"]),
             str(r["measure"]), _estimate_text(r)] for r in table.to_dict("records")]
    print(f"effect estimates with 95 % confidence intervals ({n_subjects} subjects randomised):")
    print(_table(["outcome", "comparison", "n", "arm", "control", "measure", "estimate (95 % CI)"], rows))


def _print_published(table: Any) -> None:
    """The simulated estimates beside the published figures the trial names (published.csv)."""
    from opioidsim.trial.report import yes_no

    def est(v: Any, lo: Any, hi: Any) -> str:
        return _fmt(v) + (f" ({_fmt(lo)} to {_fmt(hi)})" if lo == lo and hi == hi else "")

    rows = [[str(r["outcome"]), str(r["arm"]), str(r["measure"]),
             est(r["simulated"], r["simulated_lower"], r["simulated_upper"]),
             est(r["published"], r["published_lower"], r["published_upper"]),
             yes_no(r["simulated_in_published_ci"]), yes_no(r["published_in_simulated_ci"])]
            for r in table.to_dict("records")]
    print("against the published record ([[trial.published]]; sources in published.csv):")
    print(_table(["outcome", "arm", "measure", "simulated (95 % CI)", "published (95 % CI)",
                  "in published CI", "published in simulated CI"], rows))


def _print_life_summary(table: Any, n_subjects: int) -> None:
    """One row per life period and one for the whole course (summary.csv has every column)."""
    cols = ["period", "kind", "days", "alive_at_start", "person_years", "use_day_share_median",
            "uses_per_day_median", "overdoses", "deaths", "deaths_per_1000py"]
    rows = [[_fmt(r.get(c)) for c in cols] for r in table.to_dict("records")]
    print(f"per life period ({n_subjects} subjects; medians over the subjects alive in it):")
    print(_table(["period", "kind", "days", "alive at start", "person-years", "share of days with use",
                  "uses per day", "overdoses", "deaths", "deaths per 1000 PY"], rows))


def _check_writable(out: str) -> None:
    """The results folder could be created: its nearest existing ancestor is a writable folder."""
    import os

    probe = Path(os.path.abspath(out)).parent
    while not probe.exists() and probe != probe.parent:
        if probe.is_symlink() or probe.is_file():
            break
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"cannot create results folder '{out}': '{probe}' is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create results folder '{out}': no permission to write in "
                         f"'{probe}'")


def cmd_validate(args: argparse.Namespace) -> int:
    settings = _set_flags(args)
    with _set_flag_errors():
        results = list(_run_validation(args.only, reduced=args.reduced, parameters=settings))
    if settings:  # never mistaken for the sourced model
        from opioidsim.overrides import settings_text

        for r in results:
            r["parameters_set"] = settings_text(settings)
    if args.json:
        print(json.dumps([_json_safe(r) for r in results], indent=2))
    else:
        if settings:
            print(f"parameters set (not their sourced values): {settings_text(settings)}")
        rows = [[str(r.get("id", "")), str(r.get("finding", "")), _fmt(r.get("target")),
                 _fmt(r.get("simulated")),
                 ("pass" if r.get("passed") else "FAIL") + (" (reduced)" if r.get("form") == "reduced" else "")]
                for r in results]
        if rows:
            print(_table(["id", "finding", "target", "simulated", "result"], rows))
        n_pass = sum(1 for r in results if r.get("passed"))
        n_reduced = sum(1 for r in results if r.get("form") == "reduced")
        print(f"{n_pass} of {len(results)} validation targets passed"
              + (f" ({n_reduced} in their reduced form: directions on smaller cohorts; "
                 "run without --reduced for the published values)" if n_reduced else ""))
        for r in results:
            if r.get("known_gap") and not r.get("passed"):
                print(f"known gap, {r['id']}: {r['known_gap']}")
        unread = sorted(set(settings) - {n for r in results for n in r.get("parameters_read", ())})
        if unread and results:
            print(f"note: no target run here reads {', '.join(unread)} (see 'opioidsim params NAME': read by)")
    if not results:
        if args.only:
            raise UsageError(f"no validation target id starts with {args.only!r}")
        return 1
    return 0 if all(r.get("passed") for r in results) else 1


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, bool) or x is None or isinstance(x, (str, int)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    item = getattr(x, "item", None)  # numpy scalars and 0-d arrays
    if callable(item):
        try:
            return _json_safe(item())
        except (TypeError, ValueError):
            pass
    tolist = getattr(x, "tolist", None)
    if callable(tolist):
        return _json_safe(tolist())
    return str(x)


def cmd_sensitivity(args: argparse.Namespace) -> int:
    """Global sensitivity (Sobol' or Morris) of readouts to parameters: see opioidsim.sensitivity."""
    from opioidsim import sensitivity as sa
    from opioidsim.io.results import check_out_dir
    from opioidsim.model.model import default_model
    from opioidsim.scenarios import load_scenario

    spec = _dask_spec(args)  # None: one process
    scenario = _with_parameter_flags(load_scenario(args.scenario), args)
    model = default_model()
    explicit: dict[str, tuple[float, float]] = {}
    for text in args.range or []:
        name, eq, bounds = text.partition("=")
        lo, colon, hi = bounds.partition(":")
        try:
            pair = (float(lo), float(hi))
        except ValueError:
            pair = None
        if not eq or not colon or not name.strip() or pair is None:
            raise UsageError(f"--range {text!r}: must be NAME=LOW:HIGH with LOW and HIGH numbers in the "
                             "parameter's unit, e.g. --range heroin_volume=5:20")
        if name.strip() in explicit:
            raise UsageError(f"--range {text!r}: {name.strip()!r} has a range already")
        explicit[name.strip()] = pair
    names = [n.strip() for n in args.parameters.split(",") if n.strip()]
    seed = int(scenario.cohort.seed) if args.seed is None else args.seed
    try:
        outputs = sa.parse_outputs([r for r in args.readouts.split(",") if r.strip()], args.statistic,
                                   model.readouts)
        sa.check_scenario(scenario)
        ranges = sa.parameter_ranges(model, names, explicit=explicit, factor=args.factor,
                                     species=getattr(scenario.cohort, "species", "human"),
                                     settings=scenario.parameters)
        samples = args.samples or (64 if args.method == "sobol" else 20)
        evaluations = sa.check_samples(args.method, samples, len(ranges))
    except sa.SensitivityError as exc:
        raise UsageError(str(exc)) from None
    out = args.out if args.out is not None else str(Path("out") / f"{scenario.name}-sensitivity")
    check_out_dir(out, overwrite=args.overwrite)  # refuse before spending time simulating
    _check_writable(out)
    print(_table(["parameter", "unit", "value", "low", "high", "scale", "range source"],
                 [[r.name, r.unit, _fmt(r.value), _fmt(r.low), _fmt(r.high), r.scale, r.source]
                  for r in ranges]))
    where = "" if spec is None else f" on {spec.describe()}"
    print(f"{PROG}: {args.method} sensitivity of {len(outputs)} output(s) to {len(ranges)} parameter(s) in "
          f"'{scenario.name}': {evaluations:,} evaluations, seed {seed}{where}", file=sys.stderr)
    from tqdm import tqdm

    bar = tqdm(total=1, desc="sensitivity", file=sys.stderr, leave=False,
               disable=True if args.no_progress else None,
               bar_format="{desc}: {n_fmt}/{total_fmt} batches|{bar}| {elapsed}<{remaining}")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    from opioidsim import cluster

    conn = None
    t0 = time.perf_counter()
    try:
        if spec is not None:
            from opioidsim.io.results import package_version

            conn = cluster.Connection(spec)
            try:
                conn.__enter__()
                conn.check_workers(package_version())
            except cluster.ClusterError as exc:
                raise UsageError(str(exc)) from None
        result = sa.run_sensitivity(scenario, names, outputs, method=args.method, samples=samples, seed=seed,
                                    ranges=explicit, factor=args.factor, connection=conn, progress=progress)
    except sa.SensitivityError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing was written", file=sys.stderr)
        return 130
    finally:
        bar.close()
        if conn is not None:
            conn.close()
    wall = time.perf_counter() - t0
    extra: dict[str, Any] = {"wall_time_s": round(wall, 3), "factor": args.factor}
    if spec is not None:
        extra["dask"] = " ".join(spec.flags)
    try:
        sa.write_sensitivity(result, out, overwrite=args.overwrite, command=[PROG] + list(args._argv),
                             extra=extra)
    except OSError as exc:
        raise Failed(f"could not write results to '{out}': {exc}; nothing was written") from exc
    keys = ["S1", "S1_conf", "ST", "ST_conf"] if args.method == "sobol" else ["mu_star", "mu_star_conf", "sigma"]
    rows = [[r["readout"], r["statistic"], r["parameter"]] + [_fmt(r[k]) for k in keys]
            for r in result.table.to_dict("records")]
    print(_table(["readout", "statistic", "parameter"] + keys, rows))
    if result.failed:
        print(f"{PROG}: warning: {result.failed} of {result.evaluations} samples failed to integrate (a "
              "state became NaN or infinite); the indices of the outputs they touch are NaN", file=sys.stderr)
    print(f"results written to {out} ({result.evaluations:,} evaluations in {wall:.1f} s)")
    return 0


# ---------------------------------------------------------------------------------------------
# parser and entry point
# ---------------------------------------------------------------------------------------------
def _RawFormatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=28)


def cmd_bench(args: argparse.Namespace) -> int:
    from opioidsim.bench import BenchConfig, format_table, run_bench

    cfg = BenchConfig.quick() if args.quick else BenchConfig()
    cfg = BenchConfig(subjects=args.subjects or cfg.subjects, days=args.days or cfg.days,
                      reference_subjects=args.reference_subjects or cfg.reference_subjects, seed=cfg.seed,
                      rounds=args.rounds)
    if cfg.reference_subjects > cfg.subjects:
        raise UsageError(f"--reference-subjects {cfg.reference_subjects} is more than --subjects {cfg.subjects}: "
                         "the scipy path runs a subset of the cohort")
    say = (lambda m: print(m, file=sys.stderr)) if not args.json else (lambda m: None)
    result = run_bench(cfg, progress=say)
    print(json.dumps(_json_safe(result)) if args.json else format_table(result))
    return 0


def cmd_export_sbml(args: argparse.Namespace) -> int:
    from opioidsim.io.sbml import SbmlExportError, export_sbml, write_sbml
    from opioidsim.scenarios import load_scenario

    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"--out {args.out!r} is a folder; give a file name such as model.xml")
    if not out.parent.is_dir():
        raise UsageError(f"--out {args.out!r}: the folder {str(out.parent)!r} does not exist")
    if out.exists() and not args.overwrite:
        raise UsageError(f"--out {args.out!r} exists; pass --overwrite to replace it")
    scenario = None
    if args.scenario is not None:
        try:
            scenario = load_scenario(args.scenario)
        except ScenarioError as exc:
            raise UsageError(f"--scenario {args.scenario!r}: {exc}") from None
    try:
        export = export_sbml(scenario=scenario)
    except SbmlExportError as exc:
        raise UsageError(f"--scenario {args.scenario!r}: {exc}") if scenario is not None else Failed(str(exc))
    c = export.consistency
    if c.get("error", 0) or c.get("fatal", 0):
        raise Failed(f"libSBML found {c.get('error', 0) + c.get('fatal', 0)} error(s) in the exported model, so "
                     f"nothing was written; the first: {next(m for m in export.messages if not m.startswith('warn'))}")
    write_sbml(export, out)
    print(f"wrote {out}: SBML Level 3 Version 2, {len(export.state_ids)} states (rate rules), "
          f"{len(export.parameter_ids)} parameters, {len(export.readout_ids)} readouts (assignment rules), "
          f"{len(export.events)} dose events; libSBML consistency: 0 errors, {c.get('warning', 0)} warnings "
          "(nearly all: units that libSBML cannot check, of numbers and intermediate values)")
    return 0


def cmd_explore(args: argparse.Namespace) -> int:
    try:
        from opioidsim.explorer.server import make_server
    except ImportError as exc:
        raise Unavailable(f"the explorer cannot be loaded ({exc})") from exc
    try:
        server = make_server(args.host, args.port, warmup=not args.no_warmup, quiet=not args.verbose)
    except OSError as exc:
        if getattr(exc, "errno", None) in (98, 48, 10048):  # address in use (Linux, macOS, Windows)
            raise UsageError(f"--port {args.port}: the port is in use on {args.host}; choose another "
                             "(--port 0 picks a free one)") from None
        raise UsageError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") from None
    if not server.loopback:
        print(f"{PROG}: warning: serving on {args.host}: anyone who can reach this machine can run "
              "simulations on it", file=sys.stderr)
    print(f"{PROG} explorer at {server.url}  (Ctrl-C to stop; research and teaching only, never a "
          "dosing guide)", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print(f"{PROG}: explorer stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0


def _add_set_argument(p: argparse.ArgumentParser) -> None:
    """--set NAME=VALUE (read by `_set_flags`): `run`, `trial`, `sensitivity` and `validate`."""
    p.add_argument("--set", action="append", default=None, metavar="NAME=VALUE", dest="set_parameters",
                   help="a parameter's typical value in place of its sourced one (adds to the "
                        "scenario's [parameters]; repeatable), e.g. --set quit_brake=0.5 or "
                        "--set \"heroin_clearance=120 L/h\"; 'opioidsim params' lists the names")


def _add_results_arguments(p: argparse.ArgumentParser, *,
                           subjects: str = "number of virtual subjects (overrides the scenario)",
                           seed: str = "random seed for the cohort (overrides the scenario)") -> None:
    """--out, --subjects, --seed, --overwrite, --no-progress: shared by `run` and `trial`."""
    p.add_argument("--out", metavar="DIR", type=_results_folder, default=None,
                   help="results folder to create (default: out/<scenario name>)")
    p.add_argument("--subjects", type=_int_range(1, MAX_SUBJECTS, "--subjects"), default=None,
                   metavar="N", help=subjects)
    p.add_argument("--seed", type=_int_range(0, MAX_SEED, "--seed"), default=None, metavar="S",
                   help=seed)
    p.add_argument("--overwrite", action="store_true",
                   help="replace DIR if it exists (only once the new results are complete)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_set_argument(p)


def _build_parser() -> _Parser:
    parser = _Parser(prog=PROG, usage=f"{PROG} [-h] [--version] COMMAND [ARGS ...]",
                     description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=_RawFormatter)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", help=argparse.SUPPRESS)

    p = sub.add_parser("scenarios", help="list the built-in scenarios (or print one as TOML)",
                       description="List the built-in scenarios, one line each; with NAME, "
                                   "print that scenario's TOML (a starting point for your own).")
    p.add_argument("name", nargs="?", metavar="NAME", help="a built-in scenario to print")
    p.set_defaults(func=cmd_scenarios)

    p = sub.add_parser("params", help="list the parameters a scenario can set (value, unit, source)",
                       description="List the model's and the behaviour's parameters, one line each "
                                   "(name, sourced value and unit, source); with TEXT, those whose name "
                                   "contains it; with a whole NAME, that parameter in full. A scenario sets "
                                   "one with [parameters] NAME = VALUE, a run with --set NAME=VALUE.")
    p.add_argument("text", nargs="?", metavar="TEXT", help="part of a parameter name, or a whole name")
    p.add_argument("--csv", action="store_true",
                   help="print every parameter (or those whose name contains TEXT) as CSV: name, value, unit, "
                        "cv, source, cv_source, note, set_by")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser(
        "run", help="run a scenario and write a results folder",
        description="Run a scenario (a built-in name or a .toml file) and write a results folder:\n"
                    "results.nc (results.zarr when run on Dask), summary.csv, report.html,\n"
                    "scenario.toml, run.json.\n"
                    "Research and teaching only; never a dosing guide.",
        formatter_class=_RawFormatter,
        epilog="examples:\n  opioidsim run acute-heroin-iv --out out/demo --subjects 20 --seed 1\n"
               "  opioidsim run --resume out/demo      continue an interrupted run\n"
               "  opioidsim run big.toml --out out/big --cluster local:2   chunks on Dask\n\n"
               "A long run saves its progress in DIR.incomplete (at most every 60 s and when\n"
               "interrupted by Ctrl-C or SIGTERM); DIR itself appears only when complete.")
    p.add_argument("scenario", metavar="NAME_OR_FILE", nargs="?", default=None,
                   help="built-in scenario name (see 'opioidsim scenarios') or path to a .toml")
    _add_results_arguments(p)
    p.add_argument("--resume", metavar="DIR", default=None,
                   help="continue an interrupted run into DIR (its progress is in DIR.incomplete)")
    p.add_argument("--checkpoint-every", type=_float_range(0.0, 86400.0, "--checkpoint-every"),
                   default=60.0, metavar="SECONDS",
                   help="save progress at most this often (default 60; 0: after every segment or "
                        "compiled call)")
    p.add_argument("--cluster", metavar="local[:WORKERS]", default=None,
                   help="run the cohort as chunks of subjects on a Dask cluster started on this "
                        "machine (default: one worker per CPU core); writes results.zarr")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run the cohort as chunks on the running Dask scheduler at ADDRESS (e.g. "
                        "tcp://host:8786); DIR must be on storage every worker reaches")
    p.add_argument("--chunk-subjects", type=_int_range(1, MAX_SUBJECTS, "--chunk-subjects"),
                   default=None, metavar="N",
                   help="subjects per Dask task (default: at most 1,024, and few enough that "
                        "every worker gets work)")
    p.add_argument("--rtol", type=_number("--rtol"), default=None, metavar="R",
                   help="relative tolerance of the engine's steps (overrides the scenario's [solver] "
                        "rtol; default 3e-3), e.g. 1e-5")
    p.add_argument("--smallest-step", default=None, metavar="TIME",
                   help="the engine's smallest step (overrides [solver] smallest_step; default "
                        "3.75s), e.g. 0.5s")
    p.add_argument("--method", default=None, metavar="NAME",
                   help="the engine's integration method (overrides [solver] method): ros34pw2 "
                        "(default, third order) or ros2 (second order)")
    p.add_argument("--records", default=None, metavar="HOW",
                   help="how records are taken (overrides [solver] records): auto (default: records every "
                        "5 min or less interpolated at a 30th of rtol, coarser ones stepped), stepped (a "
                        "step ends at every record) or interpolated (steps span up to 32 records; far "
                        "fewer steps where records are dense; ros34pw2 only)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "trial", help="run a virtual clinical trial and write its results and report",
        description="Run a scenario with a [trial] table (a built-in name or a .toml file): a\n"
                    "cohort with a history of use is randomised to arms and followed up. Writes\n"
                    "results.nc, summary.csv (effect estimates per outcome: RR, OR, Cohen's d\n"
                    "with 95 % CIs), report.html (CONSORT flow, outcome curves per arm),\n"
                    "consort.csv, subgroups.csv (a stratified trial's outcomes per stratum),\n"
                    "published.csv (the simulated estimates beside the published figures the\n"
                    "scenario names in [[trial.published]]), scenario.toml, run.json.\n"
                    "Research and teaching only; never a dosing guide.",
        formatter_class=_RawFormatter,
        epilog="examples:\n  opioidsim trial methadone-vs-no-substitution --out out/mmt\n"
               "  opioidsim trial my-trial.toml --out out/t --subjects 400 --seed 2\n\n"
               "A trial saves its progress in DIR.incomplete (at most every 60 s and when\n"
               "interrupted by Ctrl-C or SIGTERM); continue it with 'opioidsim run --resume DIR'.")
    p.add_argument("scenario", metavar="NAME_OR_FILE",
                   help="built-in trial name (see 'opioidsim scenarios') or path to a .toml with [trial]")
    _add_results_arguments(p, subjects="number of virtual subjects randomised (overrides the scenario)",
                           seed="random seed for the cohort and the randomisation (overrides the scenario)")
    p.add_argument("--checkpoint-every", type=_float_range(0.0, 86400.0, "--checkpoint-every"),
                   default=60.0, metavar="SECONDS",
                   help="save progress at most this often (default 60; 0: after every compiled call)")
    p.set_defaults(func=cmd_run, require_trial=True, resume=None, cluster=None,
                   scheduler=None, chunk_subjects=None)

    p = sub.add_parser(
        "validate", help="compare the model with published findings (pass/FAIL table)",
        description="Simulate each literature validation target and compare with its published "
                    "value. Exit code 0 if all pass, 1 otherwise.")
    p.add_argument("--only", metavar="PREFIX", default=None,
                   help="only targets whose id starts with PREFIX")
    p.add_argument("--json", action="store_true", help="print the results as a JSON list")
    p.add_argument("--reduced", action="store_true",
                   help="run the slow targets (the trials, the animal experiments, a cross-sectional "
                        "cohort) in their reduced forms, as 'make test' does: directions on smaller "
                        "cohorts, minutes instead of over an hour")
    _add_set_argument(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "bench", help="measure the engine's speed and accuracy against the scipy path",
        description="Run the standard benchmark (a cohort in daily IV heroin use for 30 days, "
                    "variability on) with the engine, the scipy Radau path and, once SBML export "
                    "exists, libRoadRunner; print subject-days per second, their ratios, the "
                    "engine's error against a Radau rtol 1e-8 reference and how close the engine "
                    "is to the machine's limit.")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (engine_subject_days_per_s, scipy_subject_days_per_s, "
                        "roadrunner_subject_days_per_s, max_relative_error, ...)")
    p.add_argument("--quick", action="store_true", help="4 subjects × 2 days: a smoke test")
    p.add_argument("--subjects", type=_int_range(1, 1_000_000, "--subjects"), default=None, metavar="N",
                   help="engine cohort size (default 256)")
    p.add_argument("--days", type=_float_range(0.05, 3650.0, "--days"), default=None, metavar="D",
                   help="simulated days (default 30)")
    p.add_argument("--reference-subjects", type=_int_range(1, 1000, "--reference-subjects"), default=None,
                   metavar="K", help="subjects run on the scipy path (default 1)")
    p.add_argument("--rounds", type=_int_range(1, 20, "--rounds"), default=1, metavar="R",
                   help="run each path R times, in turn, and keep each one's fastest run: a machine whose "
                        "speed drifts then biases the ratios less (default 1)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "export-sbml", help="write the model as SBML (for libRoadRunner, COPASI, ...)",
        description="Write the physiology (every module, fast and slow) as SBML Level 3 Version 2:\n"
                    "states as rate rules, readouts as assignment rules named as the readout,\n"
                    "parameters with units and their sources; with --scenario, its doses as events\n"
                    "and its conditions. Time is in minutes. The file is checked with libSBML and\n"
                    "written atomically. Research and teaching only; never a dosing guide.",
        formatter_class=_RawFormatter,
        epilog="examples:\n  opioidsim export-sbml --out model.xml\n"
               "  opioidsim export-sbml --out heroin.xml --scenario acute-heroin-iv")
    p.add_argument("--out", metavar="FILE", required=True, help="the SBML file to write")
    p.add_argument("--scenario", metavar="NAME_OR_TOML", default=None,
                   help="a built-in scenario or .toml file: its doses become events, its conditions "
                        "parameter values (default: no doses)")
    p.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    p.set_defaults(func=cmd_export_sbml)

    p = sub.add_parser(
        "explore", help="an interactive explorer in the browser (runs the real engine)",
        description="Serve the explorer, a local web app: pick a drug, route and dose and watch the\n"
                    "five steps (plasma, receptors, dopamine, pleasure; pain and breathing), add\n"
                    "naloxone; follow chronic use and recovery over months. Every figure is a fresh\n"
                    "run of the engine. Scenarios built there download as .toml files that\n"
                    "'opioidsim run' accepts. Research and teaching only; never a dosing guide.",
        formatter_class=_RawFormatter,
        epilog="examples:\n  opioidsim explore                    http://127.0.0.1:8765/\n"
               "  opioidsim explore --port 0 --open    a free port, opened in the browser")
    p.add_argument("--port", type=_int_range(0, 65535, "--port"), default=8765, metavar="P",
                   help="port to serve on (default 8765; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", metavar="H",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--no-warmup", action="store_true",
                   help="do not compile the engine in the background at start-up")
    p.add_argument("--open", action="store_true", help="open the explorer in the default browser")
    p.add_argument("--verbose", action="store_true", help="log every request on stderr")
    p.set_defaults(func=cmd_explore)

    p = sub.add_parser(
        "sensitivity", help="global sensitivity (Sobol', Morris) of readouts to parameters",
        description="Global sensitivity analysis (SALib): vary the chosen parameters over their\n"
                    "ranges in typical subjects of a scenario, reduce each readout to a statistic and\n"
                    "print Sobol' indices (S1, ST) or Morris mu*/sigma. A parameter with a population\n"
                    "spread varies over its 5th-95th percentile, one without over ×/÷ --factor of its\n"
                    "value unless --range gives its range. Writes indices.csv, ranges.csv,\n"
                    "samples.csv, sensitivity.png, scenario.toml, run.json.\n"
                    "Research and teaching only; never a dosing guide.",
        formatter_class=_RawFormatter,
        epilog="examples:\n  opioidsim sensitivity acute-heroin-iv --readouts plasma_heroin:auc,spo2:trough \\\n"
               "      --parameters heroin_clearance,heroin_volume,wakefulness_drive --out out/sa\n"
               "  opioidsim sensitivity acute-heroin-iv --readouts nac_dopamine --method morris \\\n"
               "      --parameters gaba_signal_half,da_basal_nac --range da_basal_nac=3:8 --out out/sm")
    p.add_argument("scenario", metavar="NAME_OR_FILE",
                   help="built-in scenario name (see 'opioidsim scenarios') or path to a .toml")
    p.add_argument("--readouts", required=True, metavar="R[:STAT],...",
                   help="readouts, each reduced by --statistic or its own :STAT (peak, trough, final, "
                        "mean, auc, time_to_peak)")
    p.add_argument("--parameters", required=True, metavar="P,...", help="model parameters to vary")
    p.add_argument("--statistic", default="peak", metavar="STAT",
                   help="peak (default), trough, final, mean, auc or time_to_peak")
    p.add_argument("--method", default="sobol", metavar="sobol|morris",
                   help="sobol (default; S1 and ST) or morris (mu*, sigma: cheaper screening)")
    p.add_argument("--samples", type=_int_range(2, 1 << 20, "--samples"), default=None, metavar="N",
                   help="Sobol': base sample, a power of two (default 64; N·(parameters+2) runs); "
                        "Morris: trajectories (default 20; N·(parameters+1) runs)")
    p.add_argument("--seed", type=_int_range(0, MAX_SEED, "--seed"), default=None, metavar="S",
                   help="seed of the samples and bootstrap (default: the scenario's)")
    p.add_argument("--range", action="append", metavar="P=LOW:HIGH",
                   help="the range of parameter P in its own unit (repeatable)")
    p.add_argument("--factor", type=_float_range(1.000001, 1000.0, "--factor"), default=2.0, metavar="F",
                   help="a parameter without population spread or --range varies from value/F to "
                        "value·F (default 2; assumed)")
    p.add_argument("--out", metavar="DIR", type=_results_folder, default=None,
                   help="results folder to create (default: out/<scenario name>-sensitivity)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace DIR if it exists (only once the new results are complete)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_set_argument(p)
    p.add_argument("--cluster", metavar="local[:WORKERS]", default=None,
                   help="evaluate the samples in batches on a Dask cluster started on this machine")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="evaluate the samples in batches on the running Dask scheduler at ADDRESS")
    p.set_defaults(func=cmd_sensitivity, chunk_subjects=None, resume=None)

    p = sub.add_parser(
        "calibrate", help="fit model parameters to observed data (a CSV of readouts over time)",
        description="Fit chosen parameters to a CSV of readouts over time (columns 'time [h]',\n"
                    "'readout', 'value', optional 'subject' or 'group', 'sd', 'unit') under the\n"
                    "scenario's doses, by gradients through the engine, within bounds. Prints\n"
                    "start, fitted value, standard error, unit and bounds per parameter.\n"
                    "Research and teaching only; never a dosing guide.",
        formatter_class=_RawFormatter,
        epilog="example:\n  opioidsim calibrate morphine.toml --data plasma.csv "
               "--parameters morphine_clearance,morphine_volume \\\n"
               "      --bounds morphine_clearance=0.2:5 --out out/fit")
    p.add_argument("scenario", metavar="NAME_OR_FILE", help="the scenario whose doses the data followed")
    p.add_argument("--data", required=True, metavar="FILE.csv", help="the observations")
    p.add_argument("--parameters", required=True, metavar="A,B", help="model parameters to fit, comma-separated")
    p.add_argument("--bounds", nargs="+", default=[], metavar="NAME=LO:HI",
                   help="bounds in the parameter's unit (default: [start/10, 10·start]; [0, 1] for fractions)")
    p.add_argument("--start", nargs="+", default=[], metavar="NAME=VALUE",
                   help="start values in the parameter's unit (default: the model's typical value)")
    p.add_argument("--iterations", type=_int_range(0, 10_000, "--iterations"), default=50, metavar="N",
                   help="at most N iterations (default 50)")
    p.add_argument("--method", choices=("lm", "adam"), default="lm",
                   help="lm: Levenberg-Marquardt (default); adam: optax.adam")
    p.add_argument("--log", action="store_true", help="fit on the log scale (relative errors; values > 0)")
    p.add_argument("--out", metavar="DIR", type=_results_folder, default=None,
                   help="write parameters.csv, residuals.csv, fit.svg and run.json to DIR (must not exist)")
    p.set_defaults(func=cmd_calibrate)

    # One line per command, listed before the examples (argparse's own listing wraps badly).
    width = max(len(name) for name in sub.choices) + 2
    lines = ["commands:"] + [
        f"  {a.dest.ljust(width)}{a.help}" for a in sub._choices_actions]
    parser.epilog = "\n".join(lines) + "\n\n" + EPILOG
    return parser


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit chosen parameters to a CSV of observed readouts (opioidsim.calibration)."""
    try:
        from opioidsim.calibration import CalibrationDataError, CalibrationError, calibrate
        from opioidsim.calibration.output import write_calibration
        from opioidsim.scenarios import load_scenario
    except ImportError as exc:
        raise Unavailable(f"calibration cannot be loaded ({exc})") from exc
    names = [n.strip() for n in args.parameters.split(",") if n.strip()]

    def pairs(items: Sequence[str], flag: str, form: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in items:
            name, sep, value = item.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise UsageError(f"{flag} {item!r}: write {form}")
            out[name.strip()] = value.strip()
        return out

    def number(text: str, flag: str, item: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise UsageError(f"{flag} {item}: {text!r} is not a number (values are in the parameter's unit)")
        return value

    bounds = {}
    for name, text in pairs(args.bounds, "--bounds", "NAME=LO:HI, e.g. morphine_clearance=0.5:3").items():
        lo, sep, hi = text.partition(":")
        if not sep:
            raise UsageError(f"--bounds {name}={text}: write NAME=LO:HI, e.g. morphine_clearance=0.5:3")
        bounds[name] = (number(lo, "--bounds", f"{name}={text}"), number(hi, "--bounds", f"{name}={text}"))
    start = {name: number(text, "--start", f"{name}={text}")
             for name, text in pairs(args.start, "--start", "NAME=VALUE, e.g. morphine_volume=300").items()}
    if args.out is not None and Path(args.out).exists():
        raise UsageError(f"results folder '{args.out}' already exists; choose another --out or remove it")
    scenario = load_scenario(args.scenario)
    try:
        result = calibrate(scenario, args.data, names, bounds=bounds, start=start, iterations=args.iterations,
                           method=args.method, log_scale=args.log, curves=args.out is not None)
    except (CalibrationDataError, CalibrationError) as exc:
        raise UsageError(str(exc)) from None
    print(result.table())
    if args.out is not None:
        try:
            write_calibration(result, args.out, info={"scenario": scenario.name, "command": ["opioidsim", *args._argv]})
        except CalibrationError as exc:
            raise UsageError(str(exc)) from None
        print(f"wrote {args.out}/ (parameters.csv, residuals.csv, fit.svg, run.json)")
    return 0


def _checkpoint_error() -> type:
    from opioidsim.io.checkpoint import CheckpointError

    return CheckpointError


def _error(message: str) -> int:
    text = " ".join(str(message).split())
    print(f"{PROG}: error: {text}", file=sys.stderr)
    return 2


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``opioidsim`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        return _error(str(exc))
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    args._argv = argv

    if args.version:
        from opioidsim.io.results import package_version

        print(f"{PROG} {package_version()}")
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ScenarioError, UnitError, UsageError, OutputExistsError) as exc:
        return _error(str(exc))
    except _checkpoint_error() as exc:
        return _error(f"cannot resume: {exc}")
    except (Unavailable, Failed) as exc:
        _error(str(exc))
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
