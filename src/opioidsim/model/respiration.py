"""Breathing, blood gases and overdose.

Structure after the FDA translational overdose model (Mann et al. 2022 Clin Pharmacol Ther
112:1020, built on Magosso et al. 2004 IEEE TBME 51:1115): minute ventilation is a wakefulness
drive plus chemoreflex drives, each depressed by brainstem MOR activation s:

    VE = W·(1 − s^P3) + (D_co2(PaCO2) + D_o2(PaO2))·(1 − s^P1)

Here the blood gases are reduced to two lumped stores (the full Magosso model has eleven
states): CO2 obeys the alveolar ventilation equation PaCO2 = 863·VCO2/VA at steady state with a
body-store capacitance, O2 a lung store plus haemoglobin buffering (Severinghaus curve). Cardiac
arrest follows Mann's rule (PaO2 below 15 mmHg for 220 s) and is latched: circulation stops and
naloxone can no longer rescue. `overdose` flags life-threatening toxicity.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..params import Parameter
from .base import Module, State, safe_pow, sigmoid, softplus

MANN = "Mann J et al. 2022 Clin Pharmacol Ther 112:1020 (FDA delaypars / fentanyl_pars, naive subjects)"

PARAMETERS = (
    Parameter("wakefulness_drive", 6.62, "L/min", MANN + ": W = Wmax = 6.62 L/min",
              cv=0.15, cv_source="assumed: 15 % CV of resting ventilation"),
    Parameter("chemoreflex_exponent", 2.875, "1", MANN + ": P1 (chemoreflex) = 2.875, opioid-naive"),
    Parameter("wakefulness_exponent", 0.9, "1", MANN + ": P3 (wakefulness) = 0.9, opioid-naive"),
    Parameter("co2_drive_offset", -30.0, "L/min", MANN + ": A_co2 = −30"),
    Parameter("co2_drive_amplitude", 60.0, "L/min", MANN + ": B_co2 = 60"),
    Parameter("co2_drive_midpoint", 40.0, "mmHg", MANN + ": C_co2 = 40 mmHg"),
    Parameter("co2_drive_width", 4.5, "mmHg", MANN + ": D_co2 = 4.5 mmHg"),
    Parameter("hypoxic_drive_max", 15.0, "L/min", "assumed: hypoxic ventilatory response roughly doubles "
              "ventilation near PaO2 45 mmHg (Weil JV et al. 1970 J Clin Invest 49:1061)"),
    Parameter("hypoxic_drive_midpoint", 50.0, "mmHg", "Weil 1970: the response rises steeply below ≈ 60 mmHg"),
    Parameter("hypoxic_drive_width", 8.0, "mmHg", "assumed, shape of Weil 1970 curve"),
    Parameter("co2_production", 0.04 + 0.16, "L/min", MANN + ": M_B_co2 + M_T_co2 = 0.04 + 0.16 L/min"),
    Parameter("o2_consumption", 0.05 + 0.20, "L/min", MANN + ": |M_B_o2| + |M_T_o2| = 0.05 + 0.20 L/min"),
    Parameter("dead_space_fraction", 0.348, "1", "derived: VD/VT that puts resting PaCO2 at 40 mmHg with "
              "VE = W (within the textbook 0.25-0.35, West's Respiratory Physiology)"),
    Parameter("inspired_po2", 149.0, "mmHg", MANN + ": P_I_o2 = 149 mmHg (room air, sea level)"),
    Parameter("co2_store_volume", 50.0, "L", "assumed: CO2 capacitance giving the apnoeic PaCO2 rise of "
              "≈ 3.5 mmHg/min (Stock MC et al. 1988 J Clin Anesth 1:96)"),
    Parameter("lung_o2_volume", 3.28, "L", MANN + ": alveolar volume V_A = 3.28 L"),
    Parameter("hb_o2_capacity", 0.8, "L", "assumed: O2 bound to haemoglobin in the accessible blood pool "
              "(≈ 4 L × 200 mL O2/L)"),
    Parameter("arrest_pao2_threshold", 15.0, "mmHg", MANN + ": cardiac arrest when PaO2 < 15 mmHg ..."),
    Parameter("arrest_hypoxia_duration", 220.0, "s", MANN + ": ... sustained for 220 s"),
    Parameter("arrest_threshold_width", 0.5, "mmHg", "numerical: width of the smoothed PaO2 threshold (keeps the "
              "vector field differentiable; far narrower than any physiological change)"),
    Parameter("arrest_timer_width", 3.0, "s", "numerical: smoothing of the 220 s hypoxia-duration threshold"),
    Parameter("arrest_latch_rate", 20.0, "1/min", "numerical: the arrest latch closes within seconds once "
              "triggered"),
    Parameter("hypoxia_timer_recovery", 1.0, "1/min", "assumed: the hypoxia timer resets within minutes of "
              "reoxygenation"),
    Parameter("apnoea_fraction", 0.1, "1", "assumed: apnoea = ventilation below 10 % of the subject's "
              "wakefulness drive"),
    Parameter("overdose_spo2", 75.0, "%", "assumed: SpO2 below 75 % is life-threatening hypoxaemia"),
)

STP_FACTOR = 863.0  # mmHg: converts L/min STPD gas exchange to partial pressure (alveolar equations)


def severinghaus_saturation(po2):
    """O2 saturation (fraction) from PO2 in mmHg, Severinghaus JW 1979 J Appl Physiol 46:599."""
    pos = jnp.maximum(po2, 1e-6)
    return 1.0 / (23400.0 / (pos**3 + 150.0 * pos) + 1.0)


def severinghaus_slope(po2):
    """d saturation / d PO2 (per mmHg), analytic derivative of the Severinghaus equation."""
    pos = jnp.maximum(po2, 1e-6)
    g = pos**3 + 150.0 * pos
    s = 1.0 / (23400.0 / g + 1.0)
    return s**2 * 23400.0 * (3 * pos**2 + 150.0) / g**2


class RespirationModule(Module):
    name = "respiration"
    states = (
        State("paco2", "mmHg", 40.0, "arterial CO2 partial pressure", lower=0.0, upper=200.0),
        State("pao2", "mmHg", 99.0, "arterial (alveolar) O2 partial pressure", lower=0.0, upper=160.0),
        State("hypoxia_timer", "min", 0.0, "time spent with PaO2 below the cardiac-arrest threshold"),
        State("arrest", "1", 0.0, "cardiac arrest (latched, 0..1)", upper=1.0),
    )
    parameters = PARAMETERS
    inputs = ("mor_signal_brainstem",)
    provides = ("ventilation", "paco2", "pao2", "spo2", "overdose", "cardiac_arrest")

    def initial_state(self, p):
        """The drug-free steady state of each subject (so that baselines are flat).

        At steady state the CO2 balance gives VA = 863·VCO2 / PaCO2 and the O2 balance then gives
        PaCO2 as an explicit function of PaO2: PaCO2 = 863·VCO2·(PIO2 − PaO2) / O2 uptake(PaO2).
        What is left is one equation in PaO2, R(PaO2) = PaCO2·VA(PaCO2, PaO2) − 863·VCO2, which
        is > 0 as PaO2 → 0 and < 0 as PaO2 → PIO2. Its highest root (the awake, normoxic branch
        where a subject's drives allow two) is bracketed on a grid and refined by bisection,
        vectorised over subjects, with no opioid on board.

        An earlier version alternated a PaCO2 solve and a PaO2 solve three times; for 40 % of
        random subjects of the issue-9 ranges (a hypoxic drive set high, a low CO2 set point) that
        had not converged, and subjects started up to 528 mmHg/min away from rest.
        """
        n = np.shape(p["wakefulness_drive"])[0]
        zero = {"mor_signal_brainstem": np.zeros(n)}
        k_co2 = STP_FACTOR * np.asarray(p["co2_production"], dtype=float) * np.ones(n)
        k_o2 = STP_FACTOR * np.asarray(p["o2_consumption"], dtype=float) * np.ones(n)
        pi_o2 = np.asarray(p["inspired_po2"], dtype=float) * np.ones(n)

        def paco2_at(pao2):
            return k_co2 * (pi_o2 - pao2) / (k_o2 * pao2 / (pao2 + 1.0))

        def residual(pao2):
            paco2 = paco2_at(pao2)
            y = {"paco2": paco2, "pao2": pao2, "arrest": np.zeros(n)}
            va = np.asarray(self._ventilation(y, zero, p)) * (1.0 - p["dead_space_fraction"])
            return paco2 * va - k_co2

        # grid from just above 0 to just below PIO2: the last cell where R turns from + to −.
        # R is elementwise, so many cells go in one call (a call per cell, in eager jax.numpy,
        # took ≈ 1 s whatever the cohort), in blocks of at most ~2 million values for a big one
        fractions = np.linspace(0.0, 1.0, 401)[1:-1]
        grid = fractions[:, None] * pi_o2[None, :]
        rows = max(1, 2_000_000 // n)
        signs = np.concatenate([np.asarray(residual(grid[i:i + rows])) > 0
                                for i in range(0, len(grid), rows)])  # (cells, subjects)
        down = signs[:-1] & ~signs[1:]
        last = np.where(down.any(axis=0), (down.shape[0] - 1) - np.argmax(down[::-1], axis=0), 0)
        cols = np.arange(n)
        lo = np.where(down.any(axis=0), grid[last, cols], grid[0])
        hi = np.where(down.any(axis=0), grid[last + 1, cols], grid[-1])
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            positive = residual(mid) > 0
            lo, hi = np.where(positive, mid, lo), np.where(positive, hi, mid)
        pao2 = 0.5 * (lo + hi)
        return {"paco2": paco2_at(pao2), "pao2": pao2, "hypoxia_timer": np.zeros(n), "arrest": np.zeros(n)}

    def _ventilation(self, y, u, p):
        s = jnp.clip(u["mor_signal_brainstem"], 0.0, 1.0)
        co2 = p["co2_drive_offset"] + p["co2_drive_amplitude"] * sigmoid(
            (y["paco2"] - p["co2_drive_midpoint"]) / p["co2_drive_width"])
        o2 = p["hypoxic_drive_max"] * sigmoid((p["hypoxic_drive_midpoint"] - y["pao2"]) / p["hypoxic_drive_width"])
        drive = (p["wakefulness_drive"] * (1.0 - safe_pow(s, p["wakefulness_exponent"]))
                 + (co2 + o2) * (1.0 - safe_pow(s, p["chemoreflex_exponent"])))
        # no breathing after cardiac arrest; softplus keeps VE ≥ 0 smoothly
        return softplus(drive, 0.05) * (1.0 - y["arrest"])

    def outputs(self, y, u, p):
        ve = self._ventilation(y, u, p)
        saturation = severinghaus_saturation(y["pao2"])  # fraction; the readout is in %
        apnoea = ve < p["apnoea_fraction"] * p["wakefulness_drive"]
        arrested = y["arrest"] > 0.5
        overdose = (apnoea | (saturation < p["overdose_spo2"]) | arrested).astype(ve.dtype)
        spo2 = 100.0 * saturation
        return {"ventilation": ve, "paco2": y["paco2"], "pao2": y["pao2"], "spo2": spo2,
                "overdose": overdose, "cardiac_arrest": arrested.astype(ve.dtype)}

    def rates(self, t, y, u, p):
        ve = self._ventilation(y, u, p)
        va = ve * (1.0 - p["dead_space_fraction"])
        d_paco2 = (STP_FACTOR * p["co2_production"] - va * y["paco2"]) / p["co2_store_volume"]
        # O2 store: lung gas plus haemoglobin, whose buffering grows on the steep part of the curve
        capacitance = p["lung_o2_volume"] + STP_FACTOR * p["hb_o2_capacity"] * severinghaus_slope(y["pao2"])
        consumption = STP_FACTOR * p["o2_consumption"] * y["pao2"] / (y["pao2"] + 1.0)
        d_pao2 = (va * (p["inspired_po2"] - y["pao2"]) - consumption) / capacitance
        below = sigmoid((p["arrest_pao2_threshold"] - y["pao2"]) / p["arrest_threshold_width"])
        d_timer = below - p["hypoxia_timer_recovery"] * y["hypoxia_timer"] * (1.0 - below)
        trigger = sigmoid((y["hypoxia_timer"] - p["arrest_hypoxia_duration"]) / p["arrest_timer_width"])
        d_arrest = p["arrest_latch_rate"] * trigger * (1.0 - y["arrest"])
        return {"paco2": d_paco2, "pao2": d_pao2, "hypoxia_timer": d_timer, "arrest": d_arrest}
