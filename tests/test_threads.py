"""OpenBLAS threads: one by default, the user's number where they chose one.

jaxlib's LAPACK kernels run in scipy's OpenBLAS; beside XLA's thread pool its own threads
oversubscribe a small machine and stall the stepper's small solves (opioidsim/__init__.py). Each
check runs in a fresh interpreter, since the setting is taken when OpenBLAS loads."""
from __future__ import annotations

import json
import os
import subprocess
import sys


PROBE = """
import json{pre}
import opioidsim.engine
import jax.numpy as jnp
jnp.linalg.inv(jnp.eye(3))  # makes jaxlib load its LAPACK (scipy's OpenBLAS)
from threadpoolctl import threadpool_info
print(json.dumps([d["num_threads"] for d in threadpool_info() if d["internal_api"] == "openblas"]))
"""


def _openblas_threads(env_threads: str | None, pre: str = "") -> list[int]:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if env_threads is not None:
        env["OPENBLAS_NUM_THREADS"] = env_threads
    out = subprocess.run([sys.executable, "-c", PROBE.format(pre=pre)], env=env, capture_output=True, text=True,
                         timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_openblas_runs_one_thread_by_default():
    threads = _openblas_threads(None)
    assert threads, "jax's LAPACK should have loaded an OpenBLAS"
    assert set(threads) == {1}


def test_openblas_loaded_before_opioidsim_is_limited_too():
    # scipy.linalg loads OpenBLAS with its default thread count before opioidsim can set the variable
    threads = _openblas_threads(None, pre="\nimport scipy.linalg")
    assert threads and set(threads) == {1}



def test_the_users_choice_is_kept():
    assert set(_openblas_threads("2")) == {2}
