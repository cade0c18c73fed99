"""opioidsim — a research simulator of the brain under heroin and other opioids.

Research and teaching only: never a dosing guide for a person.

>>> import opioidsim
>>> scenario = opioidsim.load_scenario("acute-heroin-iv")
>>> ds = opioidsim.simulate(scenario)          # xarray Dataset (subject, time)
"""
from __future__ import annotations

__version__ = "0.1.0"

import os as _os

# XLA flags, set before JAX starts its CPU backend (so here), unless the user set them:
# - XLA's CPU "concurrency-optimised" scheduler deadlocked on the human-course loop as it was until
#   stop 48 (a lax.scan whose body runs while loops, as the gym's still does): every thread idles
#   and the result never comes (jaxlib 0.10.2; the default scheduler runs it).
# - XLA's CPU fusion emitters give every fused kernel its own JIT object, mapped in three memory
#   regions: one compiled segment of the engine added ~2,900 mappings to the process (~950 kernels;
#   715 mappings with the older emitters), so a process that compiled some 20 of them (the test
#   suite, a long explorer session) reached Linux's limit of 65,530 mappings (vm.max_map_count) and
#   XLA aborted while compiling (stop 31). The older emitters compiled faster here and ran as fast.
# - one host device per core: XLA's CPU backend runs a device's program (the engine's while_loop of
#   small batched operations) on little more than one core, so the engine splits a batch's subjects
#   over the devices (engine/devices.py): 2.0x on the bench cohort on 2 cores, the same records bit
#   for bit. Set the flag yourself (e.g. =1) to choose another number.
_CORES = len(_os.sched_getaffinity(0)) if hasattr(_os, "sched_getaffinity") else (_os.cpu_count() or 1)
_XLA_FIXES = ("--xla_cpu_enable_concurrency_optimized_scheduler=false", "--xla_cpu_use_fusion_emitters=false",
              f"--xla_force_host_platform_device_count={_CORES}")
for _flag in _XLA_FIXES:
    if _flag.split("=")[0] not in _os.environ.get("XLA_FLAGS", ""):
        _os.environ["XLA_FLAGS"] = (_os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()

# jaxlib's LAPACK kernels (the stepper's small batched LU factorisations and triangular solves) run
# in scipy's OpenBLAS, which by default starts a thread per core beside XLA's own pool. On a small
# machine the two pools oversubscribe the cores and OpenBLAS's spinning threads stall each tiny
# solve: a 16-subject day of IV heroin took 289 s instead of 17 s on a loaded 2-core machine, and
# one jnp.linalg.inv of 512 34×34 blocks 11 s instead of 0.05 s. Results are the same either way.
# One OpenBLAS thread, unless the user chose a number; the variable is read when OpenBLAS loads,
# so it must be set before jax or scipy is imported (engine.core enforces it with threadpoolctl
# where OpenBLAS was loaded earlier).
OPENBLAS_THREADS_CHOSEN_BY_USER = "OPENBLAS_NUM_THREADS" in _os.environ
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .errors import ScenarioError  # noqa: E402
from .scenarios import Cohort, Conditions, Dose, Scenario, load_scenario  # noqa: E402


def simulate(scenario: Scenario, *, progress=None):
    """Simulate a scenario; returns an xarray Dataset with dims (subject, time), one variable per readout.

    A scenario with a [paradigm] (an animal experiment) runs the behaviour layer and adds per-session
    summaries over (subject, session); one with a [life] table gives a life course over (subject,
    day); one with a [trial] table a virtual trial (opioidsim.trial)."""
    if getattr(scenario, "paradigm", None) is not None:
        from .behavior import simulate_paradigm

        return simulate_paradigm(scenario, progress=progress)
    if getattr(scenario, "trial", None) is not None:
        from .trial.simulate import simulate_trial

        return simulate_trial(scenario, progress=progress)
    if getattr(scenario, "life", None) is not None:
        from .behavior.course import simulate_life

        return simulate_life(scenario, progress=progress)
    from .engine import simulate as _simulate

    return _simulate(scenario, progress=progress)


__all__ = ["Cohort", "Conditions", "Dose", "Scenario", "ScenarioError", "load_scenario", "simulate", "__version__"]
