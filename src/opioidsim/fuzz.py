"""Fuzzing the inputs: generated scenario files, Python API calls and command lines.

Property (issue 9): whatever the input, the only failure allowed is the documented validation
error — a `ScenarioError` whose `field` names the offending field, whose one-line message
contains that field (and the value found), and, on the command line, exit code 2 with one
``opioidsim: error: …`` line, no traceback and nothing written. An input that is accepted must be
really runnable: it round-trips through TOML, its doses expand within the limits, and the engine's
dose compiler, grid and memory estimate accept it (without integrating); a [life] or [trial]
fits the memory its per-step records need, names a supply and medications the PK model has, and
its timeline, built as the course runner builds it, is exactly the scenario's length.

The generators start from a valid scenario and break it the ways people (and typos) do: wrong
types, missing and extra keys, absurd units and magnitudes, overlapping, repeated and
out-of-range schedules, unknown drugs, routes, readouts and paradigms, huge cohorts and seeds.
Human courses too: `[life]` (periods, supply) and `[trial]` (arms, supply) scenarios, valid and
broken (unknown medications, psychosocial treatments, period kinds, street drugs and routes;
negative, fractional and huge lengths; allocation ratios of 0; arms with one name; a [trial]
beside a [life], a [paradigm] or doses; huge cohorts × steps; odd depression/ptsd shares). And
Python dicts whose keys are not text, ints beyond any float, TOML nested deeper than the reader's
recursion, paths too long or with a NUL.

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
from opioidsim.scenarios.course import (DRUGLESS_MEDICATIONS, MEDICATIONS, PERIOD_KINDS, PLACEBO, PSYCHOSOCIAL,
                                        SUPPLY_DRUGS, SUPPLY_ROUTES, Life, Trial)
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
    st.sampled_from([0, 0.0, -0.0, 1e-300, 1e300, 5e-324, 1.7976931348623157e308, 2**63, 2**64, -1, 10**400]),
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
                 st.tuples(scalars), st.sets(st.integers(), max_size=2), st.just(object()),
                 # a Python dict whose key is not text (no TOML form: from_toml_dict and the API)
                 st.dictionaries(st.one_of(st.integers(-2, 2), st.none(), st.booleans()), scalars, min_size=1,
                                 max_size=2),
                 st.sampled_from([10**400, -10**400, 2**1000]))
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


#: parameters a [parameters] table sets in the generated scenarios: a divisor, a rate, a fraction, a
#: behaviour parameter, one of negative sign, and names that other tables set
FUZZ_PARAMETERS = ["naloxone_volume", "heroin_clearance", "mor_reserve_vta", "quit_brake", "co2_drive_offset",
                   "buprenorphine_efficacy", "heroin_mor_kd"]
BAD_PARAMETER_NAMES = ["pain_stimulus", "oprm1_g_carrier", "heroin_clearence", "Heroin_clearance", "", "parameters",
                       "__class__"]


def _parameter_value(draw) -> Any:
    return draw(st.one_of(st.floats(0, 2), st.integers(0, 5), st.sampled_from(["120 L/h", "0.5 h", "2 nM", "1"])))


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
    if draw(st.integers(0, 3)) == 0:
        names = draw(st.lists(st.sampled_from(FUZZ_PARAMETERS), min_size=1, max_size=3, unique=True))
        data["parameters"] = {name: _parameter_value(draw) for name in names}
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
        op = draw(st.sampled_from(["replace", "delete", "add", "paradigm", "schedule", "cohort", "unit",
                                   "parameters"]))
        if op == "parameters":  # unknown or reserved names, wrong units, signs, zeros, junk
            table = d.setdefault("parameters", {})
            if isinstance(table, dict):
                name = draw(st.one_of(st.sampled_from(FUZZ_PARAMETERS + BAD_PARAMETER_NAMES), st.text(max_size=8)))
                table[name] = draw(st.one_of(numbers, junk, masses, times, st.sampled_from(WRONG_UNITS)))
            continue
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
        _mutate_at(draw, d, op, draw(st.sampled_from(paths)), EXTRA_KEYS)
    return d


def _mutate_at(draw, d: Any, op: str, path: tuple, extra_keys) -> None:
    """replace the value at path with junk, delete it, or add an extra key beside it."""
    if op == "replace":
        _set(d, path, draw(junk))
    elif op == "delete":
        _set(d, path, MISSING)
    else:
        _add(d, path, draw(st.sampled_from(extra_keys)), draw(junk))


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
# human courses: [life] and [trial]
# ---------------------------------------------------------------------------------------------
#: decision steps that divide a day into whole engine quanta (valid) ...
GOOD_DECIDE = ["15min", "20min", "30min", "45min", "1h", "90min", "2h", "3h", "4h", "6h", "240min", "0.25h"]
#: ... and ones that do not, or are out of range: 1440/7 min is 205.714… min, not whole 3.75 s steps
BAD_DECIDE = ["5h", "7h", "14min", "10min", "1d", "0h", "-1h", "1e9h", f"{1440 / 7!r}min", f"{1440 / 11!r}min",
              "1s", "nan h", "inf h", "1 mg"]
COURSE_LENGTHS = ["-7d", "0d", "-0d", "1d", "6d", "7d", "7.5d", "36h", "1y", "2y", "10y", "11y", "40y", "41y", "100y",
                  "1e9d", "1w", "260w", "261w", "10d", "12.5w", "1e-9 d", "nan d", "inf d", "1 mg", "", "60"]
MEDICATION_NAMES = ["metadone", "Methadone", "suboxone", "naltrexone-xr", "naloxone", "heroin", "none ", "",
                    "buprenorphine\n", "placebo"]
PSYCHOSOCIAL_NAMES = ["counseling", "CBT", "therapy", "12-step", "aftercare ", "", "contingency management"]
PERIOD_KIND_NAMES = ["prison", "hospital", "Community", "abstinence", "treatment ", "use", "", "forced-abstinence"]
SUPPLY_DRUG_NAMES = ["morphine", "carfentanil", "Heroin", "kratom", "", "fentanyl ", "oxycodone"]
SUPPLY_ROUTE_NAMES = ["oral", "sublingual", "IV", "im", "smoked", "intranasal", "", "inhaled", "xr_injection"]
MISSING_URINE_NAMES = ["positive", "exclude", "negative", "ignore", "Positive", ""]
ARM_NAMES = ["control", "methadone", "bup-16mg", "a_b", "x" * 40, "x" * 41, "", " ", "two words", "é", "a/b",
             "control ", "Control"]
COURSE_READOUTS = ["cows", "spo2", "hedonic_state", "nac_dopamine", "pfc_control", "d2_density"]


def _supply(draw) -> dict:
    drug = draw(st.sampled_from(list(SUPPLY_DRUGS)))
    sup: dict[str, Any] = {}
    if draw(st.booleans()):
        sup["drug"] = drug
    if draw(st.booleans()) or drug != "heroin":
        sup["route"] = draw(st.sampled_from(list(SUPPLY_ROUTES[drug])))
    for key, strat in (("dose", st.sampled_from(["20 mg", "10 mg", "0.5 mg", "500 mg", "1 ug"])),
                       ("potency_cv", st.floats(0, 3)), ("fentanyl_contamination", st.floats(0, 1)),
                       ("fentanyl_dose", st.sampled_from(["0.1 mg", "50 ug", "10 mg"])),
                       ("availability", st.floats(0, 1)), ("naloxone_bystander", st.floats(0, 1))):
        if draw(st.integers(0, 3)) == 0:
            sup[key] = draw(strat)
    return sup


def _programme(draw, *, medication: bool = True) -> dict:
    """The fields of a programme (an arm, or a treatment period) that are often valid together."""
    prog: dict[str, Any] = {}
    med = draw(st.sampled_from(list(MEDICATIONS))) if medication else "none"
    if med != "none" or draw(st.booleans()):
        prog["medication"] = med
    if med not in DRUGLESS_MEDICATIONS:  # a placebo holds no drug: no dose fields
        if draw(st.booleans()):
            prog["dose"] = draw(st.sampled_from(["80 mg", "16 mg", "4 mg", "50 mg", "380 mg", "0.1 mg", "1000 mg"]))
        if draw(st.integers(0, 3)) == 0:
            prog["start_dose"] = draw(st.sampled_from(["30 mg", "2 mg", "0.5 mg"]))
        if draw(st.integers(0, 3)) == 0:
            prog["titration_step"] = draw(st.sampled_from(["0 mg", "5 mg", "200 mg"]))
        if draw(st.integers(0, 3)) == 0:
            prog["taper"] = draw(st.sampled_from(["1d", "21d", "365d", "3w"]))
        if med == "buprenorphine" and draw(st.booleans()):
            prog["induction_cows"] = draw(st.one_of(st.integers(0, 48), st.floats(0, 48)))
        if med.startswith("naltrexone") and draw(st.booleans()):
            prog["opioid_free_days"] = draw(st.one_of(st.integers(0, 60), st.floats(0, 60)))
    elif med == PLACEBO and draw(st.booleans()):  # what it blinds (the last one broken)
        prog["blinds"] = draw(st.sampled_from(["buprenorphine", "methadone", "naltrexone_xr", "naltrexone", "none"]))
        if prog["blinds"].startswith("naltrexone") and draw(st.booleans()):
            prog["opioid_free_days"] = draw(st.integers(0, 14))
    if draw(st.booleans()):
        prog["psychosocial"] = draw(st.lists(st.sampled_from(list(PSYCHOSOCIAL)), max_size=4))
        if "contingency_management" in prog["psychosocial"] and draw(st.booleans()):
            prog["cm_weeks"] = draw(st.one_of(st.integers(1, 520), st.floats(0.1, 520)))
    if draw(st.integers(0, 3)) == 0:
        prog["antidepressant"] = draw(st.booleans())
    return prog


def _period(draw) -> dict:
    kind = draw(st.sampled_from(list(PERIOD_KINDS)))
    per: dict[str, Any] = {"kind": kind,
                           "duration": draw(st.one_of(st.integers(1, 400).map(lambda n: f"{n}d"),
                                                      st.integers(1, 50).map(lambda n: f"{n}w"),
                                                      st.sampled_from(["365d", "730d", "180d", "1d"])))}
    if kind == "treatment":
        per.update(_programme(draw))
    elif draw(st.integers(0, 3)) == 0:
        per["psychosocial"] = draw(st.lists(st.sampled_from(list(PSYCHOSOCIAL)), max_size=2))
    return per


def _arm(draw, name: str) -> dict:
    arm = {"name": name, **_programme(draw)}
    if draw(st.integers(0, 2)) == 0:
        arm["allocation"] = draw(st.integers(1, 10))
    return arm


def _course_table(draw, kind: str) -> dict:
    table: dict[str, Any] = {}
    if draw(st.booleans()):
        table["decide_every"] = draw(st.sampled_from(GOOD_DECIDE[4:]))  # hourly or slower: cheap timelines
    if draw(st.booleans()):
        table["supply"] = _supply(draw)
    if kind == "life":
        table["period"] = [_period(draw) for _ in range(draw(st.integers(1, 4)))]
        return table
    for key, strat in (("history", st.one_of(st.integers(7, 120).map(lambda n: f"{n}d"), st.just("1w"))),
                       ("follow_up", st.one_of(st.integers(1, 52).map(lambda n: f"{n}w"), st.just("14d"))),
                       ("urine_tests_per_week", st.integers(1, 7)),
                       ("missing_urine", st.sampled_from(["positive", "exclude"])),
                       ("follow_up_after_dropout", st.booleans()),
                       ("discharge_after_missed_days", st.integers(1, 60)),
                       ("detox", st.sampled_from(["0d", "5d", "1w", "30d", "91d", "2.5d"]))):
        if draw(st.booleans()):
            table[key] = draw(strat)
    names = draw(st.lists(st.sampled_from(ARM_NAMES[:4]), min_size=1, max_size=4, unique=True))
    table["arm"] = [_arm(draw, n) for n in names]
    if draw(st.booleans()):  # mostly a multiple of the arms' total allocation, as the schema asks
        total = sum(a.get("allocation", 1) for a in table["arm"])
        table["block_size"] = draw(st.one_of(st.integers(0, 3).map(lambda k: k * total), st.integers(0, 120)))
        if draw(st.booleans()):
            table["stratify"] = draw(st.lists(st.sampled_from(["depression", "ptsd", "age"]), max_size=2))
    return table


@st.composite
def valid_course(draw, kind: str | None = None) -> dict:
    """A [life] or [trial] scenario in the TOML shape that is often valid."""
    kind = kind or draw(st.sampled_from(["life", "trial"]))
    header: dict[str, Any] = {"name": draw(st.sampled_from(["fuzz-course", "trial.x", "life_1"]))}
    if draw(st.booleans()):
        header["description"] = draw(st.sampled_from(["a course", "", "ünïcode"]))
    if draw(st.integers(0, 3)) == 0:
        header["readouts"] = draw(st.lists(st.sampled_from(COURSE_READOUTS), min_size=1, max_size=3, unique=True))
    data: dict[str, Any] = {"scenario": header}
    if draw(st.booleans()):
        cohort: dict[str, Any] = {"subjects": draw(st.one_of(st.integers(1, 400), st.sampled_from([1, 2000]))),
                                  "seed": draw(st.integers(0, 2**32 - 1))}
        for key in ("depression", "ptsd"):
            if draw(st.booleans()):
                cohort[key] = draw(st.one_of(st.floats(0, 1), st.sampled_from([0, 1, 0.0, 1.0])))
        if draw(st.integers(0, 3)) == 0:
            cohort["age_at_first_use"] = draw(st.integers(10, 80))
        data["cohort"] = cohort
    if draw(st.integers(0, 3)) == 0:
        data["conditions"] = {"pain_stimulus": draw(st.floats(0, 1))}
    data[kind] = _course_table(draw, kind)
    return data


COURSE_EXTRA_KEYS = ["periods", "arms", "arm", "period", "phase", "dose", "medication", "kind", "duration",
                     "subjects", "allocation", "supply", "Name", "route", "history", "decide_every", "treatment", ""]


def _course_paths(d: dict, kind: str) -> dict[str, list[tuple]]:
    """Where each kind of name lives in this scenario (paths into d)."""
    table = d.get(kind)
    out: dict[str, list[tuple]] = {k: [] for k in ("medication", "psychosocial", "kind", "drug", "route",
                                                   "missing_urine", "length", "allocation", "decide_every")}
    if not isinstance(table, dict):
        return out
    out["decide_every"].append((kind, "decide_every"))
    sup = table.get("supply")
    if isinstance(sup, dict) or sup is None:
        out["drug"].append((kind, "supply", "drug"))
        out["route"].append((kind, "supply", "route"))
    items = table.get("period" if kind == "life" else "arm")
    for i, it in enumerate(items if isinstance(items, list) else []):
        if not isinstance(it, dict):
            continue
        base = (kind, "period" if kind == "life" else "arm", i)
        out["medication"].append(base + ("medication",))
        out["psychosocial"].append(base + ("psychosocial",))
        out["length"].append(base + ("taper",))
        if kind == "life":
            out["kind"].append(base + ("kind",))
            out["length"].append(base + ("duration",))
        else:
            out["allocation"].append(base + ("allocation",))
    if kind == "trial":
        out["missing_urine"].append((kind, "missing_urine"))
        out["length"] += [(kind, "history"), (kind, "follow_up")]
    return out


@st.composite
def mutated_course(draw) -> dict:
    """A valid-like [life] or [trial] scenario with 1–3 things broken."""
    kind = draw(st.sampled_from(["life", "trial"]))
    d = draw(valid_course(kind))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["replace", "delete", "add", "name", "length", "allocation", "duplicate",
                                   "both", "size", "prevalence", "shape", "programme", "unit"]))
        where = _course_paths(d, kind)
        if op == "name":  # unknown medications, psychosocial treatments, period kinds, drugs, routes
            what = draw(st.sampled_from([k for k in ("medication", "psychosocial", "kind", "drug", "route",
                                                     "missing_urine") if where[k]] or ["drug"]))
            if not where[what]:
                continue
            pool = {"medication": MEDICATION_NAMES, "kind": PERIOD_KIND_NAMES, "drug": SUPPLY_DRUG_NAMES,
                    "route": SUPPLY_ROUTE_NAMES, "missing_urine": MISSING_URINE_NAMES,
                    "psychosocial": PSYCHOSOCIAL_NAMES}[what]
            value = draw(st.one_of(st.sampled_from(pool), names, routes, junk))
            if what == "psychosocial" and draw(st.booleans()):
                value = draw(st.lists(st.one_of(st.sampled_from(pool + list(PSYCHOSOCIAL)), junk), max_size=3))
            if what == "drug" and draw(st.booleans()):  # the other drug's routes
                _set(d, where["route"][0][:-1] + ("route",), draw(st.sampled_from(SUPPLY_ROUTE_NAMES)))
            _set_deep(d, draw(st.sampled_from(where[what])), value)
        elif op == "length":  # negative, fractional, huge durations; bad decision steps
            if draw(st.integers(0, 2)) == 0:
                _set_deep(d, where["decide_every"][0] if where["decide_every"] else (kind, "decide_every"),
                          draw(st.one_of(st.sampled_from(BAD_DECIDE + GOOD_DECIDE), times)))
            elif where["length"]:
                _set_deep(d, draw(st.sampled_from(where["length"])),
                          draw(st.one_of(st.sampled_from(COURSE_LENGTHS), times, numbers)))
        elif op == "allocation":  # allocation ratios ≤ 0, fractional, huge
            if where["allocation"]:
                _set_deep(d, draw(st.sampled_from(where["allocation"])),
                          draw(st.one_of(st.sampled_from([0, -1, 0.5, 1.0, 2.0, 10, 11, True, "1", "1:1", 2**63,
                                                          float("nan"), -0.0]), numbers)))
        elif op == "duplicate":  # arms with one name, repeated periods
            items = _course_items(d, kind)
            if isinstance(items, list) and items and isinstance(items[0], dict):
                twin = copy.deepcopy(draw(st.sampled_from(items)))
                if kind == "trial" and draw(st.booleans()):
                    twin["name"] = draw(st.sampled_from(ARM_NAMES))
                items.insert(draw(st.integers(0, len(items))), twin)
        elif op == "both":  # a trial beside a life, a paradigm, doses, or a duration of its own
            other = draw(st.sampled_from(["life", "trial", "paradigm", "dose", "duration", "record_every"]))
            if other in ("life", "trial"):
                d[other] = draw(valid_course(other))[other]
            elif other == "paradigm":
                d["paradigm"] = copy.deepcopy(_builtin_table("rat-heroin-place-preference", "paradigm"))
            elif other == "dose":
                d["dose"] = [_dose(draw)]
            elif isinstance(d.get("scenario"), dict):
                d["scenario"][other] = draw(st.one_of(good_times, st.sampled_from(["1d", "100y", "12w", "1min"])))
        elif op == "size":  # huge cohorts × long courses × short decision steps
            d["cohort"] = {"subjects": draw(st.one_of(st.integers(10**3, 10**6),
                                                      st.sampled_from([10**4, 10**5, 10**6, 10**6 + 1]))),
                           "seed": draw(st.integers(0, 2**32 - 1))}
            table = d.get(kind)
            if isinstance(table, dict):
                table["decide_every"] = draw(st.sampled_from(GOOD_DECIDE))
                if kind == "trial":
                    table["history"] = draw(st.sampled_from(["60d", "365d", "3652d", "7d"]))
                    table["follow_up"] = draw(st.sampled_from(["12w", "52w", "260w"]))
                elif isinstance(table.get("period"), list) and table["period"] and isinstance(table["period"][0], dict):
                    table["period"][0]["duration"] = draw(st.sampled_from(["365d", "3650d", "14610d", "40y"]))
            if draw(st.booleans()) and isinstance(d.get("scenario"), dict):
                d["scenario"]["readouts"] = draw(st.lists(st.sampled_from(list(READOUTS)), min_size=1,
                                                          max_size=40, unique=True))
        elif op == "prevalence":  # depression / ptsd shares
            cohort = d.setdefault("cohort", {})
            if isinstance(cohort, dict):
                cohort[draw(st.sampled_from(["depression", "ptsd", "Depression", "PTSD", "anxiety"]))] = draw(
                    st.one_of(st.sampled_from([0, 1, 0.5, -0.1, 1.1, 2, "0.3", "30%", True, None, float("nan"),
                                               float("inf"), 10**400]), numbers, junk))
        elif op == "shape":  # tables where lists belong and the other way round, both spellings
            table = d.get(kind)
            if not isinstance(table, dict):
                continue
            key = "period" if kind == "life" else "arm"
            choice = draw(st.sampled_from(["single", "empty", "scalars", "python", "both", "supply", "table"]))
            if choice == "single" and isinstance(table.get(key), list) and table[key]:
                table[key] = table[key][0]
            elif choice == "empty":
                table[key] = []
            elif choice == "scalars":
                table[key] = draw(st.lists(scalars, min_size=1, max_size=3))
            elif choice == "python":  # the Python spelling in a file: periods = [...] / arms = [...]
                if key in table:
                    table[key + "s"] = table.pop(key)
            elif choice == "both":
                table[key + "s"] = copy.deepcopy(table.get(key, []))
            elif choice == "supply":
                table["supply"] = draw(junk)
            else:
                d[kind] = draw(st.one_of(junk, st.just([table])))
        elif op == "programme":  # programme fields where they do not apply
            items = _course_items(d, kind)
            if isinstance(items, list) and items and isinstance(items[0], dict):
                it = draw(st.sampled_from(items))
                field, value = draw(st.sampled_from([
                    ("dose", "80 mg"), ("taper", "21d"), ("taper", "400d"), ("start_dose", "1001 mg"),
                    ("titration_step", "-5 mg"), ("induction_cows", 8), ("induction_cows", 49),
                    ("opioid_free_days", 7), ("opioid_free_days", 61), ("cm_weeks", 12), ("cm_weeks", 0),
                    ("antidepressant", "yes"), ("antidepressant", 1), ("medication", "methadone"),
                    ("dose", "80"), ("dose", "80 min"), ("dose", 80), ("psychosocial", "cbt"),
                    ("psychosocial", [])]))
                it[field] = value
        elif op == "unit":
            if where["length"]:
                _set_deep(d, draw(st.sampled_from(where["length"])), draw(st.one_of(times, masses)))
            sup = d.get(kind, {}).get("supply") if isinstance(d.get(kind), dict) else None
            if isinstance(sup, dict):
                sup[draw(st.sampled_from(["dose", "fentanyl_dose"]))] = draw(st.one_of(masses, times))
        else:  # replace, delete, add: anywhere, the course's own fields first (hypothesis favours
            # the first choices; a [scenario] table replaced by None says nothing about courses)
            paths = sorted(key_paths(d), key=lambda p: (p[0] != kind, -len(p)))
            if not paths:
                continue
            _mutate_at(draw, d, op, draw(st.sampled_from(paths)), COURSE_EXTRA_KEYS + EXTRA_KEYS)
    return d


def _course_items(d: dict, kind: str) -> Any:
    """The [[life.period]] or [[trial.arm]] entries of d (None when the table is not a table)."""
    table = d.get(kind)
    return table.get("period" if kind == "life" else "arm") if isinstance(table, dict) else None


def _set_deep(d: Any, path: tuple, value: Any) -> None:
    """Like _set, creating the tables on the way (e.g. trial.supply.route when there is no supply)."""
    try:
        target = d
        for key in path[:-1]:
            if isinstance(target, dict) and key not in target:
                target[key] = {}
            target = target[key]
        target[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        pass


_BUILTIN_TABLES: dict[str, dict] = {}


def _builtin_table(name: str, key: str | None = None) -> Any:
    """A built-in scenario's TOML data (or one of its tables), read once."""
    if name not in _BUILTIN_TABLES:
        from opioidsim.scenarios.schema import _builtin_files, _toml

        _BUILTIN_TABLES[name] = _toml.loads(_builtin_files()[name].read_text(encoding="utf-8"))
    data = _BUILTIN_TABLES[name]
    return copy.deepcopy(data if key is None else data[key])


