"""The decision-maker: craving, choice and learning, batched over subjects (pure functions).

Every decision step the agent reads what the physiology shows now (hedonic state, negative
affect, cue-evoked glutamate, the drug on board, stress reactivity, PFC control) and decides how
often to press the lever; after each infusion it learns from what the drug did. Three kinds of
learning, each from the literature on why drug taking escalates and persists:

- **Drug value with a dopamine signal that cannot be predicted away** (Redish AD 2004 Science
  306:1944): the value of taking the drug moves toward the outcome like any temporal-difference
  value, but the drug's own dopamine surge D sets a floor on the update (δ ≥ D), so value keeps
  growing with use instead of settling where the outcome is predicted. The floor holds in full for
  a use taken in the drug state, within `drug_state_window` of the previous use: there the surge
  on top of the drug already on board is small and never predicted away, and a long-access rat's
  value holds while each infusion adds little (runs of infusions are what escalate). A use from a
  drug-free state is judged against its outcome, with the floor holding in the share D/(D + h):
  a naive brain's large surge keeps value growing, while the small surge that tolerance, a blocked
  receptor (naltrexone) or an agonist on board (methadone) leaves is learned about like any
  outcome, so value settles at outcome + D²/h and falls when heroin no longer does much. Drug
  rewards do show blocking, which a floor that always holds forbids (Panlilio LV et al. 2007
  Pharmacol Biochem Behav 86:774).
- **Homeostatic drive reduction** (Keramati M & Gutkin B 2014 eLife 3:e04811; Keramati M et al.
  2017 Phil Trans R Soc B 372:20160303): the subject is driven by the distance of its hedonic
  state below its set point; relief of that distance (withdrawal, dysphoria) is rewarding —
  negative reinforcement. As the allostatic set point falls with use (model/hedonic.py), both the
  drive between doses and the relief a dose brings grow: escalation without a fitted trend.
- **Habit** (Everitt BJ & Robbins TW 2005 Nat Neurosci 8:1481): stimulus-response strength grows
  with every reinforced response and barely extinguishes; it adds to responding independently of
  the outcome's current value (the shift from goal-directed to habitual control with long use).

Wanting (Robinson TE & Berridge KC 1993 Brain Res Rev 18:247) is value × incentive salience; the
salience of the chamber, a discrete cue or the drug's interoceptive state is the cue-evoked NAc
glutamate the glutamate module computes (spillover through down-regulated GLT-1, incubation):
reinstatement by cues and by a priming dose needs NAc core glutamate (LaLumiere RT & Kalivas PW
2008 J Neurosci 28:3170). Stress adds through CRF, scaled by the subject's stress reactivity
(footshock reinstatement needs extended-amygdala CRF: Shaham Y et al. 1997 Psychopharmacology
134:23). The drug on board satisfies (responding pauses while brain levels are high: the
satiety-threshold account, Tsibulsky VL & Norman AB 1999 Brain Res 839:85), and prefrontal
control brakes.
"""
from __future__ import annotations

import jax.numpy as jnp

from ..model.base import excess, hill, sigmoid
from ..params import Parameter

