"""The explorer's "animal lab" page: rats self-administer heroin, and the page draws what the lab
would: infusions session by session, short against long access, and the brain within a session.

The page designs a `[paradigm]` experiment (opioidsim.scenarios.paradigm) from its controls:
training sessions of 1 h, then access sessions of the chosen length (escalation: Ahmed SH & Koob
GF 1998 Science 282:298), optionally followed by a progressive-ratio test, by extinction and
reinstatement tests (footshock, a priming dose, the drug cue), or replaced by place conditioning.
When the access sessions are longer than 1 h, the same rats (same seed: the same sampled
physiology, see behavior/runner.py) are also run with 1 h access, so the figures compare short and
long access in the same animals. The page's scenario, the one "Download scenario" saves and
`opioidsim run` accepts, is the designed (long-access) group.

A `[paradigm]` file the controls cannot rebuild (the built-in `rat-heroin-long-access`, for one)
runs as written within the page's limits and is drawn with the same figures. Research and teaching
only: virtual rats, never a dosing guide.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

from opioidsim.errors import ScenarioError
from opioidsim.scenarios import Scenario

from . import figures as F
from .pages import Control, Page, _int_or_raw, _number, control_error, register

#: what one animal-lab run may ask for: rats per group, and decision steps per rat over the whole
#: experiment (about 30 an hour in sessions at the page's 2 min step, 2 an hour in the home cage):
#: 8 rats × 8,000 steps is about a minute per group on 2 cores once compiled, and the built-in
#: long-access experiment (14 sessions of 12 h and the tests) fits as written
ANIMAL_LIMITS = {"max_rats": 8, "max_access_sessions": 14, "max_training_sessions": 5,
                 "max_extinction_sessions": 10, "max_cpp_pairs": 6, "max_access_hours": 23.0,
                 "max_steps_per_rat": 8_000}
#: rats are run in batches of these sizes and cut back (rat i is the same in any batch), so that
#: a few compilations serve every cohort size
RAT_BUCKETS = (2, 4, 8)
PARADIGMS = ("escalation", "progressive_ratio", "reinstatement", "place_preference")
#: the page's decision step and home-cage record step (the tutorial's; V-SA runs use the same)
DECIDE_EVERY = "2min"
READOUTS = ["nac_dopamine", "hedonic_state", "negative_affect"]
SHORT_ACCESS_H = 1.0
PR_LENGTH = "3h"
CPP_SESSION, CPP_TEST = "30min", "15min"
TRIGGERS = ("footshock", "priming", "cue")
PRIMING_DOSE = "0.25 mg/kg"
SA_KINDS = ("self_administration", "progressive_ratio")


def _hours(name: str, label: str, value: Any, lo: float, hi: float) -> str:
    from opioidsim.units import parse_quantity

    try:
        minutes = parse_quantity(value, "time")
    except Exception:
        minutes = math.nan
    if not math.isfinite(minutes) or not lo * 60 <= minutes <= hi * 60 or not float(minutes).is_integer():
        raise control_error(name, label, value, f'must be a time from {lo:g} h to {hi:g} h in whole minutes, '
                                                'e.g. "6h" or "12h" (1 h is short access)')
    return value.strip()


def _design(v: dict[str, Any]) -> dict[str, Any]:
    """The experiment's shape from the controls, each value checked (the schema checks the rest)."""
    paradigm = v["paradigm"]
    if paradigm not in PARADIGMS:
        raise control_error("paradigm", "paradigm", paradigm, f"must be one of {', '.join(PARADIGMS)}")
    L = ANIMAL_LIMITS
    out: dict[str, Any] = {"paradigm": paradigm,
                           "rats": _number("rats", "rats", v["rats"], 1, L["max_rats"], "rats in each group", True)}
    if paradigm == "place_preference":
        out["cpp_pairs"] = _number("cpp_pairs", "conditioning pairs", v["cpp_pairs"], 1, L["max_cpp_pairs"],
                                   "drug days, each followed by a vehicle day", True)
        return out
    out["access"] = _hours("access", "access session", v["access"], SHORT_ACCESS_H, L["max_access_hours"])
    out["training"] = _number("training", "training sessions", v["training"], 0, L["max_training_sessions"],
                              "1 h sessions before the groups split", True)
    out["sessions"] = _number("sessions", "access sessions", v["sessions"], 1, L["max_access_sessions"],
                              "sessions at the access length", True)
    if paradigm == "reinstatement":
        out["extinction"] = _number("extinction", "extinction sessions", v["extinction"], 1,
                                    L["max_extinction_sessions"], "1 h sessions where the lever gives nothing", True)
    return out


