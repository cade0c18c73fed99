"""Fuzzing the inputs: generated scenario files, Python API calls and command lines.

Property (issue 9): whatever the input, the only failure allowed is the documented validation
error — a `ScenarioError` whose `field` names the offending field, whose one-line message
contains that field (and the value found), and, on the command line, exit code 2 with one
``opioidsim: error: …`` line, no traceback and nothing written. An input that is accepted must be
really runnable: it round-trips through TOML, its doses expand within the limits, and the engine's
dose compiler, grid and memory estimate accept it (without integrating).

The generators start from a valid scenario and break it the ways people (and typos) do: wrong
types, missing and extra keys, absurd units and magnitudes, overlapping, repeated and
out-of-range schedules, unknown drugs, routes, readouts and paradigms, huge cohorts and seeds.

Used by ``tests/test_fuzz_inputs.py`` (a few hundred cases per target in the default test run)
and by the large run, one command::

    python -m opioidsim.fuzz --cases 10000          # or: make fuzz

which prints a table of cases tried, accepted, rejected (by field) and failures per target.
Needs the ``hypothesis`` package (the ``test`` extra). Research and teaching tool only.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opioidsim.drugs import DRUGS, ROUTES
from opioidsim.errors import MISSING, ScenarioError
from opioidsim.readouts import READOUTS
from opioidsim.scenarios.schema import LIMITS, Cohort, Conditions, Dose, Scenario

# ---------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------
TIME_UNITS = ["s", "min", "h", "d", "w", "y", "ms", "us", "ns", "yr", "wk", "hour", "minutes",
              "second", "fortnight", "century"]
MASS_UNITS = ["mg", "g", "ug", "mcg", "kg", "ng", "t", "lb", "oz", "grain"]
WRONG_UNITS = ["", "banana", "mg/h", "1/min", "mmHg", "degC", "min**2", "m", "%", "mg mg", "e", "nan",
               "L", "mol", "mg/kg", "h mg", "inf", "--", "²", "mg;drop table"]
numbers = st.one_of(
    st.integers(-10**6, 10**6), st.integers(-10**30, 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 0.0, -0.0, 1e-300, 1e300, 5e-324, 1.7976931348623157e308, 2**63, 2**64, -1]),
)
_num_text = st.one_of(numbers.map(str), st.sampled_from(["1e3", "1e-3", "0x10", "1_000", ".5", "5.", "+3",
                                                         "1e400", "-0", "1/2", "٣", "１０"]))


def _quantity(units: list[str]) -> st.SearchStrategy:
    single = st.builds(lambda n, sep, u: f"{n}{sep}{u}", _num_text, st.sampled_from(["", " ", "  ", "\t"]),
                       st.sampled_from(units))
    compound = st.builds(lambda a, b, u1, u2: f"{a}{u1}{b}{u2}", st.integers(0, 10**4), st.integers(0, 10**4),
                         st.sampled_from(units), st.sampled_from(units))
    return st.one_of(single, compound)


times = st.one_of(_quantity(TIME_UNITS), _quantity(MASS_UNITS), _quantity(WRONG_UNITS))
masses = st.one_of(_quantity(MASS_UNITS), _quantity(TIME_UNITS), _quantity(WRONG_UNITS))
good_times = st.builds(lambda n, u: f"{n}{u}", st.integers(0, 5000), st.sampled_from(["s", "min", "h", "d"]))
good_masses = st.builds(lambda n, u: f"{n} {u}", st.floats(0.001, 10000, allow_nan=False), st.sampled_from(["mg", "ug", "g"]))
names = st.one_of(st.sampled_from(list(DRUGS)), st.sampled_from(["herion", "Heroin ", "HEROIN", "oxycodone", "kratom",
                                                               "carfentanil", "", " ", "heroin\0", "naloxone;"]),
                  st.text(max_size=12))
routes = st.one_of(st.sampled_from(list(ROUTES)), st.sampled_from(["IV", " iv", "rectal", "inhaled", "transdermal",
                                                                 "epidural", "", "oral\n"]), st.text(max_size=8))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=16), times, masses, names, routes,
                    st.binary(max_size=4))
junk = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=6), scalars, max_size=3),
                 st.tuples(scalars), st.sets(st.integers(), max_size=2), st.just(object()))
PARADIGMS = ["self-administration", "cpp", "extinction", "reinstatement", "trial", "treatment"]


def _dose(draw) -> dict:
    drug = draw(st.sampled_from(list(DRUGS)))
    d: dict[str, Any] = {"drug": drug, "amount": draw(good_masses),
                         "route": draw(st.sampled_from(DRUGS[drug].routes)), "at": draw(good_times)}
    if draw(st.booleans()):
        d["every"] = draw(st.one_of(good_times, st.sampled_from(["1min", "59s", "1s", "8h"])))
        if draw(st.booleans()):
            d["until"] = draw(good_times)
    return d


@st.composite
def valid_like(draw) -> dict:
    """A scenario in the TOML shape that is often valid: the base the mutations break."""
    header: dict[str, Any] = {"name": draw(st.sampled_from(["fuzz", "a.b-c_d", "x" * 100])),
                              "duration": draw(st.one_of(good_times, st.sampled_from(["100y", "12h", "1s"]))),
                              "record_every": draw(st.one_of(good_times, st.sampled_from(["1s", "30s", "1min"])))}
    if draw(st.booleans()):
        header["readouts"] = draw(st.lists(st.sampled_from(list(READOUTS)), min_size=1, max_size=4, unique=True))
    data: dict[str, Any] = {"scenario": header}
    if draw(st.booleans()):
        data["cohort"] = {"subjects": draw(st.one_of(st.integers(1, 50), st.sampled_from([1, LIMITS["max_subjects"]]))),
                          "seed": draw(st.one_of(st.integers(0, 2**32 - 1), st.just(0)))}
    if draw(st.booleans()):
        data["conditions"] = {"pain_stimulus": draw(st.floats(0, 1))}
    n = draw(st.integers(0, 4))
    if n:
        data["dose"] = [_dose(draw) for _ in range(n)]
    return data


def key_paths(d: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path of keys and list indices into nested dicts/lists (e.g. ("dose", 0, "route"))."""
    out = [prefix] if prefix else []
    if isinstance(d, dict):
        for k, v in d.items():
            out += key_paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out += key_paths(v, prefix + (i,))
    return out


