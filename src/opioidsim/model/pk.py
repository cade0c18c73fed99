"""Pharmacokinetics: dose → plasma → brain (effect site), by route.

Heroin is a prodrug: heroin → 6-monoacetylmorphine (6-MAM) → morphine, each with its own
disposition and brain entry. Fentanyl has a three-compartment disposition with a biophase
(Mann et al. 2022, from Algera et al. 2021); naloxone a one-compartment disposition.
Non-IV routes enter through a first-order depot whose dose is already scaled by bioavailability
(the engine multiplies each dose by `dose_fraction`). Two naltrexone depots are the exceptions
(`NOT_DIRECT`): the oral depot holds what the gut absorbs, and first-pass metabolism splits its
outflow between naltrexone and its active metabolite 6β-naltrexol; the extended-release (XR)
microsphere depot releases slowly into the injection site, which feeds the blood with a lag of
about a day (the label's second peak 2-3 days after the injection).

States are amounts in mg; effect-site (brain) concentrations are plasma-equivalent ng/mL: the
concentration that, at equilibrium, corresponds to that plasma level (the usual ke0 model).
Volumes scale with weight/70 kg and clearances with (weight/70 kg)^0.75 (allometry as in Mann 2022).
"""
from __future__ import annotations

import math

import jax.numpy as jnp

from ..drugs import DRUGS
from ..params import Parameter
from .base import Module, State

#: every compound with a plasma_<c> and a brain_<c> readout (drugs and active metabolites), for
#: pages and environments that list them
COMPOUNDS = ("heroin", "6mam", "morphine", "fentanyl", "methadone", "buprenorphine", "naloxone", "naltrexone",
             "naltrexol")

MW = {c: DRUGS[c].molar_mass_g_per_mol for c in COMPOUNDS if c in DRUGS}
MW["6mam"] = 327.4  # 6-monoacetylmorphine, C19H21NO4
MW["naltrexol"] = 343.4  # 6β-naltrexol, C20H25NO4 (naltrexone + 2 H)

LN2 = math.log(2.0)

INTURRISI = "Inturrisi CE et al. 1984 N Engl J Med 310:1213 (IV heroin, 11 patients)"
ROOK = "Rook EJ et al. 2006 Clin Pharmacokinet 45:401, population PK of heroin and metabolites"
MANN = "Mann J et al. 2022 Clin Pharmacol Ther 112:1020, Suppl. Table S1 (fentanyl PK from Algera et al. 2021)"
CONE = "Cone EJ et al. 1993 J Anal Toxicol 17:327 (heroin by IV, smoked and intranasal routes)"
REVIA = "ReVia (naltrexone hydrochloride tablets) label (FDA), Clinical Pharmacology"
VIVITROL = "Vivitrol (naltrexone for extended-release injectable suspension) label (FDA), Clinical Pharmacology"

