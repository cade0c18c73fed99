"""Run a paradigm: the agent and the physiology together, batched over subjects.

One compiled unit — a loop of step tries over a window of `STEPS_PER_CALL` decision steps, each
subject at its own pace (`engine.core.through_phases`) — is reused for the whole timeline and every
subject chunk. Each step: read the physiology, decide (presses drawn from a Poisson distribution
with the agent's press rate), deliver what the box gives (infusion, experimenter dose, cue,
footshock), learn, then integrate the physiology to the next step with the engine's adaptive step.
Doses are inputs added to the state, not branches.

Randomness is counter-based: subject i's draw at step k depends only on (seed, i, k), so a
subject behaves the same in a cohort of 2 or of 10,000 and however the cohort is chunked.

Groups ([[paradigm.group]]) run with the same compiled program: each group's timeline is compiled
on its own and padded at the end with zero-length steps to the longest; the step inputs are a
(step, group) table from which each subject reads its group's column. Groups on the same step grid
(differing in doses, triggers, ratios) share batches; groups on different grids (session or
abstinence lengths) run in consecutive batches (chosen when a batch advanced each decision step as
long as its slowest subject needed; not measured again since each subject goes at its own pace).
A subject's steps (and so its random draws) are those of its own group's timeline whatever other
groups exist.
"""
from __future__ import annotations

import hashlib
import math
from contextlib import nullcontext
from functools import lru_cache
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ..engine.core import QUANTUM_MIN, SUBJECT_CHUNK, _as_scenario, state_atol, subject_parameters, through_phases
from ..engine.devices import MIN_BATCH, checked_devices, pad_rows, padded_rows, shards_for, split_by_subject
from ..engine.inert import for_targets
from ..model.model import Model, default_model
from ..model.pk import DOSE_TARGETS
from ..overrides import in_effect
from ..params import check_parameters
from ..readouts import READOUTS
from . import agent as ag
from .timeline import CPP_DRUG_SIDE, CPP_TEST, CPP_VEHICLE_SIDE, HOME, Timeline, compile_timeline, \
    progressive_ratio

#: decision steps per compiled call
STEPS_PER_CALL = 256
#: the longest progressive-ratio series a session can climb (ratio 9,000+: never reached)
PR_STEPS = 60
#: at most this many presses are counted in one decision step (a physical ceiling of the lever)
MAX_PRESSES_PER_STEP = 60

#: physiology readouts a paradigm run records by default (any READOUTS name can be asked for)
DEFAULT_READOUTS = ("nac_dopamine", "hedonic_state", "negative_affect", "mor_occupancy_vta", "mor_signal_vta",
                    "mor_capacity_vta",
                    "cue_glutamate", "glt1", "stress_reactivity", "cows")
#: what the agent records at every step
BEHAVIOUR_READOUTS = ("lever_presses", "infusions", "use_event", "craving", "drug_value", "habit", "pfc_control")
#: what the compiled loop records per step, in this order (use_event is derived from infusions)
RECORDED = ("lever_presses", "infusions", "craving", "drug_value", "habit", "pfc_control", "cpp_paired_min")
_COL = {name: i for i, name in enumerate(RECORDED)}


