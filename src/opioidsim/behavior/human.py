"""The same agent in a person's life: street use, clinic attendance and treatment (pure functions).

The rat's decision (behavior/agent.py) carries over: wanting is learned drug value × incentive
salience plus habit, satisfied by the opioid the brain senses on its receptors, pushed by the
homeostatic drive (dysphoria below the set point, negative affect) and braked by prefrontal
control. A person adds three things:

- **Supply and cost.** A use happens only when the drug can be had (street availability) and the
  subject wants it; contingency management puts a voucher at stake (an alternative reward that
  lasts while it is paid: Higgins ST et al. 1994 Arch Gen Psychiatry 51:568; Silverman K et al.
  1996 Arch Gen Psychiatry 53:409, escalating vouchers reset by a positive urine).
- **Attendance.** Every clinic day the subject chooses to go or not: the programme's pull
  (commitment scaled by the subject's readiness, social support, vouchers) against the pull of
  the street (unsated wanting) and the distress the subject is in. What the clinic's dose is
  expected (an agonist) and has been learned to relieve turns that distress into a pull to the
  clinic; a dose is judged only when no street use around it muddles the comparison. The
  enrolment visit is always attended, and being in a programme adds a resolve not to use.
  Medication acts only through the physiology: methadone and buprenorphine sit on the receptors
  (satiety, blockade) and lift withdrawal (drive), buprenorphine, a partial agonist, satisfying
  in proportion to its efficacy; naltrexone occupies without signalling, so it blocks heroin but
  relieves nothing. Missing days in a row means discharge: retention is
  behaviour, not a constant.
- **A habitual dose.** Users titrate their bag to the effect they seek, so the dose grows with
  tolerance and stays there as a habit when tolerance fades (forced abstinence): the overdose risk
  after release from prison (Merrall ELC et al. 2010 Addiction 105:1545) is left to emerge.

Sources and the reasoning behind each value are in PARAMETERS; research and teaching only.
"""
from __future__ import annotations

import jax.numpy as jnp

from ..model.base import excess, sigmoid
from ..params import Parameter
from . import agent as ag

