"""A gymnasium environment: one virtual subject's physiology, with an outside agent choosing.

``import opioidsim.gym`` registers ``opioidsim/Subject-v0``::

    import gymnasium as gym
    import opioidsim.gym  # noqa: F401  (registers the environment)

    env = gym.make("opioidsim/Subject-v0", decide_every="1h", episode_length="2d")
    obs, info = env.reset(seed=7)          # the seed picks the subject
    obs, reward, terminated, truncated, info = env.step(1)   # 1: use, 0: abstain

Research and teaching only: the subject is a model, the doses are model inputs, and nothing here
is a dosing guide for a person.

**The subject.** ``reset(seed=s)`` draws one subject's parameters with
`engine.core.subject_parameters` for a cohort of one with seed ``s`` (between-subject variability,
genotypes, species), so the same seed gives the same subject and, the physiology being
deterministic, the same trajectory for the same actions. ``reset()`` without a seed draws the
next subject from the environment's own generator. The subject starts drug-naive at the model's
initial state.

**Time.** Every ``step`` is one decision: the action's dose (if any) goes in at the start of the
step, then the physiology is integrated over ``decide_every`` with the engine's adaptive ROS34PW2
step (`engine.core.advance_to`, the same as the behaviour layer). The step is sampled at
`SUBSTEPS` + 1 evenly spaced points for the reward and the overdose check. The episode is
truncated after ``episode_length``.

**Actions** (``Discrete(1 + len(dose_mg))``): 0 abstain; k ≥ 1 take ``dose_mg[k-1]`` mg of
``drug`` by ``route`` (scaled by the subject's bioavailability for that route, as a scheduled
dose is). Seeking treatment is not an action yet: the treatment mechanisms are not built.

**Observations** (``Box``, float32, in the order of ``observations``), each normalised to a
fixed range; see `OBSERVATIONS` for the catalogue. The default set is what a person could feel
or report, plus an oximeter reading and the clock since the last use: craving (0-10 VAS / 10),
cue-evoked craving (/10, −1…1), negative affect (/10), hedonic state (−10…10 / 10), COWS
withdrawal score (/48), pain (0-10 NRS / 10), SpO2 (% / 100) and hours since the last use
(h / (h + 24): 0 just used, 0.5 a day ago, 1 never). Plasma concentrations of each drug (a lab
measurement) can be added by name.

**Reward.** The step's time-averaged hedonic state divided by 10 (so in −1…1 per step): pleasure
is rewarded, displeasure (withdrawal dysphoria, the allostatic shift) punished. This is the
hedonic account of the issue — not a claim about what people maximise. An overdose (the
``overdose`` readout: apnoea, SpO2 below 75 % or hypoxic cardiac arrest, at any sampled point of
the step) ends the episode (``terminated``) with ``-overdose_penalty`` added: no rescue is
modelled, so a life-threatening overdose is treated as death. ``info["cardiac_arrest"]`` tells
whether the arrest criterion itself was met.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Sequence

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces

from .engine.core import MIN_BATCH, QUANTUM_MIN, advance_to, state_atol, subject_parameters
from .model.model import Model, default_model
from .model.pk import COMPOUNDS, DOSE_TARGETS
from .units import UnitError, parse_quantity

__all__ = ["ENV_ID", "OBSERVATIONS", "DEFAULT_OBSERVATIONS", "SubjectEnv", "SUBSTEPS"]

ENV_ID = "opioidsim/Subject-v0"

#: points each decision step is sampled at (besides its start) for the reward and overdose check
SUBSTEPS = 12

_DRUGS = tuple(sorted({d for d, _ in DOSE_TARGETS}))

#: observation name → (readout it comes from, how it is normalised, low, high, meaning).
#: "scale": value / divisor; "log_ngml": log10(1 + ng/mL) / 3 (1000 ng/mL → 1); "since": h / (h + 24).
OBSERVATIONS: dict[str, tuple[str, str, float, float, float, str]] = {
    "craving": ("craving", "scale", 10.0, 0.0, 1.0, "background craving, 0-10 VAS, divided by 10"),
    "cue_craving": ("cue_craving", "scale", 10.0, -1.0, 1.0,
                    "craving a drug cue would evoke now, 0-10 VAS (negative: below baseline), divided by 10"),
    "negative_affect": ("negative_affect", "scale", 10.0, 0.0, 1.0, "negative affect, 0-10, divided by 10"),
    "hedonic_state": ("hedonic_state", "scale", 10.0, -1.0, 1.0,
                      "pleasure (+) / displeasure (-), -10..10, divided by 10"),
    "withdrawal": ("cows", "scale", 48.0, 0.0, 1.0, "COWS withdrawal score, 0-48, divided by 48"),
    "pain": ("pain", "scale", 10.0, 0.0, 1.0, "perceived pain, 0-10 NRS, divided by 10"),
    "spo2": ("spo2", "scale", 100.0, 0.0, 1.0, "arterial oxygen saturation (pulse oximeter), %, divided by 100"),
    "hours_since_use": ("", "since", 24.0, 0.0, 1.0,
                        "hours since the last use h, as h / (h + 24): 0 just used, 0.5 a day ago, 1 never"),
    **{f"plasma_{d}": (f"plasma_{d}", "log_ngml", 3.0, 0.0, 1.0,
                       f"plasma {d} (a lab measurement), log10(1 + ng/mL) / 3, capped at 1")
       for d in COMPOUNDS},
}
DEFAULT_OBSERVATIONS = ("craving", "cue_craving", "negative_affect", "hedonic_state", "withdrawal", "pain", "spo2",
                        "hours_since_use")

#: readouts computed at every sampled point (fixed, so one compilation serves every configuration);
#: their end-of-step values are returned in `info`
_READOUTS = ("hedonic_state", "overdose", "cardiac_arrest", "craving", "cue_craving", "negative_affect", "cows",
             "pain", "spo2", "nac_dopamine", "mor_occupancy_vta",
             *(f"plasma_{d}" for d in COMPOUNDS), *(f"brain_{d}" for d in COMPOUNDS))
_R = {name: i for i, name in enumerate(_READOUTS)}

#: the widest settings accepted (a person's decisions come minutes to a day apart; episodes up to 5 years)
MIN_DECIDE_MIN, MAX_DECIDE_MIN = 1.0, 1440.0
MAX_EPISODE_MIN = 5 * 365.25 * 1440.0
MAX_DOSE_MG = 1000.0
MAX_DOSE_OPTIONS = 16


@lru_cache(maxsize=4)
def _advance_fn(model: Model):
    """The compiled unit, one per model (shapes fixed: MIN_BATCH subjects, SUBSTEPS samples, the
    `_READOUTS`; the dose target, dose size and step length are traced arguments, so every
    environment configuration reuses one compilation).

    advance(y, n, m, p, dose_idx, dose_mg, quanta, since_dose_min) → (y, n, m, readouts (SUBSTEPS + 1, B, R),
    solver tries); since_dose_min: minutes since each subject's last dose before this one (`advance_to`)"""
    atol = state_atol(model)
    h = jnp.asarray(QUANTUM_MIN, dtype=jnp.float64)
    n_states = model.n_states

    def read(y, p):
        out = model.outputs(y, p)
        return jnp.stack([jnp.broadcast_to(out[r], y.shape[:1]).astype(jnp.float64) for r in _READOUTS], axis=-1)

    @jax.jit
    def advance(y, n, m, p, dose_idx, dose_mg, quanta, since_dose_min):
        y = y + jax.nn.one_hot(dose_idx, n_states, dtype=y.dtype) * dose_mg[:, None]
        m = jnp.where(dose_mg > 0, 1, m)  # a bolus starts the fastest transient there is
        n0 = n
        since = jnp.where(dose_mg > 0, 0.0, since_dose_min)
        max_m = jnp.maximum(quanta, 1)
        r0 = read(y, p)

        def sub(carry, j):
            yy, nn, mm, k = carry
            yy, nn, mm, tries = advance_to(model, atol, yy, nn, mm, n0 + (quanta * j) // SUBSTEPS, p, h, max_m,
                                           since_dose_min=since + (nn - n0) * h)
            return (yy, nn, mm, k + tries), read(yy, p)

        (y, n, m, tries), rs = jax.lax.scan(sub, (y, n, m, jnp.asarray(0, jnp.int64)),
                                            jnp.arange(1, SUBSTEPS + 1, dtype=jnp.int64))
        return y, n, m, jnp.concatenate([r0[None], rs], axis=0), tries

    return advance


