"""Synthetic neuroimaging: what an MRI or fMRI scanner would report (PET D2 is in dopamine.py).

- `vbm_<region>`: regional grey matter as voxel-based morphometry (or volumetry) reports it, in %
  difference from a typical matched control of the same population. It is the subject's own
  anatomy (each person's regional volume differs from the population mean; drawn per subject)
  times the fraction left by the drug (`gmv_<region>`). A drug-free subject's value is therefore
  not 0 but his place in the normal spread, and a cohort's users and controls can be compared as
  the studies compare them (opioidsim.imaging).
- `fmri_cue_nac`: the drug-cue minus neutral-cue BOLD contrast in the nucleus accumbens, % signal
  change: the cue-evoked glutamate over the resting level (model/glutamate.py), in the tissue
  that is left. Zero in a subject who has never learnt a drug cue.
"""
from __future__ import annotations

from ..params import Parameter
from .base import Module
from .structure import REGION_NAMES, REGIONS

_CV_CORTEX = ("assumed: regional cortical grey matter after normalisation for head size varies by ≈ 8 % (SD/mean) "
              "between healthy adults of one age")

PARAMETERS = tuple(
    Parameter(f"volume_trait_{r}", 1.0, "1", f"typical {REGION_NAMES[r]} grey matter relative to the population mean; "
              "between-subject spread", cv=0.12 if r == "nac" else 0.08,
              cv_source=("assumed: small subcortical structures segmented automatically (FSL-FIRST) vary by ≈ 12 % "
                         "between healthy adults (Seifert CL et al. 2015 Eur Arch Psychiatry Clin Neurosci 265:637 "
                         "used this method)") if r == "nac" else _CV_CORTEX)
    for r in REGIONS
) + (
    Parameter("bold_cue_gain", 0.2, "1", "% signal change per unit of cue-evoked glutamate; assumed: a conditioned user early in abstinence (cue-evoked NAc glutamate "
              "≈ 1.4 over rest) shows a drug-cue contrast of ≈ 0.3 % signal change in the ventral striatum, the usual "
              "size of cue-reactivity BOLD effects (Langleben DD et al. 2008 Am J Psychiatry 165:390, heroin cues)"),
)


class VbmModule(Module):
    name = "vbm"
    timescale = "slow"
    parameters = PARAMETERS[:-1]
    inputs = tuple(f"gmv_{r}" for r in REGIONS)
    provides = tuple(f"vbm_{r}" for r in REGIONS)

    def outputs(self, y, u, p):
        return {f"vbm_{r}": 100.0 * (p[f"volume_trait_{r}"] * u[f"gmv_{r}"] - 1.0) for r in REGIONS}

    def rates(self, t, y, u, p):
        return {}


class CueFmriModule(Module):
    name = "cue_fmri"
    timescale = "slow"
    parameters = PARAMETERS[-1:]
    inputs = ("gmv_nac", "cue_glutamate", "nac_glutamate")
    provides = ("fmri_cue_nac",)

    def outputs(self, y, u, p):
        return {"fmri_cue_nac": p["bold_cue_gain"] * (u["cue_glutamate"] - u["nac_glutamate"]) * u["gmv_nac"]}

    def rates(self, t, y, u, p):
        return {}