PARAMETERS = (
    Parameter("body_weight", 70.0, "kg", "assumed: typical adult (Mann 2022 simulations use 70 kg)",
              cv=0.15, cv_source="assumed: adult body-weight spread of ~15 % CV"),
    Parameter("reference_weight", 70.0, "kg", "allometric reference weight of the PK sources (Mann 2022; "
              "per-kg figures of Inturrisi 1984 and Glare & Walsh 1991 scaled to 70 kg)"),
    # --- heroin ---------------------------------------------------------------------------
    Parameter("heroin_clearance", 30.8 * 70 / 1000, "L/min", INTURRISI + ": blood clearance 30.8 mL/kg/min × 70 kg",
              cv=0.3, cv_source="assumed: 30 % CV, typical of esterase-driven clearance"),
    Parameter("heroin_volume", 30.8 * 70 / 1000 * 3.0 / LN2, "L",
              INTURRISI + ": V = CL·t½/ln2 with t½ 3.0 min", note="one-compartment approximation"),
    Parameter("heroin_ke0", 1.0, "1/min", "assumed: heroin is highly lipophilic and crosses the blood-brain "
              "barrier within about a minute (Oldendorf et al. 1972 Science 178:984)"),
    Parameter("heroin_smoked_bioavailability", 0.53, "1", ROOK + ": inhaled ('chasing the dragon') F = 53 %",
              cv=0.2, cv_source="Rook 2006: 95 % CI 44-62 %", bounded_fraction=True),
    Parameter("heroin_smoked_absorption_rate", 1.0, "1/min", CONE + ": smoked heroin peaks in plasma within 1-5 min; "
              "assumed ka giving t_max ≈ 2 min"),
    Parameter("heroin_intranasal_bioavailability", 0.5, "1", "Kendall JM et al. 2001 BMJ 322:261 and Cone 1993: "
              "intranasal diamorphine about half as available as parenteral; assumed 50 %", bounded_fraction=True,
              cv=0.25, cv_source="assumed: 25 % CV (mucosal absorption varies)"),
    Parameter("heroin_intranasal_absorption_rate", 0.25, "1/min", CONE + ": intranasal heroin peaks at ≈ 5 min"),
    Parameter("heroin_im_bioavailability", 1.0, "1", "assumed: complete absorption from muscle (Inturrisi 1984 "
              "found similar morphine exposure after IM and IV)", bounded_fraction=True),
    Parameter("heroin_im_absorption_rate", 0.12, "1/min", INTURRISI + " and Cone 1993: IM heroin peaks in blood "
              "after ≈ 5-10 min; assumed ka"),
    # --- 6-MAM ----------------------------------------------------------------------------
    Parameter("sixmam_volume", 60.0, "L", "assumed: gives 6-MAM plasma peaks of the order of 100 ng/mL after "
              "10 mg IV heroin, as reported by Jenkins AJ et al. 1994 J Anal Toxicol 18:317",
              cv=0.3, cv_source="assumed: 30 % CV"),
    Parameter("sixmam_half_life", 21.8, "min", ROOK + ": terminal half-life of 6-acetylmorphine 21.8 min",
              cv=0.3, cv_source="assumed: 30 % CV"),
    Parameter("sixmam_ke0", 0.5, "1/min", "assumed: 6-MAM enters the brain within minutes and carries heroin's "
              "acute effects (Gottås A et al. 2013 Br J Pharmacol 170:546, rat brain)"),
    # --- morphine --------------------------------------------------------------------------
    Parameter("morphine_clearance", 73.6 / 60, "L/min", ROOK + ": morphine clearance 73.6 L/h",
              cv=0.3, cv_source="Rook 2006 reports substantial between-subject variability; assumed 30 % CV"),
    Parameter("morphine_volume", 3.5 * 70, "L", "Glare PA & Walsh TD 1991 Ther Drug Monit 13:1: morphine Vss "
              "3-4 L/kg; 3.5 L/kg × 70 kg", note="one-compartment approximation of the terminal phase",
              cv=0.25, cv_source="assumed: 25 % CV"),
    Parameter("morphine_ke0", LN2 / 150.0, "1/min", "Lötsch J 2005 J Pain Symptom Manage 29:S90 and Dahan A et al. "
              "2004 Anesthesiology 101:1201: blood-brain equilibration half-time of morphine ≈ 2-3 h; 2.5 h used"),
    Parameter("morphine_im_bioavailability", 1.0, "1", "assumed: complete absorption from muscle", bounded_fraction=True),
    Parameter("morphine_im_absorption_rate", 0.1, "1/min", "Stanski DR et al. 1978 Clin Pharmacol Ther 24:52: "
              "IM morphine peaks at ≈ 10-20 min"),
    Parameter("morphine_oral_bioavailability", 0.3, "1", "Hoskin PJ et al. 1989 Br J Clin Pharmacol 27:499: "
              "oral morphine F ≈ 24-30 %", cv=0.3, cv_source="Hoskin 1989: wide range", bounded_fraction=True),
    Parameter("morphine_oral_absorption_rate", 0.03, "1/min", "Hoskin 1989: oral morphine t_max ≈ 45-60 min"),
    # --- fentanyl (Mann 2022 / Algera 2021) ------------------------------------------------
    Parameter("fentanyl_clearance", 1.26, "L/min", MANN, cv=0.3, cv_source=MANN + ": omega² 0.087"),
    Parameter("fentanyl_volume_central", 10.5, "L", MANN, cv=0.3,
              cv_source=MANN + ": omega² 0.43 (capped at 30 % CV here to avoid implausible draws)"),
    Parameter("fentanyl_volume_peripheral1", 14.4, "L", MANN),
    Parameter("fentanyl_volume_peripheral2", 166.0, "L", MANN),
    Parameter("fentanyl_intercompartmental1", 2.04, "L/min", MANN),
    Parameter("fentanyl_intercompartmental2", 2.28, "L/min", MANN),
    Parameter("fentanyl_ke0", 0.18, "1/min", MANN + ": biophase k1 0.18/min (t½ke0 ≈ 3.9 min)"),
    Parameter("fentanyl_intranasal_bioavailability", 0.89, "1", "Instanyl (fentanyl nasal spray) EMA SmPC: "
              "absolute bioavailability 89 %", bounded_fraction=True),
    Parameter("fentanyl_intranasal_absorption_rate", 0.15, "1/min", "Instanyl SmPC: t_max 12-15 min; assumed ka"),
    # --- methadone ----------------------------------------------------------------------------
    Parameter("methadone_volume", 4.0 * 70, "L", "Eap CB et al. 2002 Clin Pharmacokinet 41:1153: Vd ≈ 4 L/kg "
              "(range 1.9-8)", cv=0.3, cv_source="Eap 2002: wide between-subject range"),
    Parameter("methadone_clearance", 8.1 / 60, "L/min", "Eap 2002: clearance ≈ 3-13 L/h (CYP3A4/2B6); 8.1 L/h used",
              cv=0.4, cv_source="Eap 2002: clearance varies several-fold between patients"),
    Parameter("methadone_ke0", 0.1, "1/min", "assumed: lipophilic, effects within minutes of IV dosing "
              "(Inturrisi CE et al. 1987 Clin Pharmacol Ther 41:392)"),
    Parameter("methadone_oral_bioavailability", 0.8, "1", "Eap 2002: oral F 70-90 %", bounded_fraction=True,
              cv=0.1, cv_source="Eap 2002: range 41-99 %"),
    Parameter("methadone_oral_absorption_rate", 0.012, "1/min", "Eap 2002: t_max 2.5-4 h after oral dosing"),
    # --- buprenorphine -------------------------------------------------------------------------
    Parameter("buprenorphine_clearance", 0.9, "L/min", "Elkader A & Sproule B 2005 Clin Pharmacokinet 44:661: "
              "clearance ≈ 0.9-1.3 L/min after IV dosing", cv=0.3, cv_source="assumed: 30 % CV"),
    Parameter("buprenorphine_volume_central", 500.0, "L", "fitted: central volume of a two-compartment "
              "description with Vss ≫ plasma volume (Elkader & Sproule 2005), set with the absorption rate and "
              "intercompartmental clearance so that daily sublingual maintenance peaks near the levels of "
              "Greenwald MK et al. 2003 Neuropsychopharmacology 28:2000 (0.5-1, 5-6 and 13-14 ng/mL at 2, 16 and 32 "
              "mg) and one 8 mg tablet near 2-3 ng/mL, keeping V-PK-6's terminal half-life",
              note="the model gives ≈ 7 ng/mL at the peak and ≈ 2.3 ng/mL at the trough of 16 mg daily (day 7), "
              "≈ 2.4 ng/mL after one 8 mg tablet; with 100 L it peaked at 19 ng/mL, 3-4× Greenwald's"),
    Parameter("buprenorphine_volume_deep", 1500.0, "L", "fitted: a slowly equilibrating deep tissue compartment "
              "that gives the long terminal half-life after sublingual dosing (≈ 24-42 h, Suboxone label; "
              "Elkader & Sproule 2005)"),
    Parameter("buprenorphine_intercompartmental", 3.0, "L/min", "fitted together with the deep and central "
              "volumes (see buprenorphine_volume_central and _deep)"),
    Parameter("buprenorphine_ke0", 0.01, "1/min", "Yassen A et al. 2005 J Pharmacol Exp Ther 313:1136: slow onset "
              "of buprenorphine effects (t½ke0 of the order of an hour)"),
    Parameter("buprenorphine_sublingual_bioavailability", 0.3, "1", "Elkader & Sproule 2005: sublingual tablet "
              "F ≈ 30 %", bounded_fraction=True, cv=0.3, cv_source="Elkader 2005: wide range"),
    Parameter("buprenorphine_sublingual_absorption_rate", 0.015, "1/min", "Elkader & Sproule 2005: sublingual "
              "t_max ≈ 1-1.5 h (the model's t_max is ≈ 1.5 h); fitted with buprenorphine_volume_central"),
    # --- naloxone -----------------------------------------------------------------------------
    Parameter("naloxone_volume", 2.6 * 70, "L", "Ngai SH et al. 1976 Anesthesiology 44:398: Vd ≈ 2.6 L/kg",
              cv=0.3, cv_source="assumed: 30 % CV"),
    Parameter("naloxone_half_life", 64.0, "min", "Naloxone hydrochloride injection label (FDA): serum half-life "
              "64 ± 12 min in adults", cv=0.2, cv_source="label: SD 12 min (≈ 19 % CV)"),
    Parameter("naloxone_ke0", 0.1, "1/min", "assumed: IV naloxone reverses opioid effects within 1-2 min "
              "(label); t½ke0 ≈ 7 min"),
    Parameter("naloxone_im_bioavailability", 1.0, "1", "assumed: complete IM absorption (EVZIO label: IM exposure "
              "comparable to IV)", bounded_fraction=True),
    Parameter("naloxone_im_absorption_rate", 0.1, "1/min", "EVZIO (naloxone auto-injector) label: t_max ≈ 15 min"),
    Parameter("naloxone_intranasal_bioavailability", 0.47, "1", "Narcan nasal spray label (FDA 2015): 4 mg IN "
              "≈ 47 % of IM exposure", bounded_fraction=True, cv=0.3,
              cv_source="Laffont et al. 2024 Front Psychiatry 15:1399803 Table 2: high variability of IN absorption"),
    Parameter("naloxone_intranasal_absorption_rate", 0.05, "1/min", "Narcan nasal spray label: t_max ≈ 0.5 h"),
    # --- naltrexone and 6β-naltrexol ------------------------------------------------------------
    # One compartment each. 6β-naltrexol is kept as its own compartment (not lumped into a longer
    # naltrexone half-life): after an oral dose it is formed mostly during first-pass metabolism, it
    # circulates at ~10-30× the naltrexone level with a 13 h half-life, and it carries much of the
    # blockade a day or more after a tablet, while after the XR injection (no first pass) it is far
    # less prominent; a lumped half-life cannot hold both routes.
    Parameter("naltrexone_clearance", 3.5, "L/min", REVIA + ": systemic clearance after IV dosing ≈ 3.5 L/min "
              "(above hepatic blood flow); Licko V 1981 NIDA Res Monogr 28:161: 3.51 ± 0.30 L/min",
              cv=0.3, cv_source="assumed: 30 % CV"),
    Parameter("naltrexone_volume", 3.5 * 240.0 / LN2, "L", REVIA + ": V = CL·t½/ln2 with t½ 4 h (also Meyer 1984); "
              "the label's Vd after IV is ≈ 1350 L", note="one-compartment approximation: the early distribution "
              "phase is not modelled, so the oral peak (≈ 13 ng/mL after 50 mg in the Swiss SmPC; 2.4 ng/mL "
              "here) is underestimated while the exposure (AUC = F·D/CL) and the 4 h decline are kept; nor is "
              "the slow, low terminal phase (≈ 96 h) reported by Lee MC et al. 1988 J Nucl Med 29:1207", cv=0.25,
              cv_source="assumed: 25 % CV"),
    Parameter("naltrexone_ke0", 0.1, "1/min", "assumed as naloxone (a lipophilic morphinan antagonist of "
              "similar structure that crosses the blood-brain barrier freely)"),
    Parameter("naltrexone_oral_absorbed_fraction", 0.96, "1", REVIA + ": ≈ 96 % of an oral dose is absorbed from "
              "the gut (most of it then metabolised on first pass)", bounded_fraction=True),
    Parameter("naltrexone_oral_absorption_rate", 0.05, "1/min", REVIA + ": plasma naltrexone and 6β-naltrexol "
              "peak ≈ 1 h after a tablet; ka giving t_max ≈ 1 h with the 4 h half-life"),
    Parameter("naltrexone_oral_bioavailability", 0.07, "1", REVIA + ": oral F 5-40 %; Meyer MC et al. 1984 "
              "J Clin Psychiatry 45:15: ≈ 5 %. 7 % used: with complete release of the XR injection, one 380 mg "
              "injection then gives ≈ 3.3× the naltrexone exposure of 28 daily 50 mg tablets (Vivitrol label: "
              "3- to 4-fold)", bounded_fraction=True, cv=0.4,
              cv_source="assumed: 40 % CV (label range 5-40 %, partly assay differences)"),
    Parameter("naltrexol_formation_fraction", 0.5, "1", "naltrexone tablets SmPC (Switzerland): ≈ 60 % of an oral "
              "dose is recovered in urine within 48 h, 76 % of it as 6β-naltrexol (free and conjugated) → ≈ 46 % "
              "of the dose, ≈ 50 % once the 13 h half-life is allowed for (≈ 92 % excreted by 48 h); the same "
              "fraction assumed for first-pass and systemic metabolism", bounded_fraction=True),
    Parameter("naltrexol_clearance", 0.5, "L/min", "Meyer 1984: renal clearance of 6β-naltrexol 283 mL/min and "
              "≈ 25 % of the dose excreted as unconjugated 6β-naltrexol in 48 h, of ≈ 46 % formed by then "
              "(naltrexol_formation_fraction) → fraction excreted unchanged ≈ 0.55 → CL = CLr/fe ≈ 0.5 L/min",
              cv=0.3, cv_source="assumed: 30 % CV (renal)"),
    Parameter("naltrexol_volume", 0.5 * 780.0 / LN2, "L", REVIA + ": V = CL·t½/ln2 with the 6β-naltrexol half-life "
              "of 13 h (Meyer 1984: ≈ 12 h)", note="one-compartment approximation (the oral peak, ≈ 100 ng/mL "
              "in the SmPC, is underestimated; the exposure is kept)"),
    Parameter("naltrexol_ke0", 0.01, "1/min", "assumed: the polar metabolite enters the brain slowly (t½ke0 "
              "≈ 70 min); its antagonism in mice grows over hours after a dose (Porter SJ et al. 2002 Addict "
              "Biol 7:219)"),
    Parameter("naltrexone_xr_bioavailability", 1.0, "1", "assumed: the microspheres release their whole load "
              "(Vivitrol label: one 380 mg injection gives 3-4× the exposure of 28 daily 50 mg tablets)",
              bounded_fraction=True),
    Parameter("naltrexone_xr_release_rate", LN2 / 10.0, "1/day", VIVITROL + ": apparent half-life of naltrexone "
              "5-10 days after the injection, set by release from the polymer (flip-flop kinetics; Dunbar JL "
              "et al. 2006 Alcohol Clin Exp Res 30:480: 5-7 days); 10 days used, the label's upper end, so that "
              "levels stay near 1 ng/mL at 4 weeks as a single first-order release can only approximate the "
              "label's plateau then decline", cv=0.3, cv_source="assumed: 30 % CV (label range 5-10 days)"),
    Parameter("naltrexone_xr_absorption_rate", 1.5, "1/day", "fitted: released naltrexone leaves the injection site "
              "with this rate so that the sustained plasma peak comes 2-3 days after the injection (" + VIVITROL +
              ": second peak ≈ 2-3 days after dosing)", note="the label's transient peak ≈ 2 h after injection "
              "(drug on the microsphere surface) is not modelled"),
)

