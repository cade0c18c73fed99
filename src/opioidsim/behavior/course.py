"""Run a human course — a life course or one arm of a trial — batched over subjects.

A course is a timeline of decision steps (`decide_every`, dividing a day). The clinic opens at
09:00: on programme days the subject decides whether to attend; if it does, the day's medication
dose is given (titrated, tapered, after a COWS threshold or an opioid-free period where the
medication needs one). Every step the subject decides whether to use, when the street has the
drug; a use is the supply's bag × the subject's habitual dose × the bag's purity, sometimes with
fentanyl in it. Breathing is judged minutes later: an overdose may be reversed by a bystander's
naloxone; cardiac arrest (model/respiration.py) is death. Everything the physiology does to the
decision goes through the same readouts the rat agent reads.

One compiled unit (a loop of step tries over a window of the timeline, each subject at its own
pace) is reused for every call and chunk.
Randomness is counter-based per (seed, subject, step): a subject lives the same life in a cohort
of 2 or of 10,000, however the cohort is chunked. Results are per (subject, day).
"""
from __future__ import annotations

import hashlib
import math
from contextlib import nullcontext
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.scipy.special import ndtri

from ..engine.core import QUANTUM_MIN, SUBJECT_CHUNK, lognormal_draws, state_atol, subject_parameters, \
    subject_uniforms, through_phases
from ..engine.devices import checked_devices, pad_rows, shards_dividing, split_by_subject
from ..engine.inert import for_targets
from ..model.model import Model, default_model
from ..model.pk import DOSE_TARGETS
from ..overrides import in_effect
from ..params import check_parameters
from ..readouts import READOUTS
from ..scenarios.course import (CO_OCCURRING_DISORDERS, DAY_MIN, MEDICATION_ROUTE,
                                MEDICATIONS, PLACEBO, Treatment)
from . import agent as ag
from . import human as hu

#: the medication code of the placebo: a tablet is given (and judged) but holds no drug
PLACEBO_CODE = MEDICATIONS.index(PLACEBO)

CLINIC_HOUR = 9.0
#: decision steps per compiled call (whatever the step length: one compiled loop for every course)
STEPS_PER_CALL = 128
#: the smallest batch compiled: every course of up to 16 subjects (per trial arm) shares one
#: compiled loop (compiling takes minutes; a few idle rows cost seconds)
COURSE_MIN_BATCH = 16
#: above this many subjects a batch is padded to a multiple of COURSE_BATCH_STEP, not a power of two
COURSE_POWER_OF_TWO_MAX = 64
COURSE_BATCH_STEP = 32