EXTRA_KEYS = ["paradigm", "treatment", "subjects", "dose_mg", "colour", "Drug", "units", "behavior", "seed",
              "every", "at ", "", "__class__", "model_config"]


@st.composite
def mutated(draw) -> dict:
    """A valid-like scenario with 1–3 things broken."""
    d = draw(valid_like())
    for _ in range(draw(st.integers(1, 3))):
        paths = key_paths(d)
        op = draw(st.sampled_from(["replace", "delete", "add", "paradigm", "schedule", "cohort", "unit"]))
        if op == "paradigm":
            where = draw(st.sampled_from(["top", "scenario", "dose"]))
            value = draw(st.one_of(st.sampled_from(PARADIGMS), junk))
            if where == "top":
                d[draw(st.sampled_from(["paradigm", "treatment", "behavior", "Scenario", "doses"]))] = value
            elif where == "scenario" and isinstance(d.get("scenario"), dict):
                d["scenario"]["paradigm"] = value
            elif isinstance(d.get("dose"), list) and d["dose"] and isinstance(d["dose"][0], dict):
                d["dose"][0]["paradigm"] = value
            continue
        if op == "schedule":  # overlapping, repeated, out-of-range schedules
            doses = d.setdefault("dose", [])
            if isinstance(doses, list):
                base = _dose(draw)
                base["at"] = draw(st.one_of(times, st.sampled_from(["0min", "99y", "100y", "1e9 min", "-0s"])))
                base["every"] = draw(st.one_of(times, st.sampled_from(["1min", "1s", "1e-9 s", "0min"])))
                if draw(st.booleans()):
                    base["until"] = draw(st.one_of(times, st.just(base["at"])))
                doses.extend([base, dict(base)] if draw(st.booleans()) else [base])
            continue
        if op == "cohort":  # huge or odd cohorts and seeds
            d["cohort"] = {"subjects": draw(st.one_of(st.integers(-5, 5), st.integers(10**5, 10**7),
                                                      st.sampled_from([10**6, 10**6 + 1, 2**31, 2**63, 1.0, 1e6, "1e6"]))),
                           "seed": draw(st.one_of(st.integers(-1, 2**64), numbers))}
            continue
        if op == "unit":
            target = draw(st.sampled_from([("scenario", "duration"), ("scenario", "record_every"),
                                           ("dose", 0, "amount"), ("dose", 0, "at"), ("dose", 0, "every")]))
            _set(d, target, draw(st.one_of(times, masses)))
            continue
        if not paths:
            continue
        path = draw(st.sampled_from(paths))
        if op == "replace":
            _set(d, path, draw(junk))
        elif op == "delete":
            _set(d, path, MISSING)
        else:
            _add(d, path, draw(st.sampled_from(EXTRA_KEYS)), draw(junk))
    return d