# ---------------------------------------------------------------------------------------------
# between-group experiments: [[paradigm.group]]
# ---------------------------------------------------------------------------------------------
GROUP_NAMES = ["ShA", "LgA", "saline", "a_b-c.d", "x" * 40, "x" * 41, "", " ", "a/b", "é", "LgA "]
GROUP_PHASE_KEYS = ["session_length", "ratio", "timeout", "cue", "trigger", "priming_dose", "dose", "duration",
                    "sessions", "sessions_per_day", "kind", "name", "speed"]
GROUP_PHASE_NAMES = ["access", "Access", "escalation", "", "0", "1"]
GROUP_VALUES = ["6h", "1h", "23h", "24h", "25h", "0h", "30min", "0 ug/kg", "0.25 mg/kg", "-1 mg/kg", "60 ug",
                "cue", "footshock", "priming", "shock", 0, 1, 5, 101, True, "30d", "6y"]


@st.composite
def mutated_groups(draw) -> dict:
    """The built-in short- vs long-access experiment, with its groups valid or broken: sizes,
    names (repeated, too long, odd characters), changes to phases that do not exist, fields a
    group may not change, bad values, saline infusions, a [cohort] size that disagrees, more
    groups, groups that are not tables."""
    d = _builtin_table("rat-heroin-short-vs-long-access")
    groups = d["paradigm"]["group"]
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["subjects", "name", "change", "infusion", "cohort", "more", "shape", "junk"]))
        g = draw(st.integers(0, len(groups) - 1)) if groups else 0
        if op in ("subjects", "name", "change", "infusion") and not (groups and isinstance(groups[g], dict)):
            continue  # an earlier mutation made the group something other than a table
        if op == "subjects" and groups:
            groups[g]["subjects"] = draw(st.one_of(st.integers(-2, 12), st.sampled_from([10**5, 10**5 + 1, 2.0, 2.5,
                                                                                          True, "2"]), junk))
        elif op == "name" and groups:
            groups[g]["name"] = draw(st.one_of(st.sampled_from(GROUP_NAMES + [x.get("name") for x in groups if isinstance(x, dict)]), junk))
        elif op == "change" and groups:
            change = groups[g].setdefault("phase", {})
            if isinstance(change, dict):
                phase = draw(st.sampled_from(GROUP_PHASE_NAMES))
                table = change.setdefault(phase, {})
                if isinstance(table, dict):
                    table[draw(st.sampled_from(GROUP_PHASE_KEYS))] = draw(st.one_of(st.sampled_from(GROUP_VALUES),
                                                                                    times, masses, junk))
                else:
                    change[phase] = draw(junk)
        elif op == "infusion" and groups:
            groups[g]["infusion"] = draw(st.one_of(st.sampled_from(["0 ug/kg", "30 ug/kg", "0 mg/kg", "-0 ug/kg",
                                                                    "60 ug", "51 mg/kg", "nan ug/kg"]), masses, junk))
        elif op == "cohort":
            d["cohort"]["subjects"] = draw(st.one_of(st.integers(0, 20), junk))
        elif op == "more":
            for k in range(draw(st.integers(1, 30))):
                groups.append({"name": f"g{k}", "subjects": 1, "phase": {"access": {"session_length": "2h"}}})
        elif op == "shape":
            d["paradigm"]["group"] = draw(st.one_of(st.just([]), st.just({}), st.lists(junk, max_size=2), junk))
            break
        else:
            paths = [p for p in key_paths(d) if p[:2] == ("paradigm", "group")]
            if paths:
                _mutate_at(draw, d, draw(st.sampled_from(["replace", "delete", "add"])), draw(st.sampled_from(paths)),
                           ["phase", "group", "subjects", "colour", "drug"])
    return d


