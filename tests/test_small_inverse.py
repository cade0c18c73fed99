"""The step's small-matrix inverse: Gauss-Jordan without pivoting, checked by its residual, with
LAPACK's pivoted inverse as the fallback.

Expected values come from numpy's pivoted inverse and from the definition X W = I."""
from __future__ import annotations

import numpy as np
import pytest

import opioidsim.engine.core as core  # noqa: F401,I001  (enables 64-bit JAX before jnp is used)
import jax
import jax.numpy as jnp

from opioidsim.engine import small_inverse as si
from opioidsim.engine import stepper
from opioidsim.model import default_model


def _diagonally_heavy(rng, shape):
    s = shape[-1]
    return np.eye(s) * (1.0 + rng.uniform(0, 5, shape[:-1])[..., None]) + 0.3 * rng.standard_normal(shape)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 9])
def test_gauss_jordan_equals_the_pivoted_inverse_of_well_posed_matrices(size):
    a = _diagonally_heavy(np.random.default_rng(size), (64, 3, size, size))
    got = np.asarray(jax.jit(si.gauss_jordan_inverse)(jnp.asarray(a)))
    np.testing.assert_allclose(got, np.linalg.inv(a), rtol=0, atol=1e-12 * np.abs(np.linalg.inv(a)).max())
    assert float(jnp.max(si.inverse_residual(jnp.asarray(a), jnp.asarray(got)))) < si.RESIDUAL_LIMIT


def test_a_matrix_that_needs_pivoting_sends_its_batch_to_the_pivoted_inverse():
    rng = np.random.default_rng(0)
    a = _diagonally_heavy(rng, (16, 4, 4))
    a[5] = np.array([[0.0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 2, 0], [0, 0, 0, 3]])   # zero first pivot
    a[9] = np.array([[1e-10, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])  # tiny pivot: error ≈ 1e-10
    plain = np.asarray(si.gauss_jordan_inverse(jnp.asarray(a)))
    assert not np.all(np.isfinite(plain[5]))  # what the check must catch: a division by the zero pivot
    residual = np.asarray(si.inverse_residual(jnp.asarray(a), jnp.asarray(plain)))
    assert not residual[9] <= si.RESIDUAL_LIMIT  # the growth of the tiny pivot spoils the inverse
    got = np.asarray(jax.jit(si.small_inverse)(jnp.asarray(a)))
    np.testing.assert_allclose(got @ a, np.broadcast_to(np.eye(4), a.shape), atol=1e-12)


def test_the_model_blocks_at_sampled_states_and_long_steps_need_no_pivoting():
    """At sampled states and parameters, for steps up to a week, every dense component of I − γhJ
    is inverted without the fallback and matches numpy's pivoted inverse: X W = I to rounding."""
    model = default_model()
    n = 200
    t, y, p = stepper._sample_points(model, n, np.random.default_rng(3))
    p = {k: jnp.asarray(v) for k, v in p.items()}
    struct = stepper.jacobian_structure(model, stepper.extra_inputs(model, p))
    _, jc = stepper.rhs_and_compressed_jacobian(model, struct, jnp.asarray(t), jnp.asarray(y), p)
    blocks = [b for level in stepper.dense_blocks(struct, jc) for b in level]
    checked = 0
    for h in (0.05, 30.0, 10080.0):
        for block in blocks:
            size = block.shape[-1]
            w = jnp.eye(size) - stepper.ROS34PW2_GAMMA * h * block
            x = si.gauss_jordan_inverse(w)
            assert np.all(np.asarray(si.inverse_residual(w, x)) <= si.RESIDUAL_LIMIT)
            w, x = np.asarray(w), np.asarray(x)
            scale = np.abs(w).max(axis=(-2, -1)) * np.abs(x).max(axis=(-2, -1))
            assert np.all(np.abs(x @ w - np.eye(size)).max(axis=(-2, -1)) <= 1e-13 * scale)
            checked += block.shape[1]
    assert checked == 3 * sum(k for lev in struct.levels for _, k in lev.groups)
