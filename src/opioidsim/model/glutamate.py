"""Glutamate and craving: GLT-1 in the nucleus accumbens core, the drug-cue memory, and the
incubation of cue-induced craving in abstinence.

- GLT-1 (astrocytic glutamate transport) is down-regulated by repeated heroin and stays low long
  into abstinence, so synaptically released glutamate spills over into the extrasynaptic space
  (Shen HW et al. 2014 J Neurosci 34:5649; the glutamate homeostasis hypothesis, Kalivas PW 2009
  Nat Rev Neurosci 10:561). `nac_glutamate` is that spillover relative to the drug-naive brain:
  synaptic release over uptake, 1/GLT-1.
- The drug-cue memory grows with each drug effect (the cues around use acquire incentive value)
  and fades only slowly without extinction (forgetting over many months).
- Incubation: in abstinence, but not while the drug is still being taken, the cue → NAc
  glutamate pathway is potentiated over weeks (calcium-permeable AMPA receptors accumulate in the
  NAc after prolonged withdrawal: Conrad KL et al. 2008 Nature 454:118), so cue-induced craving
  rises over the first one to three months of abstinence and declines later as the cue memory
  itself fades (heroin-trained rats: Shalev U et al. 2001 Psychopharmacology 156:98; review:
  Pickens CL et al. 2011 Trends Neurosci 34:411; humans: Bedi G et al. 2011 Biol Psychiatry
  69:708; Wang G et al. 2013 PLoS One 8:e68791). The rise-then-fall is not a fitted curve: it is
  the product of a potentiation that builds with one time constant and a memory that fades with
  another.

GLT-1 can be restored by drugs (ceftriaxone, N-acetylcysteine; scenario `conditions.glt1_drug`),
which lowers spillover and cue-evoked glutamate: a testable intervention (Shen 2014).

`cue_incubation` (0-1) is the potentiation itself. Readouts are probes, like a lab test taken
now: `cue_glutamate` is the extrasynaptic NAc glutamate a drug cue would evoke; `cue_craving` the
craving it would evoke (0-10 VAS); `craving` the background craving without a cue (0-10):
negative reinforcement from negative affect (withdrawal, dysphoria) plus the tonic pull of the
cue memory in everyday surroundings.
"""
from __future__ import annotations

import jax.numpy as jnp

from ..params import Parameter
from .base import Module, State

PARAMETERS = (
    Parameter("glt1_downregulation_rate", 0.05, "1/day", "assumed: daily heroin use lowers NAc core GLT-1 by "
              "about a third over three months; direction and persistence from heroin self-administration in rats "
              "(Shen HW et al. 2014 J Neurosci 34:5649)"),
    Parameter("glt1_recovery_time", 90.0, "day", "assumed: GLT-1 stays low after weeks of extinction (Shen 2014: "
              "'long-lasting downregulation')"),
    Parameter("cue_learning_rate", 0.5, "1/day", "assumed: a cue-drug association saturates within two to three "
              "weeks of daily use (rats acquire cue-controlled heroin seeking within ~10-14 daily sessions)"),
    Parameter("cue_memory_time", 365.0, "day", "assumed: without extinction the drug-cue memory fades over a "
              "year or more (cue reactivity persists long into abstinence); sets the late decline of incubated "
              "craving, lower at 6-12 months than at 3 months (Wang G et al. 2013 PLoS One 8:e68791)"),
    Parameter("incubation_time", 30.0, "day", "assumed: potentiation of the cue pathway builds over weeks of "
              "abstinence (Conrad KL et al. 2008 Nature 454:118; Pickens CL et al. 2011 Trends Neurosci 34:411)"),
    Parameter("recent_use_time", 2.0, "day", "assumed: the potentiation needs the drug to have been absent for "
              "days (CP-AMPARs appear only after prolonged withdrawal, Conrad 2008)"),
    Parameter("recent_use_half", 0.02, "1", "assumed: a recent-use level of a tenth of that of daily use "
              "(time-averaged VTA signal ≈ 0.2) halves the potentiation drive"),
    Parameter("cue_glutamate_gain", 1.0, "1", "assumed: a drug cue doubles NAc core glutamate in a trained, "
              "abstinent animal (reinstated heroin seeking needs NAc core glutamate release: LaLumiere RT & "
              "Kalivas PW 2008 J Neurosci 28:3170)"),
    Parameter("incubation_gain", 2.0, "1", "assumed: fully incubated, the cue response is three times the early "
              "one (incubated cue-induced seeking several-fold over day 1 in rats: Shalev 2001)"),
    Parameter("cue_craving_gain", 0.25, "1", "assumed: scales cue-evoked glutamate to a 0-10 craving VAS so a cue "
              "test early in abstinence gives moderate craving (≈ 3.5-5.5 of 10 after one to three "
              "months of use)"),
    Parameter("craving_affect_weight", 1.0, "1", "scale identity: negative affect of n (0-10) gives n points of "
              "background craving before saturation (negative reinforcement; Koob & Le Moal 2008)"),
    Parameter("tonic_cue_weight", 0.15, "1", "assumed: everyday surroundings carry a small part of a drug cue's "
              "pull"),
    Parameter("craving_scale", 10.0, "1", "scale definition: craving on a 0-10 visual analogue scale"),
    Parameter("glt1_restoration", 0.0, "1/day", "scenario condition (conditions.glt1_drug): the rate at which a "
              "GLT-1-restoring drug brings GLT-1 back toward normal; 0 without one"),
    Parameter("ceftriaxone_glt1_rate", 0.5, "1/day", "assumed: ceftriaxone (200 mg/kg/day i.p. in rats) restores NAc "
              "core GLT-1 lowered by heroin self-administration to control levels within about a week of "
              "extinction and reduces cue-induced heroin seeking (Shen HW et al. 2014 J Neurosci 34:5649)"),
    Parameter("n_acetylcysteine_glt1_rate", 0.3, "1/day", "assumed: N-acetylcysteine restores NAc GLT-1 somewhat more "
              "slowly than ceftriaxone over days of daily dosing (Reissner KJ et al. 2015 Biol Psychiatry 77:316, "
              "cocaine; reduced heroin seeking: Zhou W & Kalivas PW 2008 Biol Psychiatry 63:338)"),
)