BUILTIN_COURSES = ["life-prison-release", "trial-buprenorphine-dose", "trial-contingency-management",
                   "trial-methadone-vs-no-substitution", "trial-naltrexone-xr"]


@st.composite
def builtin_course(draw) -> dict:
    """A built-in [life]/[trial] scenario, sometimes with its cohort or one field changed."""
    d = _builtin_table(draw(st.sampled_from(BUILTIN_COURSES)))
    if draw(st.booleans()):
        d.setdefault("cohort", {})["subjects"] = draw(st.one_of(st.integers(1, 10**6), st.sampled_from([10**6])))
    return d


# ---------------------------------------------------------------------------------------------
# the oracle
# ---------------------------------------------------------------------------------------------
#: what one run can hold in memory in this version (results stay in memory until Zarr streaming,
#: issue 7): 2·10⁹ float64 values = 16 GB of records; 5·10⁸ per-subject dose-event cells ≈ 10 GB.
#: Stated here on their own (the same figures as the schema's LIMITS, by design) so that the oracle
#: checks the schema rather than reading its answer from it.
MAX_RESULT_VALUES = 2_000_000_000
MAX_DOSE_CELLS = 500_000_000
#: a [life]/[trial] holds every decision step of every subject (float32, then a float64 copy of the
#: behaviour): 10⁹ values ≈ 12 GB; and a subject's timeline at most 400,000 steps (hourly, ~40 years)
MAX_COURSE_VALUES = 1_000_000_000
MAX_COURSE_STEPS = 400_000
#: timelines up to this many steps are built as the runner builds them (milliseconds; longer ones
#: are only counted, so that the fuzz run stays fast)
COURSE_BUILD_STEPS = 6_000