def _bad(arg: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"SubjectEnv argument {arg}={value!r}: {allowed}")


def _duration_min(arg: str, value: Any, lo: float, hi: float) -> float:
    allowed = f"must be a duration with a unit from {lo:g} min to {hi / 1440:g} days, e.g. '1h', '30min', '7d'"
    try:
        minutes = parse_quantity(value, "time")
    except (UnitError, TypeError) as exc:
        raise _bad(arg, value, f"{allowed} ({exc})") from None
    if not (lo <= minutes <= hi):  # also false for NaN
        raise _bad(arg, value, allowed)
    return minutes


class SubjectEnv(gymnasium.Env):
    """One virtual subject's physiology as a gymnasium environment (see the module docstring).

    Arguments (all keywords; a bad one is a ValueError naming it, its value and what is allowed):
    drug, route: what a use is (a pair in `model.pk.DOSE_TARGETS`; default heroin iv);
    dose_mg: mg per use, or a sequence of sizes (one action each; default 10 mg);
    decide_every: time between decisions, e.g. "1h" (1 min … 1 day);
    episode_length: e.g. "7d" (at least one decision step; rounded up to whole steps; ≤ 5 years);
    species: "human" or "rat" (rat: body weight and scaled PK, `opioidsim.species`);
    observations: names from `OBSERVATIONS` (default `DEFAULT_OBSERVATIONS`);
    overdose_penalty: subtracted from the reward of the step that ends in an overdose (≥ 0);
    pain_stimulus: tonic noxious input, 0-1 (the scenario condition of the same name);
    render_mode: None or "ansi" (a one-line text summary of the step)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, *, drug: str = "heroin", route: str = "iv", dose_mg: float | Sequence[float] = 10.0,
                 decide_every: str = "1h", episode_length: str = "7d", species: str = "human",
                 observations: Sequence[str] = DEFAULT_OBSERVATIONS, overdose_penalty: float = 100.0,
                 pain_stimulus: float = 0.5, render_mode: str | None = None, model: Model | None = None):
        from .species import SPECIES

        if not isinstance(drug, str) or drug not in _DRUGS:
            raise _bad("drug", drug, f"must be one of {', '.join(_DRUGS)}")
        routes = tuple(r for d, r in DOSE_TARGETS if d == drug)
        if not isinstance(route, str) or route not in routes:
            raise _bad("route", route, f"{drug} can be given by {', '.join(routes)}")
        sizes = [dose_mg] if isinstance(dose_mg, (int, float, np.number)) and not isinstance(dose_mg, bool) \
            else dose_mg
        allowed = (f"must be a dose in mg (a number above 0 and at most {MAX_DOSE_MG:g}) or a list of 1 to "
                   f"{MAX_DOSE_OPTIONS} such doses, one action each")
        try:
            sizes = list(sizes)
        except TypeError:
            raise _bad("dose_mg", dose_mg, allowed) from None
        if not (1 <= len(sizes) <= MAX_DOSE_OPTIONS) or any(
                isinstance(s, bool) or not isinstance(s, (int, float, np.number)) or not (0 < s <= MAX_DOSE_MG)
                for s in sizes):
            raise _bad("dose_mg", dose_mg, allowed)
        decide_min = _duration_min("decide_every", decide_every, MIN_DECIDE_MIN, MAX_DECIDE_MIN)
        episode_min = _duration_min("episode_length", episode_length, MIN_DECIDE_MIN, MAX_EPISODE_MIN)
        if episode_min < decide_min:
            raise _bad("episode_length", episode_length, f"must be at least one decision step "
                                                         f"(decide_every={decide_every!r})")
        if not isinstance(species, str) or species not in SPECIES:
            raise _bad("species", species, f"must be one of {', '.join(SPECIES)}")
        if isinstance(observations, str) or not isinstance(observations, (list, tuple)) or not observations \
                or any(o not in OBSERVATIONS for o in observations) or len(set(observations)) != len(observations):
            raise _bad("observations", observations, f"must be a non-empty list of distinct names from "
                                                      f"{', '.join(OBSERVATIONS)}")
        if isinstance(overdose_penalty, bool) or not isinstance(overdose_penalty, (int, float)) \
                or not (0.0 <= overdose_penalty < math.inf):
            raise _bad("overdose_penalty", overdose_penalty, "must be a finite number ≥ 0")
        if isinstance(pain_stimulus, bool) or not isinstance(pain_stimulus, (int, float)) \
                or not (0.0 <= pain_stimulus <= 1.0):
            raise _bad("pain_stimulus", pain_stimulus, "must be a number from 0 to 1")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise _bad("render_mode", render_mode, "must be None or 'ansi'")

        self.drug, self.route, self.species = drug, route, species
        self.dose_options = tuple(float(s) for s in sizes)
        self.decide_min = decide_min
        self.quanta = max(1, int(round(decide_min / QUANTUM_MIN)))
        self.max_steps = int(math.ceil(episode_min / decide_min - 1e-9))
        self.observation_names = tuple(observations)
        self.overdose_penalty = float(overdose_penalty)
        self.pain_stimulus = float(pain_stimulus)
        self.render_mode = render_mode
        self.model = model or default_model()
        target, self._fraction_name, _ = DOSE_TARGETS[(drug, route)]
        self._dose_idx = np.int64(self.model.index[target])
        self._advance = _advance_fn(self.model)

        self.action_space = spaces.Discrete(1 + len(self.dose_options))
        lows = np.array([OBSERVATIONS[o][3] for o in self.observation_names], dtype=np.float32)
        highs = np.array([OBSERVATIONS[o][4] for o in self.observation_names], dtype=np.float32)
        self.observation_space = spaces.Box(lows, highs, dtype=np.float32)
        self._state: tuple | None = None
        self._last: np.ndarray | None = None

    # -- the subject -----------------------------------------------------------------------------
    def _subject(self, seed: int):
        from .scenarios.schema import Cohort, Conditions, Scenario

        scenario = Scenario(name="gym", duration=f"{max(1.0, self.max_steps * self.decide_min):g}min",
                            cohort=Cohort(subjects=1, seed=seed, species=self.species),
                            conditions=Conditions(pain_stimulus=self.pain_stimulus))
        p = subject_parameters(self.model, scenario, 1, seed, first=0)
        p = {k: np.concatenate([v] * MIN_BATCH) for k, v in p.items()}  # the engine needs ≥ MIN_BATCH rows
        y0 = self.model.initial_state(p)
        fraction = p[self._fraction_name][0] if self._fraction_name else 1.0
        return {k: jnp.asarray(v, dtype=jnp.float64) for k, v in p.items()}, y0, float(fraction), p

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        subject_seed = int(seed) if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        self.subject_seed = subject_seed
        self._p, y0, self._fraction, p_np = self._subject(subject_seed)
        self.body_weight_kg = float(p_np["body_weight"][0] / 1e6)  # internal mg → kg
        y = np.asarray(y0, dtype=np.float64)
        n = np.zeros(MIN_BATCH, dtype=np.int64)
        m = np.ones(MIN_BATCH, dtype=np.int64)
        self.steps = 0
        self.hours_since_use = math.inf
        self.uses = 0
        # a zero-length step: the readouts of the initial state, from the same compiled unit
        y, n, m, r, _ = self._advance(y, n, m, self._p, self._dose_idx, np.zeros(MIN_BATCH), np.int64(0),
                                      np.full(MIN_BATCH, np.inf))
        self._state = (y, n, m)
        self._last = np.asarray(r[-1, 0])
        self._last_reward = 0.0
        self._last_action = None
        return self._observe(), self._info(self._last, hedonic_mean=float(self._last[_R["hedonic_state"]]))

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            sizes = ", ".join(f"{d:g}" for d in self.dose_options)
            raise _bad("action", action, f"must be an action of {self.action_space} (0 abstain, "
                                         f"1…{len(self.dose_options)} use {sizes} mg)")
        a = int(action)
        dose = self.dose_options[a - 1] * self._fraction if a > 0 else 0.0
        y, n, m = self._state
        # numpy arguments (never weakly typed): every call matches the one compilation
        dose_mg = np.full(MIN_BATCH, dose, dtype=np.float64)
        since = np.full(MIN_BATCH, self.hours_since_use * 60.0, dtype=np.float64)
        y, n, m, r, tries = self._advance(y, n, m, self._p, self._dose_idx, dose_mg, np.int64(self.quanta), since)
        self._state = (y, n, m)
        r = np.asarray(r[:, 0])  # (SUBSTEPS + 1, R): the subject (row 1 is its padding copy)
        # time-averaged hedonic state over the step: trapezoid on the sampled points
        t = np.array([(self.quanta * j) // SUBSTEPS for j in range(SUBSTEPS + 1)], dtype=float)
        hed = r[:, _R["hedonic_state"]]
        hedonic_mean = float(np.sum(np.diff(t) * (hed[1:] + hed[:-1]) / 2) / t[-1])  # t[-1] = quanta ≥ 1
        overdose = bool(np.any(r[:, _R["overdose"]] > 0.5) or r[-1, _R["cardiac_arrest"]] > 0.5)
        if a > 0:
            self.uses += 1
            self.hours_since_use = 0.0
        self.hours_since_use += self.quanta * QUANTUM_MIN / 60.0
        self.steps += 1
        reward = hedonic_mean / 10.0 - (self.overdose_penalty if overdose else 0.0)
        if not np.all(np.isfinite(r)):  # the integrator failed: end the episode rather than emit NaN
            overdose = True
            reward = -self.overdose_penalty
        self._last = r[-1]
        self._last_reward = reward
        self._last_action = a
        terminated = overdose
        truncated = (not terminated) and self.steps >= self.max_steps
        info = self._info(r[-1], hedonic_mean=hedonic_mean, dose_mg=self.dose_options[a - 1] if a > 0 else 0.0,
                          overdose=overdose, cardiac_arrest=bool(np.any(r[:, _R["cardiac_arrest"]] > 0.5)),
                          min_spo2=float(np.min(r[:, _R["spo2"]])), solver_tries=int(tries))
        return self._observe(), float(reward), terminated, truncated, info

    # -- what the agent sees -------------------------------------------------------------------
    def _observe(self) -> np.ndarray:
        vals = []
        for name in self.observation_names:
            readout, kind, k, lo, hi, _ = OBSERVATIONS[name]
            if kind == "since":
                hrs = self.hours_since_use
                v = 1.0 if math.isinf(hrs) else hrs / (hrs + k)
            elif kind == "log_ngml":
                v = math.log10(1.0 + max(float(self._last[_R[readout]]), 0.0)) / k
            else:
                v = float(self._last[_R[readout]]) / k
            vals.append(min(max(v, lo), hi) if math.isfinite(v) else 0.0)
        return np.asarray(vals, dtype=np.float32)

    def _info(self, r: np.ndarray, **extra) -> dict:
        info = {name: float(r[i]) for i, name in enumerate(_READOUTS)}
        info.update(time_h=self.steps * self.quanta * QUANTUM_MIN / 60.0, uses=self.uses,
                    subject_seed=self.subject_seed, body_weight_kg=self.body_weight_kg)
        info.update(extra)
        return info

    def render(self):
        if self.render_mode != "ansi" or self._last is None:
            return None
        r = self._last
        act = "-" if self._last_action is None else ("abstain" if self._last_action == 0
                                                     else f"use {self.dose_options[self._last_action - 1]:g} mg")
        return (f"t={self.steps * self.quanta * QUANTUM_MIN / 60:7.1f} h  {act:>14}  "
                f"hedonic {r[_R['hedonic_state']]:+5.2f}  craving {r[_R['craving']]:4.2f}  "
                f"COWS {r[_R['cows']]:4.1f}  SpO2 {r[_R['spo2']]:5.1f} %  reward {self._last_reward:+.3f}")


if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="opioidsim.gym:SubjectEnv")
