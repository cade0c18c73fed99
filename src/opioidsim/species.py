"""Species: what changes when the subject is a rat instead of a person.

The mechanism modules and their parameters describe an adult human. A rat differs first in body
size, and the PK module already scales volumes with body weight and clearances with
(weight / reference weight)^0.75 — the allometric exponent that carries clearances across mammals
(Boxenbaum H 1982 J Pharmacokinet Biopharm 10:201; West GB et al. 1997 Science 276:122). So a rat
is the same model with a rat's body weight: heroin, 6-MAM and morphine are cleared about
(70/0.35)^0.25 ≈ 3.8 times faster relative to their volumes, as rat studies report (heroin and
6-MAM half-lives of a few minutes, morphine ~1 h in rats: Gottås A et al. 2013 Br J Pharmacol
170:546). Doses in animal paradigms are given per kg and multiplied by each animal's weight.

PK parameters given as half-lives (6-MAM, naloxone) rather than clearances are scaled the same way:
a half-life goes with (weight)^0.25 (Boxenbaum 1982), so 6-MAM's 21.8 min in people becomes ~6 min
in a 350 g rat.

Receptor, dopamine and adaptation parameters are kept: they describe molecular and circuit
processes whose human values were themselves largely measured in rodents (e.g. VTA GABA cAMP
up-regulation, Bonci & Williams 1997; GLT-1 down-regulation, Shen et al. 2014).
"""
from __future__ import annotations

from .model.pk import PARAMETERS as PK_PARAMETERS
from .params import Parameter

SPECIES = ("human", "rat")
RAT_WEIGHT_KG = 0.35
HUMAN_WEIGHT_KG = 70.0
#: allometric exponent of half-lives (clearance ∝ W^0.75, volume ∝ W → t½ ∝ W^0.25; Boxenbaum 1982)
HALF_LIFE_EXPONENT = 0.25


def _scaled_half_life(name: str) -> Parameter:
    human = next(p for p in PK_PARAMETERS if p.name == name)
    factor = (RAT_WEIGHT_KG / HUMAN_WEIGHT_KG) ** HALF_LIFE_EXPONENT
    return Parameter(name, human.value * factor, human.unit, f"allometric scaling of the human value "
                     f"({human.value:g} {human.unit}) by (0.35 kg / 70 kg)^0.25 (Boxenbaum H 1982 J Pharmacokinet "
                     "Biopharm 10:201)", cv=human.cv, cv_source=human.cv_source or "")


#: per species: parameter name → (value, unit, source); replaces the typical value, keeps its cv
OVERRIDES: dict[str, dict[str, Parameter]] = {
    "human": {},
    "rat": {
        "body_weight": Parameter("body_weight", RAT_WEIGHT_KG, "kg", "adult male Wistar rat in intravenous self-"
                                 "administration studies weigh ~300-400 g at the start (Vendruscolo LF et al. 2011 "
                                 "Pharmacol Biochem Behav 98:570; Ahmed SH et al. 2000 Neuropsychopharmacology "
                                 "22:413)", cv=0.1, cv_source="assumed: a weight-matched cohort of rats"),
        "sixmam_half_life": _scaled_half_life("sixmam_half_life"),
        "naloxone_half_life": _scaled_half_life("naloxone_half_life"),
    },
}


def species_overrides(species: str) -> dict[str, Parameter]:
    """The parameters that differ from the human model for `species` (a ValueError if unknown)."""
    if species not in OVERRIDES:
        raise ValueError(f"unknown species {species!r}; known: {', '.join(SPECIES)}")
    return OVERRIDES[species]