def _phases(d: dict[str, Any], access: str, v: dict[str, Any]) -> list[dict[str, Any]]:
    if d["paradigm"] == "place_preference":
        return [{"kind": "cpp_conditioning", "sessions": 2 * d["cpp_pairs"], "session_length": CPP_SESSION,
                 "dose": v["cpp_dose"]},
                {"kind": "cpp_test", "session_length": CPP_TEST}]
    phases = []
    if d["training"]:
        phases.append({"kind": "self_administration", "sessions": d["training"], "session_length": "1h"})
    phases.append({"kind": "self_administration", "sessions": d["sessions"], "session_length": access})
    if d["paradigm"] == "progressive_ratio":
        phases.append({"kind": "progressive_ratio", "session_length": PR_LENGTH})
    elif d["paradigm"] == "reinstatement":
        phases.append({"kind": "extinction", "sessions": d["extinction"], "session_length": "1h"})
        for i, trigger in enumerate(TRIGGERS):
            if i:  # a fresh extinction session between tests (the built-in design uses two)
                phases.append({"kind": "extinction", "sessions": 1, "session_length": "1h"})
            test = {"kind": "reinstatement", "trigger": trigger, "session_length": "1h"}
            if trigger == "priming":
                test["priming_dose"] = PRIMING_DOSE
            phases.append(test)
    return phases


def _data(v: dict[str, Any], d: dict[str, Any], access: str) -> dict[str, Any]:
    return {"scenario": {"name": v["name"], "description": v["description"], "readouts": READOUTS},
            "cohort": {"subjects": d["rats"], "seed": _int_or_raw(v["seed"]), "species": "rat"},
            "paradigm": {"drug": "heroin", "infusion": v["infusion"], "decide_every": DECIDE_EVERY,
                         "phase": _phases(d, access, v)}}


def _build(v: dict[str, Any]) -> tuple[dict, dict]:
    d = _design(v)
    data = _data(v, d, d.get("access", "1h"))
    fields = {"scenario.name": "name", "scenario.description": "description", "cohort.subjects": "rats",
              "cohort.seed": "seed", "paradigm.infusion": "infusion"}
    for i, ph in enumerate(data["paradigm"]["phase"]):
        if ph.get("dose") is not None:
            fields[f"paradigm.phase[{i}].dose"] = "cpp_dose"
    return data, fields


def _page_design(v: dict[str, Any]) -> dict[str, Any]:
    """What the study adds to the scenario: a short-access group of the same rats, if access is long."""
    d = _design(v)
    if d["paradigm"] == "place_preference":
        return {"compare": None}
    from opioidsim.units import parse_quantity

    long_access = parse_quantity(d["access"], "time") > SHORT_ACCESS_H * 60
    return {"compare": _data(v, d, "1h") if long_access else None, "access": d["access"]}


