"""Toy models shared by the engine tests: they compile in under a second, so the engine's
bookkeeping (chunks, segments, records, doses, runners) can be checked apart from the physiology.
Also ROS2's stability function, the closed form several of those tests check steps against, and
the small problems the step tests share (a stiff linear relaxation, a cubic decay with a known
solution)."""
from __future__ import annotations

import math

import opioidsim.engine.core  # noqa: F401,I001  (enables 64-bit JAX before jnp is used)
import jax.numpy as jnp

from opioidsim.model.base import Module, State
from opioidsim.model.model import Model
from opioidsim.params import Parameter

SRC = "test-only parameter (toy problem)"


def ros2_stability(z: float) -> float:
    """R(z) of ROS2 for y' = λy, z = hλ, from Verwer et al. 1999 (SIAM J Sci Comput 20:1456), γ = 1 + 1/√2."""
    g = 1.0 + 1.0 / math.sqrt(2.0)
    return (1.0 + (1.0 - 2.0 * g) * z + (g * g - 2.0 * g + 0.5) * z * z) / (1.0 - g * z) ** 2


class BolusModule(Module):
    """A one-compartment bolus target (amount' = −kel·amount) plus a forced state
    y' = −k·y + amp·sin(ω t), so that doses and t both matter and subjects with different k need
    different numbers of steps per record."""

    name = "bolus"
    states = (State("amount", "mg", 0.0, "amount"), State("y", "1", 0.5, "forced", lower=-math.inf))
    parameters = (Parameter("kel", 0.05, "1/min", SRC), Parameter("k", 0.7, "1/min", SRC),
                  Parameter("amp", 1.3, "1", SRC), Parameter("omega", 2.0, "1/min", SRC))
    provides = ("amount_out", "y_out")

    def outputs(self, y, u, p):
        return {"amount_out": y["amount"], "y_out": y["y"]}

    def rates(self, t, y, u, p):
        return {"amount": -p["kel"] * y["amount"], "y": -p["k"] * y["y"] + p["amp"] * jnp.sin(p["omega"] * t)}


BOLUS = Model([BolusModule()])
BOLUS_NAMES = ("amount_out", "y_out")


class StiffRelaxModule(Module):
    """dy/dt = −λ (y − c) with λ = 1e4 /min: far stiffer than any step the engine takes."""

    name = "stiff"
    states = (State("s", "1", 1.0, "stiff state", lower=-math.inf),)
    parameters = (Parameter("lam", 1e4, "1/min", SRC), Parameter("c", 0.25, "1", SRC))

    def rates(self, t, y, u, p):
        return {"s": -p["lam"] * (y["s"] - p["c"])}


class CubicModule(Module):
    """y' = −λ y³: stiff right after a bolus (time scale 1/(λ y²)), exact solution known."""

    name = "cubic"
    states = (State("y", "mg", 0.0, "amount"),)
    parameters = (Parameter("lam", 1.0, "1/min", "assumed: test"),)
    provides = ("y_out",)

    def outputs(self, y, u, p):
        return {"y_out": y["y"]}

    def rates(self, t, y, u, p):
        return {"y": -p["lam"] * y["y"] ** 3 + 0.0 * jnp.asarray(t)}


CUBIC = Model([CubicModule()])


def stop_after(calls: int):
    """A progress callback that interrupts a run (as Ctrl-C does) at its `calls`-th report: the
    engine reports after each segment, so the run stops with that many segments done."""
    seen = []

    def stop(_fraction):
        seen.append(1)
        if len(seen) == calls:
            raise KeyboardInterrupt

    return stop
