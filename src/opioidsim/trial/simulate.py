"""A virtual randomised trial: a sampled cohort with a history of street use is randomised to
arms, each arm's programme runs for the follow-up, and the outcomes are counted the way trials
count them (retention, urine results by week, relapse, overdose, death).

Randomisation is simple (each subject's arm drawn from its own counter-based uniform with the
arms' allocation ratios) or in permuted blocks of consecutive subjects (`block_size`; the order
within a block ranks counter-based uniforms of its indices), optionally within the strata of the
co-occurring disorders (`stratify`). So a subject's arm, physiology and choices depend only on the
seed and its index: a trial run in pieces equals the trial run whole. Every arm shares the same
history (all subjects live the same pre-trial life whichever arm they then get: the comparison is
fair by construction, as randomisation makes it in expectation), and any inpatient detox
(`detox`) after it.
"""
from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ..behavior.course import (CourseTimeline, compile_course, course_dataset, course_targets, disorder_strata,
                               relapsed, run_course)
from ..engine.core import _as_scenario, subject_uniforms
from ..engine.inert import for_targets
from ..model.model import default_model
from ..scenarios.course import Trial


def urine_days(per_week: int) -> tuple[int, ...]:
    """Days of the week (0-6 from the programme start) with a research urine, spread evenly and
    always including the last day of the week (the weekly result is known at the week's end)."""
    return tuple(sorted({int(round(7 * (j + 1) / per_week)) - 1 for j in range(per_week)}))


def randomise(trial: Trial, seed: int, subjects: np.ndarray, cohort=None) -> np.ndarray:
    """Arm index per subject, drawn with the arms' allocation ratios: simple randomisation, or
    permuted blocks when the trial sets `block_size` (within each stratum of the co-occurring
    disorders in `stratify`, drawn from `cohort`'s prevalences)."""
    subjects = np.asarray(subjects, dtype=np.uint64)
    weights = np.array([a.allocation for a in trial.arms], dtype=float)
    if trial.block_size:
        allocation = weights.astype(int)
        if not trial.stratify:
            return _permuted_blocks(allocation, trial.block_size, seed, subjects, "trial_block_randomisation")
        if cohort is None:
            raise ValueError("a trial stratified on co-occurring disorders needs the cohort to randomise")
        if len(subjects) == 0:
            return np.zeros(0, dtype=np.int64)
        # a subject's place in its stratum: how many of the cohort's subjects before it share it
        # (each subject's disorders are counter-based, so this needs no one else to be run)
        everyone = np.arange(int(subjects.max()) + 1, dtype=np.uint64)
        stratum = disorder_strata(cohort, trial.stratify, everyone)
        place = np.empty(len(everyone), dtype=np.uint64)
        for code in np.unique(stratum):
            members = stratum == code
            place[members] = np.arange(members.sum(), dtype=np.uint64)
        arms = np.empty(len(subjects), dtype=np.int64)
        for code in np.unique(stratum[subjects]):
            mine = stratum[subjects] == code
            arms[mine] = _permuted_blocks(allocation, trial.block_size, seed, place[subjects[mine]],
                                          f"trial_block_randomisation_stratum_{code}")
        return arms
    edges = np.cumsum(weights / weights.sum())
    u = subject_uniforms(seed, "trial_randomisation", subjects)
    return np.minimum(np.searchsorted(edges, u, side="right"), len(weights) - 1)