# Where a dose goes: (target state, bioavailability parameter, absorption-rate parameter).
# IV doses go straight into the central compartment (no depot, F = 1).
DOSE_TARGETS: dict[tuple[str, str], tuple[str, str | None, str | None]] = {
    ("heroin", "iv"): ("heroin_central", None, None),
    ("heroin", "smoked"): ("heroin_smoked_depot", "heroin_smoked_bioavailability", "heroin_smoked_absorption_rate"),
    ("heroin", "intranasal"): ("heroin_intranasal_depot", "heroin_intranasal_bioavailability",
                               "heroin_intranasal_absorption_rate"),
    ("heroin", "im"): ("heroin_im_depot", "heroin_im_bioavailability", "heroin_im_absorption_rate"),
    ("morphine", "iv"): ("morphine_central", None, None),
    ("morphine", "im"): ("morphine_im_depot", "morphine_im_bioavailability", "morphine_im_absorption_rate"),
    ("morphine", "oral"): ("morphine_oral_depot", "morphine_oral_bioavailability", "morphine_oral_absorption_rate"),
    ("fentanyl", "iv"): ("fentanyl_central", None, None),
    ("fentanyl", "intranasal"): ("fentanyl_intranasal_depot", "fentanyl_intranasal_bioavailability",
                                 "fentanyl_intranasal_absorption_rate"),
    ("methadone", "iv"): ("methadone_central", None, None),
    ("methadone", "oral"): ("methadone_oral_depot", "methadone_oral_bioavailability", "methadone_oral_absorption_rate"),
    ("buprenorphine", "iv"): ("buprenorphine_central", None, None),
    ("buprenorphine", "sublingual"): ("buprenorphine_sublingual_depot", "buprenorphine_sublingual_bioavailability",
                                      "buprenorphine_sublingual_absorption_rate"),
    ("naloxone", "iv"): ("naloxone_central", None, None),
    ("naloxone", "im"): ("naloxone_im_depot", "naloxone_im_bioavailability", "naloxone_im_absorption_rate"),
    ("naloxone", "intranasal"): ("naloxone_intranasal_depot", "naloxone_intranasal_bioavailability",
                                 "naloxone_intranasal_absorption_rate"),
    # naltrexone: the oral depot holds what the gut absorbs, which first-pass metabolism then splits
    # between naltrexone and 6β-naltrexol; the XR depot releases into the injection site
    # (`naltrexone_xr_site`), which feeds the blood (see NOT_DIRECT)
    ("naltrexone", "oral"): ("naltrexone_oral_depot", "naltrexone_oral_absorbed_fraction",
                             "naltrexone_oral_absorption_rate"),
    ("naltrexone", "xr_injection"): ("naltrexone_xr_depot", "naltrexone_xr_bioavailability",
                                     "naltrexone_xr_release_rate"),
}