def _set(d: Any, path: tuple, value: Any) -> None:
    try:
        target = d
        for key in path[:-1]:
            target = target[key]
        if value is MISSING:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        pass  # an earlier mutation changed the shape


def _add(d: Any, path: tuple, key: str, value: Any) -> None:
    try:
        target = d
        for k in path:
            target = target[k]
        if isinstance(target, dict):
            target[key] = value
    except (KeyError, IndexError, TypeError):
        pass


# ---------------------------------------------------------------------------------------------
# the oracle
# ---------------------------------------------------------------------------------------------
#: what one run can hold in memory in this version (results stay in memory until Zarr streaming,
#: issue 7): 2·10⁹ float64 values = 16 GB of records; 5·10⁸ per-subject dose-event cells ≈ 10 GB.
#: Stated here on their own (the same figures as the schema's LIMITS, by design) so that the oracle
#: checks the schema rather than reading its answer from it.
MAX_RESULT_VALUES = 2_000_000_000
MAX_DOSE_CELLS = 500_000_000


class FuzzFailure(AssertionError):
    """An input that got something other than the documented validation error."""


def check_rejection(err: ScenarioError) -> str:
    """The documented validation error: a field, a one-line message naming it (and the value)."""
    if not isinstance(err.field, str) or not err.field:
        raise FuzzFailure(f"ScenarioError without a field: {err!r}")
    msg = str(err)
    if "\n" in msg or "Traceback" in msg:
        raise FuzzFailure(f"message is not one line: {msg!r}")
    if err.field not in msg and not err.field.startswith("<"):
        raise FuzzFailure(f"message does not name its field {err.field!r}: {msg}")
    if not err.field.startswith("<") and err.value is not MISSING and "=" not in msg:
        raise FuzzFailure(f"message does not give the value found: {msg}")
    if not err.allowed and not err.field.startswith("<"):
        raise FuzzFailure(f"message does not say what is allowed: {msg}")
    return err.field