class FuzzFailure(AssertionError):
    """An input that got something other than the documented validation error."""


#: accepted scenarios by kind in the current run (dose schedule, paradigm, life, trial)
ACCEPTED_KINDS: Counter = Counter()


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
    ACCEPTED_KINDS[next((k for k in ("life", "trial", "paradigm") if getattr(s, k) is not None), "doses")] += 1
    if s.paradigm is not None and s.paradigm.groups:
        ACCEPTED_KINDS["paradigm groups"] += 1
        _check_groups(s)
    again = Scenario.from_toml_text(s.to_toml())
    if again != s:
        raise FuzzFailure("accepted scenario does not round-trip through TOML")
    n_events = len(s.dose_schedule())
    if n_events > LIMITS["max_dose_events"]:
        raise FuzzFailure(f"accepted scenario expands to {n_events} dose events")
    grid = make_grid(s.duration_min, s.record_every_min)
    if not (1 <= grid.n_records - 1 <= LIMITS["max_record_points"] and grid.h > 0 and math.isfinite(grid.h)):
        raise FuzzFailure(f"accepted scenario gives an unusable grid {grid}")
    if s.life is not None or s.trial is not None:  # a human course: its own results, no simulation
        _check_course(s)
        return
    n_readouts = len(s.recorded_readouts)
    values = s.cohort.subjects * grid.n_records * n_readouts
    if values > MAX_RESULT_VALUES:
        raise FuzzFailure(f"accepted scenario needs {values:,} result values in memory")
    if s.cohort.subjects * max(n_events, 1) > MAX_DOSE_CELLS:
        raise FuzzFailure(f"accepted scenario needs {s.cohort.subjects * n_events:,} dose-event cells")
    if n_events and n_events <= 4096:
        _compile_doses(s, grid.h)


