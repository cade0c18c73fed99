"""A batch of subjects split over several devices (engine/devices.py) gives the records of the
unsplit batch bit for bit: the dose-schedule engine, a trial's courses and an animal experiment,
with padded batches, a failing subject and a run resumed on another number of devices."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import opioidsim.engine.core as core  # noqa: I001  (enables 64-bit JAX first)

from opioidsim.engine import devices as dv
from opioidsim.engine import integrate
from opioidsim.engine.dosing import DoseEvents
from opioidsim.io.checkpoint import Checkpoint
from test_engine_queue import TOY, TOY_GRID, TOY_NAMES, toy_cohort
from toy_models import stop_after


@pytest.fixture
def splits(monkeypatch):
    """The number of parts each batch was split into, as the engine, the courses and the animal
    experiments chose it (so a test can tell that its "split" run was split)."""
    import opioidsim.behavior.course as course
    import opioidsim.behavior.runner as runner

    seen: list[int] = []
    for module, name in ((core, "shards_for"), (runner, "shards_for"), (course, "shards_dividing")):
        def recorded(*a, _f=getattr(module, name)):
            seen.append(_f(*a))
            return seen[-1]
        monkeypatch.setattr(module, name, recorded)
    return seen


def test_the_test_process_has_two_devices_to_split_over():
    assert dv.available() >= 2  # tests/conftest.py


@pytest.mark.parametrize("rows, devices, shards, size", [
    (1, 2, 1, 2),        # a lone subject stays whole, padded to MIN_BATCH
    (20, 2, 1, 20),      # two parts would hold fewer than LANES subjects each
    (31, 1, 1, 31),
    (32, 2, 2, 32),
    (40, 2, 2, 64),      # parts of a multiple of LANES
    (40, 1, 1, 48),      # and the same place in the SIMD pattern unsplit
    (512, 2, 2, 512),
    (100, 4, 4, 128),
    (100, 8, 6, 192),
])
def test_shards_and_padding(rows, devices, shards, size):
    assert dv.shards_for(rows, devices) == shards
    assert dv.padded_rows(rows, shards) == size
    assert size >= rows and size % shards == 0
    assert shards == 1 or (size // shards) % dv.LANES == 0


@pytest.mark.parametrize("size, devices, shards", [(16, 2, 1), (32, 2, 2), (96, 2, 2), (96, 6, 6), (96, 4, 3),
                                                   (64, 8, 4)])
def test_a_fixed_batch_is_split_into_parts_of_a_multiple_of_lanes(size, devices, shards):
    assert dv.shards_dividing(size, devices) == shards


@pytest.mark.parametrize("bad", [0, 3000, 1.5, True, "2"])
def test_a_bad_number_of_devices_is_refused(bad):
    p, ev = toy_cohort(2)
    with pytest.raises(ValueError, match=r"devices must be a whole number from 1 to \d+ .*got"):
        integrate(TOY, TOY_GRID, TOY.initial_state(p), p, ev, TOY_NAMES, devices=bad)


def assert_same_to_rounding(a, b):
    """The split run against the unsplit one: the same steps, statuses and failure times, and
    records equal to rounding. Bit for bit on stop 44's AVX-512 host; on stop 45's AVX2 host a batch
    of 32 toy subjects gave subject 15 a record 5.6e-17 (one bit) off its value in a batch of 16, split
    or not, and a batch of 64 subject 60 against 128: XLA's code for a batch can round a subject
    differently with the batch's shape (docs/guide/11-engine.md, *All the cores*)."""
    (ra, sa), (rb, sb) = a, b
    np.testing.assert_allclose(rb, ra, rtol=1e-12, atol=0.0)  # NaN equals NaN here: a failed subject's records
    for key in ("steps", "record_tries", "status", "failed_at_min"):
        np.testing.assert_array_equal(sb[key], sa[key], err_msg=key)
    np.testing.assert_allclose(sb["y_final"], sa["y_final"], rtol=1e-12, atol=0.0)


def runs(splits, n_subjects, **kw):
    p, ev = toy_cohort(n_subjects)
    amount = ev.amount.copy()
    amount[min(4, n_subjects - 1), 1] = np.nan  # a subject fails; the others go on
    ev = DoseEvents(ev.step, ev.target, amount, ev.times_min)
    out = []
    for devices in (1, 2):
        st: dict = {}
        out.append((integrate(TOY, TOY_GRID, TOY.initial_state(p), p, ev, TOY_NAMES, stats=st, devices=devices,
                              **kw), st))
    assert splits == [1, 2]
    return out