def check_accepted(s: Scenario) -> None:
    """An accepted scenario is really runnable (checked without integrating)."""
    from opioidsim.engine.core import make_grid

    if not isinstance(s, Scenario):
        raise FuzzFailure(f"accepted input gave {type(s).__name__}, not a Scenario")
    again = Scenario.from_toml_text(s.to_toml())
    if again != s:
        raise FuzzFailure("accepted scenario does not round-trip through TOML")
    n_events = len(s.dose_schedule())
    if n_events > LIMITS["max_dose_events"]:
        raise FuzzFailure(f"accepted scenario expands to {n_events} dose events")
    grid = make_grid(s.duration_min, s.record_every_min)
    if not (1 <= grid.n_records - 1 <= LIMITS["max_record_points"] and grid.h > 0 and math.isfinite(grid.h)):
        raise FuzzFailure(f"accepted scenario gives an unusable grid {grid}")
    n_readouts = len(s.recorded_readouts)
    values = s.cohort.subjects * grid.n_records * n_readouts
    if values > MAX_RESULT_VALUES:
        raise FuzzFailure(f"accepted scenario needs {values:,} result values in memory")
    if s.cohort.subjects * max(n_events, 1) > MAX_DOSE_CELLS:
        raise FuzzFailure(f"accepted scenario needs {s.cohort.subjects * n_events:,} dose-event cells")
    if n_events and n_events <= 4096:
        _compile_doses(s, grid.h)


def _compile_doses(s: Scenario, h: float) -> None:
    from opioidsim.engine.core import subject_parameters
    from opioidsim.engine.dosing import compile_doses
    from opioidsim.model import default_model

    model = default_model()
    p = subject_parameters(model, s, 1, s.cohort.seed, first=s.cohort.subjects - 1)
    ev = compile_doses(model, s.doses, s.duration_min, h, p)
    import numpy as np

    if not (np.isfinite(ev.amount).all() and (ev.amount >= 0).all()):
        raise FuzzFailure("compiled doses are not finite and non-negative")


def outcome(fn: Callable[[], Any], accept: Callable[[Any], None] = check_accepted) -> str:
    """Run one input; 'accepted' or 'rejected:<field>'; anything else raises FuzzFailure."""
    try:
        result = fn()
    except ScenarioError as err:
        return "rejected:" + check_rejection(err)
    except FuzzFailure:
        raise
    except BaseException as exc:  # noqa: BLE001 - the point: nothing else may escape
        raise FuzzFailure(f"{type(exc).__name__}: {exc}") from exc
    accept(result)
    return "accepted"


# ---------------------------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------------------------
def target_toml(d: dict) -> str:
    """A generated scenario file (TOML text; a dict with no TOML form is fed as a dict)."""
    import tomli_w

    try:
        text = tomli_w.dumps(d)
    except (TypeError, ValueError):
        return outcome(lambda: Scenario.from_toml_dict(d))
    return outcome(lambda: Scenario.from_toml_text(text, source="fuzz.toml"))


def _py_kwargs(d: dict) -> dict:
    """The TOML shape → Scenario(**kwargs) shape (what a Python user writes)."""
    out = dict(d.get("scenario", {})) if isinstance(d.get("scenario"), dict) else {"name": d.get("scenario")}
    for key, target in (("cohort", "cohort"), ("conditions", "conditions"), ("dose", "doses")):
        if key in d:
            out[target] = d[key]
    for k in d:
        if k not in ("scenario", "cohort", "conditions", "dose"):
            out[str(k)] = d[k]
    return out


API_CALLS = ["Scenario", "Dose", "Cohort", "Conditions", "with_cohort", "load_scenario", "simulate"]


@st.composite
def api_call(draw) -> tuple[str, Any]:
    kind = draw(st.sampled_from(API_CALLS))
    if kind == "Scenario":
        return kind, _py_kwargs(draw(mutated()))
    if kind == "Dose":
        args = draw(st.lists(st.one_of(names, masses, routes, times, junk), max_size=7))
        kwargs = draw(st.dictionaries(st.sampled_from(["drug", "amount", "route", "at", "every", "until",
                                                       "dose", "paradigm"]), st.one_of(scalars, junk), max_size=3))
        return kind, (args, kwargs)
    if kind in ("Cohort", "Conditions"):
        return kind, draw(st.dictionaries(st.sampled_from(["subjects", "seed", "pain_stimulus", "size", "n"]),
                                          st.one_of(numbers, scalars), max_size=3))
    if kind == "with_cohort":
        return kind, (draw(st.one_of(st.none(), numbers, scalars)), draw(st.one_of(st.none(), numbers, scalars)))
    if kind == "load_scenario":
        return kind, draw(st.one_of(st.sampled_from(["acute-heroin-ivv", "", ".", "/", "/etc/passwd", "x.toml",
                                                     "../README.md", "nonexistent/dir/s.toml"]), scalars))
    return kind, draw(st.one_of(scalars, st.sampled_from(["no-such-scenario", "/nonexistent.toml"])))