#: depots whose outflow does not go straight into their drug's central compartment
NOT_DIRECT = ("naltrexone_oral_depot", "naltrexone_xr_depot")


#: Absolute tolerances for the adaptive step (assumed: about 1e-4 of the amount, or effect-site
#: concentration, that gives a half-maximal effect, e.g. morphine ≈ 2 mg in body / ≈ 10 ng/mL and
#: fentanyl ≈ 0.013 mg / ≈ 1 ng/mL; Lötsch 2005 Clin Pharmacokinet 44:879; Scott 1985 Anesthesiology
#: 62:234; naltrexone half-occupies MOR at ≈ 0.07 ng/mL, ≈ 0.08 mg in the body). Below them a drug's
#: decaying tail cannot move receptor occupancy measurably.
_POTENT = ("fentanyl", "buprenorphine", "naltrexone")


#: heroin's chain (heroin → 6-MAM → morphine): within minutes of a dose heroin is a vanishing
#: share of it (blood half-life ≈ 3 min, V-PK-1), and an error in a precursor's tail can change
#: what follows it by no more than its own size; and heroin binds MOR 10× more weakly than 6-MAM
#: at the same brain partition (model/receptor.py), so its direct share of the signal is smaller
#: still. A precursor's error is therefore measured against itself and the products downstream
#: (`State.error_scale_with`), a product's against itself alone (morphine, 6-MAM's product, is
#: two-thirds as potent per ng/mL: brain partition 0.01 against 0.015). Not naltrexone's chain:
#: 6β-naltrexol is a tenth as potent per ng/mL (partition 0.2, half the affinity), so its size says
#: little about what naltrexone's error weighs. Tracked to its own relative tolerance, heroin's
#: tail held the step at 7.5 s for half an hour after every IV dose.
_DOWNSTREAM = {"heroin_central": ("sixmam_central", "morphine_central"), "sixmam_central": ("morphine_central",),
               "effect_heroin": ("effect_6mam", "effect_morphine"), "effect_6mam": ("effect_morphine",)}