def agent_parameters(n: int, settings: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """The agent's parameters for n subjects, at their typical values (those of a scenario's
    [parameters], `settings`, in place of the sourced ones): the subjects' physiology varies (and
    their choices are random), so behaviour spreads without a spread in the agent."""
    pars = in_effect(check_parameters(ag.PARAMETERS), settings or {})
    return {k: np.full(n, par.internal_value) for k, par in pars.items()}


def _dose_target(model: Model, drug: str, route: str):
    target, fraction, _ = DOSE_TARGETS[(drug, route)]
    return model.index[target], fraction


@lru_cache(maxsize=8)
def _step_runner(model: Model, readout_names: tuple[str, ...]):
    atol = state_atol(model)
    n_states = model.n_states
    pr_series = jnp.asarray([progressive_ratio(k) for k in range(PR_STEPS)], dtype=jnp.float64)

    h = jnp.asarray(QUANTUM_MIN, dtype=jnp.float64)

    def phase_start(p, iv_idx, exp_idx, exp_fraction, y, a, step_keys, x):
        """Every subject's decision step as it begins, x being the step's inputs of the subject's
        group and step_keys its draws. Returns the state after the step's doses, the agent's state,
        whether a dose was given, the minutes since the last dose before it, and the step's records."""
        (quanta, session, lever, reinforced, ratio, timeout_steps, cue, shock, exp_dose, context, start) = x
        out = model.outputs(y, p)
        pfc = out.get("pfc_control", jnp.ones(y.shape[:1]))
        # -- what the box shows ----------------------------------------------------------------
        in_box = context != HOME
        a = dict(a)
        a["stress_level"] = jnp.maximum(a["stress_level"] * jnp.exp(-quanta * QUANTUM_MIN / p["stress_time"]), shock)
        a["cue_level"] = a["cue_level"] * jnp.exp(-quanta * QUANTUM_MIN / p["cue_time"])
        # the drug's interoceptive state is a cue as strongly as it has come to control seeking
        interoceptive = a["drug_state_cue"] * ag.interoceptive_cue(out, p) * in_box
        cue_input = jnp.maximum(jnp.where(in_box, p["chamber_cue_strength"], 0.0),
                                jnp.maximum(a["cue_level"], interoceptive))
        # -- learn from the last infusion's outcome ----------------------------------------------
        # (`pending` counts down the minutes to the judgement; a new infusion restarts it)
        minutes = quanta * QUANTUM_MIN
        judge = (a["pending"] > 0) & (a["pending"] <= minutes)
        a["drug_value"] = jnp.where(judge, ag.learn_from_infusion(a["drug_value"], out, a["pre_drive"],
                                                                    a["pre_dopamine"], a["gap_before_use"], p),
                                    a["drug_value"])
        a["pending"] = jnp.maximum(a["pending"] - minutes, 0.0)
        # -- decide ----------------------------------------------------------------------------------
        mot = ag.motivation(out, a, cue_input, interoceptive, pfc, p)
        rate = ag.press_rate(mot, p) * lever
        presses = jax.vmap(lambda k, lam: jax.random.poisson(k, lam))(step_keys, rate * quanta * QUANTUM_MIN)
        presses = jnp.minimum(presses.astype(jnp.float64), MAX_PRESSES_PER_STEP)
        # each session starts with a fresh ratio counter, the first progressive ratio and no time-out
        a["ratio_count"] = a["ratio_count"] * (1.0 - start)
        a["pr_step"] = a["pr_step"] * (1.0 - start)
        a["timeout_left"] = a["timeout_left"] * (1.0 - start)
        counting = a["timeout_left"] <= 0
        count = a["ratio_count"] + jnp.where(counting, presses, 0.0)
        need = jnp.where(ratio > 0, ratio.astype(jnp.float64),
                         pr_series[jnp.minimum(a["pr_step"], PR_STEPS - 1).astype(jnp.int32)])
        done = counting & (count >= need) & (lever > 0)
        infusion = (done & (reinforced > 0)).astype(jnp.float64)
        a["ratio_count"] = jnp.where(done, 0.0, count)
        a["pr_step"] = a["pr_step"] + jnp.where(done & (ratio == 0), 1.0, 0.0)
        a["timeout_left"] = jnp.where(done, timeout_steps.astype(jnp.float64), a["timeout_left"] - 1.0)
        # a response-contingent cue: with each infusion in self-administration, with each press in a cue test
        a["cue_level"] = jnp.maximum(a["cue_level"], cue * jnp.where(reinforced > 0, infusion, (presses > 0) * 1.0))
        # -- extinction and habit ----------------------------------------------------------------
        unreinforced = presses * (1.0 - reinforced) * lever
        a["extinction"] = 1.0 - (1.0 - a["extinction"]) * (1.0 - p["extinction_rate"]) ** unreinforced
        a["habit"] = a["habit"] * (1.0 - p["habit_extinction_rate"]) ** unreinforced
        a["habit"] = a["habit"] + p["habit_rate"] * (1.0 - a["habit"]) * infusion
        a["extinction"] = a["extinction"] * (1.0 - p["extinction_rate"]) ** infusion  # reacquisition
        loaded = out["mor_occupancy_vta"] * infusion
        a["drug_state_cue"] = a["drug_state_cue"] + p["drug_state_learning_rate"] * loaded * (1.0 - a["drug_state_cue"])
        # the state before the first of a run of infusions is the baseline the outcome is judged against
        first = (infusion > 0) & (a["pending"] <= 0)
        a["pre_drive"] = jnp.where(first, ag.drive(out, p), a["pre_drive"])
        a["pre_dopamine"] = jnp.where(first, out["nac_dopamine"], a["pre_dopamine"])
        a["gap_before_use"] = jnp.where(first, a["minutes_since_dose"], a["gap_before_use"])
        a["pending"] = jnp.where(infusion > 0, p["outcome_delay"] + minutes, a["pending"])
        # -- place conditioning --------------------------------------------------------------------
        k_ctx = 1.0 - jnp.exp(-p["cpp_learning_rate"] * minutes)
        felt = out["hedonic_state"] / p["drive_scale"]
        a["ctx_paired"] = jnp.where(context == CPP_DRUG_SIDE, a["ctx_paired"] + k_ctx * (felt - a["ctx_paired"]),
                                    a["ctx_paired"])
        a["ctx_unpaired"] = jnp.where(context == CPP_VEHICLE_SIDE,
                                      a["ctx_unpaired"] + k_ctx * (felt - a["ctx_unpaired"]), a["ctx_unpaired"])
        p_paired = jax.nn.sigmoid(p["cpp_choice_gain"] * (a["ctx_paired"] - a["ctx_unpaired"]))
        cpp_paired_min = jnp.where(context == CPP_TEST, p_paired * minutes, 0.0)
        # -- doses -----------------------------------------------------------------------------------
        y = y + jax.nn.one_hot(iv_idx, n_states, dtype=y.dtype) * (infusion * p["infusion_mg"])[:, None]
        y = y + jax.nn.one_hot(exp_idx, n_states, dtype=y.dtype) * (exp_dose * p["body_weight_kg"]
                                                                    * exp_fraction)[:, None]
        dosed = (infusion > 0) | (exp_dose > 0)
        since = jnp.where(dosed, 0.0, a["minutes_since_dose"])
        a["minutes_since_dose"] = since + minutes  # at the step's end
        rec_b = jnp.stack([presses * lever, infusion, ag.craving(out, a, cue_input, interoceptive, p),
                           a["drug_value"], a["habit"], jnp.broadcast_to(pfc, presses.shape), cpp_paired_min],
                          axis=-1)
        rec_p = jnp.stack([jnp.broadcast_to(out[r], presses.shape) for r in readout_names], axis=-1)
        return y, a, dosed, since, (rec_b, rec_p)

    @jax.jit
    def run(y, n, m, a, keys, k_step, p, iv_idx, exp_idx, exp_fraction, group, xs, n_steps):
        """xs: the window's step inputs (steps, group columns); n_steps: how many steps are real (the
        rest pad the last window). Each subject goes through the window at its own pace
        (`engine.core.through_phases`); returns the carried state and the records (steps, subjects, ·)."""
        def start(y, a, k):
            x = tuple(v[k, group] for v in xs)  # each subject's own group's schedule
            step_keys = jax.vmap(jax.random.fold_in)(keys, k_step + k)
            y, a, dosed, since, recs = phase_start(p, iv_idx, exp_idx, exp_fraction, y, a, step_keys, x)
            return y, a, x[0], dosed, since, recs

        n_window = xs[0].shape[0]
        y, n, m, a, recs = through_phases(model, atol, y, n, m, a, p, n_window, n_steps, start, None,
                                          (len(RECORDED), len(readout_names)), h)
        return y, n, m, a, k_step + n_window, recs

    return run


@lru_cache(maxsize=8)
def _split_step_runner(model: Model, readout_names: tuple[str, ...], shards: int):
    """`_step_runner`'s `run` with the batch split over `shards` devices (engine/devices.py: the
    same records bit for bit). Returns (run, place)."""
    # by subject: y, n, m, the agent's state, keys, parameters, the injection's fraction, the
    # group; shared: the step count, the dose targets and the groups' step inputs; the records
    # are (steps, subjects, fields)
    return split_by_subject(_step_runner(model, readout_names), shards,
                            (0, 0, 0, 0, 0, None, 0, None, None, 0, 0, None, None), (0, 0, 0, 0, None, (1, 1)))


def _subject_keys(seed: int, subjects: np.ndarray):
    base = jax.random.PRNGKey(seed)
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(base, jnp.asarray(subjects, dtype=jnp.uint32))


#: the step-input table has a column per group padded to a multiple of this (one compiled program
#: serves up to this many groups)
GROUP_COLUMNS = 4
#: the group of every subject of an experiment without [[paradigm.group]] tables
NO_GROUP = "all"


def subject_groups(paradigm, n_subjects: int) -> list[tuple[str, range]]:
    """(group name, subject ids) in the order of the [[paradigm.group]] tables: the first group's
    subjects are 0 … n₁−1, the next group's follow. Without groups: one group of everyone."""
    if not paradigm.groups:
        return [(NO_GROUP, range(n_subjects))]
    out, first = [], 0
    for g in paradigm.groups:
        out.append((g.name, range(first, first + g.subjects)))
        first += g.subjects
    return out


def group_timelines(paradigm, record_every_min: float) -> list[Timeline]:
    """Each group's timeline (its changes to the phases applied), in the order of the groups."""
    if not paradigm.groups:
        return [compile_timeline(paradigm, record_every_min)]
    return [compile_timeline(paradigm.group_paradigm(g.name), record_every_min) for g in paradigm.groups]


def simulate_paradigm(scenario, *, progress: Callable[[float], None] | None = None, model: Model | None = None,
                      subjects: range | None = None, checkpoint=None, devices: int | None = None) -> xr.Dataset:
    """Run a scenario with a [paradigm]: returns per-step behaviour and physiology over
    (subject, time) and per-session summaries over (subject, session).

    `checkpoint` (an `opioidsim.io.checkpoint.Checkpoint`) saves the progress between compiled
    calls and on an interruption; given a checkpoint with saved progress the experiment continues
    from it, to the same records bit for bit. `devices`: how many of JAX's devices share each batch
    (engine/devices.py; default all; the same records bit for bit)."""
    scenario = _as_scenario(scenario)
    n_devices = checked_devices(devices)
    if scenario.paradigm is None:
        raise ValueError("simulate_paradigm needs a scenario with a [paradigm] table; use engine.core.simulate")
    par = scenario.paradigm
    # experimenter injections (priming, conditioning) are subcutaneous in rats: the model's nearest
    # route is an intramuscular depot
    exp_route = "im" if (par.drug, "im") in DOSE_TARGETS else "iv"
    # the paradigm's drug by its two routes is all it gives; the other drugs' states are left out
    model = for_targets(model or default_model(),
                        frozenset(DOSE_TARGETS[(par.drug, r)][0] for r in ("iv", exp_route)))
    n_all = scenario.cohort.subjects
    subjects = range(n_all) if subjects is None else subjects
    timelines = group_timelines(par, scenario.record_every_min)
    membership = subject_groups(par, n_all)
    group_of = np.empty(n_all, dtype=np.int64)
    for gi, (_, ids) in enumerate(membership):
        group_of[ids.start:ids.stop] = gi
    group_of = group_of[subjects.start:subjects.stop]
    infusion_per_kg = np.array([par.group_paradigm(g.name).infusion_mg_per_kg for g in par.groups]
                               if par.groups else [par.infusion_mg_per_kg])
    names = tuple(r for r in (scenario.readouts or DEFAULT_READOUTS) if r not in BEHAVIOUR_READOUTS)
    p = subject_parameters(model, scenario, len(subjects), scenario.cohort.seed, first=subjects.start)
    p.update(agent_parameters(len(subjects), scenario.parameters))
    p["body_weight_kg"] = p["body_weight"] / 1e6  # internal mg → kg
    p["infusion_mg"] = infusion_per_kg[group_of] * p["body_weight_kg"]
    iv_idx, _ = _dose_target(model, par.drug, "iv")
    exp_idx, exp_frac_name = _dose_target(model, par.drug, exp_route)
    y0 = model.initial_state(p)

    present = sorted(set(group_of.tolist()))
    n_steps = max(timelines[g].n_steps for g in present)
    xs_np = _step_inputs(timelines, math.ceil(n_steps / STEPS_PER_CALL) * STEPS_PER_CALL)
    rec_b = np.empty((len(subjects), n_steps, len(RECORDED)))
    rec_p = np.empty((len(subjects), n_steps, len(names)))
    # batches: subjects of groups with the same step grid together (their decision steps line up),
    # groups with another grid in batches of their own, SUBJECT_CHUNK subjects at most
    chunks = []
    for bucket in _same_grid(timelines, present):
        rows_all = np.nonzero(np.isin(group_of, bucket))[0]
        calls = math.ceil(max(timelines[g].n_steps for g in bucket) / STEPS_PER_CALL)
        chunks += [(rows_all[i:i + SUBJECT_CHUNK], calls) for i in range(0, len(rows_all), SUBJECT_CHUNK)]
    total_calls = sum(c for _, c in chunks)
    ck = at = None
    if checkpoint is not None:
        ck = checkpoint.loop("paradigm", _loop_details(subjects, names, xs_np, chunks),
                             {"behaviour": rec_b, "physiology": rec_p}, [sel for sel, _ in chunks])
        at = ck.resume()
    first_chunk = at.chunk if at is not None else 0
    calls_done = sum(c for _, c in chunks[:first_chunk])
    with ck.guard() if ck is not None else nullcontext():  # Ctrl-C, SIGTERM: save where it stands
        for ci in range(first_chunk, len(chunks)):
            sel, n_calls = chunks[ci]
            rows = len(sel)
            shards = shards_for(rows, n_devices)
            run, place = _split_step_runner(model, names, shards)
            size = padded_rows(rows, shards)

            def batch(arr, sel=sel, size=size):
                return pad_rows(np.asarray(arr)[sel], size)

            pc = {k: place(batch(v)) for k, v in p.items()}
            exp_fraction = place(batch(p[exp_frac_name]) if exp_frac_name else np.ones(size))
            keys = place(_subject_keys(scenario.cohort.seed, batch(subjects.start + np.arange(len(subjects)))))
            group = place(batch(group_of))
            if at is not None and ci == at.chunk and at.carry is not None:  # resumed: the saved carried state
                first_call = at.call
                calls_done += first_call
                # saved from a batch padded for this or another number of devices: the real
                # subjects, padded anew with copies of the last (which is what the padding holds)
                again = lambda v: place(pad_rows(np.asarray(v)[:rows], size))  # noqa: E731
                y, n, m = (again(at.carry[k]) for k in ("y", "n", "m"))
                k_step = jnp.asarray(at.carry["k_step"])
                a = {k: again(v) for k, v in at.carry["a"].items()}
            else:
                first_call = 0
                y = place(batch(y0))
                n = place(np.zeros(size, dtype=np.int64))
                m = place(np.ones(size, dtype=np.int64))
                a = {k: place(v) for k, v in ag.initial_agent_state(size).items()}
                k_step = jnp.asarray(0, dtype=jnp.int64)
            for c in range(first_call, n_calls):
                win = slice(c * STEPS_PER_CALL, (c + 1) * STEPS_PER_CALL)
                xs = tuple(jnp.asarray(x[win]) for x in xs_np)
                take = min(STEPS_PER_CALL, n_steps - c * STEPS_PER_CALL)
                y, n, m, a, k_step, (rb, rp) = run(y, n, m, a, keys, k_step, pc, iv_idx, exp_idx, exp_fraction,
                                                   group, xs, jnp.asarray(take))
                lo = c * STEPS_PER_CALL
                rec_b[sel, lo:lo + take] = np.moveaxis(np.asarray(rb[:take, :rows]), 0, 1)
                rec_p[sel, lo:lo + take] = np.moveaxis(np.asarray(rp[:take, :rows]), 0, 1)
                if ck is not None:
                    ck.advance(ci, c + 1, lo + take, {"y": y, "n": n, "m": m, "a": a, "k_step": k_step})
                calls_done += 1
                if progress is not None:
                    progress(calls_done / total_calls)
    if ck is not None:
        ck.finish()
    return _to_dataset(scenario, timelines, membership, group_of, names, rec_b, rec_p, p, subjects.start)


def _loop_details(subjects: range, names, xs_np: list[np.ndarray], chunks) -> dict:
    """What a saved paradigm loop must share with this one to be continued: subjects, readouts,
    the step inputs (every group's timeline), the batches and the compiled loop's sizes."""
    digest = hashlib.blake2b(digest_size=16)
    for x in xs_np:
        digest.update(np.ascontiguousarray(x).tobytes())
    for sel, calls in chunks:
        digest.update(np.asarray(sel, dtype=np.int64).tobytes() + np.int64(calls).tobytes())
    return {"kind": "paradigm", "subjects": [subjects.start, subjects.stop], "readouts": list(names),
            "recorded": list(RECORDED), "steps_per_call": STEPS_PER_CALL, "subject_chunk": SUBJECT_CHUNK,
            "min_batch": MIN_BATCH, "inputs": digest.hexdigest()}


def _same_grid(timelines: list[Timeline], groups: list[int]) -> list[list[int]]:
    """The groups in buckets of the same step grid (step lengths and sessions alike). Groups that
    differ only in what the box gives (dose, trigger, ratio, cue) share a grid and a batch; a
    batch of groups on different grids integrated each step as long as its slowest subject
    needed, with the others idle (1.2× the time of one batch per group in bench_paradigm_groups,
    measured before the subjects went at their own pace; `engine.core.through_phases`)."""
    buckets: dict[bytes, list[int]] = {}
    for g in groups:
        tl = timelines[g]
        buckets.setdefault(tl.quanta.tobytes() + tl.session.tobytes(), []).append(g)
    return list(buckets.values())


def _step_inputs(timelines: list[Timeline], length: int) -> list[np.ndarray]:
    """The step inputs as (step, group column) tables, each group's timeline padded at its end
    with zero-length steps (nothing happens in them) to `length` steps."""
    columns = GROUP_COLUMNS * math.ceil(len(timelines) / GROUP_COLUMNS)
    fields = ("quanta", "session", "lever", "reinforced", "ratio", "timeout_steps", "cue", "shock",
              "experimenter_mg_per_kg", "context", "session_start")
    out = []
    for name in fields:
        first = getattr(timelines[0], name)
        table = np.zeros((length, columns), dtype=first.dtype)
        for g, tl in enumerate(timelines):
            col = getattr(tl, name)
            table[:len(col), g] = col
        out.append(table)
    return out


BEHAVIOUR_UNITS = {
    "lever_presses": ("1", "active-lever presses in the decision step"),
    "infusions": ("1", "self-administered infusions in the decision step"),
    "use_event": ("1", "1 where the subject took the drug in the decision step"),
    "craving": ("1", "the agent's craving, 0-10 (value × salience, drive, stress)"),
    "drug_value": ("1", "learned value of taking the drug"),
    "habit": ("1", "stimulus-response (habit) strength, 0-1"),
    "pfc_control": ("1", "prefrontal control, 0-1 (1 = intact)"),
}


def _to_dataset(scenario, timelines: list[Timeline], membership, group_of: np.ndarray, names, rec_b, rec_p, p,
                first: int) -> xr.Dataset:
    """Records over (subject, time) and per-session summaries over (subject, session).

    With groups the time axis is the union of every group's step start times (of all the
    scenario's groups, so that parts of a cohort run apart line up); a subject's records are NaN
    at times that are not steps of its own group's schedule. The session calendar (kind, phase)
    is shared; each subject's session start, length and trigger are per subject then."""
    from .. import __version__

    n_sub = rec_b.shape[0]
    grouped = bool(scenario.paradigm.groups)
    present = sorted(set(group_of.tolist()))
    rows_of = {g: np.nonzero(group_of == g)[0] for g in present}
    if grouped:
        times = np.unique(np.concatenate([tl.start_min for tl in timelines]))
        beh = np.full((n_sub, len(times), rec_b.shape[2]), np.nan)
        phys = np.full((n_sub, len(times), rec_p.shape[2]), np.nan)
        step_session = np.empty((n_sub, len(times)), dtype=np.int64)
        for g, rows in rows_of.items():
            tl = timelines[g]
            at = np.searchsorted(times, tl.start_min)
            beh[np.ix_(rows, at)] = rec_b[rows, :tl.n_steps]
            phys[np.ix_(rows, at)] = rec_p[rows, :tl.n_steps]
            # the session the subject is in at each time (-1: home cage)
            containing = np.searchsorted(tl.start_min, times, side="right") - 1
            step_session[rows] = tl.session[containing]
    else:
        tl = timelines[0]
        times, beh, phys, step_session = tl.start_min, rec_b[:, :tl.n_steps], rec_p[:, :tl.n_steps], tl.session
    time = (times * 60e9).round().astype("timedelta64[ns]")
    dv = {}
    for name in BEHAVIOUR_READOUTS:
        units, long = BEHAVIOUR_UNITS[name]
        if name == "use_event":
            inf = beh[:, :, _COL["infusions"]]
            values = np.where(np.isnan(inf), np.nan, (inf > 0).astype(float))
        else:
            values = beh[:, :, _COL[name]]
        dv[name] = xr.Variable(("subject", "time"), values, attrs={"units": units, "long_name": long})
    for i, name in enumerate(names):
        r = READOUTS[name]
        dv[name] = xr.Variable(("subject", "time"), phys[:, :, i], attrs={"units": r.units, "long_name": r.long_name})
    n_ses = len(timelines[0].sessions)
    summ: dict = {}
    for g, rows in rows_of.items():
        tl = timelines[g]
        for k, (arr, units, long) in session_summary(tl, rec_b[rows, :tl.n_steps]).items():
            if k not in summ:
                summ[k] = (np.full((n_sub, n_ses), np.nan), units, long)
            summ[k][0][rows] = arr
    for k, (arr, units, long) in summ.items():
        dv[k] = xr.Variable(("subject", "session"), arr, attrs={"units": units, "long_name": long})
    info = timelines[0].sessions
    group_names = np.array([membership[g][0] for g in group_of], dtype=str)
    coords = {
        "subject": np.arange(first, first + n_sub), "time": time,
        "session": np.arange(len(info)),
        "session_kind": ("session", np.array([s["kind"] for s in info], dtype=str)),
        "session_phase": ("session", np.array([s["phase"] for s in info], dtype=np.int64)),
        "group": ("subject", group_names, {"long_name": "the subject's group ([[paradigm.group]])"}),
        "weight_kg": ("subject", np.asarray(p["body_weight_kg"]), {"units": "kg", "long_name": "body weight"}),
    }
    per_session = {"session_trigger": ("trigger", str, {}), "session_start_min": ("start_min", float, {"units": "min"}),
                   "session_length_min": ("length_min", float, {"units": "min"})}
    for coord, (key, kind, attrs) in per_session.items():
        if grouped:  # each subject's own group's schedule
            table = np.array([[s[key] for s in timelines[g].sessions] for g in group_of], dtype=kind)
            coords[coord] = (("subject", "session"), table.reshape(n_sub, n_ses), attrs)
        else:
            coords[coord] = ("session", np.array([s[key] for s in info], dtype=kind), attrs)
    coords["step_session"] = (("subject", "time") if grouped else ("time",), step_session)
    ds = xr.Dataset(dv, coords=coords)
    ds.attrs.update({"scenario_name": scenario.name, "description": scenario.description,
                     "opioidsim_version": __version__, "seed": int(scenario.cohort.seed),
                     "species": scenario.cohort.species, "scenario_toml": scenario.to_toml(),
                     "research_notice": "opioidsim is a research and teaching tool, never a dosing guide."})
    return ds


def session_summary(tl: Timeline, rec_b: np.ndarray) -> dict:
    """Per (subject, session): infusions, presses, first-hour infusions, breakpoint (last ratio
    completed, progressive ratio), CPP score (s in the drug-paired side minus the other)."""
    n_sub, n_ses = rec_b.shape[0], len(tl.sessions)
    presses = np.zeros((n_sub, n_ses))
    infusions = np.zeros((n_sub, n_ses))
    first_hour = np.zeros((n_sub, n_ses))
    breakpoint_ = np.full((n_sub, n_ses), np.nan)
    cpp = np.full((n_sub, n_ses), np.nan)
    # the ratio completed by the j-th infusion (0 for none)
    completed = np.array([0] + [progressive_ratio(j) for j in range(PR_STEPS)], dtype=float)
    for s, info in enumerate(tl.sessions):
        sel = tl.session == s
        presses[:, s] = rec_b[:, sel, _COL["lever_presses"]].sum(axis=1)
        inf = rec_b[:, sel, _COL["infusions"]]
        infusions[:, s] = inf.sum(axis=1)
        early = (tl.start_min[sel] - info["start_min"]) < 60.0
        first_hour[:, s] = inf[:, early].sum(axis=1)
        if info["kind"] == "progressive_ratio":
            breakpoint_[:, s] = completed[np.minimum(infusions[:, s].astype(int), PR_STEPS)]
        if info["kind"] == "cpp_test":
            paired = rec_b[:, sel, _COL["cpp_paired_min"]].sum(axis=1)
            cpp[:, s] = (2.0 * paired - info["length_min"]) * 60.0
    return {
        "session_presses": (presses, "1", "active-lever presses in the session"),
        "session_infusions": (infusions, "1", "infusions in the session"),
        "first_hour_infusions": (first_hour, "1", "infusions in the first hour of the session"),
        "breakpoint": (breakpoint_, "1", "progressive ratio: the last ratio completed"),
        "cpp_score": (cpp, "s", "place preference: time in the drug-paired side minus the other side"),
    }