def _api_accept(result: Any) -> None:
    if isinstance(result, Scenario):
        check_accepted(result)
    elif not isinstance(result, (Dose, Cohort, Conditions)):
        raise FuzzFailure(f"API call returned {type(result).__name__}")


def target_api(call: tuple[str, Any]) -> str:
    """One public Python API call with generated arguments."""
    kind, arg = call
    if kind == "Scenario":
        return outcome(lambda: Scenario(**arg), _api_accept)
    if kind == "Dose":
        args, kwargs = arg

        def make():
            try:
                return Dose(*args, **kwargs)
            except TypeError as exc:  # a wrong call signature is Python's own error, as for any function
                if "positional" in str(exc) or "multiple values" in str(exc):
                    return Dose("heroin", "1 mg")
                raise
        return outcome(make, _api_accept)
    if kind == "Cohort":
        return outcome(lambda: Cohort(**arg), _api_accept)
    if kind == "Conditions":
        return outcome(lambda: Conditions(**arg), _api_accept)
    if kind == "with_cohort":
        base = Scenario(duration="1h")
        return outcome(lambda: base.with_cohort(subjects=arg[0], seed=arg[1]), _api_accept)
    if kind == "load_scenario":
        from opioidsim.scenarios import load_scenario

        return outcome(lambda: load_scenario(arg), _api_accept)
    # simulate() with something that is not a runnable scenario: refused before any work
    from opioidsim import simulate

    return outcome(lambda: simulate(arg), lambda r: (_ for _ in ()).throw(
        FuzzFailure(f"simulate({arg!r}) ran")))


class _NoEngine(Exception):
    pass


def target_cli(d: dict, flags: list[str], workdir: Path) -> str:
    """`opioidsim run FILE --out DIR FLAGS` with the engine replaced: a bad input must give exit 2,
    one 'opioidsim: error:' line naming the problem, and nothing written."""
    import contextlib
    import io

    import tomli_w

    from opioidsim import cli

    try:
        text = tomli_w.dumps(d)
    except (TypeError, ValueError):
        return "skipped"
    case = Path(tempfile.mkdtemp(dir=workdir))
    (case / "s.toml").write_text(text, encoding="utf-8")
    called: list[Any] = []

    def fake(scenario, progress):
        called.append(scenario)
        raise _NoEngine()

    old = cli._simulate
    cli._simulate = fake
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = cli.main(["run", str(case / "s.toml"), "--out", str(case / "out"), "--no-progress", *flags])
            except _NoEngine:
                code = None
            except BaseException as exc:  # noqa: BLE001
                raise FuzzFailure(f"opioidsim run raised {type(exc).__name__}: {exc}") from exc
    finally:
        cli._simulate = old
    left = sorted(p.name for p in case.iterdir() if p.name != "s.toml")
    import shutil

    shutil.rmtree(case, ignore_errors=True)
    if left:
        raise FuzzFailure(f"files left behind: {left}")
    text_err = err.getvalue()
    if code is None:  # accepted: the engine was reached with a valid scenario
        check_accepted(called[0])
        return "accepted"
    lines = [ln for ln in text_err.splitlines() if ln.strip()]
    if code != 2 or len(lines) != 1 or not lines[0].startswith("opioidsim: error: ") or "Traceback" in text_err:
        raise FuzzFailure(f"exit {code}, stderr {text_err!r}")
    return "rejected:cli"


