"""Which drugs the model knows, by which routes they can be given, and sanity limits.

This is the contract between scenario validation and the PK module: every (drug, route) pair
listed here has an absorption path in `opioidsim.model.pk`.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DrugInfo:
    name: str
    routes: tuple[str, ...]
    molar_mass_g_per_mol: float
    # A single dose above this is rejected as absurd input (not a safety limit for people:
    # opioidsim is never a dosing guide). Set ~10x above the largest amounts reported in
    # research or clinical use so that in-silico overdose studies stay possible.
    max_single_dose_mg: float
    role: str  # "full agonist", "antagonist", ...


DRUGS: dict[str, DrugInfo] = {
    "heroin": DrugInfo("heroin", ("iv", "smoked", "intranasal", "im"), 369.4, 5000.0, "full agonist (prodrug)"),
    "morphine": DrugInfo("morphine", ("iv", "im", "oral"), 285.3, 5000.0, "full agonist"),
    "fentanyl": DrugInfo("fentanyl", ("iv", "intranasal"), 336.5, 100.0, "full agonist"),
    "methadone": DrugInfo("methadone", ("oral", "iv"), 309.4, 5000.0, "full agonist (long-acting)"),
    "buprenorphine": DrugInfo("buprenorphine", ("sublingual", "iv"), 467.6, 500.0, "partial agonist"),
    "naloxone": DrugInfo("naloxone", ("iv", "im", "intranasal"), 327.4, 200.0, "antagonist"),
    # oral tablets (ReVia) and the extended-release intramuscular microsphere injection (Vivitrol,
    # 380 mg every 4 weeks): route "xr_injection", kept apart from "im" (a plain intramuscular
    # solution absorbed within the hour). C20H23NO4, 341.4 g/mol. Limit: 800 mg daily for a week was
    # given in a study (ReVia label, overdosage section) and XR doses are 380 mg, so ~5-10x.
    "naltrexone": DrugInfo("naltrexone", ("oral", "xr_injection"), 341.4, 5000.0, "antagonist"),
}

ROUTES: tuple[str, ...] = ("iv", "smoked", "intranasal", "im", "oral", "sublingual", "xr_injection")


def routes_for(drug: str) -> tuple[str, ...]:
    return DRUGS[drug].routes