PARAMETERS = (
    Parameter("use_rate_max", 0.5, "1/h", "assumed: a subject who wants the drug badly and can get it uses within "
              "about two hours (dependent heroin users inject 2-4 times a day: Darke S et al. 1992 Br J Addict "
              "87:1201 report a median of 2-3 injections a day)"),
    Parameter("community_cue_strength", 0.5, "1", "assumed: everyday life holds drug cues (people, places) about as "
              "strong as the self-administration chamber for a rat (agent.chamber_cue_strength)"),
    Parameter("entry_drug_value", 1.0, "1", "assumed: a person with years of use starts the model with a learned "
              "drug value near its ceiling (agent.value_max 1.2)"),
    Parameter("entry_habit", 0.5, "1", "assumed: habit half formed after years of daily use (agent.habit_rate)"),
    Parameter("dose_target_signal", 0.15, "1", "assumed: the VTA MOR signal a user doses for. Below the signal "
              "a 20 mg IV bag gives at 5 min even under tolerance (0.84 naive, 0.30 after ten days of use three "
              "times a day; model, stop 29), so in effect the habitual dose stays at the supply's bag: while the "
              "VTA has no receptor reserve its tolerance caps the signal instead of shifting the dose-response, "
              "and any target above the tolerant cap escalates the dose to dose_multiplier_max (roadmap)"),
    Parameter("dose_adaptation_rate", 0.1, "1", "assumed: each use moves the habitual dose a tenth of the way to "
              "the one that would have given the sought effect (users escalate over weeks: Darke 1992)"),
    Parameter("dose_multiplier_max", 10.0, "1", "assumed: the habitual bag grows at most tenfold (daily heroin "
              "intake of dependent users spans ~0.1-1 g street heroin)"),
    Parameter("detection_window", 72.0, "h", "Verstraete AG 2004 Ther Drug Monit 26:200, Table 1: morphine from "
              "heroin is detected in urine for 1-3 days after use"),
    Parameter("overdose_check_iv", 5.0, "min", "the brain peak of 6-MAM and of IV/smoked fentanyl and heroin comes "
              "within minutes (model pk: V-PK-1); breathing is judged then"),
    Parameter("overdose_check_slow", 15.0, "min", "intranasal heroin peaks later (Skopp G et al. 1997 Int J Legal "
              "Med 110:1: t_max ~ 10-20 min)"),
    Parameter("naloxone_bystander_dose", 4.0, "mg", "Narcan nasal spray label: one 4 mg intranasal spray"),
    Parameter("attend_gain", 4.0, "1", "assumed: attendance swings from a tenth to nine tenths over about a unit of "
              "the difference between the programme's pull and the street's"),
    Parameter("programme_commitment", 0.8, "1", "assumed: the pull of a programme a person chose to enter, of "
              "the order of a learned drug value; fitted to V-MAT-1 with agent.surge_floor_half (medication_pull "
              "and quit_brake as set by hand before): 1.2 with a floor that always holds; with a floor that fades "
              "outside the drug state the street pulls less (values fall below the ceiling), and 1.2 kept 55 % of "
              "a reduced run's control arm, 0.8 kept 27 % (32 subjects, 14 days of history, 4 weeks: retention "
              "RR 2.62, urine RR 0.58), 0.5 kept almost no one in either arm; at full size V-MAT-1 gave "
              "retention RR 4.21 (2.29-7.76) and V-CM-1 d 0.69, and since medication_pull and "
              "medication_relief_learning_rate were fitted (stop 39) RR 5.69 and d 0.74 "
              "(docs/guide/06-treatment-and-trials.md)"),
    Parameter("readiness_cv", 0.5, "1", "assumed: a person's readiness for treatment (to attend, and to resist a use "
              "while in a programme) varies widely between people entering treatment, and predicts who drops out "
              "early (Simpson DD & Joe GW 1993 Psychotherapy 30:357); drawn per subject, lognormal with median 1"),
    Parameter("quit_brake", 1.0, "1", "assumed: the resolve not to use that a programme a person chose "
              "adds to the prefrontal brake, at median readiness; set by hand against 32-64-subject runs of the "
              "V-MAT-1 and V-CM-1 designs; not fitted at full size"),
    Parameter("medication_relief_learning_rate", 0.03, "1", "fitted to V-MAT-2 retention with medication_pull "
              "(full size, with V-MAT-1 and V-CM-1 kept in range): a judged dose moves what a patient believes the "
              "medication relieves by 3 %, so a blinded placebo patient's expectation fades over weeks, not days; "
              "real placebo arms kept patients who went on using (Fudala PJ et al. 2003 N Engl J Med 349:949: 5.8 % "
              "of placebo urines opioid-negative). At 0.5 (a handful of doses teach it) placebo arms emptied: "
              "V-MAT-2 retention RR 3.98 / 5.56 / 6.36 at 4 / 8 / 16 mg against Mattick RP et al. 2014 Cochrane "
              "CD002207's 1.50 / 1.74 / 1.82; at 0.03 (medication_pull 3.25) 1.45 / 1.73 / 1.79, V-MAT-1 RR 5.69, "
              "V-CM-1 d 0.74 (docs/guide/06-treatment-and-trials.md); it holds the 12-week retention, not its "
              "course: at 4 weeks placebo keeps as many as buprenorphine (94 %); the relief is judged at the next "
              "decision step after the dose"),
    Parameter("medication_expectation", 0.2, "1", "assumed: the share of withdrawal and dysphoria a person "
              "enrolling in methadone or buprenorphine treatment expects the dose to relieve, before any dose "
              "(people seek agonist treatment to stop withdrawal; most have been treated or used diverted "
              "methadone before); a blinded placebo tablet raises the same expectation, as the patient cannot "
              "tell it from the agonist; nothing is expected of naltrexone (or a placebo that blinds it) or a "
              "drug-free programme; set by hand: with "
              "relief_attribution_window, 32-subject reduced V-MAT-1 retention went from 62 % to 71 % on methadone "
              "(27 % without), 64 subjects over 12 weeks gave RR 2.69 (was 2.05), and the reduced V-MAT-2 gave "
              "retention RR 1.64 / 1.75 / 1.83 at 4 / 8 / 16 mg (Mattick 2014: 1.50 / 1.74 / 1.82), all with "
              "medication_relief_learning_rate 0.5 and medication_pull 6 (stop 35); not fitted at full size"),
    Parameter("relief_attribution_window", 8.0, "h", "assumed: a patient credits the dose with what it did only "
              "where no street use in the hours around it (the decision step of the dose and the one before) "
              "muddles the comparison"),
    Parameter("medication_pull", 3.25, "1", "fitted with medication_relief_learning_rate to V-MAT-1 and V-MAT-2 "
              "retention at full size (3: V-MAT-1 RR 4.58, V-MAT-2 1.71 / 2.23 / 2.23; 3.25: 5.69 and "
              "1.45 / 1.73 / 1.79; 3.5: 6.58 and 1.46 / 1.69 / 1.66; was 6, set by hand against a 64-subject V-MAT-1 "
              "run); how strongly the learned relief of the clinic's dose turns wanting and distress from a pull to "
              "the street into a pull to the clinic (a patient who skips a dose falls into withdrawal: avoiding it "
              "keeps methadone patients coming, Mattick 2009 retention RR 4.4)"),
    Parameter("street_pull_weight", 1.0, "1", "scale identity: unsated wanting pulls away from the clinic as "
              "strongly as it pulls toward a use"),
    Parameter("distress_weight", 1.0, "1", "scale identity: the homeostatic drive (withdrawal, dysphoria) keeps a "
              "person from the clinic one for one"),
    Parameter("support_commitment", 0.3, "1", "assumed: each social-support treatment (family, group therapy, "
              "12-step) adds a quarter of a programme's pull (social support improves retention: Kelly JF et al. "
              "2020 Cochrane CD012880 for 12-step; Copello AG et al. 2005 Drug Alcohol Rev 24:369 for family)"),
    Parameter("support_use_reduction", 0.1, "1", "assumed: each social-support treatment lowers wanting by a tenth"),
    Parameter("cbt_cue_reduction", 0.3, "1", "assumed: CBT coping skills cut cue-evoked wanting by 30 % (cue "
              "exposure and coping: Carroll KM & Onken LS 2005 Am J Psychiatry 162:1452); CBT's effect on use is "
              "small (Magill M & Ray LA 2009 J Stud Alcohol Drugs 70:516: g ≈ 0.15)"),
    Parameter("cbt_pfc_gain", 0.3, "1", "assumed: CBT strengthens the prefrontal brake by 30 % (planned coping)"),
    Parameter("stress_therapy_reduction", 0.25, "1", "assumed: DBT or trauma-focused therapy lowers the weight of "
              "negative affect by a quarter (Linehan MM et al. 2002 Drug Alcohol Depend 67:13; Roberts NP et al. "
              "2016 Cochrane CD010204)"),
    Parameter("cm_stake_base", 0.3, "1", "assumed: the first voucher at stake, in units of motivation; set by "
              "hand: three quarters of a first guess that gave d = 1.15 in a 64-subject V-CM-1 run; with the "
              "agent of stop 35 (medication_expectation included), 64 subjects (14 days of history, 12 weeks) "
              "gave d = 0.63 (0.13-1.13) against Prendergast 2006's 0.65; at full size, with stop 37's value rule, "
              "d 0.69 (0.32-1.06)"),
    Parameter("cm_stake_step", 0.075, "1", "assumed: each consecutive negative urine raises the stake (Silverman "
              "1996: $2.50 rising by $1.50 per consecutive negative sample)"),
    Parameter("cm_stake_max", 0.9, "1", "assumed: the stake stops growing after ~8 consecutive negatives "
              "(escalating schedules reach their largest voucher within weeks)"),
    Parameter("cm_attend_bonus", 0.3, "1", "assumed: vouchers also reward showing up (samples are given at the "
              "clinic)"),
    Parameter("depression_drive", 0.15, "1", "assumed: major depression lowers the hedonic set point by 1.5 of "
              "10 units (anhedonia, negative affect; lifetime major depression in ~16 % of people in methadone "
              "treatment: Brooner RK et al. 1997 Arch Gen Psychiatry 54:71)"),
    Parameter("ptsd_stress_gain", 0.5, "1", "assumed: PTSD raises the weight of negative affect by half (stress "
              "reactivity; PTSD in ~20-40 % of people with opioid dependence: Mills KL et al. 2006 Am J "
              "Psychiatry 163:652)"),
    Parameter("antidepressant_relief", 0.3, "1", "assumed: an antidepressant removes 30 % of the depression drive "
              "in a depressed subject and nothing else (Pani PP et al. 2010 Cochrane CD008076: no effect on "
              "retention or use in opioid-dependent patients, some on depression)"),
)