FLAGS = st.lists(st.sampled_from(["--subjects", "--seed", "--checkpoint-every", "--overwrite", "--resume",
                                  "0", "-1", "1e6", "1000001", "2", "4294967296", "nan", "abc", "", "--bogus"]),
                 max_size=4)

TARGETS = ("toml", "api", "cli")


def run_target(name: str, cases: int, *, seed: int | None = None, workdir: Path | None = None) -> dict[str, Any]:
    """Run `cases` generated inputs against one target; returns counts (raises on a failure)."""
    tally: Counter = Counter()
    workdir = Path(workdir or tempfile.mkdtemp(prefix="opioidsim-fuzz-"))

    common = settings(max_examples=cases, deadline=None, database=None, derandomize=seed is None,
                      suppress_health_check=list(HealthCheck), print_blob=True)
    if name == "toml":
        @common
        @given(st.one_of(mutated(), valid_like(), st.text(max_size=300).map(lambda t: {"__text__": t})))
        def prop(d):
            if "__text__" in d and len(d) == 1:
                tally[outcome(lambda: Scenario.from_toml_text(d["__text__"]))] += 1
            else:
                tally[target_toml(d)] += 1
    elif name == "api":
        @common
        @given(api_call())
        def prop(call):
            tally[target_api(call)] += 1
    elif name == "cli":
        @common
        @given(st.one_of(mutated(), valid_like()), FLAGS)
        def prop(d, flags):
            tally[target_cli(d, flags, workdir)] += 1
    else:
        raise ValueError(f"unknown fuzz target {name!r}; targets: {', '.join(TARGETS)}")
    if seed is not None:
        from hypothesis import seed as hseed

        prop = hseed(seed)(prop)
    t0 = time.perf_counter()
    prop()
    accepted = tally.pop("accepted", 0)
    skipped = tally.pop("skipped", 0)
    rejected = sum(tally.values())
    fields = Counter()
    for k, v in tally.items():
        fields[k.split(":", 1)[1].split("[")[0].split(".")[0]] += v
    return {"target": name, "cases": accepted + rejected + skipped, "accepted": accepted, "rejected": rejected,
            "skipped": skipped, "failures": 0, "seconds": round(time.perf_counter() - t0, 1),
            "rejected_by_field": dict(fields.most_common())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m opioidsim.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=10_000, help="total cases, split over the targets (default 10000)")
    ap.add_argument("--targets", default=",".join(TARGETS), help="comma-separated: toml, api, cli")
    ap.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: derandomized, repeatable)")
    ap.add_argument("--json", metavar="FILE", default=None, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    share = {"toml": 0.5, "api": 0.3, "cli": 0.2}
    weights = sum(share.get(t, 0.2) for t in targets)
    rows, failures = [], 0
    for t in targets:
        n = max(1, round(args.cases * share.get(t, 0.2) / weights))
        try:
            rows.append(run_target(t, n, seed=args.seed))
        except FuzzFailure as exc:  # hypothesis has shrunk it to a minimal example and printed it
            failures += 1
            rows.append({"target": t, "cases": n, "failures": 1, "error": str(exc)[:500]})
    print(f"{'target':8} {'cases':>7} {'accepted':>9} {'rejected':>9} {'failures':>9} {'seconds':>8}")
    for r in rows:
        print(f"{r['target']:8} {r['cases']:>7} {r.get('accepted', '-'):>9} {r.get('rejected', '-'):>9} "
              f"{r['failures']:>9} {r.get('seconds', '-'):>8}")
    total = sum(r["cases"] for r in rows)
    print(f"total {total} cases, {failures} failures")
    for r in rows:
        if "rejected_by_field" in r:
            top = ", ".join(f"{k} {v}" for k, v in list(r["rejected_by_field"].items())[:8])
            print(f"  {r['target']}: rejections by field: {top}")
        if "error" in r:
            print(f"  {r['target']}: FAILURE: {r['error']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "total_cases": total, "failures": failures,
                                               "python": sys.version.split()[0]}, indent=2) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
