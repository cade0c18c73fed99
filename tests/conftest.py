"""Shared set-up of the test process.

The engine splits a batch of subjects over the devices JAX has, one host device per core
(engine/devices.py). Tests compare split runs with unsplit ones, so on a one-core machine the test
process still gets two host devices (set before JAX starts; a split run gives the same records on
any machine, only more slowly on one core)."""
from __future__ import annotations

import os

_FLAG = "--xla_force_host_platform_device_count"
_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
if _cores < 2 and _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" {_FLAG}=2").strip()