PARAMETERS = (
    Parameter("press_rate_max", 6.0, "1/min", "assumed: a rat working for heroin presses at most every "
              "~10 s over minutes (progressive-ratio runs of 100+ presses complete within a few minutes)"),
    Parameter("motivation_gain", 6.0, "1", "assumed: the press rate goes from a tenth to nine tenths of its "
              "maximum over about 0.7 units of motivation (responding switches on and off sharply as brain drug "
              "levels cross the satiety threshold: Tsibulsky & Norman 1999)"),
    Parameter("operant_rate", 0.03, "1/min", "assumed: ~2 exploratory presses an hour whatever the motivation "
              "(operant level of a lever in a naive rat), so a naive rat meets its first infusions by chance"),
    Parameter("press_threshold", 0.5, "1", "assumed: together with the prefrontal brake, one unit of motivation is "
              "needed for half-maximal pressing (a learned drug value of 1 with nothing on board)"),
    Parameter("value_learning_rate", 0.6, "1", "assumed: drug value approaches its ceiling within the first "
              "session or two (intake under 1 h access is stable from the first sessions: Vendruscolo 2011)"),
    Parameter("value_max", 1.2, "1", "assumed: the ceiling on learned value (Redish 2004's unbounded growth "
              "capped so that value stays a motivation of the order of drive and cues)"),
    Parameter("surge_floor_half", 0.1, "1", "fitted to V-MAT-1 with human.programme_commitment (at full size: "
              "heroin-positive final urine RR 0.74 on methadone, retention RR 4.21; with the floor always held, RR "
              "0.89 and 5.39; 0.75 and 5.69 since human.medication_pull was refitted at stop 39; "
              "docs/guide/06-treatment-and-trials.md): the "
              "dopamine term D at which Redish's floor holds half for a use from a drug-free state (a 20 % NAc "
              "dopamine surge). A naive brain's heroin surge (D ≈ 0.5-1) keeps 83-91 % of it; a tolerant user's "
              "(D ≈ 0.25) 71 %, heroin on top of methadone (D ≈ 0.2) two thirds and heroin against XR naltrexone "
              "(D ≈ 0.1) half. Blocking occurs with drug rewards, so the drug's signal is not wholly unpredictable "
              "(Panlilio LV et al. 2007 Pharmacol Biochem Behav 86:774)"),
    Parameter("drug_state_window", 180.0, "min", "fitted to V-SA-1: a use within this long of the previous one is "
              "taken in the drug state, where Redish's floor holds in full. A long-access rat's infusion raises NAc "
              "dopamine by only 0-4 % over the level it meets and its outcome is near zero (measured after 8 "
              "sessions of 11 h access), so with the floor fading everywhere its value falls to zero and it stops "
              "escalating (stop 36: 12 h ×1.17); with a 60 min window 23 h-access rats still lose value between "
              "bouts (×1.35, want ≥ 1.5), with 120, 180 or 240 min ×1.94. 180 min: of the order of morphine's "
              "elimination half-life (2.3 h from pk.morphine_volume / pk.morphine_clearance: Glare & Walsh 1991, "
              "Rook 2006), and below the built-in trials' 4 h decision interval, so uses at successive decisions "
              "there are judged from a drug-free state"),
    Parameter("dopamine_reward_weight", 0.5, "1", "assumed: a doubling of NAc dopamine over its naive tonic level "
              "is worth half a unit of value"),
    Parameter("relief_weight", 1.0, "1", "scale identity: relief of one unit of drive is worth one unit of value "
              "(Keramati & Gutkin 2014: reward = reduction of the homeostatic deviation)"),
    Parameter("drive_weight", 1.0, "1", "scale identity: the homeostatic deviation adds to motivation one for one"),
    Parameter("drive_scale", 10.0, "1", "scale definition: hedonic state and negative affect are 0-10 scales"),
    Parameter("satiety_half_occupancy", 0.6, "1", "assumed: VTA MOR occupancy of 0.6 by a full agonist (two thirds "
              "of the peak after a 60 µg/kg infusion in a rat) halves the pull of more drug (load-maintenance: "
              "Tsibulsky & Norman 1999); a partial agonist counts for its efficacy × occupancy (see satiety)"),
    Parameter("satiety_hill", 4.0, "1", "assumed: satiety switches on over a narrow band of brain drug levels (a "
              "satiety threshold: Tsibulsky & Norman 1999)"),
    Parameter("chamber_cue_strength", 0.5, "1", "assumed: the self-administration chamber is a weaker cue than a "
              "discrete light/tone paired with each infusion"),
    Parameter("cue_weight", 0.5, "1", "assumed: a cue evoking twice the resting NAc glutamate makes the drug half "
              "as attractive again (the salience of the cue)"),
    Parameter("drug_state_learning_rate", 0.002, "1", "assumed: each infusion taken with the drug already on board "
              "(VTA occupancy near 1) adds 0.2 % of the remaining range to the drug state's control over seeking: "
              "two weeks of long access (~1,500 infusions, mostly while loaded) make the drug state a strong "
              "discriminative cue, a few hundred short-access infusions a weak one (opioid interoceptive states are "
              "discriminative stimuli: Colpaert FC et al. 1976 Psychopharmacology 49:257; priming reinstates after "
              "long, not short, access: Lenoir & Ahmed 2007)"),
    Parameter("interoceptive_cue_half", 0.03, "1", "assumed: the drug's interoceptive state is a full-strength "
              "drug cue from a VTA MOR signal of a few hundredths (a priming dose)"),
    Parameter("stress_weight", 0.5, "1", "fitted to V-SA-2: footshock with naive stress reactivity releases about "
              "half of the extinguished drug memory (tanh(0.5))"),
    Parameter("stress_time", 30.0, "min", "assumed: a footshock session's CRF release wears off over ~30 min "
              "(Shaham 1997: reinstatement in the first hour of the test)"),
    Parameter("outcome_delay", 5.0, "min", "the drug's effect is judged when it is near its peak: NAc dopamine "
              "and hedonic state peak ~5-10 min after an IV heroin infusion in the model (V-AC-1)"),
    Parameter("cue_time", 5.0, "min", "assumed: a presented cue keeps its pull for a few minutes"),
    Parameter("extinction_rate", 0.03, "1", "assumed: each unreinforced press adds 3 % of the remaining range to the "
              "extinction memory (extinction over a few sessions of some tens of presses)"),
    Parameter("habit_rate", 0.0007, "1", "assumed: habit strength grows by 0.07 % of its remaining range per "
              "reinforced response: ~1,400 infusions (two weeks of long access) to two thirds, a few hundred "
              "(short access) to a fifth (habit after extended, not limited, training: Everitt & Robbins 2005)"),
    Parameter("habit_weight", 0.3, "1", "assumed: a full habit adds a third of a unit of motivation (habit shapes "
              "seeking more than intake)"),
    Parameter("habit_extinction_rate", 0.0007, "1", "assumed: habits extinguish slowly, at most as fast as they form"),
    Parameter("pfc_brake", 0.5, "1", "assumed: intact prefrontal control raises the press threshold by half a unit "
              "(hypofrontality weakens it: Goldstein RZ & Volkow ND 2011 Nat Rev Neurosci 12:652)"),
    Parameter("cpp_learning_rate", 0.05, "1/min", "assumed: a 30-60 min conditioning session brings a context most "
              "of the way to the hedonic value experienced in it"),
    Parameter("cpp_choice_gain", 1.2, "1", "fitted to the size of heroin place preference: ~150-300 s of a 900 s "
              "test at 0.3-1 mg/kg (e.g. Schenk S et al. 1983 Psychopharmacology 79:48)"),
    Parameter("craving_scale", 10.0, "1", "scale definition: the agent's craving is reported on a 0-10 scale"),
)

