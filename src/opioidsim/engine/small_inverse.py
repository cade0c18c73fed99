"""Inverses of many small matrices at once, for the step's dense components of I − γhJ.

Gauss-Jordan elimination without pivoting, unrolled over the columns as whole-batch array
operations, makes the engine about 1.1× faster on the bench cohort than XLA's CPU `inv` (LAPACK's
pivoted LU and a solve), and a trial 1.15×, with the same steps (benchmarks/bench_inverse.py). Without pivoting it
is only as good as its pivots, so every inverse is checked by its normalised residual
‖W X − I‖ / (‖W‖ ‖X‖) in the max norm, the backward error a pivoted elimination keeps near the
rounding unit; if any matrix of the batch misses `RESIDUAL_LIMIT`, the whole batch is inverted
by LAPACK instead (one branch runs, `lax.cond`).

W = I − γhJ has unit diagonal plus γh times the Jacobian's, which is negative for decaying and
unbinding states, so its pivots are rarely small; the fallback is there for the matrix that is
not like that, and tests/test_small_inverse.py forces it."""
from __future__ import annotations

import jax
import jax.numpy as jnp

#: largest accepted normalised residual. LAPACK's pivoted inverse gives at most 7e-16 on the step's
#: blocks and so does this elimination (2,000 sampled states and parameters, h from 0.01 min to
#: 70 days, condition numbers up to 3e12: benchmarks/bench_inverse.py); 1e-12 leaves a wide margin
#: over rounding and catches the growth of a small pivot long before it matters to the step.
RESIDUAL_LIMIT = 1e-12


def gauss_jordan_inverse(a):
    """Inverse of each (s, s) matrix of a batch (..., s, s) by Gauss-Jordan elimination without
    pivoting, unrolled over the s columns. A zero pivot gives inf/nan, which the residual catches."""
    s = a.shape[-1]
    aug = jnp.concatenate([a, jnp.broadcast_to(jnp.eye(s, dtype=a.dtype), a.shape)], axis=-1)
    for i in range(s):
        row = aug[..., i, :] / aug[..., i, i:i + 1]
        aug = aug - aug[..., :, i:i + 1] * row[..., None, :]
        aug = aug.at[..., i, :].set(row)
    return aug[..., s:]


def inverse_residual(a, x):
    """max |a x − I| / (max |a| · max |x|) per matrix: (..., s, s), (..., s, s) -> (...). NaN where
    x is not finite."""
    r = jnp.abs(jnp.einsum("...ij,...jk->...ik", a, x) - jnp.eye(a.shape[-1], dtype=a.dtype))
    scale = jnp.max(jnp.abs(a), axis=(-2, -1)) * jnp.max(jnp.abs(x), axis=(-2, -1))
    return jnp.max(r, axis=(-2, -1)) / scale


def small_inverse(a):
    """Inverse of each (s, s) matrix of a batch: Gauss-Jordan without pivoting when every result's
    residual is within `RESIDUAL_LIMIT`, else LAPACK's pivoted inverse for the whole batch."""
    x = gauss_jordan_inverse(a)
    good = jnp.all(inverse_residual(a, x) <= RESIDUAL_LIMIT)  # False on any nan
    return jax.lax.cond(good, lambda: x, lambda: jnp.linalg.inv(a))