def course_batch_size(rows: int) -> int:
    """The compiled batch for `rows` subjects (a trial arm, or a chunk of a cohort): a power of two
    up to COURSE_POWER_OF_TWO_MAX, so that small arms and chunks of different sizes share one
    compiled loop (compiling takes about a minute), then the next multiple of COURSE_BATCH_STEP, so
    that a large arm does not pay for up to twice its rows: the padding rows copy the last subject
    and do its work again (the V-MAT-2 design, 320 subjects in arms of 74-87, 7 + 7 days: 128.1 s
    in batches of 96 against 150.3 s in batches of 128, the same records; stop 33)."""
    if rows <= COURSE_POWER_OF_TWO_MAX:
        return max(COURSE_MIN_BATCH, 1 << max(rows - 1, 0).bit_length())
    return min(SUBJECT_CHUNK, -(-rows // COURSE_BATCH_STEP) * COURSE_BATCH_STEP)


#: physiology readouts a course records each day at clinic time (any READOUTS name can be asked for)
DEFAULT_READOUTS = ("cows", "hedonic_state", "negative_affect", "mor_occupancy_vta", "mor_signal_vta",
                    "tolerance", "d2_density", "spo2", "pfc_control")
#: what the compiled loop records per step, in this order
RECORDED = ("use", "overdose", "naloxone", "attend", "medication_mg", "in_treatment", "urine", "alive", "craving",
            "drug_value", "dose_multiplier", "medication_relief")
_COL = {name: i for i, name in enumerate(RECORDED)}
#: the urine column: 1 positive, 0 negative, −1 scheduled but missed, −2 no test this step
URINE_MISSED, URINE_NONE = -1.0, -2.0
SOCIAL = ("family_therapy", "group_therapy", "twelve_step")


@dataclass(frozen=True)
class CourseTimeline:
    steps_per_day: int
    quanta: np.ndarray  # (E,) int: step length in engine quanta (0 for padding)
    clinic: np.ndarray  # (E,) 0/1: the clinic step of a programme day
    clinic_rest: np.ndarray  # (E,) 0/1: later steps of a programme day (an induction may still happen)
    programme: np.ndarray  # (E,) 0/1: a programme is running (attendance applies)
    programme_start: np.ndarray  # (E,) 0/1: the first clinic step of a programme
    med: np.ndarray  # (E,) int: medication code (index into MEDICATIONS)
    med_mg: np.ndarray  # (E,) float: the day's scheduled dose
    dose_day: np.ndarray  # (E,) 0/1: the medication is given today (XR: every 28 days)
    induction_cows: np.ndarray
    expects_relief: np.ndarray  # (E,) 0/1: the patient enrols expecting the dose to hold withdrawal
    opioid_free_min: np.ndarray
    available: np.ndarray  # (E,) street availability this step (0 in forced abstinence)
    cm: np.ndarray
    cbt: np.ndarray
    support: np.ndarray  # (E,) number of social-support treatments
    stress_therapy: np.ndarray
    antidepressant: np.ndarray
    urine: np.ndarray  # (E,) 0/1: a urine test at this step

    @property
    def n_steps(self) -> int:
        return len(self.quanta)

    @property
    def n_days(self) -> int:
        return self.n_steps // self.steps_per_day


def _q(minutes: float) -> int:
    return int(round(minutes / QUANTUM_MIN))


def compile_course(periods: list[tuple[str, float, Treatment | None]], decide_every_min: float,
                   availability: float, urine_days: tuple[int, ...] = (6,), aftercare_days: float = 84.0
                   ) -> CourseTimeline:
    """periods: (kind, days, programme or None). kind: community | forced_abstinence | treatment.
    Urine tests on programme days whose day-of-week (from the programme start) is in urine_days;
    aftercare keeps a programme's social support for `aftercare_days` after it ends. A forced
    abstinence that runs straight into treatment lasts until the programme's first clinic visit:
    a patient leaves the detox unit (or prison) for the clinic, not for the street."""
    spd = int(round(DAY_MIN / decide_every_min))
    clinic_step = int(math.ceil(CLINIC_HOUR * 60.0 / decide_every_min - 1e-9)) % spd
    cols: dict[str, list] = {k: [] for k in CourseTimeline.__dataclass_fields__ if k != "steps_per_day"}
    aftercare_left = 0.0
    aftercare_support = 0.0
    previous = None
    for kind, days, prog in periods:
        discharged_to_clinic = kind == "treatment" and previous == "forced_abstinence"
        previous = kind
        n_days = int(round(days))
        dose, first, step, every = prog.schedule() if prog is not None else (0.0, 0.0, 0.0, 1)
        taper = prog.taper_days if prog is not None else 0.0
        psy = set(prog.psychosocial) if prog is not None else set()
        support = float(sum(s in psy for s in SOCIAL))
        cm_days = (prog.cm_weeks * 7.0 if prog.cm_weeks is not None else float("inf")) if prog is not None else 0.0
        for d in range(n_days):
            in_prog = kind == "treatment"
            scheduled = min(first + step * d, dose)
            if taper > 0 and d >= n_days - taper:
                scheduled *= max(0.0, (n_days - d - 1) / taper)
            aft = aftercare_left > 0 and not in_prog
            for k in range(spd):
                at_clinic = in_prog and k == clinic_step
                cols["quanta"].append(_q(decide_every_min))
                cols["clinic"].append(float(at_clinic))
                cols["clinic_rest"].append(float(in_prog and k > clinic_step))
                cols["programme"].append(float(in_prog))
                cols["programme_start"].append(float(at_clinic and d == 0))
                cols["med"].append(MEDICATIONS.index(prog.medication) if in_prog else 0)
                cols["med_mg"].append(scheduled if in_prog else 0.0)
                # a placebo's tablet holds 0 mg but is given (and judged) like the active arms' doses
                placebo = in_prog and prog.medication == PLACEBO
                cols["dose_day"].append(float(in_prog and d % every == 0 and (scheduled > 0 or placebo)))
                cols["induction_cows"].append(prog.induction_cows if in_prog else 0.0)
                cols["expects_relief"].append(float(in_prog and prog.expects_relief))
                cols["opioid_free_min"].append(prog.opioid_free_days * DAY_MIN if in_prog else 0.0)
                still_inside = discharged_to_clinic and d == 0 and k < clinic_step
                cols["available"].append(0.0 if kind == "forced_abstinence" or still_inside else availability)
                cols["cm"].append(float(in_prog and "contingency_management" in psy and d < cm_days))
                cols["cbt"].append(float(in_prog and "cbt" in psy))
                cols["support"].append(support if in_prog else (aftercare_support if aft else 0.0))
                cols["stress_therapy"].append(float(in_prog and bool(psy & {"dbt", "trauma_therapy"})))
                cols["antidepressant"].append(float(in_prog and prog.antidepressant))
                cols["urine"].append(float(at_clinic and (d % 7) in urine_days))
            if not in_prog and aftercare_left > 0:
                aftercare_left -= 1
        if kind == "treatment" and "aftercare" in psy:
            aftercare_left, aftercare_support = aftercare_days, max(support, 1.0)
        elif kind == "treatment":
            aftercare_left = 0.0
    arrays = {k: np.asarray(v, dtype=np.int64 if k in ("quanta", "med") else float) for k, v in cols.items()}
    return CourseTimeline(spd, **arrays)


def co_occurring_disorders(cohort, subjects: np.ndarray) -> dict[str, np.ndarray]:
    """Whether each subject (cohort index) has each co-occurring disorder, drawn with the cohort's
    prevalences (`[cohort] depression`, `ptsd`); counter-based, so a trial can stratify on them
    before it runs anyone."""
    idx = np.asarray(subjects, dtype=np.uint64)
    return {name: subject_uniforms(cohort.seed, f"trait_{name}", idx) < getattr(cohort, name)
            for name in CO_OCCURRING_DISORDERS}


def disorder_strata(cohort, stratify: list[str], subjects: np.ndarray) -> np.ndarray:
    """Each subject's stratum of the co-occurring disorders in `stratify`: bit k is set when the
    subject has `stratify[k]` (0 for everyone when `stratify` is empty)."""
    disorders = co_occurring_disorders(cohort, subjects)
    code = np.zeros(len(np.asarray(subjects)), dtype=np.int64)
    for k, name in enumerate(stratify):
        code |= disorders[name].astype(np.int64) << k
    return code


def course_parameters(scenario, supply, n: int, first: int) -> dict[str, np.ndarray]:
    """The agent's and the person's parameters (typical values), the supply, and traits drawn with
    the cohort's prevalences (counter-based, so a subject's traits do not depend on the cohort)."""
    pars = in_effect(check_parameters(ag.PARAMETERS + hu.PARAMETERS), scenario.parameters)
    p = {k: np.full(n, par.internal_value) for k, par in pars.items()}
    idx = np.arange(first, first + n, dtype=np.uint64)
    seed = scenario.cohort.seed
    # readiness for treatment: one latent trait behind both attendance and resisting a use
    p["readiness"] = lognormal_draws(seed, "trait_readiness", idx, pars["readiness_cv"].internal_value)
    disorders = co_occurring_disorders(scenario.cohort, idx)
    p["depressed"] = disorders["depression"].astype(float)
    p["ptsd"] = disorders["ptsd"].astype(float)
    p["supply_mg"] = np.full(n, supply.dose_mg)
    p["purity_sigma"] = np.full(n, math.sqrt(math.log1p(supply.potency_cv ** 2)))
    p["contamination"] = np.full(n, supply.fentanyl_contamination)
    p["fentanyl_mg"] = np.full(n, supply.fentanyl_dose_mg)
    p["bystander"] = np.full(n, supply.naloxone_bystander)
    return p


def _fentanyl_route(supply) -> str:
    return supply.route if ("fentanyl", supply.route) in DOSE_TARGETS else "iv"


def _medications_given(tl: CourseTimeline) -> list[tuple[int, str]]:
    """(code, name) of the medications with a dose route that the timeline gives."""
    used = set(np.unique(tl.med).tolist())
    return [(code, name) for code, name in enumerate(MEDICATIONS) if name in MEDICATION_ROUTE and code in used]


def course_targets(tl: CourseTimeline, supply) -> frozenset:
    """The states a course's doses can enter: its supply, fentanyl in a bag where bags can hold it,
    a bystander's naloxone where bystanders carry it, and the timeline's medications. The other
    drugs' states stay at 0 and are left out of the model it integrates (engine/inert.py)."""
    given = [(supply.drug, supply.route)] + [MEDICATION_ROUTE[name] for _code, name in _medications_given(tl)]
    if supply.fentanyl_contamination > 0:
        given.append(("fentanyl", _fentanyl_route(supply)))
    if supply.naloxone_bystander > 0:
        given.append(("naloxone", "intranasal"))
    return frozenset(DOSE_TARGETS[g][0] for g in given)


def _target(model: Model, drug: str, route: str):
    if (drug, route) not in DOSE_TARGETS:
        raise ValueError(f"the model has no {drug} by the {route} route")
    target, fraction, _ = DOSE_TARGETS[(drug, route)]
    return model.index[target], fraction


@lru_cache(maxsize=8)
def _course_runner(model: Model, readout_names: tuple[str, ...]):
    """The compiled unit: one call takes every subject of a batch through a window of the
    timeline's phases, each at its own pace (`engine.core.through_phases`). Each decision step is
    two phases: phase 0 decides (attend, dose, use) and integrates to the overdose check minutes
    later; phase 1 judges breathing (bystander naloxone), learns from the use and integrates to the
    next decision. On 64 subjects in 60 days of `life-prison-release`'s community the loop took
    204 tries a day, where a phase at a time for the whole batch took 275 (the busiest subject
    alone 187)."""
    atol = state_atol(model)
    n_states = model.n_states
    h = jnp.asarray(QUANTUM_MIN, dtype=jnp.float64)
    arrest_idx = model.index["arrest"]

    def phase_start(p, consts, y, s, key, x):
        """Every subject's start of a phase, x being that phase's timeline inputs (one per subject)
        and key its draws. Returns the new state and human state, whether a dose was given, and the
        phase's records (alive is set at the phase's end)."""
        (phase, quanta, step_quanta, clinic, clinic_rest, programme, programme_start, med, med_mg, dose_day,
         induction_cows, expects_relief, opioid_free_min, available, cm, cbt, support, stress_therapy, antidepressant,
         urine) = x
        (supply_idx, supply_f, fent_idx, fent_f, nal_idx, nal_f, med_idx, med_f, discharge,
         follow_after_dropout) = consts
        decide = (phase == 0).astype(jnp.float64)
        judge = 1.0 - decide
        minutes = quanta * QUANTUM_MIN
        out = model.outputs(y, p)
        pfc = out.get("pfc_control", jnp.ones(y.shape[:1]))
        alive = s["alive"]
        s = dict(s)
        u = jax.vmap(lambda k: jax.random.uniform(k, (5,), dtype=jnp.float64))(key)
        # -- what the subject feels ----------------------------------------------------------------
        trait = p["depressed"] * p["depression_drive"] * (1.0 - p["antidepressant_relief"] * antidepressant)
        stress_w = (1.0 + p["ptsd_stress_gain"] * p["ptsd"]) * (1.0 - p["stress_therapy_reduction"] * stress_therapy)
        drv = hu.distress(out, trait, stress_w, p)
        cue = p["community_cue_strength"]
        want = hu.wanting(s["drug_value"], s["habit"], cue, cbt, support, ag.satiety(out, p), out, p)
        craving = p["craving_scale"] * jnp.tanh((hu.wanting(s["drug_value"], s["habit"], cue, cbt, support, 0.0,
                                                            out, p) + drv) / 2.0)
        # == phase 0: decide ==========================================================================
        # -- the programme: attendance, discharge, medication --------------------------------------
        for key in ("dropped", "missed_days", "inducted", "cm_streak", "med_pending"):
            s[key] = jnp.where(programme_start * decide > 0, 0.0, s[key])
        # a patient enrols expecting what an opioid agonist does for withdrawal (or a placebo that
        # blinds one: it might be the agonist), nothing from others (Treatment.expects_relief)
        s["med_relief"] = jnp.where(programme_start * decide > 0,
                                    hu.enrolment_relief(expects_relief, p), s["med_relief"])
        # what the last clinic dose did for the distress, judged one decision step later, where no
        # street use in the hours around the dose muddles what the dose did
        felt = decide * s["med_pending"] * hu.relief_attributable(s["minutes_since_use"], p)
        relief_learned = hu.learn_medication_relief(s["med_relief"], s["distress_at_dose"], drv, p)
        s["med_relief"] = jnp.where(felt > 0, relief_learned, s["med_relief"])
        s["med_pending"] = s["med_pending"] * (1.0 - decide)
        in_prog = programme * (1.0 - s["dropped"]) * alive
        # the first clinic day is the enrolment visit (a trial randomises at the clinic): always attended
        chooses = u[:, 0] < hu.attend_probability(want, drv, support, cm, s["med_relief"], p)
        attend = decide * clinic * in_prog * jnp.maximum(chooses, programme_start)
        s["missed_days"] = jnp.where(decide * clinic * in_prog > 0,
                                     jnp.where(attend > 0, 0.0, s["missed_days"] + 1.0), s["missed_days"])
        s["dropped"] = jnp.where(s["missed_days"] >= discharge, 1.0, s["dropped"])
        waiting = jnp.where(clinic > 0, attend * (1.0 - s["inducted"]),
                            jnp.where(clinic_rest > 0, s["waiting"], 0.0)) * alive * decide
        ready = (out["cows"] >= induction_cows) & (s["minutes_since_use"] >= opioid_free_min)
        first_dose = waiting * ready * (med > 0)
        s["waiting"] = jnp.where(decide > 0, waiting * (1.0 - first_dose), s["waiting"])
        maintenance = attend * s["inducted"] * dose_day
        given = jnp.minimum(first_dose * dose_day + maintenance, 1.0) * ((med_mg > 0) | (med == PLACEBO_CODE))
        s["inducted"] = jnp.maximum(s["inducted"], jnp.where(med > 0, first_dose, attend))
        s["med_pending"] = jnp.where(given > 0, 1.0, s["med_pending"])
        s["distress_at_dose"] = jnp.where(given > 0, drv, s["distress_at_dose"])
        mi = jnp.asarray(med_idx)[med]
        med_fraction = jnp.take_along_axis(med_f, med[:, None], axis=1)[:, 0]
        y = y + jax.nn.one_hot(mi, n_states, dtype=y.dtype) * (given * med_mg * med_fraction)[:, None]
        # -- urine: positive within the detection window of the last use --------------------------
        # a research urine needs a clinic visit, or (follow-up after dropout) only being alive
        tested = decide * urine * jnp.where(follow_after_dropout > 0, alive, attend)
        positive = (s["minutes_since_use"] <= p["detection_window"]).astype(jnp.float64)
        urine_code = jnp.where(decide * urine > 0, jnp.where(tested > 0, positive, URINE_MISSED), URINE_NONE)
        s["cm_streak"] = jnp.where(tested > 0, jnp.where(positive > 0, 0.0, s["cm_streak"] + 1.0), s["cm_streak"])
        # -- street use (the decision covers this check interval and the rest of the step) ---------
        stake = hu.cm_stake(s["cm_streak"], cm * in_prog, p)
        mot = hu.use_motivation(want, drv, pfc, cbt, stake, in_prog, p)
        use = decide * (u[:, 1] < hu.use_probability(mot, available, step_quanta * QUANTUM_MIN, p) * alive)
        sigma = p["purity_sigma"]
        purity = jnp.exp(sigma * ndtri(jnp.clip(u[:, 2], 1e-12, 1 - 1e-12)) - 0.5 * sigma ** 2)
        bag = use * p["supply_mg"] * s["dose_multiplier"] * purity
        fentanyl = use * (u[:, 3] < p["contamination"]) * p["fentanyl_mg"] * s["dose_multiplier"] * purity
        y = y + jax.nn.one_hot(supply_idx, n_states, dtype=y.dtype) * (bag * supply_f)[:, None]
        y = y + jax.nn.one_hot(fent_idx, n_states, dtype=y.dtype) * (fentanyl * fent_f)[:, None]
        s["used_now"] = jnp.where(decide > 0, use, s["used_now"])
        s["pre_drive"] = jnp.where(use > 0, ag.drive(out, p), s["pre_drive"])
        s["pre_dopamine"] = jnp.where(use > 0, out["nac_dopamine"], s["pre_dopamine"])
        s["gap_before_use"] = jnp.where(use > 0, s["minutes_since_use"], s["gap_before_use"])
        # == phase 1: minutes later, breathing, a bystander, and what the use taught ===============
        used = judge * s["used_now"]
        overdose = used * (out["overdose"] > 0.5)
        naloxone = overdose * (u[:, 4] < p["bystander"])
        y = y + jax.nn.one_hot(nal_idx, n_states, dtype=y.dtype) * (naloxone * p["naloxone_bystander_dose"]
                                                                    * nal_f)[:, None]
        learned = ag.learn_from_infusion(s["drug_value"], out, s["pre_drive"], s["pre_dopamine"],
                                         s["gap_before_use"], p)
        s["drug_value"] = jnp.where(used > 0, learned, s["drug_value"])
        s["habit"] = s["habit"] + p["habit_rate"] * (1.0 - s["habit"]) * used
        s["dose_multiplier"] = hu.adapt_dose(s["dose_multiplier"], out["mor_signal_vta"], used, p)
        dosed = (use > 0) | (given > 0) | (naloxone > 0)
        # read above as of the phase's start; nothing reads it during the phase, so it moves to its end now
        s["minutes_since_use"] = jnp.where(use > 0, minutes, s["minutes_since_use"] + minutes)
        rec_b = jnp.stack([use, overdose, naloxone, attend, given * med_mg, in_prog, urine_code, s["alive"],
                           craving, s["drug_value"], s["dose_multiplier"], s["med_relief"]], axis=-1)
        rec_p = jnp.stack([jnp.broadcast_to(out[r], use.shape) for r in readout_names], axis=-1)
        return y, s, dosed, rec_b, rec_p

    @jax.jit
    def run(y, n, m, s, keys, k_step, p, consts, xs, n_phases):
        """xs: the window's phase inputs (phases first); n_phases: how many of them are real (the
        rest pad the last window). Returns the carried state and the records (phases, subjects, ·)."""
        def start(y, s, k):
            x = tuple(v[k] for v in xs)
            y, s, dosed, rec_b, rec_p = phase_start(p, consts, y, s, jax.vmap(jax.random.fold_in)(keys, k_step + k), x)
            return y, s, x[1], dosed, jnp.where(dosed, 0.0, jnp.inf), (rec_b, rec_p)

        def end(y, s, recs):  # a cardiac arrest in the phase is death
            alive = s["alive"] * (y[:, arrest_idx] < 0.5)
            return {**s, "alive": alive}, (recs[0].at[:, _COL["alive"]].set(alive), recs[1])

        n_window = xs[0].shape[0]
        y, n, m, s, recs = through_phases(model, atol, y, n, m, s, p, n_window, n_phases, start, end,
                                          (len(RECORDED), len(readout_names)), h)
        return y, n, m, s, k_step + n_window, recs

    return run


@lru_cache(maxsize=8)
def _split_course_runner(model: Model, readout_names: tuple[str, ...], shards: int):
    """`_course_runner`'s `run` with the batch split over `shards` devices (engine/devices.py: the
    same records bit for bit). Returns (run, place)."""
    # by subject: y, n, m, the human state, keys, parameters, and in the constants each dose's
    # fraction (the drug and medication indices and the two settings are shared); the step count
    # and the timeline's inputs are shared; the records are (steps, subjects, fields)
    consts = (None, 0, None, 0, None, 0, None, 0, None, None)
    return split_by_subject(_course_runner(model, readout_names), shards,
                            (0, 0, 0, 0, 0, None, 0, consts, None, None), (0, 0, 0, 0, None, (1, 1)))


def run_course(scenario, tl: CourseTimeline, supply, *, subjects, model: Model | None = None,
               readouts: tuple[str, ...] | None = None, follow_up_after_dropout: bool = True,
               discharge_after_missed_days: int = 7, progress: Callable[[float], None] | None = None,
               checkpoint=None, loop_name: str = "course", devices: int | None = None) -> dict:
    """Integrate the subjects in `subjects` (a range or an array of cohort indices) through the
    timeline; returns per-(subject, day) arrays of behaviour and physiology (numpy) and the
    subjects' traits. A subject's parameters, traits and draws depend only on its index.

    `checkpoint` (an `opioidsim.io.checkpoint.Checkpoint`) saves the progress between compiled
    calls, as its loop `loop_name`, and on an interruption; given a checkpoint with saved progress
    the course continues from it, to the same records bit for bit. `devices`: how many of JAX's
    devices share each batch (engine/devices.py; default all; the same records bit for bit)."""
    # a model already without the drugs of a wider set of courses (a trial's arms) is kept as it is
    model = for_targets(model or default_model(), course_targets(tl, supply))
    fent_route = _fentanyl_route(supply)
    names = tuple(r for r in (readouts or DEFAULT_READOUTS) if r in READOUTS)
    subjects = np.asarray(subjects, dtype=np.int64)
    first = int(subjects.min()) if len(subjects) else 0
    span = int(subjects.max()) - first + 1 if len(subjects) else 0
    p = subject_parameters(model, scenario, span, scenario.cohort.seed, first=first)
    p.update(course_parameters(scenario, supply, span, first))
    p = {k: np.asarray(v)[subjects - first] for k, v in p.items()}
    supply_idx, supply_f = _target(model, supply.drug, supply.route)
    # a drug the course cannot give has no state: its index is one past the last state, which
    # one_hot turns into a zero vector (its amounts are 0 anyway)
    nowhere = (model.n_states, None)
    fent_idx, fent_f = _target(model, "fentanyl", fent_route) if supply.fentanyl_contamination > 0 else nowhere
    nal_idx, nal_f = _target(model, "naloxone", "intranasal") if supply.naloxone_bystander > 0 else nowhere
    med_idx = [0] * len(MEDICATIONS)
    med_f_names: list[str | None] = [None] * len(MEDICATIONS)
    for code, name in _medications_given(tl):
        med_idx[code], med_f_names[code] = _target(model, *MEDICATION_ROUTE[name])
    check_min = p["overdose_check_iv"][0] if supply.route in ("iv", "smoked") else p["overdose_check_slow"][0]
    y0 = model.initial_state(p)
    spd = tl.steps_per_day
    n_devices = checked_devices(devices)
    n_steps = tl.n_steps
    n_calls = math.ceil(n_steps / STEPS_PER_CALL)
    pad = n_calls * STEPS_PER_CALL - n_steps
    fields = ("clinic", "clinic_rest", "programme", "programme_start", "med", "med_mg", "dose_day",
              "induction_cows", "expects_relief", "opioid_free_min", "available", "cm", "cbt", "support",
              "stress_therapy", "antidepressant", "urine")
    # each decision step is two scan iterations: decide + integrate to the check, judge + the rest
    check_q = np.minimum(_q(check_min), tl.quanta)
    padded = lambda a: np.concatenate([a, np.zeros(pad, dtype=a.dtype)])  # noqa: E731  (zero-length steps)
    both = lambda a: np.repeat(padded(a), 2)  # noqa: E731
    xs_np = [np.tile([0, 1], n_steps + pad),
             np.stack([padded(check_q), padded(tl.quanta - check_q)], axis=-1).reshape(-1),
             both(tl.quanta)] + [both(getattr(tl, f)) for f in fields]
    n_sub = len(subjects)
    n_days = tl.n_days
    rec_b = np.empty((n_sub, n_steps, len(RECORDED)), dtype=np.float32)
    rec_p = np.empty((n_sub, n_steps, len(names)), dtype=np.float32)
    clinic_k = int(math.ceil(CLINIC_HOUR * spd / 24.0 - 1e-9)) % spd
    n_chunks = max(1, math.ceil(n_sub / SUBJECT_CHUNK))
    ck = at = None
    if checkpoint is not None:
        chunk_rows = [np.arange(ci * SUBJECT_CHUNK, min(n_sub, (ci + 1) * SUBJECT_CHUNK)) for ci in range(n_chunks)]
        ck = checkpoint.loop(loop_name, _loop_details(subjects, names, xs_np, discharge_after_missed_days,
                                                      follow_up_after_dropout, supply),
                             {"behaviour": rec_b, "physiology": rec_p}, chunk_rows)
        at = ck.resume()
    with ck.guard() if ck is not None else nullcontext():  # Ctrl-C, SIGTERM: save where it stands
        for ci in range(at.chunk if at is not None else 0, n_chunks):
            sl = slice(ci * SUBJECT_CHUNK, min(n_sub, (ci + 1) * SUBJECT_CHUNK))
            rows = sl.stop - sl.start

            size = course_batch_size(rows)
            run, place = _split_course_runner(model, names, shards_dividing(size, n_devices))

            def batch(arr, sl=sl, size=size):
                return pad_rows(np.asarray(arr)[sl], size)

            pc = {k: place(batch(v)) for k, v in p.items()}
            one = np.ones(size)
            med_f = place(np.stack([batch(p[f]) if f else one for f in med_f_names], axis=-1))
            frac = (lambda name: place(batch(p[name]) if name else one))
            consts = (supply_idx, frac(supply_f), fent_idx, frac(fent_f), nal_idx, frac(nal_f), tuple(med_idx), med_f,
                      jnp.asarray(float(discharge_after_missed_days)),
                      jnp.asarray(1.0 if follow_up_after_dropout else 0.0))
            idx = subjects[sl]
            base = jax.random.PRNGKey(scenario.cohort.seed)
            keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(base, jnp.asarray(batch(idx), dtype=jnp.uint32))
            keys = place(keys)
            if at is not None and ci == at.chunk and at.carry is not None:  # resumed: the saved carried state
                first_call = at.call
                y, n, m = (place(np.asarray(at.carry[k])) for k in ("y", "n", "m"))
                k_step = jnp.asarray(at.carry["k_step"])
                s = {k: place(np.asarray(v)) for k, v in at.carry["s"].items()}
            else:
                first_call = 0
                y = place(batch(y0))
                n = place(np.zeros(size, dtype=np.int64))
                m = place(np.ones(size, dtype=np.int64))
                s = {k: place(v) for k, v in hu.initial_human_state(size, {k: batch(v) for k, v in p.items()}).items()}
                k_step = jnp.asarray(0, dtype=jnp.int64)
            for c in range(first_call, n_calls):
                win = slice(2 * c * STEPS_PER_CALL, 2 * (c + 1) * STEPS_PER_CALL)
                xs = tuple(jnp.asarray(x[win]) for x in xs_np)
                lo = c * STEPS_PER_CALL
                take = min(STEPS_PER_CALL, n_steps - lo)
                y, n, m, s, k_step, (rb, rp) = run(y, n, m, s, keys, k_step, pc, consts, xs, jnp.asarray(2 * take))
                rb = np.moveaxis(np.asarray(rb[:2 * take, :rows]), 0, 1).reshape(rows, take, 2, len(RECORDED))
                rp = np.moveaxis(np.asarray(rp[:2 * take, :rows]), 0, 1).reshape(rows, take, 2, len(names))
                rec_b[sl, lo:lo + take] = _merge_phases(rb)
                rec_p[sl, lo:lo + take] = rp[:, :, 0]
                if ck is not None:
                    ck.advance(ci, c + 1, lo + take, {"y": y, "n": n, "m": m, "s": s, "k_step": k_step})
                if progress is not None:
                    progress((ci * n_calls + c + 1) / (n_chunks * n_calls))
    if ck is not None:
        ck.finish()
    rec_b = rec_b.reshape(n_sub, n_days, spd, len(RECORDED)).astype(np.float64)
    rec_p = rec_p.reshape(n_sub, n_days, spd, len(names))[:, :, clinic_k].astype(np.float64)
    return {"behaviour": rec_b, "physiology": rec_p, "names": names, "depressed": p["depressed"],
            "ptsd": p["ptsd"], "weight_kg": p["body_weight"] / 1e6}


def _loop_details(subjects, names, xs_np, discharge_after_missed_days, follow_up_after_dropout, supply) -> dict:
    """What a saved course loop must share with this one to be continued: subjects, readouts,
    the step inputs (the timeline), the compiled loop's sizes and the course's settings."""
    digest = hashlib.blake2b(np.asarray(subjects, dtype=np.int64).tobytes(), digest_size=16)
    for x in xs_np:
        digest.update(np.ascontiguousarray(x).tobytes())
    return {"kind": "course", "subjects": len(subjects), "readouts": list(names), "recorded": list(RECORDED),
            "steps_per_call": STEPS_PER_CALL, "subject_chunk": SUBJECT_CHUNK, "min_batch": COURSE_MIN_BATCH,
            "batch_sizes": [COURSE_POWER_OF_TWO_MAX, COURSE_BATCH_STEP], "inputs": digest.hexdigest(),
            "discharge": int(discharge_after_missed_days),
            "follow_up": bool(follow_up_after_dropout), "supply": repr(supply)}


def _merge_phases(rb: np.ndarray) -> np.ndarray:
    """One record per decision step from its two iterations: the decision's, with the judgement's
    overdose, naloxone and the states at the step's end."""
    out = rb[..., 0, :].copy()
    for name in ("overdose", "naloxone", "alive", "drug_value", "dose_multiplier", "medication_relief"):
        out[..., _COL[name]] = rb[..., 1, _COL[name]]
    return out


DAY_UNITS = {
    "use_event": ("1", "1 where the subject used an illicit opioid that day"),
    "uses": ("1", "illicit uses that day"),
    "overdose": ("1", "overdoses that day (SpO2 < 75 %, apnoea or arrest minutes after a use)"),
    "naloxone_given": ("1", "bystander naloxone given that day"),
    "attended": ("1", "1 where the subject came to the clinic that day"),
    "medication_mg": ("mg", "medication given at the clinic that day"),
    "in_treatment": ("1", "1 while the subject is in a programme (not discharged) at the end of the day"),
    "urine": ("1", "urine test that day: 1 positive, 0 negative, NaN missed or none"),
    "urine_scheduled": ("1", "1 where a urine test was scheduled that day"),
    "alive": ("1", "1 while the subject is alive (end of the day)"),
    "craving": ("1", "the subject's craving, 0-10, mean over the day"),
    "drug_value": ("1", "learned value of using, end of the day"),
    "dose_multiplier": ("1", "habitual dose as a multiple of the supply's bag, end of the day"),
    "medication_relief": ("1", "learned share of distress the clinic's dose relieves (0-1), end of the day"),
}


def day_variables(rec_b: np.ndarray) -> dict[str, np.ndarray]:
    """Per-(subject, day) behaviour from per-step records (subject, day, step, column)."""
    col = lambda name: rec_b[..., _COL[name]]  # noqa: E731
    urine = col("urine")
    scheduled = (urine > URINE_NONE + 0.5).any(axis=-1)
    given = np.where(urine >= 0, urine, np.nan)
    day_urine = np.fmax.reduce(given, axis=-1)  # NaN-ignoring max; NaN (no warning) where none was given
    return {
        "uses": col("use").sum(-1), "use_event": (col("use").sum(-1) > 0).astype(float),
        "overdose": col("overdose").sum(-1), "naloxone_given": col("naloxone").sum(-1),
        "attended": col("attend").max(-1), "medication_mg": col("medication_mg").sum(-1),
        "in_treatment": col("in_treatment")[..., -1], "urine": np.where(scheduled, day_urine, np.nan),
        "urine_scheduled": scheduled.astype(float), "alive": col("alive")[..., -1],
        "craving": col("craving").mean(-1), "drug_value": col("drug_value")[..., -1],
        "dose_multiplier": col("dose_multiplier")[..., -1],
        "medication_relief": col("medication_relief")[..., -1],
    }


def relapsed(use_day: np.ndarray, abstinent_days: int = 7) -> np.ndarray:
    """1 where a subject used again after at least `abstinent_days` days in a row without use
    (relapse as trials define it after a period of abstinence; days before the first use count)."""
    n_days = use_day.shape[1]
    day = np.arange(n_days)
    last_use = np.maximum.accumulate(np.where(use_day > 0, day, -1), axis=1)
    before = np.concatenate([np.full((len(use_day), 1), -1), last_use[:, :-1]], axis=1)
    clean_run = day - before - 1  # days without use just before each day
    return ((use_day > 0) & (clean_run >= abstinent_days)).any(axis=1).astype(float)


def course_dataset(scenario, res: dict, subjects, days_offset: int = 0) -> xr.Dataset:
    """(subject, day) behaviour and physiology, and per-subject outcomes."""
    from .. import __version__

    days = day_variables(res["behaviour"])
    n_sub, n_days = days["uses"].shape
    dv = {k: xr.Variable(("subject", "day"), v, attrs={"units": DAY_UNITS[k][0], "long_name": DAY_UNITS[k][1]})
          for k, v in days.items()}
    for i, name in enumerate(res["names"]):
        r = READOUTS[name]
        dv[name] = xr.Variable(("subject", "day"), res["physiology"][:, :, i],
                               attrs={"units": r.units, "long_name": r.long_name + " (at 09:00)"})
    alive = days["alive"]
    living = np.concatenate([np.ones((n_sub, 1)), alive[:, :-1]], axis=1)
    summary = {
        "overdose_events": (days["overdose"].sum(1), "1", "overdoses over the course"),
        "alive_at_end": (alive[:, -1], "1", "1 if the subject is alive at the end"),
        "days_abstinent": (((1 - days["use_event"]) * living).sum(1), "day", "days alive without illicit use"),
        "relapse": (relapsed(days["use_event"]), "1", "used again after ≥ 7 days without use"),
        "retained": (days["in_treatment"][:, -1], "1", "in a programme at the end"),
    }
    for k, (v, units, long) in summary.items():
        dv[k] = xr.Variable(("subject",), v, attrs={"units": units, "long_name": long})
    coords = {"subject": np.asarray(subjects), "day": np.arange(n_days) - days_offset,
              "depressed": ("subject", res["depressed"]), "ptsd": ("subject", res["ptsd"]),
              "weight_kg": ("subject", np.asarray(res["weight_kg"]), {"units": "kg"})}
    ds = xr.Dataset(dv, coords=coords)
    ds.attrs.update({"scenario_name": scenario.name, "description": scenario.description,
                     "opioidsim_version": __version__, "seed": int(scenario.cohort.seed),
                     "scenario_toml": scenario.to_toml(),
                     "research_notice": "opioidsim is a research and teaching tool, never a dosing guide."})
    return ds


def simulate_life(scenario, *, progress=None, model: Model | None = None, subjects: range | None = None,
                  checkpoint=None, devices: int | None = None) -> xr.Dataset:
    """Run a scenario with a [life] table: per-(subject, day) behaviour, physiology and outcomes.
    `checkpoint`, `devices`: see `run_course` (an interrupted course continues to the same
    results; any number of devices gives the same results)."""
    life = scenario.life
    subjects = range(scenario.cohort.subjects) if subjects is None else subjects
    periods = [(pd.kind, pd.length_min / DAY_MIN, pd if pd.kind == "treatment" else None) for pd in life.periods]
    tl = compile_course(periods, life.decide_every_min, life.supply.availability)
    res = run_course(scenario, tl, life.supply, subjects=subjects, model=model,
                     readouts=tuple(scenario.readouts) if scenario.readouts else None, progress=progress,
                     checkpoint=checkpoint, devices=devices)
    ds = course_dataset(scenario, res, np.asarray(subjects))
    starts = np.cumsum([0] + [int(round(pd.length_min / DAY_MIN)) for pd in life.periods])
    ds = ds.assign_coords(period=("day", np.searchsorted(starts, ds.day.values, side="right") - 1))
    ds.attrs["periods"] = ",".join(pd.kind for pd in life.periods)
    return ds