#: the agent's own states, carried between decision steps (per subject)
AGENT_STATES = ("drug_value", "extinction", "habit", "drug_state_cue", "ratio_count", "pr_step", "timeout_left", "pending", "pre_drive", "pre_dopamine",
                "gap_before_use", "stress_level", "cue_level", "ctx_paired", "ctx_unpaired", "minutes_since_dose")


def initial_agent_state(n: int) -> dict:
    a = {k: jnp.zeros(n) for k in AGENT_STATES}
    a["pre_dopamine"] = jnp.ones(n)  # only read after an infusion has set it
    a["gap_before_use"] = jnp.full(n, jnp.inf)  # likewise
    a["minutes_since_dose"] = jnp.full(n, jnp.inf)  # no dose yet (the engine's sub-steps, `advance_to`)
    return a


def drive(out: dict, p: dict):
    """Homeostatic deviation: how far the subject's hedonic state lies below its set point, plus
    negative affect (both 0-10 scales, in units of 10)."""
    return (excess(-out["hedonic_state"], 1.0) + out["negative_affect"]) / p["drive_scale"]


def satiety(out: dict, p: dict):
    """How much the opioid on board satisfies (0-1): from the VTA receptors' efficacy-weighted
    occupancy, the amount of agonist the brain senses, not from the signal it still gives
    (tolerance lowers the signal, and the rewarding outcome with it, but not the sense of being
    loaded). An antagonist occupies without satisfying; a partial agonist (buprenorphine, efficacy
    0.5) satisfies like a full agonist at half its occupancy: patients on 16 mg still used heroin
    in most weeks (Fudala PJ et al. 2003 N Engl J Med 349:949: 20.7 % of urines opioid-negative,
    placebo 5.8 %), and only doses of 16 mg or more cut use against placebo (Mattick RP et al. 2014
    Cochrane CD002207)."""
    return hill(out["mor_stimulus_vta"], p["satiety_half_occupancy"], p["satiety_hill"])


