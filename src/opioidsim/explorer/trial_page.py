"""The explorer's "treatment trial" page: a small virtual randomised trial, drawn as trials report.

People with a history of daily street heroin use are randomised (permuted blocks of one person per
arm, counter-based: opioidsim.trial.simulate, so every arm gets exactly the people asked for) to a
drug-free programme (counselling; the control arm) and the treatment arms ticked: methadone,
buprenorphine, methadone with contingency management. The page draws retention in treatment
(Kaplan–Meier, log-rank against the control), opioid-positive urines week by week, the CONSORT-like
flow and the effect-estimate table — all computed by opioidsim.trial.stats and
opioidsim.trial.report, the functions `opioidsim trial` writes its report with; nothing is
re-estimated here.

A `[trial]` file the controls cannot rebuild (another supply, other arms) runs as written within the
page's limits. Research and teaching only: simulated people, never a dosing guide.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np

from opioidsim.errors import ScenarioError
from opioidsim.scenarios import Scenario

from . import figures as F
from .pages import Control, Page, _int_or_raw, _number, control_error, register

#: what one trial run may ask for. The course runner runs each arm as a batch of 16 people (or the
#: next power of two) through compiled calls of 128 decision steps; one such call took about a
#: minute on this 2-core machine (two minutes while it was 5× oversubscribed), so the cost is
#: arms × steps: at most 1,024 arm-steps (4 arms for 5 weeks after 7 days of use, or 2 arms for 8
#: weeks after 28 days, at 4 h steps)
#: keeps a run to about 8 calls, minutes, within the job queue's 15 min safety net
TRIAL_LIMITS = {"max_per_arm": 10, "max_people": 40, "max_follow_up_weeks": 8, "max_history_days": 30,
                "min_history_days": 7, "max_arm_steps": 1024}
DECIDE_EVERY = "4h"  # the built-in trials' decision step
CONTROL_ARM = "drug-free"
#: (control name of the tick box, arm name, its [[trial.arm]] table given the control values)
ARMS = (
    ("arm_methadone", "methadone",
     lambda v: {"medication": "methadone", "dose": v["methadone_dose"], "psychosocial": ["counselling"]}),
    ("arm_buprenorphine", "buprenorphine",
     lambda v: {"medication": "buprenorphine", "dose": v["buprenorphine_dose"], "induction_cows": 8,
                "psychosocial": ["counselling"]}),
    ("arm_cm", "methadone-cm",
     lambda v: {"medication": "methadone", "dose": v["methadone_dose"],
                "psychosocial": ["counselling", "contingency_management"]}),
)
_TICKED = (True, "true", "on", 1)


def _arms(v: dict[str, Any]) -> list[dict[str, Any]]:
    arms = [{"name": CONTROL_ARM, "psychosocial": ["counselling"]}]
    arms += [{"name": name, **table(v)} for box, name, table in ARMS if v[box] in _TICKED]
    if len(arms) < 2:
        raise control_error("arm_methadone", "arms", "none ticked",
                            "tick at least one treatment arm to compare with the drug-free programme")
    return arms


def _build(v: dict[str, Any]) -> tuple[dict, dict]:
    L = TRIAL_LIMITS
    arms = _arms(v)
    per_arm = _number("people_per_arm", "people per arm", v["people_per_arm"], 1, L["max_per_arm"],
                      "people randomised to each arm", whole=True)
    weeks = _number("follow_up_weeks", "follow-up weeks", v["follow_up_weeks"], 1, L["max_follow_up_weeks"],
                    "weeks from randomisation", whole=True)
    history = _number("history_days", "days of use before", v["history_days"], L["min_history_days"],
                      L["max_history_days"], "street use before randomisation, so that dependence develops",
                      whole=True)
    data = {"scenario": {"name": v["name"], "description": v["description"]},
            "cohort": {"subjects": per_arm * len(arms), "seed": _int_or_raw(v["seed"])},
            "trial": {"decide_every": DECIDE_EVERY, "history": f"{history}d", "follow_up": f"{weeks}w",
                      "urine_tests_per_week": _int_or_raw(v["urine_tests_per_week"]), "missing_urine": "positive",
                      "block_size": len(arms),  # blocks of one per arm: every arm gets per_arm people
                      "supply": {"route": "iv", "dose": v["street_dose"]}, "arm": arms}}
    fields = {"scenario.name": "name", "scenario.description": "description", "cohort.subjects": "people_per_arm",
              "cohort.seed": "seed", "trial.urine_tests_per_week": "urine_tests_per_week",
              "trial.supply.dose": "street_dose", "trial.follow_up": "follow_up_weeks", "trial.history": "history_days"}
    for i, arm in enumerate(arms):
        if arm.get("dose") is not None:
            fields[f"trial.arm[{i}].dose"] = "methadone_dose" if arm["medication"] == "methadone" else "buprenorphine_dose"
    return data, fields


def _params(s: Scenario) -> Optional[dict[str, Any]]:
    """Control values that rebuild this trial (None: it runs as written)."""
    t = s.trial
    if t is None or not t.arms or t.arms[0].name != CONTROL_ARM:
        return None
    names = [a.name for a in t.arms[1:]]
    by_name = {a.name: a for a in t.arms}
    n_arms = len(t.arms)
    if s.cohort.subjects % n_arms:
        return None
    v = {"name": s.name, "description": s.description, "seed": str(s.cohort.seed),
         "people_per_arm": str(s.cohort.subjects // n_arms), "follow_up_weeks": str(t.follow_up_weeks),
         "history_days": f"{t.history_days:g}", "urine_tests_per_week": str(t.urine_tests_per_week),
         "street_dose": t.supply.dose, "methadone_dose": "80 mg", "buprenorphine_dose": "16 mg"}
    for box, name, _ in ARMS:
        v[box] = name in names
    for name in ("methadone", "methadone-cm"):
        if name in by_name and by_name[name].dose:
            v["methadone_dose"] = by_name[name].dose
    if "buprenorphine" in by_name and by_name["buprenorphine"].dose:
        v["buprenorphine_dose"] = by_name["buprenorphine"].dose
    return v  # kept only if rebuilding it gives the same trial (pages.page_for_scenario)


def arm_sizes(s: Scenario) -> dict[str, int]:
    """How many people the randomisation puts in each arm (the run's own draw, known before it)."""
    from opioidsim.trial.simulate import randomise

    arm_of = randomise(s.trial, s.cohort.seed, np.arange(s.cohort.subjects), s.cohort)
    return {a.name: int((arm_of == k).sum()) for k, a in enumerate(s.trial.arms)}


def _check_course(s: Scenario) -> None:
    """The page's limits on a [trial] scenario (built here or a file run as written)."""
    L = TRIAL_LIMITS
    t = s.trial
    n = s.cohort.subjects
    if n > L["max_people"]:
        raise ScenarioError("cohort.subjects", n, f"the trial page runs at most {L['max_people']} people; for bigger "
                            "trials use 'opioidsim trial' (download this scenario and run it)")
    if t.follow_up_weeks > L["max_follow_up_weeks"]:
        raise ScenarioError("trial.follow_up", t.follow_up, f"the trial page follows people for at most "
                            f"{L['max_follow_up_weeks']} weeks; for longer trials use 'opioidsim trial'")
    days = t.history_days
    if days > L["max_history_days"]:
        raise ScenarioError("trial.history", t.history, f"the trial page runs at most {L['max_history_days']} days "
                            "of use before randomisation; for longer histories use 'opioidsim trial'")
    steps = len(t.arms) * (days + 7 * t.follow_up_weeks) * 1440.0 / t.decide_every_min
    if steps > L["max_arm_steps"]:
        raise ScenarioError("trial.follow_up", t.follow_up, f"{len(t.arms)} arms × {days:g} days of history and "
                            f"{t.follow_up_weeks} weeks at {t.decide_every} steps = {steps:,.0f} arm-steps; the trial "
                            f"page runs at most {L['max_arm_steps']:,} (fewer weeks, fewer arms or a shorter "
                            "history); for longer trials use 'opioidsim trial'")
    empty = [name for name, size in arm_sizes(s).items() if size == 0]
    if empty:
        raise ScenarioError("cohort.subjects", n, f"with seed {s.cohort.seed}, {t.randomisation} of {n} "
                            f"{'person' if n == 1 else 'people'} puts no one in arm '{empty[0]}': an arm of zero "
                            "people cannot be compared; enrol more people or change the seed")


# ---------------------------------------------------------------------------------------------
# running and drawing
# ---------------------------------------------------------------------------------------------
def run_study(scenario: Scenario, design: dict[str, Any], progress: Callable[[float], None]) -> dict[str, Any]:
    """Run the trial and draw it with the trial package's own statistics."""
    from opioidsim.trial.simulate import simulate_trial

    progress(0.0)
    ds = simulate_trial(scenario, progress=progress)
    return {**trial_figures(ds), "page": "trial", "kind": "figures", "scenario_name": scenario.name,
            "subjects": int(ds.sizes["subject"]), "notes": _notes(ds, scenario, bool(design))}


def trial_figures(ds) -> dict[str, Any]:
    """Retention, urines, flow and effects of a trial Dataset (opioidsim.trial.simulate)."""
    from opioidsim.report.formatting import fixed, p_value
    from opioidsim.trial.report import _MEASURE_WORDS, _value, estimate_text, weekly_urine_positive, yes_no
    from opioidsim.trial.stats import (OUTCOMES, consort_flow, control_arm, kaplan_meier, log_rank,
                                       published_comparison, retention_time_event, trial_arms,
                                       trial_outcomes)

    arms = trial_arms(ds)
    ctrl = control_arm(ds)
    names = ds["arm"].values.astype(str)
    time, event = retention_time_event(ds)
    end = 7.0 * float(ds.attrs["follow_up_weeks"])
    curves = []
    for arm in arms:
        m = names == arm
        if not m.any():
            continue
        km = kaplan_meier(time[m], event[m])
        x = np.concatenate([[0.0], km.time, [end]])
        y = 100.0 * np.concatenate([[1.0], km.survival, km.survival[-1:] if len(km.survival) else [1.0]])
        label = f"{arm} (n = {int(m.sum())})"
        if arm != ctrl:
            sel = m | (names == ctrl)
            lr = log_rank(time[sel], event[sel], names[sel])
            if math.isfinite(lr.p_value):
                label += f", log-rank p = {lr.p_value:.2g}"
        curves.append(F.series(label, x, y, key=arm, color=arms.index(arm)))
    urine = []
    for i, arm in enumerate(arms):
        if not (names == arm).any():
            continue
        weeks, frac, missed = weekly_urine_positive(ds, arm)
        urine.append(F.series(f"{arm}, missed = positive", weeks, 100.0 * missed, key=arm, color=i))
        urine.append(F.series(f"{arm}, of urines given", weeks, 100.0 * frac, key=f"{arm}-given", color=i,
                              dashed=True))
    flow = consort_flow(ds)
    stages = list(flow.columns)
    flow_rows = [[stage.replace("_", " ")] + [int(flow.loc[a, stage]) for a in flow.index] for stage in stages]
    out = trial_outcomes(ds)
    effect_rows = []
    for r in out.itertuples():
        ci = ("not estimable" if not math.isfinite(float(r.estimate))
              else f"{fixed(r.estimate)} ({fixed(r.lower)} to {fixed(r.upper)})")
        effect_rows.append([OUTCOMES.get(r.outcome, r.outcome), f"{r.arm} vs {r.control}", f"{r.n_arm} / {r.n_control}",
                            _value(r.value_arm, r.measure), _value(r.value_control, r.measure),
                            _MEASURE_WORDS.get(r.measure, r.measure), ci, p_value(r.p_value)])
    figures = [
        F.lines("retention", "Retention in treatment (Kaplan–Meier)", "days from randomisation", "% still in treatment",
                curves, step=True, y_range=(0.0, 100.0),
                help="leaving treatment (discharge after missed days, or death) ends a line's step"),
        F.lines("urine", "Opioid-positive urines by week", "follow-up week", "% positive", urine, y_range=(0.0, 100.0),
                x_whole=True,
                help="solid: a missed sample counts as positive (the primary analysis); dashed: of the samples "
                     "given"),
        F.table("consort", "Participant flow (CONSORT)", ["stage", *flow.index], flow_rows, keys=stages,
                help="everyone randomised is analysed in the arm they were randomised to"),
        F.table("effects", f"Effect estimates against {ctrl} (95 % CI)",
                ["outcome", "comparison", "n (arm / control)", "arm", "control", "measure", "estimate (95 % CI)", "p"],
                effect_rows, keys=[f"{r.outcome}:{r.arm}:{r.measure}" for r in out.itertuples()]),
    ]
    comp = published_comparison(ds, out)
    if not comp.empty:  # the scenario's [[trial.published]] figures beside the simulated ones
        figures.append(F.table(
            "published", "Against the published record",
            ["outcome", "arm", "measure", "simulated (95 % CI)", "published (95 % CI)", "simulated inside published CI",
             "published inside simulated CI", "source"],
            [[OUTCOMES.get(r.outcome, r.outcome), r.arm, _MEASURE_WORDS.get(r.measure, r.measure),
              estimate_text(r.simulated, r.simulated_lower, r.simulated_upper),
              estimate_text(r.published, r.published_lower, r.published_upper),
              yes_no(r.simulated_in_published_ci), yes_no(r.published_in_simulated_ci), r.source]
             for r in comp.itertuples()],
            keys=[f"{r.outcome}:{r.arm}:{r.measure}" for r in comp.itertuples()],
            help="the figures the scenario names: does the model land inside the trials' interval, and could a "
                 "trial this size tell its result from theirs"))
    sizes = {a: int(flow.loc[a, "randomised"]) for a in flow.index}
    return {"figures": figures, "arms": [{"name": a, "randomised": sizes.get(a, 0)} for a in arms],
            "control": ctrl,
            "outcomes": [{"outcome": r.outcome, "arm": r.arm, "measure": r.measure, "estimate": F.num(r.estimate),
                          "lower": F.num(r.lower), "upper": F.num(r.upper), "p": F.num(r.p_value, 3),
                          "value_arm": F.num(r.value_arm), "value_control": F.num(r.value_control),
                          "n_arm": int(r.n_arm), "n_control": int(r.n_control)} for r in out.itertuples()]}


def _notes(ds, s: Scenario, designed: bool) -> list[str]:
    t = s.trial
    n = int(ds.sizes["subject"])
    weeks = f"{t.follow_up_weeks} week{'s' if t.follow_up_weeks != 1 else ''}"
    chance = "" if t.block_size else ": arm sizes vary by chance"
    notes = [f"{n} virtual people with {t.history_days:g} days of street heroin use ({t.supply.dose} "
             f"{t.supply.route}) were randomised to {len(t.arms)} arms ({t.randomisation}{chance}) and followed "
             f"for {weeks}, {t.urine_tests_per_week} research urine{'s' if t.urine_tests_per_week != 1 else ''} "
             "a week. Staying in treatment and using are each person's own choices.",
             "A trial this small is for seeing how a trial works, not for its effect sizes: the confidence "
             "intervals are wide. The validation trials (opioidsim validate --only V-MAT) use hundreds."]
    if not designed:
        notes.append("This trial came from a file and runs exactly as written.")
    notes.append("Simulated people in a model for research and teaching: never a dosing guide.")
    return notes


def _page_design(v: dict[str, Any]) -> dict[str, Any]:
    return {"designed": True}


TRIAL = Page(
    id="trial",
    title="A treatment trial",
    intro=("A small virtual randomised trial. People who have used street heroin every day for weeks are "
           "randomised to a drug-free programme with counselling (the control) or to the treatments you tick: "
           "methadone, buprenorphine, or methadone with contingency management (vouchers for negative urines). "
           "Follow them for some weeks and see who stays in treatment, whose urines are opioid-positive, the "
           "participant flow and the effect estimates a trial report would print. Runs take a while: progress is "
           "shown and you can cancel."),
    controls=(
        Control("arm_methadone", "Methadone", "checkbox", True, "an arm on daily methadone at the clinic",
                group="Arms (the control arm is a drug-free programme)"),
        Control("methadone_dose", "Methadone dose", "text", "80 mg",
                'maintenance dose, reached by titration from 30 mg, e.g. "60 mg"',
                group="Arms (the control arm is a drug-free programme)"),
        Control("arm_buprenorphine", "Buprenorphine", "checkbox", False,
                "an arm on daily sublingual buprenorphine, started once withdrawal is mild (COWS 8)",
                group="Arms (the control arm is a drug-free programme)"),
        Control("buprenorphine_dose", "Buprenorphine dose", "text", "16 mg", 'maintenance dose, e.g. "8 mg"',
                group="Arms (the control arm is a drug-free programme)", enabled_by="arm_buprenorphine"),
        Control("arm_cm", "Methadone + contingency management", "checkbox", False,
                "methadone at the dose above, and vouchers for each opioid-negative urine",
                group="Arms (the control arm is a drug-free programme)"),
        Control("people_per_arm", "People per arm", "number", "4",
                f"1 to {TRIAL_LIMITS['max_per_arm']}, exactly (randomised in blocks of one person per arm)",
                group="Trial"),
        Control("follow_up_weeks", "Follow-up weeks", "number", "2", f"1 to {TRIAL_LIMITS['max_follow_up_weeks']}",
                group="Trial"),
        Control("history_days", "Days of use before", "number", "7",
                f"{TRIAL_LIMITS['min_history_days']} to {TRIAL_LIMITS['max_history_days']} days of street use "
                "before randomisation", group="Trial", advanced=True),
        Control("urine_tests_per_week", "Urines a week", "number", "1", "1 to 7 research urine tests a week",
                group="Trial", advanced=True),
        Control("street_dose", "Street dose", "text", "20 mg", 'heroin in a typical bag, injected, e.g. "20 mg"',
                group="Trial", advanced=True),
        Control("seed", "Random seed", "number", "7", "the same seed gives the same people and allocation",
                group="Trial", advanced=True),
        Control("name", "Scenario name", "text", "explorer-trial", "names the downloaded file", group="Trial",
                advanced=True),
        Control("description", "Description", "text", "", "one line saying what it shows", group="Trial",
                advanced=True),
    ),
    panels=(),
    build_data=_build,
    params_from=_params,
    auto_run=False,
    requires=("cows", "craving"),
    max_duration_days=-1.0,
    design=_page_design,
    study=run_study,
    course="trial",
    check_course=_check_course,
    result_kind="figures",
)

register(TRIAL)