#: conditions.glt1_drug → the parameter holding its restoration rate (None: no drug)
GLT1_DRUGS = {"none": None, "ceftriaxone": "ceftriaxone_glt1_rate", "n-acetylcysteine": "n_acetylcysteine_glt1_rate"}


class GlutamateModule(Module):
    name = "glutamate"
    timescale = "slow"
    states = (
        State("glt1", "1", 1.0, "NAc core GLT-1 glutamate transport, relative to naive"),
        State("cue_memory", "1", 0.0, "strength of the drug-cue association (0-1)", upper=1.0),
        State("recent_use", "1", 0.0, "VTA MOR signal averaged over the last days (is the drug still being "
              "taken?)"),
        State("cue_potentiation", "1", 0.0, "abstinence-dependent potentiation of the cue → NAc glutamate "
              "pathway (incubation)", upper=1.0),
    )
    parameters = PARAMETERS
    inputs = ("negative_affect",)
    rate_inputs = ("mor_signal_vta",)
    provides = ("glt1", "nac_glutamate", "cue_glutamate", "cue_craving", "craving", "cue_memory", "cue_incubation")

    def outputs(self, y, u, p):
        spillover = 1.0 / y["glt1"]
        evoked = p["cue_glutamate_gain"] * y["cue_memory"] * (1.0 + p["incubation_gain"] * y["cue_potentiation"])
        cue_glutamate = (1.0 + evoked) * spillover
        scale = p["craving_scale"]
        tonic = p["tonic_cue_weight"] * p["cue_craving_gain"] * p["cue_glutamate_gain"] * y["cue_memory"]
        return {
            "glt1": y["glt1"],
            "nac_glutamate": spillover,
            "cue_glutamate": cue_glutamate,
            "cue_craving": scale * jnp.tanh(p["cue_craving_gain"] * (cue_glutamate - 1.0)),
            "craving": scale * jnp.tanh(p["craving_affect_weight"] * u["negative_affect"] / scale + tonic),
            "cue_memory": y["cue_memory"],
            "cue_incubation": y["cue_potentiation"],
        }

    def rates(self, t, y, u, p):
        s = u["mor_signal_vta"]
        abstinent = p["recent_use_half"] / (p["recent_use_half"] + y["recent_use"])
        return {
            "glt1": (1.0 - y["glt1"]) * (1.0 / p["glt1_recovery_time"] + p["glt1_restoration"])
                    - p["glt1_downregulation_rate"] * s * y["glt1"],
            "cue_memory": p["cue_learning_rate"] * s * (1.0 - y["cue_memory"]) - y["cue_memory"] / p["cue_memory_time"],
            "recent_use": (s - y["recent_use"]) / p["recent_use_time"],
            "cue_potentiation": (y["cue_memory"] * abstinent - y["cue_potentiation"]) / p["incubation_time"],
        }