#: an absorption depot is a precursor too: an error in its tail changes what reaches the blood by
#: no more than its own size, so it is measured against itself and the drug in the blood (heroin's
#: chain for heroin's depots). Tracked to its own relative tolerance, the emptying depot of a daily
#: dose held the step for most of the day: 21 of a methadone patient's 52 steps a day (80 mg
#: orally), 33 of a buprenorphine patient's 65 (16 mg sublingually). Not naltrexone's depots, which
#: feed the blood through first-pass metabolism or the injection site (NOT_DIRECT)
def _in_blood(drug: str) -> tuple[str, ...]:
    """Where an IV dose of `drug` goes, and what that compartment is measured with."""
    central = DOSE_TARGETS[(drug, "iv")][0]
    return (central,) + _DOWNSTREAM.get(central, ())


_DOWNSTREAM.update({target: _in_blood(drug) for (drug, _route), (target, f, _ka) in DOSE_TARGETS.items()
                    if f and target not in NOT_DIRECT})


def _s(name: str, unit: str, desc: str) -> State:
    potent = name.startswith(_POTENT)
    atol = (1e-6 if potent else 1e-4) if unit == "mg" else (1e-4 if potent else 1e-3)
    return State(name, unit, 0.0, desc, atol=atol, error_scale_with=_DOWNSTREAM.get(name, ()))