#: the agent's per-subject states in a course (besides agent.AGENT_STATES it does not use)
HUMAN_STATES = ("drug_value", "habit", "dose_multiplier", "missed_days", "dropped", "inducted", "waiting",
                "minutes_since_use", "cm_streak", "alive", "used_now", "pre_drive", "pre_dopamine",
                "gap_before_use", "med_relief", "med_pending", "distress_at_dose")


def initial_human_state(n: int, p: dict) -> dict:
    s = {k: jnp.zeros(n) for k in HUMAN_STATES}
    s["drug_value"] = jnp.broadcast_to(p["entry_drug_value"], (n,)) * 1.0
    s["habit"] = jnp.broadcast_to(p["entry_habit"], (n,)) * 1.0
    s["dose_multiplier"] = jnp.ones(n)
    s["alive"] = jnp.ones(n)
    s["pre_dopamine"] = jnp.ones(n)  # only read after a use has set it
    s["gap_before_use"] = jnp.full(n, 1e6)  # likewise
    s["minutes_since_use"] = jnp.full(n, 1e6)  # never used
    return s


def distress(out: dict, trait_drive, stress_weight, p: dict):
    """The homeostatic drive of agent.drive with the subject's traits: depression adds a deficit
    below the set point, PTSD and stress therapies scale the weight of negative affect."""
    hedonic_gap = excess(-out["hedonic_state"], 1.0)
    return hedonic_gap / p["drive_scale"] + stress_weight * out["negative_affect"] / p["drive_scale"] + trait_drive