def salience(out: dict, cue_input, p: dict):
    """Incentive salience: 1 + the cue-evoked NAc glutamate above rest, for the strength of the cue
    present (chamber, discrete cue or the drug's interoceptive state; 0-1)."""
    evoked = jnp.maximum(out["cue_glutamate"] - 1.0, 0.0)
    return 1.0 + p["cue_weight"] * evoked * cue_input


def interoceptive_cue(out: dict, p: dict):
    s = out["mor_signal_vta"]
    return s / (s + p["interoceptive_cue_half"])


def trigger(out: dict, agent: dict, interoceptive, p: dict):
    """How strongly a reinstating event is present now (0-1): a presented cue, the drug's
    interoceptive state (as strong as it was learned to control seeking), or stress (CRF scaled
    by the subject's stress reactivity)."""
    stress = jnp.tanh(agent["stress_level"] * out["stress_reactivity"] * p["stress_weight"])
    return jnp.maximum(jnp.maximum(agent["cue_level"], interoceptive), stress)


def expressed(agent: dict, trig):
    """The share of the drug memory expressed now. Extinction is new inhibitory learning, not the
    erasure of the drug memory (Bouton ME 2004 Learn Mem 11:485): a cue, a priming dose or stress
    releases the memory from the extinction memory's inhibition (reinstatement)."""
    return 1.0 - agent["extinction"] * (1.0 - trig)


def motivation(out: dict, agent: dict, cue_input, interoceptive, pfc_control, p: dict):
    """Wanting to press now (dimensionless): (value × salience + habit) × expression × (1 − satiety)
    + drive + stress, less the threshold and the prefrontal brake. Satiety gates habit too: even
    compulsive rats pause while brain levels are high."""
    trig = trigger(out, agent, interoceptive, p)
    pull = (agent["drug_value"] * salience(out, cue_input, p) + p["habit_weight"] * agent["habit"]) \
        * expressed(agent, trig)
    push = p["drive_weight"] * drive(out, p)
    return pull * (1.0 - satiety(out, p)) + push - p["press_threshold"] - p["pfc_brake"] * pfc_control


def press_rate(m, p: dict):
    """Presses per minute for motivation m (plus the operant level)."""
    return p["press_rate_max"] * sigmoid(p["motivation_gain"] * m) + p["operant_rate"]


def craving(out: dict, agent: dict, cue_input, interoceptive, p: dict):
    """The agent's craving on a 0-10 scale: what pulls toward the drug before any brake or satiety."""
    pull = (agent["drug_value"] * salience(out, cue_input, p) * expressed(agent, trigger(out, agent, interoceptive, p))
            + p["drive_weight"] * drive(out, p))
    return p["craving_scale"] * jnp.tanh(pull / 2.0)


def learn_from_infusion(value, out: dict, pre_drive, pre_dopamine, gap_before_use, p: dict):
    """Value update one decision step after an infusion: outcome = the pleasure felt + relief of
    drive (Keramati & Gutkin 2014); the drug's dopamine surge D is a floor on the prediction error
    (Redish 2004), in full for a use within drug_state_window of the previous one, otherwise in the
    share D/(D + surge_floor_half); growth capped at value_max. Outside the drug state a constant
    outcome o and surge D hold value at o + D²/surge_floor_half below the ceiling."""
    surge = jnp.maximum(out["nac_dopamine"] / pre_dopamine - 1.0, 0.0)
    d = p["dopamine_reward_weight"] * surge
    pleasure = jnp.maximum(out["hedonic_state"], 0.0) / p["drive_scale"]
    outcome = pleasure + p["relief_weight"] * jnp.maximum(pre_drive - drive(out, p), 0.0)
    error = outcome - value
    floor_share = jnp.where(gap_before_use < p["drug_state_window"], 1.0, d / (d + p["surge_floor_half"]))
    delta = error + floor_share * jnp.maximum(d - error, 0.0)
    room = jnp.where(delta > 0, jnp.maximum(1.0 - value / p["value_max"], 0.0), 1.0)
    return value + p["value_learning_rate"] * delta * room