class PharmacokineticsModule(Module):
    name = "pk"
    carries_drug = True
    states = tuple(
        [_s(target, "mg", f"{drug} absorption depot ({route})") for (drug, route), (target, f, _) in DOSE_TARGETS.items() if f]
        + [
            _s("heroin_central", "mg", "heroin in plasma/central volume"),
            _s("sixmam_central", "mg", "6-MAM in its distribution volume"),
            _s("morphine_central", "mg", "morphine in its distribution volume"),
            _s("fentanyl_central", "mg", "fentanyl, central compartment"),
            _s("fentanyl_peripheral1", "mg", "fentanyl, rapidly equilibrating tissues"),
            _s("fentanyl_peripheral2", "mg", "fentanyl, slowly equilibrating tissues"),
            _s("methadone_central", "mg", "methadone in its distribution volume"),
            _s("buprenorphine_central", "mg", "buprenorphine, central compartment"),
            _s("buprenorphine_deep", "mg", "buprenorphine, deep tissue compartment"),
            _s("naloxone_central", "mg", "naloxone in its distribution volume"),
            _s("naltrexone_xr_site", "mg", "naltrexone released from XR microspheres, not yet in the blood"),
            _s("naltrexone_central", "mg", "naltrexone in its distribution volume"),
            _s("naltrexol_central", "mg", "6β-naltrexol in its distribution volume"),
            _s("effect_heroin", "ng/mL", "brain heroin, plasma-equivalent"),
            _s("effect_6mam", "ng/mL", "brain 6-MAM, plasma-equivalent"),
            _s("effect_morphine", "ng/mL", "brain morphine, plasma-equivalent"),
            _s("effect_fentanyl", "ng/mL", "brain fentanyl, plasma-equivalent"),
            _s("effect_methadone", "ng/mL", "brain methadone, plasma-equivalent"),
            _s("effect_buprenorphine", "ng/mL", "brain buprenorphine, plasma-equivalent"),
            _s("effect_naloxone", "ng/mL", "brain naloxone, plasma-equivalent"),
            _s("effect_naltrexone", "ng/mL", "brain naltrexone, plasma-equivalent"),
            _s("effect_naltrexol", "ng/mL", "brain 6β-naltrexol, plasma-equivalent"),
        ]
    )
    parameters = PARAMETERS
    provides = (
        *(f"plasma_{c}" for c in COMPOUNDS),
        *(f"brain_{c}" for c in COMPOUNDS),
        # heroin absorbed through the lungs (mg/min): the smoked route's exposure to heated vapour
        "inhaled_heroin",
    )

    @staticmethod
    def _scaled(p):
        """Weight-scaled volumes (∝ W) and clearances (∝ W^0.75)."""
        w = p["body_weight"] / p["reference_weight"]
        v, c = w, w**0.75
        return {
            "v_heroin": p["heroin_volume"] * v,
            "cl_heroin": p["heroin_clearance"] * c,
            "v_6mam": p["sixmam_volume"] * v,
            "cl_6mam": p["sixmam_volume"] * v * LN2 / p["sixmam_half_life"],
            "v_morphine": p["morphine_volume"] * v,
            "cl_morphine": p["morphine_clearance"] * c,
            "v_fent": p["fentanyl_volume_central"] * v,
            "v_fent1": p["fentanyl_volume_peripheral1"] * v,
            "v_fent2": p["fentanyl_volume_peripheral2"] * v,
            "cl_fent": p["fentanyl_clearance"] * c,
            "q_fent1": p["fentanyl_intercompartmental1"] * c,
            "q_fent2": p["fentanyl_intercompartmental2"] * c,
            "v_methadone": p["methadone_volume"] * v,
            "cl_methadone": p["methadone_clearance"] * c,
            "v_bup": p["buprenorphine_volume_central"] * v,
            "v_bup_deep": p["buprenorphine_volume_deep"] * v,
            "cl_bup": p["buprenorphine_clearance"] * c,
            "q_bup": p["buprenorphine_intercompartmental"] * c,
            "v_naloxone": p["naloxone_volume"] * v,
            "cl_naloxone": p["naloxone_volume"] * v * LN2 / p["naloxone_half_life"],
            "v_naltrexone": p["naltrexone_volume"] * v,
            "cl_naltrexone": p["naltrexone_clearance"] * c,
            "v_naltrexol": p["naltrexol_volume"] * v,
            "cl_naltrexol": p["naltrexol_clearance"] * c,
        }

    def outputs(self, y, u, p):
        s = self._scaled(p)
        to_ng_ml = 1000.0  # mg/L → ng/mL
        return {
            "plasma_heroin": y["heroin_central"] / s["v_heroin"] * to_ng_ml,
            "plasma_6mam": y["sixmam_central"] / s["v_6mam"] * to_ng_ml,
            "plasma_morphine": y["morphine_central"] / s["v_morphine"] * to_ng_ml,
            "plasma_fentanyl": y["fentanyl_central"] / s["v_fent"] * to_ng_ml,
            "plasma_methadone": y["methadone_central"] / s["v_methadone"] * to_ng_ml,
            "plasma_buprenorphine": y["buprenorphine_central"] / s["v_bup"] * to_ng_ml,
            "plasma_naloxone": y["naloxone_central"] / s["v_naloxone"] * to_ng_ml,
            "plasma_naltrexone": y["naltrexone_central"] / s["v_naltrexone"] * to_ng_ml,
            "plasma_naltrexol": y["naltrexol_central"] / s["v_naltrexol"] * to_ng_ml,
            "brain_heroin": y["effect_heroin"],
            "brain_6mam": y["effect_6mam"],
            "brain_morphine": y["effect_morphine"],
            "brain_fentanyl": y["effect_fentanyl"],
            "brain_methadone": y["effect_methadone"],
            "brain_buprenorphine": y["effect_buprenorphine"],
            "brain_naloxone": y["effect_naloxone"],
            "brain_naltrexone": y["effect_naltrexone"],
            "brain_naltrexol": y["effect_naltrexol"],
            "inhaled_heroin": p["heroin_smoked_absorption_rate"] * y["heroin_smoked_depot"],
        }

    def rates(self, t, y, u, p):
        s = self._scaled(p)
        o = self.outputs(y, u, p)
        d = {}
        # absorption depots (first order; dose already scaled by bioavailability)
        absorbed = {drug: 0.0 for drug, _ in DOSE_TARGETS}
        released = {}
        for (drug, _route), (target, _f, ka) in DOSE_TARGETS.items():
            if ka is None:
                continue
            flux = p[ka] * y[target]
            d[target] = -flux
            if target in NOT_DIRECT:
                released[target] = flux
            else:
                absorbed[drug] = absorbed[drug] + flux
        # heroin → 6-MAM → morphine (molar conversion; fraction converted assumed 1:
        # heroin is deacetylated to 6-MAM and 6-MAM to morphine, Inturrisi 1984)
        heroin_elim = s["cl_heroin"] / s["v_heroin"] * y["heroin_central"]
        sixmam_elim = s["cl_6mam"] / s["v_6mam"] * y["sixmam_central"]
        d["heroin_central"] = absorbed["heroin"] - heroin_elim
        d["sixmam_central"] = heroin_elim * (MW["6mam"] / MW["heroin"]) - sixmam_elim
        d["morphine_central"] = (absorbed["morphine"] + sixmam_elim * (MW["morphine"] / MW["6mam"])
                                 - s["cl_morphine"] / s["v_morphine"] * y["morphine_central"])
        # fentanyl: three compartments
        cf, c1, c2 = (y["fentanyl_central"] / s["v_fent"], y["fentanyl_peripheral1"] / s["v_fent1"],
                      y["fentanyl_peripheral2"] / s["v_fent2"])
        d["fentanyl_central"] = (absorbed["fentanyl"] - s["cl_fent"] * cf
                                 - s["q_fent1"] * (cf - c1) - s["q_fent2"] * (cf - c2))
        d["fentanyl_peripheral1"] = s["q_fent1"] * (cf - c1)
        d["fentanyl_peripheral2"] = s["q_fent2"] * (cf - c2)
        d["methadone_central"] = (absorbed["methadone"]
                                  - s["cl_methadone"] / s["v_methadone"] * y["methadone_central"])
        cb, cb_deep = y["buprenorphine_central"] / s["v_bup"], y["buprenorphine_deep"] / s["v_bup_deep"]
        d["buprenorphine_central"] = absorbed["buprenorphine"] - s["cl_bup"] * cb - s["q_bup"] * (cb - cb_deep)
        d["buprenorphine_deep"] = s["q_bup"] * (cb - cb_deep)
        d["naloxone_central"] = absorbed["naloxone"] - s["cl_naloxone"] / s["v_naloxone"] * y["naloxone_central"]
        # naltrexone: of what the gut absorbs, the fraction F/F_abs escapes first-pass metabolism; what is
        # metabolised, on first pass or later, yields 6β-naltrexol in the formation fraction (molar)
        gut = released["naltrexone_oral_depot"]
        escapes = jnp.minimum(p["naltrexone_oral_bioavailability"] / p["naltrexone_oral_absorbed_fraction"], 1.0)
        from_site = p["naltrexone_xr_absorption_rate"] * y["naltrexone_xr_site"]
        d["naltrexone_xr_site"] = released["naltrexone_xr_depot"] - from_site
        naltrexone_elim = s["cl_naltrexone"] / s["v_naltrexone"] * y["naltrexone_central"]
        d["naltrexone_central"] = absorbed["naltrexone"] + gut * escapes + from_site - naltrexone_elim
        d["naltrexol_central"] = (p["naltrexol_formation_fraction"] * (gut * (1.0 - escapes) + naltrexone_elim)
                                  * (MW["naltrexol"] / MW["naltrexone"])
                                  - s["cl_naltrexol"] / s["v_naltrexol"] * y["naltrexol_central"])
        # effect sites follow plasma with first-order equilibration (ke0)
        d["effect_heroin"] = p["heroin_ke0"] * (o["plasma_heroin"] - y["effect_heroin"])
        d["effect_6mam"] = p["sixmam_ke0"] * (o["plasma_6mam"] - y["effect_6mam"])
        d["effect_morphine"] = p["morphine_ke0"] * (o["plasma_morphine"] - y["effect_morphine"])
        d["effect_fentanyl"] = p["fentanyl_ke0"] * (o["plasma_fentanyl"] - y["effect_fentanyl"])
        d["effect_methadone"] = p["methadone_ke0"] * (o["plasma_methadone"] - y["effect_methadone"])
        d["effect_buprenorphine"] = p["buprenorphine_ke0"] * (o["plasma_buprenorphine"] - y["effect_buprenorphine"])
        d["effect_naloxone"] = p["naloxone_ke0"] * (o["plasma_naloxone"] - y["effect_naloxone"])
        d["effect_naltrexone"] = p["naltrexone_ke0"] * (o["plasma_naltrexone"] - y["effect_naltrexone"])
        d["effect_naltrexol"] = p["naltrexol_ke0"] * (o["plasma_naltrexol"] - y["effect_naltrexol"])
        return d