def _params(s: Scenario) -> Optional[dict[str, Any]]:
    """Control values that rebuild this scenario (None: it runs as written)."""
    par = s.paradigm
    if par is None or s.cohort.species != "rat" or par.drug != "heroin" or par.decide_every != DECIDE_EVERY:
        return None
    if s.readouts != READOUTS or any(getattr(s.cohort, k) for k in ("depression", "ptsd", "age_at_first_use")):
        return None
    ph = par.phases
    v = {"name": s.name, "description": s.description, "rats": str(s.cohort.subjects), "seed": str(s.cohort.seed),
         "infusion": par.infusion, "paradigm": "escalation", "access": "6h", "training": "0", "sessions": "3",
         "extinction": "3", "cpp_pairs": "2", "cpp_dose": "1 mg/kg"}
    if ph[0].kind == "cpp_conditioning":
        if len(ph) != 2 or ph[0].sessions % 2:
            return None
        return {**v, "paradigm": "place_preference", "cpp_pairs": str(ph[0].sessions // 2), "cpp_dose": ph[0].dose}
    k = 0
    if len(ph) >= 2 and ph[0].kind == ph[1].kind == "self_administration":
        v["training"], k = str(ph[0].sessions), 1
    v["sessions"], v["access"] = str(ph[k].sessions), ph[k].session_length
    rest = ph[k + 1:]
    if rest:
        v["paradigm"] = "progressive_ratio" if rest[0].kind == "progressive_ratio" else "reinstatement"
        if v["paradigm"] == "reinstatement":
            v["extinction"] = str(rest[0].sessions)
    return v  # the caller rebuilds it and keeps these values only if the rebuild is the same run


def _check_course(s: Scenario) -> None:
    """The page's limits on a [paradigm] scenario (a built one or a file run as written)."""
    from opioidsim.behavior.timeline import compile_timeline

    L = ANIMAL_LIMITS
    n = s.cohort.subjects
    if n > L["max_rats"]:
        raise ScenarioError("cohort.subjects", n, f"the animal lab runs at most {L['max_rats']} rats (a group of 1 "
                            f"to {L['max_rats']}); for bigger experiments use 'opioidsim run'")
    steps = compile_timeline(s.paradigm, s.record_every_min).n_steps
    if steps > L["max_steps_per_rat"]:
        raise ScenarioError("paradigm.phase", f"{len(s.paradigm.phases)} phases", f"give {steps:,} decision steps "
                            f"per rat; the animal lab runs at most {L['max_steps_per_rat']:,} (fewer or shorter "
                            "sessions, or a longer decide_every); for bigger experiments use 'opioidsim run'")


# ---------------------------------------------------------------------------------------------
# running and drawing
# ---------------------------------------------------------------------------------------------
def run_group(scenario: Scenario, progress: Callable[[float], None]):
    """The experiment in a batch of the next bucket size, cut back to its rats."""
    from opioidsim.behavior import simulate_paradigm

    n = scenario.cohort.subjects
    bucket = next((b for b in RAT_BUCKETS if b >= n), n)
    sim = scenario.model_copy(update={"cohort": scenario.cohort.model_copy(update={"subjects": bucket})})
    return simulate_paradigm(sim, progress=progress).isel(subject=slice(0, n))


def warm_up(progress: Callable[[float], None]) -> None:
    """Compile the paradigm runner for the page's readouts and smallest batch: one 1 h session
    (seconds once compiled; the page's default then runs without compiling)."""
    page_values = {**ANIMAL_LAB.defaults(), "training": "0", "sessions": "1", "access": "1h"}
    run_group(ANIMAL_LAB.build(page_values).scenario, progress)


def run_study(scenario: Scenario, design: dict[str, Any], progress: Callable[[float], None]) -> dict[str, Any]:
    """Run the designed group (and the short-access group of the same rats) and draw them."""
    progress(0.0)
    compare = design.get("compare")
    groups: dict[str, Any] = {}
    if compare is not None:
        short = Scenario.from_toml_dict(compare)
        groups["short access (1 h)"] = run_group(short, lambda f: progress(0.5 * f))
        groups[f"long access ({design['access']})"] = run_group(scenario, lambda f: progress(0.5 + 0.5 * f))
    else:
        label = scenario.name if not design else ("place conditioning" if scenario.paradigm.phases[0].kind
                                                  == "cpp_conditioning" else f"access {design.get('access', '')}")
        groups[label] = run_group(scenario, progress)
    return {"page": "animal-lab", "kind": "figures", "figures": experiment_figures(groups),
            "notes": _notes(groups, scenario, bool(design)), "subjects": scenario.cohort.subjects,
            "groups": list(groups), "scenario_name": scenario.name}


def _kinds(ds) -> np.ndarray:
    return np.array([str(k) for k in ds.session_kind.values])


def experiment_figures(groups: dict[str, Any]) -> list[dict[str, Any]]:
    """Figures for one or more groups run on experiments of the same kind: intake per session,
    first-hour intake, the last access session's dopamine and affect, and the breakpoint,
    extinction/reinstatement or place-preference bars where the experiment has those sessions."""
    figs: list[dict[str, Any]] = []
    first = next(iter(groups.values()))
    kinds = _kinds(first)
    if np.isin(kinds, SA_KINDS).any():
        for var, fid, title, help_ in (
                ("session_infusions", "intake", "Infusions per session",
                 "self-administered infusions in each session (median and interquartile range of the rats)"),
                ("first_hour_infusions", "first-hour", "Infusions in the first hour of each session",
                 "escalation shows most clearly here: every group has the first hour")):
            items = []
            for label, ds in groups.items():
                sel = np.isin(_kinds(ds), SA_KINDS)
                lo, mid, hi = F.spread(ds[var].values[:, sel])
                items.append(F.series(label, np.nonzero(sel)[0] + 1, mid, lo, hi))
            figs.append(F.lines(fid, title, "session", "infusions", items, help=help_, x_whole=True))
        figs += _within_session(groups, SA_KINDS, "the last self-administration session")
    if (kinds == "progressive_ratio").any():
        items = []
        for label, ds in groups.items():
            sel = _kinds(ds) == "progressive_ratio"
            lo, mid, hi = F.spread(ds.breakpoint.values[:, sel])
            items.append(F.bar_series(label, mid, lo, hi))
        figs.append(F.bars("breakpoint", "Progressive ratio: breakpoint", "last ratio completed",
                           [f"PR session {i + 1}" for i in range(int((kinds == "progressive_ratio").sum()))], items,
                           "how many presses the rat will still make for one infusion (Richardson & Roberts 1996)"))
    if (kinds == "reinstatement").any():
        cats, idx = _seeking_sessions(first)
        items = []
        for label, ds in groups.items():
            lo, mid, hi = F.spread(ds.session_presses.values[:, idx])
            items.append(F.bar_series(label, mid, lo, hi))
        figs.append(F.bars("reinstatement", "Extinction and reinstatement: lever presses", "presses in the session",
                           cats, items, "the lever gives nothing in these sessions: pressing is drug seeking"))
    if (kinds == "cpp_test").any():
        items = []
        sel = kinds == "cpp_test"
        for label, ds in groups.items():
            lo, mid, hi = F.spread(ds.cpp_score.values[:, sel])
            items.append(F.bar_series(label, mid, lo, hi))
        figs.append(F.bars("cpp", "Conditioned place preference", "s in drug side − other side",
                           [f"test {i + 1}" for i in range(int(sel.sum()))], items,
                           "time in the drug-paired side minus the vehicle side in a drug-free choice test"))
        figs += _within_session(groups, ("cpp_drug",), "the last drug conditioning session")
    figs.append(_session_table(groups))
    return figs


def _seeking_sessions(ds) -> tuple[list[str], list[int]]:
    """The last extinction session before the first test, then each reinstatement test."""
    kinds = _kinds(ds)
    tests = [int(i) for i in np.nonzero(kinds == "reinstatement")[0]]
    before = [int(i) for i in np.nonzero(kinds == "extinction")[0] if i < tests[0]]
    cats, idx = [], []
    if before:
        cats.append("extinction (last)")
        idx.append(before[-1])
    for i in tests:
        cats.append(f"{ds.session_trigger.values[i]} test")
        idx.append(i)
    return cats, idx


def _within_session(groups: dict[str, Any], kinds: tuple[str, ...], what: str) -> list[dict[str, Any]]:
    """NAc dopamine, and hedonic state / negative affect, through ``what`` of each group."""
    out = []
    for readout, fid, title, unit in (("nac_dopamine", "within-dopamine", "NAc dopamine", "nM"),
                                      ("hedonic_state", "within-affect", "Hedonic state", "−10 … 10")):
        items = []
        for label, ds in groups.items():
            if readout not in ds:
                continue
            sessions = np.nonzero(np.isin(_kinds(ds), kinds))[0]
            if not len(sessions):
                continue
            s = int(sessions[-1])
            steps = ds.step_session.values == s
            minutes = ds["time"].values[steps] / np.timedelta64(1, "m") - float(ds.session_start_min[s])
            lo, mid, hi = F.spread(ds[readout].values[:, steps])
            items.append(F.series(label, minutes, mid, lo, hi))
        if items:
            out.append(F.lines(fid, f"{title} through {what}", "minutes into the session", unit, items,
                               help="every infusion the rats chose raises it; the median rat is drawn"))
    return out


def _session_table(groups: dict[str, Any]) -> dict[str, Any]:
    labels = list(groups)
    first = groups[labels[0]]
    columns = ["session", "kind"] + [f"{what}: {g}" for g in labels for what in ("h", "infusions", "presses")]
    rows = []
    for s in range(first.sizes["session"]):
        kind = str(first.session_kind.values[s])
        trigger = str(first.session_trigger.values[s])
        row: list[Any] = [s + 1, f"{kind} ({trigger})" if trigger else kind]
        for g in labels:
            ds = groups[g]
            if s < ds.sizes["session"]:
                row += [float(ds.session_length_min.values[s]) / 60.0, float(np.median(ds.session_infusions.values[:, s])),
                        float(np.median(ds.session_presses.values[:, s]))]
            else:
                row += [None, None, None]
        rows.append(row)
    return F.table("sessions", "Session by session (median of the rats)", columns, rows)


def _notes(groups: dict[str, Any], scenario: Scenario, designed: bool) -> list[str]:
    n = scenario.cohort.subjects
    notes = [f"{n} virtual rat{'s' if n != 1 else ''} per group (heroin {scenario.paradigm.infusion} per infusion, "
             "FR1 with a 20 s time-out); every infusion is the rat's own choice. Lines: median; bands and "
             "whiskers: interquartile range."]
    if len(groups) == 2:
        (short_label, short), (long_label, long_) = groups.items()
        sel = np.isin(_kinds(long_), SA_KINDS) & (long_.session_length_min.values > SHORT_ACCESS_H * 60)
        if sel.any():
            a = float(np.median(short.session_infusions.values[:, sel].mean(axis=1)))
            b = float(np.median(long_.session_infusions.values[:, sel].mean(axis=1)))
            notes.append(f"Over the access sessions the same rats took {a:.0f} infusions a session with 1 h access "
                         f"and {b:.0f} with {long_label.split('(')[-1].rstrip(')')} (median of the rats).")
    if not designed:
        notes.append("This experiment came from a file and runs exactly as written.")
    notes.append("Virtual rats in a model for research and teaching: never a dosing guide.")
    return notes


ANIMAL_LAB = Page(
    id="animal-lab",
    title="The animal lab",
    intro=("Rats press a lever for intravenous heroin. After a few 1 h training sessions some keep short access "
           "and others get long sessions, and only the long-access rats escalate (Ahmed & Koob 1998). Choose the "
           "experiment, how long the access sessions are, how many, the dose of each infusion and how many rats; "
           "the same rats are also run with 1 h access so the two can be compared. Then test how hard they will "
           "work for the drug (progressive ratio), whether seeking returns after extinction (reinstatement by "
           "stress, a priming dose or the drug cue), or let them learn where the drug was (place preference)."),
    controls=(
        Control("paradigm", "Experiment", "select", "escalation",
                "escalation: access sessions only; progressive_ratio: then a breakpoint test; reinstatement: then "
                "extinction and three relapse tests; place_preference: conditioning and a choice test",
                options=PARADIGMS, group="Experiment"),
        Control("access", "Access session", "text", "6h", '1 h (short access) to 23 h, e.g. "6h", "12h"',
                group="Experiment"),
        Control("sessions", "Access sessions", "number", "3", f"1 to {ANIMAL_LIMITS['max_access_sessions']}, one a day",
                group="Experiment"),
        Control("training", "Training sessions (1 h)", "number", "1",
                f"0 to {ANIMAL_LIMITS['max_training_sessions']}, before the groups split", group="Experiment"),
        Control("infusion", "Dose per infusion", "text", "60 ug/kg", 'per kg of body weight, e.g. "60 ug/kg"',
                group="Experiment"),
        Control("extinction", "Extinction sessions", "number", "3",
                f"1 to {ANIMAL_LIMITS['max_extinction_sessions']} sessions of 1 h before the relapse tests",
                group="Reinstatement"),
        Control("cpp_pairs", "Conditioning pairs", "number", "2",
                f"1 to {ANIMAL_LIMITS['max_cpp_pairs']}: a drug day in one side, a vehicle day in the other",
                group="Place preference"),
        Control("cpp_dose", "Conditioning dose", "text", "1 mg/kg", 'given by the experimenter, e.g. "1 mg/kg"',
                group="Place preference"),
        Control("rats", "Rats per group", "number", "2", f"1 to {ANIMAL_LIMITS['max_rats']}", group="Run"),
        Control("seed", "Random seed", "number", "11", "the same seed gives the same rats", group="Run", advanced=True),
        Control("name", "Scenario name", "text", "explorer-animal-lab", "names the downloaded file", group="Run",
                advanced=True),
        Control("description", "Description", "text", "", "one line saying what it shows", group="Run",
                advanced=True),
    ),
    panels=(),
    build_data=_build,
    params_from=_params,
    auto_run=False,
    requires=("nac_dopamine", "hedonic_state", "negative_affect"),
    max_duration_days=-1.0,
    design=_page_design,
    study=run_study,
    course="paradigm",
    check_course=_check_course,
    result_kind="figures",
)
ANIMAL_LAB.warmup = warm_up

register(ANIMAL_LAB)