def _check_groups(s: Scenario) -> None:
    """An accepted between-group experiment: its groups' subjects are the cohort, each group's
    phases are valid phases, and each group's timeline (built as the runner builds it, when
    short) has the same session calendar and fits in the scenario."""
    from opioidsim.behavior.runner import group_timelines
    from opioidsim.scenarios.paradigm import Phase

    par = s.paradigm
    if sum(g.subjects for g in par.groups) != s.cohort.subjects:
        raise FuzzFailure("accepted groups whose subjects are not the cohort")
    per_group = [par.group_paradigm(g.name) for g in par.groups]
    for gp in per_group:
        if not all(isinstance(p, Phase) for p in gp.phases) or len(gp.phases) != len(par.phases):
            raise FuzzFailure("a group's phases are not the experiment's phases")
        if gp.length_min > s.duration_min + 1e-6:
            raise FuzzFailure("a group's schedule is longer than the scenario")
    if max(gp.length_min for gp in per_group) / par.decide_every_min <= COURSE_BUILD_STEPS:
        tls = group_timelines(par, s.record_every_min)
        if len({len(t.sessions) for t in tls}) != 1:
            raise FuzzFailure("groups' timelines have different numbers of sessions")


def _check_course(s: Scenario) -> None:
    """A [life] or [trial] scenario is runnable, checked without simulating: one kind of course, no
    doses, the memory its per-step records need (the runner's own column counts), its supply and
    medications known to the PK model, and its timeline (built as simulate_life / simulate_trial
    build it, when short) exactly as long as the scenario."""
    import numpy as np

    from opioidsim.behavior.course import DEFAULT_READOUTS, RECORDED, compile_course
    from opioidsim.model.pk import DOSE_TARGETS
    from opioidsim.scenarios.course import DAY_MIN, MEDICATION_ROUTE

    if s.life is not None and s.trial is not None or s.paradigm is not None or s.doses:
        raise FuzzFailure("accepted scenario mixes a course with another kind")
    course = s.life if s.life is not None else s.trial
    if abs(s.duration_min - course.length_min) > 1e-6:
        raise FuzzFailure(f"accepted course lasts {course.length_min} min, the scenario {s.duration_min} min")
    spd = DAY_MIN / course.decide_every_min
    days = course.length_min / DAY_MIN
    if abs(spd - round(spd)) > 1e-9 or abs(days - round(days)) > 1e-9:
        raise FuzzFailure(f"accepted course is {days} days of {spd} steps: not whole")
    steps = round(days) * round(spd)
    if steps > MAX_COURSE_STEPS:
        raise FuzzFailure(f"accepted course has {steps:,} decision steps per subject")
    names = [r for r in (s.readouts or DEFAULT_READOUTS) if r in READOUTS]
    values = s.cohort.subjects * steps * (len(RECORDED) + len(names))
    if values > MAX_COURSE_VALUES:
        raise FuzzFailure(f"accepted course needs {values:,} per-step values in memory")
    sup = course.supply
    if (sup.drug, sup.route) not in DOSE_TARGETS:
        raise FuzzFailure(f"accepted supply {sup.drug} by {sup.route} is not in the PK model")
    programmes = course.periods if s.life is not None else course.arms
    for prog in programmes:
        # every medication but the drugless ones must be a dose the PK model takes
        if prog.medication not in DRUGLESS_MEDICATIONS and MEDICATION_ROUTE.get(prog.medication) not in DOSE_TARGETS:
            raise FuzzFailure(f"accepted medication {prog.medication} is not in the PK model")
    if steps > COURSE_BUILD_STEPS:
        return
    if s.life is not None:  # as simulate_life builds it
        periods = [(p.kind, p.length_min / DAY_MIN, p if p.kind == "treatment" else None) for p in course.periods]
        timelines = [compile_course(periods, course.decide_every_min, sup.availability)]
    else:  # as simulate_trial builds it, one per arm
        from opioidsim.trial.simulate import randomise, trial_timeline

        timelines = [trial_timeline(course, arm) for arm in course.arms]
        arms = randomise(course, s.cohort.seed, np.arange(min(s.cohort.subjects, 256)), s.cohort)
        if not ((arms >= 0) & (arms < len(course.arms))).all():
            raise FuzzFailure("randomisation gave an arm that does not exist")
        if course.block_size:  # every full block of a stratum (of everyone) holds the allocation
            from opioidsim.behavior.course import disorder_strata

            stratum = disorder_strata(s.cohort, course.stratify, np.arange(len(arms)))
            share = course.block_size // sum(a.allocation for a in course.arms)
            for code in np.unique(stratum):
                mine = arms[stratum == code]
                full = mine[:len(mine) // course.block_size * course.block_size].reshape(-1, course.block_size)
                for k, arm in enumerate(course.arms):
                    if ((full == k).sum(axis=1) != arm.allocation * share).any():
                        raise FuzzFailure(f"a block of {course.block_size} does not hold arm {arm.name!r} "
                                          f"{arm.allocation * share} times")
    from opioidsim.engine.core import QUANTUM_MIN

    day_quanta = round(DAY_MIN / QUANTUM_MIN)  # engine quanta (3.75 s) in a day
    for tl in timelines:
        if tl.n_steps != steps or tl.n_steps % tl.steps_per_day:
            raise FuzzFailure(f"the course timeline has {tl.n_steps} steps, the scenario {steps}")
        if int(tl.quanta.sum()) != round(days) * day_quanta:
            raise FuzzFailure(f"the course timeline lasts {tl.quanta.sum() * QUANTUM_MIN / DAY_MIN} days, "
                              f"the scenario {days}")
        floats = np.concatenate([np.asarray(getattr(tl, f), dtype=float).ravel() for f in tl.__dataclass_fields__
                                 if f != "steps_per_day"])
        if not np.isfinite(floats).all() or (tl.med_mg < 0).any():
            raise FuzzFailure("the course timeline holds non-finite values or negative doses")


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
    """The TOML shape → Scenario(**kwargs) shape (what a Python user writes; keyword names are text:
    a call with another key is not a call Python can make)."""
    header = d.get("scenario")
    out = {str(k): v for k, v in header.items()} if isinstance(header, dict) else {"name": header}
    for key, target in (("cohort", "cohort"), ("conditions", "conditions"), ("dose", "doses")):
        if key in d:
            out[target] = d[key]
    for k in d:
        if k not in ("scenario", "cohort", "conditions", "dose"):
            out[str(k)] = d[k]
    return out


API_CALLS = ["Scenario", "Dose", "Cohort", "Conditions", "with_cohort", "load_scenario", "simulate", "Life", "Trial",
             "Course"]


@st.composite
def api_call(draw) -> tuple[str, Any]:
    kind = draw(st.sampled_from(API_CALLS))
    if kind == "Scenario":
        return kind, _py_kwargs(draw(mutated()))
    if kind == "Course":  # Scenario(**kw) with a life= or trial= table (TOML or Python spelling)
        d = draw(st.one_of(mutated_course(), valid_course(), builtin_course()))
        kw = _py_kwargs(d)
        for key, items in (("life", "period"), ("trial", "arm")):
            if isinstance(kw.get(key), dict) and items in kw[key] and draw(st.booleans()):
                kw[key] = dict(kw[key])
                kw[key][items + "s"] = kw[key].pop(items)
        return kind, kw
    if kind in ("Life", "Trial"):  # the table's own class, as a Python user builds it
        d = draw(st.one_of(mutated_course(), valid_course(kind.lower())))
        table = d.get(kind.lower())
        if isinstance(table, dict):  # keyword names are text (nested tables keep any key)
            return kind, {str(k): v for k, v in table.items()}
        return kind, {"period" if kind == "Life" else "arm": table}
    if kind == "Dose":
        args = draw(st.lists(st.one_of(names, masses, routes, times, junk), max_size=7))
        kwargs = draw(st.dictionaries(st.sampled_from(["drug", "amount", "route", "at", "every", "until",
                                                       "dose", "paradigm"]), st.one_of(scalars, junk), max_size=3))
        return kind, (args, kwargs)
    if kind in ("Cohort", "Conditions"):
        return kind, draw(st.dictionaries(st.sampled_from(["subjects", "seed", "pain_stimulus", "size", "n"]),
                                          st.one_of(numbers, scalars), max_size=3))
    if kind == "with_cohort":  # on a dose scenario or on a built-in course (the size limits differ)
        return kind, (draw(st.one_of(st.none(), numbers, scalars, st.integers(1, 10**6))),
                      draw(st.one_of(st.none(), numbers, scalars)),
                      draw(st.sampled_from([None] + BUILTIN_COURSES + ["rat-heroin-short-vs-long-access"])))
    if kind == "load_scenario":
        return kind, draw(st.one_of(st.sampled_from(["acute-heroin-ivv", "", ".", "/", "/etc/passwd", "x.toml",
                                                     "../README.md", "nonexistent/dir/s.toml", "trial-methadone",
                                                     "life-prison", "a" * 300, "1" * 400 + "s", "a\x00.toml",
                                                     "\x00", "x/" + "a" * 300 + ".toml"] + BUILTIN_COURSES), scalars))
    return kind, draw(st.one_of(scalars, st.sampled_from(["no-such-scenario", "/nonexistent.toml", "a" * 300,
                                                         "a\x00.toml"])))


def _api_accept(result: Any) -> None:
    if isinstance(result, Scenario):
        check_accepted(result)
    elif isinstance(result, (Life, Trial)):  # an accepted table makes a valid scenario of one subject
        key = "life" if isinstance(result, Life) else "trial"
        try:
            s = Scenario(**{key: result})
        except ScenarioError as err:
            raise FuzzFailure(f"an accepted {type(result).__name__} gives no scenario: {err}") from err
        check_accepted(s)
    elif not isinstance(result, (Dose, Cohort, Conditions)):
        raise FuzzFailure(f"API call returned {type(result).__name__}")


def target_api(call: tuple[str, Any]) -> str:
    """One public Python API call with generated arguments."""
    kind, arg = call
    if kind in ("Scenario", "Course"):
        return outcome(lambda: Scenario(**arg), _api_accept)
    if kind in ("Life", "Trial"):
        cls = Life if kind == "Life" else Trial
        return outcome(lambda: cls(**arg), _api_accept)
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
        base = Scenario(duration="1h") if arg[2] is None else Scenario.from_toml_dict(_builtin_table(arg[2]))
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


#: extra `run` flags: none as often as a random list, so that a good share of command lines is
#: valid whatever the scenario generators draw (random flags are nearly always broken)
FLAGS = st.one_of(st.just([]), st.lists(st.sampled_from(["--subjects", "--seed", "--checkpoint-every", "--overwrite",
                                                         "--resume", "0", "-1", "1e6", "1000001", "2", "4294967296",
                                                         "nan", "abc", "", "--bogus"]), max_size=4))

TARGETS = ("toml", "api", "cli", "commands")
#: TOML text nested deeper than the reader's recursion (arrays, inline tables, dotted tables)
DEEP_TEXT = ["a = " + "[" * 3000 + "]" * 3000, "[scenario]\nreadouts = " + "[" * 3000 + "]" * 3000,
             "x = " + "{a = " * 2000 + "1" + "}" * 2000, "[" + ".".join(["t"] * 3000) + "]"]


def run_target(name: str, cases: int, *, seed: int | None = None, workdir: Path | None = None) -> dict[str, Any]:
    """Run `cases` generated inputs against one target; returns counts (raises on a failure)."""
    tally: Counter = Counter()
    ACCEPTED_KINDS.clear()
    workdir = Path(workdir or tempfile.mkdtemp(prefix="opioidsim-fuzz-"))

    common = settings(max_examples=cases, deadline=None, database=None, derandomize=seed is None,
                      suppress_health_check=list(HealthCheck), print_blob=True)
    if name == "toml":
        @common
        @given(st.one_of(mutated(), valid_like(), mutated_course(), valid_course(), builtin_course(), mutated_groups(),
                         st.text(max_size=300).map(lambda t: {"__text__": t}),
                         st.sampled_from(DEEP_TEXT).map(lambda t: {"__text__": t})))
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
        @given(st.one_of(mutated(), valid_like(), mutated_course(), valid_course()), FLAGS)
        def prop(d, flags):
            tally[target_cli(d, flags, workdir)] += 1
    elif name == "commands":  # the other subcommands' command lines (opioidsim.fuzz_commands)
        from opioidsim.fuzz_commands import command_line, target_command

        @common
        @given(command_line())
        def prop(case):
            tally[target_command(case, workdir)] += 1
    else:
        raise ValueError(f"unknown fuzz target {name!r}; targets: {', '.join(TARGETS)}")
    if seed is not None:
        from hypothesis import seed as hseed

        prop = hseed(seed)(prop)
    t0 = time.perf_counter()
    try:
        prop()
    except FuzzFailure:
        raise
    except Exception as exc:  # several distinct failures: hypothesis raises them as one group
        subs = getattr(exc, "exceptions", None)
        if subs and all(isinstance(e, FuzzFailure) for e in subs):
            raise FuzzFailure(f"{len(subs)} distinct failures: " + " | ".join(str(e) for e in subs)) from exc
        raise
    accepted = tally.pop("accepted", 0)
    skipped = tally.pop("skipped", 0)
    rejected = sum(tally.values())
    fields = Counter()
    groups_rejected = sum(v for k, v in tally.items() if k.startswith("rejected:paradigm.group"))
    for k, v in tally.items():
        fields[k.split(":", 1)[1].split("[")[0].split(".")[0]] += v
    return {"target": name, "cases": accepted + rejected + skipped, "accepted": accepted, "rejected": rejected,
            "skipped": skipped, "failures": 0, "seconds": round(time.perf_counter() - t0, 1),
            "accepted_by_kind": dict(ACCEPTED_KINDS.most_common()), "rejected_by_field": dict(fields.most_common()),
            "rejected_groups": groups_rejected}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m opioidsim.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=10_000, help="total cases, split over the targets (default 10000)")
    ap.add_argument("--targets", default=",".join(TARGETS), help="comma-separated: toml, api, cli, commands")
    ap.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: derandomized, repeatable)")
    ap.add_argument("--json", metavar="FILE", default=None, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    share = {"toml": 0.45, "api": 0.25, "cli": 0.15, "commands": 0.15}
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
        if r.get("accepted_by_kind"):
            kinds = ", ".join(f"{k} {v}" for k, v in r["accepted_by_kind"].items())
            print(f"  {r['target']}: accepted by kind: {kinds}")
        if "error" in r:
            print(f"  {r['target']}: FAILURE: {r['error']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "total_cases": total, "failures": failures,
                                               "python": sys.version.split()[0]}, indent=2) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":  # pragma: no cover
    # run the package's copy of this module, not __main__'s: opioidsim.fuzz_commands imports
    # opioidsim.fuzz, and two copies would have two FuzzFailure classes and two tallies
    from opioidsim.fuzz import main as package_main

    sys.exit(package_main())