@pytest.mark.parametrize("n_subjects", [32, 40])
def test_the_engine_split_over_two_devices_gives_the_same_records(splits, n_subjects):
    one, two = runs(splits, n_subjects)
    assert_same_to_rounding(one, two)
    assert (one[1]["status"] == core.STATUS_FAILED).sum() == 1


def test_the_barrier_runner_splits_too(splits):
    one, two = runs(splits, 40, runner="barrier")
    assert_same_to_rounding(one, two)


@pytest.mark.parametrize("first, then", [(2, 1), (1, 2)])
def test_a_run_resumes_on_another_number_of_devices(tmp_path, splits, first, then):
    """Stopped after 3 segments on `first` devices (40 subjects: a batch of 64 when split, 48 when
    not) and continued on `then`: the records of a run never stopped."""
    p, ev = toy_cohort(40)
    y0 = TOY.initial_state(p)
    whole = integrate(TOY, TOY_GRID, y0, p, ev, TOY_NAMES, devices=1)
    with pytest.raises(KeyboardInterrupt):
        integrate(TOY, TOY_GRID, y0, p, ev, TOY_NAMES, progress=stop_after(3), devices=first,
                  checkpoint=Checkpoint(tmp_path / "ck", {"test": "devices"}, every_s=0.0))
    resumed = integrate(TOY, TOY_GRID, y0, p, ev, TOY_NAMES, devices=then,
                        checkpoint=Checkpoint(tmp_path / "ck", {"test": "devices"}, every_s=0.0))
    assert splits == [1, first, then]
    np.testing.assert_allclose(resumed, whole, rtol=1e-12, atol=0.0)  # to rounding: assert_same_to_rounding


def test_the_physiology_split_over_two_devices_gives_the_same_records(splits):
    """40 subjects of IV heroin three times a day, one day, every readout the bench reads."""
    from opioidsim.bench import KEY_READOUTS, BenchConfig, standard_scenario

    sc = standard_scenario(BenchConfig(subjects=40, days=1.0))
    model = core.run_model(sc)
    grid, p, events, _ = core._setup(sc, model, range(40))
    y0 = model.initial_state(p)
    out = []
    for devices in (1, 2):
        st: dict = {}
        out.append((integrate(model, grid, y0, p, events, KEY_READOUTS, stats=st, devices=devices), st))
    assert splits == [1, 2]
    assert_same_to_rounding(*out)
    assert np.isfinite(out[0][0]).all() and out[0][1]["steps"].min() > 50  # a day of use, integrated


def test_a_trial_split_over_two_devices_gives_the_same_results(splits):
    from opioidsim.trial.simulate import simulate_trial
    from test_inert import methadone_trial

    sc = methadone_trial(subjects=40)
    one, two = simulate_trial(sc, devices=1), simulate_trial(sc)
    assert splits == [1, 1, 2, 2]  # two arms of 17-23, each a batch of 32
    assert int(one.in_treatment.sum()) > 0 and int(one.use_event.sum()) > 0  # not vacuous
    for name, var in one.data_vars.items():
        np.testing.assert_array_equal(two[name].values, var.values, err_msg=name)


def test_an_animal_experiment_split_over_two_devices_gives_the_same_results(splits):
    from opioidsim.behavior import simulate_paradigm
    from test_paradigm import tiny

    sc = tiny().with_cohort(subjects=32)  # two parts of 16
    one, two = simulate_paradigm(sc, devices=1), simulate_paradigm(sc)
    assert splits[0] == 1 and splits[-1] == 2
    assert float(one.infusions.sum()) > 0  # not vacuous
    for name, var in one.data_vars.items():
        np.testing.assert_array_equal(two[name].values, var.values, err_msg=name)


def test_opioidsim_gives_a_process_one_host_device_per_core():
    code = ("import os, opioidsim, jax; n = len(os.sched_getaffinity(0)); "
            "assert len(jax.devices()) == n, (jax.devices(), n); print(n)")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"  # the user's own choice is kept
    out = subprocess.run([sys.executable, "-c", "import opioidsim, jax; assert len(jax.devices()) == 1"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr


def test_a_local_clusters_workers_share_the_cores(monkeypatch):
    from opioidsim.cluster import worker_xla_flags

    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=false --xla_force_host_platform_device_count=8")
    assert worker_xla_flags(2).split() == ["--xla_cpu_use_fusion_emitters=false",
                                           "--xla_force_host_platform_device_count=2"]
    assert worker_xla_flags(0).endswith("device_count=1")  # more workers than cores: one each
