"""Cognition: executive function, working memory, attention, and prefrontal control.

Long-term heroin users show a mild, generalised cognitive deficit: poorer working memory,
cognitive flexibility and impulse control than matched controls (Baldacchino A et al. 2012
Neurosci Biobehav Rev 36:2056; Wollman SC et al. 2019 Am J Drug Alcohol Abuse 45:11,
meta-analyses). In the iRISA account of addiction (impaired response inhibition and salience
attribution; Goldstein RZ & Volkow ND 2011 Nat Rev Neurosci 12:652) prefrontal control is weakened
by two things the model already holds: prefrontal grey-matter loss, and hypofrontality that goes
with low striatal D2 signalling (lower D2 availability goes with lower orbitofrontal and cingulate
metabolism: Volkow ND et al. 1993 Synapse 14:169). Neuroinflammation (cytokines) and white-matter
damage slow processing further; hypoxic injury of the hippocampus costs memory.

Working memory has two domains, as neuropsychological batteries score them: verbal (digit span,
letter-number sequencing; prefrontal and temporal language cortex) and spatial (spatial span, the
CANTAB spatial working-memory task; prefrontal cortex and the hippocampus, the structure most
vulnerable to hypoxia). `memory` is their mean.

Each domain is 1 in the subject's drug-naive brain and falls as exp(−Σ weight × deficit): close
to 1 − Σ for small deficits, never below 0. `pfc_control` is the executive domain read as the
capacity for top-down control of choice (0-1, 1 = intact); the behaviour layer weighs craving
against it. D2 signalling counts only below the subject's own naive level (tonic D2 signal over
its naive reference), so intoxication does not raise control.
"""
from __future__ import annotations

import jax.numpy as jnp

from ..params import Parameter
from .base import Module, excess

_SIZE = ("assumed: with the other weights, executive function ≈ 0.8 of naive after five years of daily use "
         "(about one SD below controls on tests with ≈ 20 % CV; medium-to-large deficits in "
         "Baldacchino 2012) and back to ≈ 0.9 after a year of abstinence")

PARAMETERS = (
    Parameter("executive_pfc_weight", 1.5, "1", _SIZE + "; PFC grey matter is the main structural correlate of "
              "executive function (Goldstein & Volkow 2011)"),
    Parameter("executive_d2_weight", 0.3, "1", _SIZE + "; hypofrontality with low striatal D2 (Volkow ND et al. "
              "1993 Synapse 14:169; Goldstein & Volkow 2011)"),
    Parameter("cognition_glia_weight", 0.05, "1", _SIZE + "; cytokines impair cognition (Kohno M et al. 2019 "
              "Pharmacol Biochem Behav 179:34)"),
    Parameter("cognition_wm_weight", 0.5, "1", _SIZE + "; white-matter damage goes with poorer decision-making "
              "(Qiu Y et al. 2013 PLoS One 8:e63212)"),
    Parameter("memory_gm_weight", 1.5, "1", "assumed: as executive_pfc_weight, for the grey matter each working-memory "
              "domain draws on (verbal and spatial working memory deficits: Baldacchino 2012): prefrontal and "
              "temporal cortex for verbal material, prefrontal cortex for spatial (Smith EE & Jonides J 1999 "
              "Science 283:1657: verbal working memory engages left prefrontal and temporo-parietal language areas, "
              "spatial working memory right prefrontal and parietal cortex; parietal cortex is not modelled)"),
    Parameter("memory_hypoxia_weight", 2.0, "1", "assumed: losing 10 % of hypoxia-vulnerable (hippocampal) neurons "
              "costs ≈ 20 % of spatial working memory (amnesia after hypoxic injury; the hippocampus holds "
              "spatial relations: O'Keefe J & Nadel L 1978 The Hippocampus as a Cognitive Map)"),
    Parameter("memory_verbal_hypoxia_weight", 1.0, "1", "assumed: half of memory_hypoxia_weight, since verbal "
              "working memory rests on prefrontal-temporal rehearsal more than on the hippocampus (Smith & "
              "Jonides 1999); the sign is sourced, the size is not"),
    Parameter("attention_acc_weight", 1.5, "1", "assumed: as executive_pfc_weight, for the anterior cingulate "
              "(sustained attention and error monitoring)"),
    Parameter("cognition_smoothing", 0.01, "1", "numerical: smooth max(x, 0) of the D2 deficit"),
)


class CognitionModule(Module):
    name = "cognition"
    timescale = "slow"
    parameters = PARAMETERS
    inputs = ("gmv_pfc", "gmv_acc", "gmv_temporal", "white_matter", "hypoxic_injury", "glial_activation",
              "tonic_d2_signal", "d2_signal_reference")
    provides = ("executive", "memory", "memory_verbal", "memory_spatial", "attention", "pfc_control")

    def outputs(self, y, u, p):
        d2_deficit = excess(1.0 - u["tonic_d2_signal"] / u["d2_signal_reference"], p["cognition_smoothing"])
        diffuse = p["cognition_glia_weight"] * u["glial_activation"] + p["cognition_wm_weight"] * (1.0 - u["white_matter"])
        executive = jnp.exp(-(p["executive_pfc_weight"] * (1.0 - u["gmv_pfc"]) + p["executive_d2_weight"] * d2_deficit
                              + diffuse))
        memory_verbal = jnp.exp(-(p["memory_gm_weight"] * (1.0 - 0.5 * (u["gmv_pfc"] + u["gmv_temporal"]))
                                  + p["memory_verbal_hypoxia_weight"] * u["hypoxic_injury"] + diffuse))
        memory_spatial = jnp.exp(-(p["memory_gm_weight"] * (1.0 - u["gmv_pfc"])
                                   + p["memory_hypoxia_weight"] * u["hypoxic_injury"] + diffuse))
        attention = jnp.exp(-(p["attention_acc_weight"] * (1.0 - u["gmv_acc"]) + diffuse))
        return {"executive": executive, "memory": 0.5 * (memory_verbal + memory_spatial),
                "memory_verbal": memory_verbal, "memory_spatial": memory_spatial, "attention": attention,
                "pfc_control": executive}

    def rates(self, t, y, u, p):
        return {}