def wanting(value, habit, cue, cbt, support, satiety, out: dict, p: dict):
    """Unsated pull toward a use: (value × salience + habit) × (1 − satiety), less what CBT and
    support take off. `satiety` (0-1) is agent.satiety of the opioid on board (0: the pull before
    any is sensed, as craving is rated)."""
    evoked = jnp.maximum(out["cue_glutamate"] - 1.0, 0.0)
    salience = 1.0 + p["cue_weight"] * evoked * cue * (1.0 - p["cbt_cue_reduction"] * cbt)
    pull = value * salience + p["habit_weight"] * habit
    return pull * (1.0 - satiety) * (1.0 - p["support_use_reduction"] * support)


def use_motivation(want, drive_now, pfc, cbt, stake, in_programme, p: dict):
    """Motivation to use now: wanting + drive − threshold − prefrontal brake − the resolve a
    programme adds (scaled by the subject's readiness) − a voucher at stake."""
    brake = p["pfc_brake"] * pfc * (1.0 + p["cbt_pfc_gain"] * cbt)
    resolve = p["quit_brake"] * p["readiness"] * in_programme
    return want + p["drive_weight"] * drive_now - p["press_threshold"] - brake - resolve - stake


def use_probability(m, available, minutes, p: dict):
    """Probability of a use within a decision step of `minutes` (a Poisson process of the rate the
    motivation sets, where the drug can be had)."""
    rate = p["use_rate_max"] * sigmoid(p["motivation_gain"] * m)
    return available * (1.0 - jnp.exp(-rate * minutes))


def street_pull(want, drive_now, p: dict):
    """What draws a subject to the street today: unsated wanting and distress."""
    return p["street_pull_weight"] * want + p["distress_weight"] * drive_now


def attend_probability(want, drive_now, support, cm_on, med_relief, p: dict):
    """Probability of going to the clinic today: the programme's pull against the street's. The
    share of distress the subject has learned the clinic's dose relieves (`med_relief`, 0-1),
    weighted by `medication_pull`, turns wanting and distress into a pull to the clinic: a
    methadone patient in withdrawal goes for the dose, a patient of a drug-free programme (or on
    naltrexone, which relieves nothing) goes to the street."""
    need = street_pull(want, drive_now, p)
    pull = p["programme_commitment"] * p["readiness"] + p["support_commitment"] * support + p["cm_attend_bonus"] * cm_on
    return sigmoid(p["attend_gain"] * (pull - (1.0 - p["medication_pull"] * med_relief) * need))


def enrolment_relief(expects_relief, p: dict):
    """What a patient expects the clinic's dose to relieve when enrolling: `medication_expectation`
    for an opioid agonist (methadone, buprenorphine) or a placebo that blinds one (1 in
    `expects_relief`), nothing for naltrexone, its placebo or a drug-free programme (0)."""
    return p["medication_expectation"] * expects_relief


def relief_attributable(minutes_since_use, p: dict):
    """Whether the dose's effect can be judged on its own: no street use within
    `relief_attribution_window` before the judgement (the step of the dose and the one before)."""
    return minutes_since_use > p["relief_attribution_window"]


def learn_medication_relief(med_relief, distress_at_dose, distress_now, p: dict):
    """Move the learned relief of the clinic's dose toward the share of the distress (withdrawal,
    dysphoria) that was gone hours after the last dose."""
    relief = jnp.clip(1.0 - distress_now / jnp.maximum(distress_at_dose, 1e-6), 0.0, 1.0)
    return med_relief + p["medication_relief_learning_rate"] * (relief - med_relief)


def cm_stake(streak, cm_on, p: dict):
    return cm_on * jnp.minimum(p["cm_stake_base"] + p["cm_stake_step"] * streak, p["cm_stake_max"])


def adapt_dose(multiplier, felt_signal, used, p: dict):
    """Move the habitual dose toward the one that would give the sought VTA signal (the signal
    scales about linearly with dose below saturation)."""
    ratio = p["dose_target_signal"] / jnp.maximum(felt_signal, 1e-3)
    target = jnp.clip(multiplier * ratio, 1.0, p["dose_multiplier_max"])
    new = multiplier + p["dose_adaptation_rate"] * (target - multiplier)
    return jnp.where(used > 0, new, multiplier)