def _permuted_blocks(allocation: np.ndarray, size: int, seed: int, places: np.ndarray, stream: str) -> np.ndarray:
    """Places 0..size-1 (cohort indices, or places within a stratum) form block 0, and so on; each
    block holds `size / sum(allocation)` copies of the allocation, in an order given by ranking
    counter-based uniforms of the block's places. An arm thus depends only on the seed and the
    block, whoever else is run beside it; a last block cut short keeps the slots its places hold."""
    slots = np.repeat(np.arange(len(allocation)), allocation * (size // int(allocation.sum())))
    first = places // np.uint64(size) * np.uint64(size)
    blocks, where = np.unique(first, return_inverse=True)
    members = blocks[:, None] + np.arange(size, dtype=np.uint64)[None, :]
    u = subject_uniforms(seed, stream, members.ravel()).reshape(members.shape)
    rank = np.argsort(np.argsort(u, axis=1, kind="stable"), axis=1, kind="stable")
    return slots[rank[where, (places - first).astype(np.int64)]]


def trial_timeline(trial: Trial, arm) -> CourseTimeline:
    """One arm's course: the history of street use, any inpatient detox (no supply, until the
    enrolment visit), then the arm's programme for the follow-up."""
    periods = [("community", trial.history_days, None)]
    periods += [("forced_abstinence", trial.detox_days, None)] if trial.detox_days else []
    periods += [("treatment", trial.follow_up_weeks * 7, arm)]
    return compile_course(periods, trial.decide_every_min, trial.supply.availability,
                          urine_days(trial.urine_tests_per_week))


def simulate_trial(scenario, *, progress=None, model=None, subjects: range | None = None,
                   checkpoint=None, devices: int | None = None) -> xr.Dataset:
    """Run a scenario with a [trial] table. Returns the trial Dataset of opioidsim.trial.stats:
    per subject (arm, retention, relapse, overdose, death, days abstinent), per (subject, week)
    urine results and per (subject, day) behaviour and physiology from randomisation on.

    `checkpoint` (an `opioidsim.io.checkpoint.Checkpoint`) saves each arm's course as a loop of
    its own ("arm0", "arm1", …): a resumed trial reads the arms that finished and continues the
    one that was running (see `run_course`). `devices`: how many of JAX's devices share each batch
    (engine/devices.py; default all; the same results bit for bit)."""
    scenario = _as_scenario(scenario)
    trial = scenario.trial
    if trial is None:
        raise ValueError("simulate_trial needs a scenario with a [trial] table")
    subjects = np.arange(scenario.cohort.subjects) if subjects is None else np.asarray(subjects)
    arm_of = randomise(trial, scenario.cohort.seed, subjects, scenario.cohort)
    before_days = trial.before_randomisation_days
    # one model for every arm, without the drugs no arm gives (engine/inert.py): the arms share one
    # compiled course, and a subject is computed the same in any part of the cohort
    timelines = [trial_timeline(trial, arm) for arm in trial.arms]
    model = for_targets(model or default_model(),
                        frozenset().union(*(course_targets(tl, trial.supply) for tl in timelines)))
    parts = []
    done = 0
    for k, arm in enumerate(trial.arms):
        members = subjects[arm_of == k]
        if len(members) == 0:
            continue
        tl = timelines[k]

        def arm_progress(f, done=done, size=len(members)):
            if progress is not None:
                progress((done + f * size) / len(subjects))

        # an arm's own [parameters] (a what-if) on top of the scenario's
        arm_scenario = scenario.with_parameters(arm.parameters) if arm.parameters else scenario
        res = run_course(arm_scenario, tl, trial.supply, subjects=members, model=model,
                         readouts=tuple(scenario.readouts) if scenario.readouts else None,
                         follow_up_after_dropout=trial.follow_up_after_dropout,
                         discharge_after_missed_days=trial.discharge_after_missed_days, progress=arm_progress,
                         checkpoint=checkpoint, loop_name=f"arm{k}", devices=devices)
        ds = course_dataset(scenario, res, members, days_offset=before_days)
        parts.append(ds.assign_coords(arm=("subject", np.full(len(members), arm.name))))
        done += len(members)
    full = xr.concat(parts, dim="subject", data_vars="all", coords="different", compat="equals",
                     combine_attrs="override").sortby("subject")
    return trial_dataset(full, trial, scenario)


def trial_dataset(full: xr.Dataset, trial: Trial, scenario) -> xr.Dataset:
    """From (subject, day) course results over history + follow-up to the trial's view: days from
    randomisation, weekly urines, per-subject outcomes over the follow-up only."""
    fu = full.sel(day=full.day >= 0)
    n_days = fu.sizes["day"]
    weeks = trial.follow_up_weeks
    urine = fu["urine"].values  # (subject, day): 1/0, NaN missed or none
    scheduled = fu["urine_scheduled"].values > 0
    by_week = np.full((fu.sizes["subject"], weeks), np.nan)
    for w in range(weeks):
        sel = slice(7 * w, min(7 * (w + 1), n_days))
        given = np.where(scheduled[:, sel], urine[:, sel], np.nan)
        by_week[:, w] = np.fmax.reduce(given, axis=1)  # any positive that week; NaN if every test missed
    in_t = fu["in_treatment"].values
    alive = fu["alive"].values
    use = fu["use_event"].values
    living = np.concatenate([np.ones((len(alive), 1)), alive[:, :-1]], axis=1)
    ended = (in_t < 0.5).any(axis=1)
    dropout_day = np.where(ended, np.argmax(in_t < 0.5, axis=1).astype(float), np.nan)
    died = alive[:, -1] < 0.5
    death_day = np.where(died, np.argmax(alive < 0.5, axis=1).astype(float), np.nan)
    final_missing = np.isnan(by_week[:, -1])
    per_subject = {
        "enrolled": (np.ones(len(use)), "1", "randomised"),
        "started_treatment": ((fu["attended"].values > 0).any(axis=1).astype(float), "1",
                              "came to the clinic at least once"),
        "retained": (((in_t[:, -1] > 0.5) & ~died).astype(float), "1", "in treatment at the end of follow-up"),
        "days_in_treatment": (in_t.sum(axis=1), "day", "days in treatment"),
        "dropout_day": (dropout_day, "day", "day of leaving treatment (discharge or death); NaN if retained"),
        "relapse": (relapsed(use), "1", "used again after ≥ 7 days without use, during follow-up"),
        "overdose_events": (fu["overdose"].values.sum(axis=1), "1", "overdoses during follow-up"),
        "alive": ((~died).astype(float), "1", "alive at the end of follow-up"),
        "death_day": (death_day, "day", "day of death; NaN if alive"),
        "days_abstinent": (((1 - use) * living).sum(axis=1), "day", "days alive without illicit opioid use"),
        "lost_to_follow_up": ((final_missing & ~died).astype(float), "1", "alive but no final urine"),
    }
    keep = [v for v in fu.data_vars if "day" in fu[v].dims]
    ds = fu[keep].copy()
    for k, (v, units, long) in per_subject.items():
        ds[k] = xr.Variable(("subject",), v, attrs={"units": units, "long_name": long})
    ds["urine_positive"] = xr.Variable(("subject", "week"), by_week, attrs={
        "units": "1", "long_name": "any opioid-positive research urine that week (NaN: every sample missed)"})
    ds = ds.assign_coords(week=np.arange(1, weeks + 1))
    ds.attrs.update(full.attrs)
    ds.attrs.update({"trial_name": scenario.name, "arms": ",".join(a.name for a in trial.arms),
                     "control_arm": trial.arms[0].name, "follow_up_weeks": weeks,
                     "missing_urine_rule": trial.missing_urine, "randomisation": trial.randomisation,
                     "stratified_by": ",".join(trial.stratify),
                     "history_days": trial.history_days, "detox_days": trial.detox_days})
    if trial.published:  # the published figures to compare with (trial.stats.published_comparison)
        ds.attrs["published"] = json.dumps([p.model_dump(exclude_none=True) for p in trial.published])
    return ds
