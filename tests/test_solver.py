"""User-set solver method and accuracy ([solver] rtol, smallest_step and method, `--rtol` /
`--smallest-step` / `--method`).

The defaults give the records of a scenario without [solver] bit for bit; another tolerance is a
traced argument of the compiled segment (no new compilation); the count of steps accepted above
the tolerance (`steps_over_tolerance`) says when the result is less accurate than rtol, checked
against the exact solution of a stiff ODE; bad values get one error naming the field. The
accuracy against independent simulators (Radau, libRoadRunner) is in tests/test_sbml.py.
"""
from __future__ import annotations

import numpy as np
import pytest

import opioidsim.engine.core as core  # noqa: I001  (enables 64-bit JAX first)
import jax
import jax.numpy as jnp

from opioidsim.engine import integrate, make_grid
from opioidsim.engine.core import scenario_grid, simulate, subject_parameters
from opioidsim.engine.dosing import DoseEvents, compile_doses
from opioidsim.engine.stepper import ros2_step
from opioidsim.errors import ScenarioError
from opioidsim.model.base import Module, State
from opioidsim.model.model import Model, default_model
from opioidsim.params import Parameter
from opioidsim.scenarios import Dose, Scenario, load_scenario
from toy_models import BOLUS, BOLUS_NAMES, CUBIC, ros2_stability, stop_after


def _short(**kw) -> Scenario:
    args = dict(name="solver-short", duration="1h", record_every="1min", cohort={"subjects": 1, "seed": 3},
                doses=[Dose("heroin", "15 mg", route="iv", at="10min")], readouts=["plasma_heroin", "ventilation"])
    args.update(kw)
    return Scenario(**args)


def test_explicit_defaults_give_the_records_of_no_solver_table_bit_for_bit():
    implicit = simulate(_short())
    explicit = simulate(_short(solver={"rtol": 3e-3, "smallest_step": "3.75s", "method": "ros34pw2"}))
    other = simulate(_short(solver={"rtol": 1e-4, "smallest_step": "1s"}))
    second_order = simulate(_short(solver={"method": "ros2"}))
    for k in ("plasma_heroin", "ventilation"):
        np.testing.assert_array_equal(explicit[k].values, implicit[k].values)
        assert not np.array_equal(other[k].values, implicit[k].values), k  # the settings take effect
        assert not np.array_equal(second_order[k].values, implicit[k].values), k
        # ... and both methods meet the tolerance's accuracy: within a few rtol of the tight run
        scale = np.max(np.abs(other[k].values))
        for ds in (implicit, second_order):
            assert np.max(np.abs(ds[k].values - other[k].values)) < 10 * core.RTOL * scale, k
    assert implicit.attrs["solver_method"] == "ros34pw2" and second_order.attrs["solver_method"] == "ros2"
    np.testing.assert_array_equal(explicit["steps_over_tolerance"].values, implicit["steps_over_tolerance"].values)
    # the run records the accuracy it was given and the quantum it used
    assert implicit.attrs["solver_rtol"] == 3e-3 and implicit.attrs["solver_smallest_step_min"] == 1 / 16
    assert implicit.attrs["integration_step_min"] == 1 / 16
    assert other.attrs["solver_rtol"] == 1e-4 and other.attrs["integration_step_min"] == pytest.approx(1 / 60)
    assert "[solver]" not in implicit.attrs["scenario_toml"] and "[solver]" in other.attrs["scenario_toml"]


def test_another_rtol_does_not_compile_again():
    grid = make_grid(600.0, 10.0, max_step=0.125)  # up to 80 quanta a step: room to adapt
    n = 2
    p = {k: np.full(n, v.internal_value) for k, v in BOLUS.parameters.items()}
    p["omega"] = np.array([0.05, 0.1])
    ev = DoseEvents(np.full((n, 1), 40, dtype=np.int64), np.zeros((n, 1), np.int32), np.full((n, 1), 5.0),
                    np.array([5.0]))
    y0 = BOLUS.initial_state(p)
    run, _ = core._segment_runner(BOLUS, BOLUS_NAMES)
    steps = []
    for rtol in (1e-2, 1e-4, 1e-6):
        st: dict = {}
        integrate(BOLUS, grid, y0, p, ev, BOLUS_NAMES, stats=st, rtol=rtol)
        if rtol == 1e-2:
            compiled = run._cache_size()
        steps.append(int(st["steps"].sum()))
    assert run._cache_size() == compiled
    assert steps[0] < steps[1] < steps[2], steps  # and the tolerance was applied




def test_the_error_estimate_is_the_first_order_one_and_overstates_the_steps_error():
    """Issue 7, why one-quantum steps stay over the tolerance after a bolus at small quanta: the
    estimate h·(k1 + k2)/2 is the local error of the embedded first-order solution, O(h²), while the
    step carries the second-order solution, whose local error is O(h³). On y' = −y³ from y = 1
    (exact y(h) = 1/√(1 + 2h), not stiff at these steps) the estimate falls ~4× and the true error
    ~8× per halving of h, and the estimate is the larger by a factor growing as 1/h. So a step is
    over the tolerance where h²|y''|/2 exceeds it, while its result is more accurate than that."""
    hs = np.array([0.04, 0.02, 0.01, 0.005, 0.0025])
    y1, est = ros2_step(CUBIC, jnp.zeros(hs.size), jnp.ones((hs.size, 1)), {"lam": jnp.ones(hs.size)}, jnp.asarray(hs))
    true = np.abs(np.asarray(y1)[:, 0] - 1.0 / np.sqrt(1.0 + 2.0 * hs))
    est = np.abs(np.asarray(est)[:, 0])
    assert np.all((est[2:-1] / est[3:] > 3.5) & (est[2:-1] / est[3:] < 4.5)), est
    assert np.all((true[2:-1] / true[3:] > 7.0) & (true[2:-1] / true[3:] < 9.0)), true
    assert np.all(est > 5.0 * true) and np.all(np.diff(est / true) > 0), est / true


@pytest.mark.parametrize("rtol, quantum_s, over_tolerance", [(3e-3, 3.75, True), (3e-3, 0.01, False)])
def test_steps_over_tolerance_say_when_the_result_is_not_as_accurate_as_rtol(rtol, quantum_s, over_tolerance):
    """A bolus of 10 at 1 min: the time scale just after it (0.6 s) is far below the default
    quantum (3.75 s), whose one-quantum steps are taken anyway: tens of % off the exact solution,
    and counted. With a quantum of 0.01 s every step meets the tolerance, and the result is within
    a few rtol of the exact solution."""
    amount, t_dose = 10.0, 1.0
    grid = make_grid(30.0, 0.5, quantum_s / 60.0)
    n = 2
    ev = DoseEvents(np.full((n, 1), round(t_dose / grid.h), dtype=np.int64), np.zeros((n, 1), np.int32),
                    np.full((n, 1), amount), np.array([t_dose]))
    st: dict = {}
    got = integrate(CUBIC, grid, np.zeros((n, 1)), {"lam": np.ones(n)}, ev, ("y_out",), stats=st, rtol=rtol)[0, :, 0]
    t = grid.record_times_min
    after = t > t_dose
    exact = amount / np.sqrt(1.0 + 2.0 * amount**2 * (t[after] - t_dose))
    err = np.max(np.abs(got[after] - exact) / exact)
    assert (st["steps_over_tolerance"] > 0).all() == over_tolerance, st["steps_over_tolerance"]
    if over_tolerance:
        assert err > 0.1, err
    else:
        assert err < 3 * rtol, err


class _Saturating(Module):
    """A drive w' = ε (1 − w) (w = 1 − e^(−εt) from 0) pulls x' = k (a w − x) up to x's upper bound 1
    (as breathing oxygen-enriched air pulls PaO2 to its bound) and z' = k (1 − a w − z) down to its
    lower bound 0. Without the bounds x = 1 − z = a (1 − k e^(−εt)/(k − ε)) + a ε e^(−kt)/(k − ε),
    rising for good; with them x = min(1, that) and z = max(0, 1 − that): once on its bound a state
    is held there, its rate pointing out of it (a w > 1 from t = ln 2/ε on)."""

    name = "saturating"
    states = (State("x", "1", 0.0, "pulled up", upper=1.0), State("z", "1", 1.0, "pulled down"),
              State("w", "1", 0.0, "drive"))
    parameters = (Parameter("k", 20.0, "1/min", "assumed: test"), Parameter("a", 2.0, "1", "assumed: test"),
                  Parameter("eps", 0.05, "1/min", "assumed: test"))
    provides = ("x_out", "z_out", "w_out")

    def outputs(self, y, u, p):
        return {"x_out": y["x"], "z_out": y["z"], "w_out": y["w"]}

    def rates(self, t, y, u, p):
        pull = p["a"] * y["w"]
        return {"x": p["k"] * (pull - y["x"]), "z": p["k"] * (1.0 - pull - y["z"]),
                "w": p["eps"] * (1.0 - y["w"])}


SATURATING = Model([_Saturating()])


def test_a_state_held_at_its_bound_does_not_hold_the_step_at_one_quantum():
    """Issue 7: x and z reach their bounds at ~14 min and are pulled out of them for the remaining
    106 min. Projecting the unmodified step back onto the bound every step measured the outward
    transient it discards as error and took one quantum per step from then on (all of them over
    the tolerance); with the rate of a held state set to 0 (Shampine et al. 2005) the step grows
    to the record interval on the bounds, every step there meets the tolerance, and the records
    are the exact solution of the problem with bounds within a few rtol. Three quanta stay over the
    tolerance, none on the bounds: two as x leaves 0 (its tolerance there is atol alone) and the
    one that reaches the bound (the solution has a kink there); each is redone in at most
    MAX_SUBSTEPS sub-steps, and the sub-steps still over the tolerance are what is counted."""
    grid = make_grid(120.0, 1.0)
    n, rtol, k, a, eps = 2, core.RTOL, 20.0, 2.0, 0.05
    ev = DoseEvents(np.full((n, 1), np.iinfo(np.int64).max // 4), np.zeros((n, 1), np.int32), np.zeros((n, 1)),
                    np.array([]))
    p = {"k": np.full(n, k), "a": np.full(n, a), "eps": np.full(n, eps)}
    st: dict = {}
    got = integrate(SATURATING, grid, np.tile([0.0, 1.0, 0.0], (n, 1)), p, ev, ("x_out", "z_out", "w_out"),
                    stats=st, rtol=rtol)[0]
    t = grid.record_times_min
    free = a * (1.0 - k * np.exp(-eps * t) / (k - eps)) + a * eps * np.exp(-k * t) / (k - eps)
    exact = np.stack([np.minimum(1.0, free), np.maximum(0.0, 1.0 - free), 1.0 - np.exp(-eps * t)], -1)
    assert np.max(np.abs(got - exact)) < 3 * rtol, np.max(np.abs(got - exact), axis=0)
    on_bounds = t > 20.0
    assert (got[on_bounds, :2] == [1.0, 0.0]).all()
    assert (st["steps_over_tolerance"] <= 3 * core.MAX_SUBSTEPS).all(), st["steps_over_tolerance"]  # 1,827 without
    # one quantum per step would be 16 tries a record on the bounds; the record interval, 1
    assert (st["record_tries"][:, on_bounds[1:]] == 1).all(), st["record_tries"]


def test_a_checkpoint_is_resumed_only_at_the_tolerance_it_was_made_with(tmp_path):
    from opioidsim.io.checkpoint import Checkpoint, CheckpointError

    grid = make_grid(300.0, 0.5, max_step=0.125)
    n = 2
    p = {k: np.full(n, v.internal_value) for k, v in BOLUS.parameters.items()}
    ev = DoseEvents(np.full((n, 1), 40, dtype=np.int64), np.zeros((n, 1), np.int32), np.full((n, 1), 5.0),
                    np.array([5.0]))
    y0 = BOLUS.initial_state(p)
    with pytest.raises(KeyboardInterrupt):
        integrate(BOLUS, grid, y0, p, ev, BOLUS_NAMES, progress=stop_after(3), rtol=1e-4,
                  checkpoint=Checkpoint(tmp_path / "ck", {"test": "rtol"}, every_s=0.0))
    with pytest.raises(CheckpointError, match="engine settings differ"):
        integrate(BOLUS, grid, y0, p, ev, BOLUS_NAMES, rtol=1e-5,
                  checkpoint=Checkpoint(tmp_path / "ck", {"test": "rtol"}, every_s=0.0))
    with pytest.raises(CheckpointError, match="engine settings differ"):  # nor with another method
        integrate(BOLUS, grid, y0, p, ev, BOLUS_NAMES, rtol=1e-4, step=ros2_step,
                  checkpoint=Checkpoint(tmp_path / "ck", {"test": "rtol"}, every_s=0.0))
    st: dict = {}
    resumed = integrate(BOLUS, grid, y0, p, ev, BOLUS_NAMES, rtol=1e-4, stats=st,
                        checkpoint=Checkpoint(tmp_path / "ck", {"test": "rtol"}, every_s=0.0))
    whole = integrate(BOLUS, grid, y0, p, ev, BOLUS_NAMES, rtol=1e-4)
    np.testing.assert_array_equal(resumed, whole)


BAD = [  # ([solver] table, field, words the message must hold)
    ({"rtol": 0}, "solver.rtol", "from 1e-10 to less than 0.1"),
    ({"rtol": -1e-3}, "solver.rtol", "from 1e-10 to less than 0.1"),
    ({"rtol": 0.1}, "solver.rtol", "less than 0.1"),
    ({"rtol": "1e-5"}, "solver.rtol", "must be a number"),
    ({"rtol": True}, "solver.rtol", "must be a number"),
    ({"rtol": float("nan")}, "solver.rtol", "must be a number"),
    ({"smallest_step": 0.5}, "solver.smallest_step", "a number needs a unit"),
    ({"smallest_step": "0s"}, "solver.smallest_step", "at least 1 ms"),
    ({"smallest_step": "-1s"}, "solver.smallest_step", "at least 1 ms"),
    ({"smallest_step": "5 mg"}, "solver.smallest_step", "that is a mass"),
    ({"smallest_step": "2min"}, "solver.smallest_step", "must not be longer than record_every = '1min'"),
    ({"tolerance": 1e-5}, "solver.tolerance", "allowed here: rtol, smallest_step, method"),
    ({"method": "rk45"}, "solver.method", "must be one of 'ros34pw2', 'ros2'"),
    ({"method": 2}, "solver.method", "must be one of 'ros34pw2', 'ros2'"),
    ("fine", "solver", "must be a table"),
]


@pytest.mark.parametrize("solver, field, words", BAD)
def test_bad_solver_values_get_one_error_naming_the_field(solver, field, words):
    with pytest.raises(ScenarioError) as info:
        _short(solver=solver)
    err = info.value
    assert err.field == field and words in str(err) and err.more == 0, str(err)
    assert "\n" not in str(err)
    import tomli_w  # the same from a file

    text = tomli_w.dumps({"solver": solver}) + "\n" + _short().to_toml()
    with pytest.raises(ScenarioError) as info:
        Scenario.from_toml_text(text)
    assert info.value.field == field and words in str(info.value), str(info.value)


def test_solver_round_trips_through_toml_and_is_refused_beside_a_behaviour_table():
    sc = load_scenario("acute-heroin-iv").with_solver(rtol=1e-5).with_solver(smallest_step="0.5s")
    sc = sc.with_solver(method="ROS2")
    assert (sc.solver.rtol, sc.solver.smallest_step, sc.solver.method) == (1e-5, "0.5s", "ros2")
    back = Scenario.from_toml_text(sc.to_toml())
    assert back == sc and "[solver]" in sc.to_toml()
    assert scenario_grid(back).h == pytest.approx(0.5 / 60) and scenario_grid(back).stride == 60
    assert "[solver]" not in load_scenario("acute-heroin-iv").to_toml()  # unchanged without it
    with pytest.raises(ScenarioError) as info:
        load_scenario("rat-heroin-long-access").with_solver(rtol=1e-5)
    assert info.value.field == "solver.rtol" and "dose schedules only" in str(info.value)


def test_sbml_export_snaps_doses_to_the_scenarios_smallest_step():
    from opioidsim.io.sbml import export_sbml
    from opioidsim.model import default_model

    model = default_model()
    sc = _short(doses=[Dose("heroin", "15 mg", route="iv", at="601.2s")], solver={"smallest_step": "0.2s"})
    grid = scenario_grid(sc)
    export = export_sbml(model, sc, check=False)
    p = core.subject_parameters(model, sc, 1, 0, variability=False)
    engine = compile_doses(model, sc.doses, sc.duration_min, grid.h, p).times_min
    assert [t for t, _ in export.events] == pytest.approx(list(engine), abs=1e-12)
    assert export.events[0][0] == pytest.approx(601.2 / 60, abs=1e-9)  # 10 min at the default 3.75 s


@pytest.mark.parametrize("argv, flag, words", [
    (["--rtol", "0"], "--rtol", "from 1e-10 to less than 0.1"),
    (["--rtol", "abc"], "--rtol", "must be a number"),
    (["--smallest-step", "2min"], "--smallest-step", "must not be longer than record_every"),
    (["--smallest-step", "3"], "--smallest-step", "must be a time with a unit"),
    (["--method", "euler"], "--method", "must be one of 'ros34pw2', 'ros2'"),
])
def test_cli_solver_flags_refuse_bad_values_in_one_line(argv, flag, words, tmp_path, capsys):
    from opioidsim.cli import main

    out = tmp_path / "res"
    assert main(["run", "acute-heroin-iv", "--out", str(out), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("opioidsim: error:") and flag in err and words in err, err
    assert not out.exists()


def test_cli_resume_takes_no_solver_flags(tmp_path, capsys):
    from opioidsim.cli import main

    assert main(["run", "--resume", str(tmp_path / "res"), "--rtol", "1e-5"]) == 2
    err = capsys.readouterr().err
    assert "--rtol" in err and "--resume" in err and err.count("\n") == 1, err
    assert main(["run", "--resume", str(tmp_path / "res"), "--method", "ros2"]) == 2
    err = capsys.readouterr().err
    assert "--method" in err and "--resume" in err and err.count("\n") == 1, err


class _Latch(Module):
    """A latch closing by positive feedback, y' = λ y (1 − y): its open state 0 is unstable (it grows
    at λ), its closed state 1 stable. Exact solution y = 1 / (1 + (1/y0 − 1) e^(−λt)). With
    λ = 5.6/min it grows as fast as the cardiac-arrest latch's loop through ventilation, PaO2 and the
    hypoxia timer in random subject 3,127 of RELIABILITY.md."""

    name = "latch"
    states = (State("y", "1", 0.01, "latch", upper=1.0),)
    parameters = (Parameter("lam", 5.6, "1/min", "assumed: test (the arrest loop's growth rate)"),)
    provides = ("y_out",)

    def outputs(self, y, u, p):
        return {"y_out": y["y"]}

    def rates(self, t, y, u, p):
        return {"y": p["lam"] * y["y"] * (1.0 - y["y"])}


LATCH = Model([_Latch()])


def test_a_latch_closing_faster_than_the_quantum_allows_is_followed_in_sub_steps():
    """Issue 7 (the stalled random subjects of RELIABILITY.md): ROS2 damps a mode that grows, once
    z = hλ is not small: one default quantum (3.75 s) of a mode growing at 5.6/min has z = 0.35,
    where the flow grows by e^0.35 = 1.42 and ROS2 by R(0.35) < 1. One-quantum steps taken as they
    are thus hold the latch near open, although its rate is never negative; the engine redoes such a
    quantum in sub-steps (the step's estimate is over the tolerance), and the records follow the
    exact solution."""
    assert ros2_stability(0.35) < 1.0 < np.exp(0.35)  # the damping, analytically
    assert 1.0 < ros2_stability(0.35 / core.MAX_SUBSTEPS) ** core.MAX_SUBSTEPS
    n, lam, y0 = 2, 5.6, 0.01
    grid = make_grid(10.0, 0.25, 3.75 / 60.0)
    ev = DoseEvents(np.full((n, 1), np.iinfo(np.int64).max // 4), np.zeros((n, 1), np.int32), np.zeros((n, 1)),
                    np.array([]))
    t = grid.record_times_min
    exact = 1.0 / (1.0 + (1.0 / y0 - 1.0) * np.exp(-lam * t))
    for step in (ros2_step, core.ros34pw2_step):  # ROS2, which needs the sub-steps here, and the default
        got = integrate(LATCH, grid, np.full((n, 1), y0), {"lam": np.full(n, lam)}, ev, ("y_out",), step=step)[0, :, 0]
        assert np.max(np.abs(got - exact)) < 0.02, np.max(np.abs(got - exact))
        assert got[-1] > 0.99


def _latch_by_decisions(dosed_at_min, minutes=6.0, every_min=0.25, step=ros2_step):
    """The latch of the test above advanced as the behaviour layer advances its subjects
    (`advance_to` from one decision to the next, no events on the way), recorded at each decision;
    dosed_at_min: when the subjects were last dosed (None: one-quantum steps taken as they are,
    `_counted_try` without splitting, as `advance_to` stepped before it had sub-steps); step: the
    method (ROS2, whose damping of growing modes the sub-steps were made for, unless told)."""
    n, lam, y0, h = 2, 5.6, 0.01, 3.75 / 60.0
    quanta = int(round(every_min / h))
    y, nn, m = jnp.full((n, 1), y0), jnp.zeros(n, jnp.int64), jnp.ones(n, jnp.int64)
    atol, p, max_m = core.state_atol(LATCH), {"lam": jnp.full(n, lam)}, jnp.asarray(quanta)

    @jax.jit  # one compilation for all the decisions
    def decide(y, nn, m, n_end, since):
        if dosed_at_min is not None:
            return core.advance_to(LATCH, atol, y, nn, m, n_end, p, h, max_m, since_dose_min=since, step=step)

        def unsplit(c):
            yy, n_, mm, k = c
            return (*core._counted_try(LATCH, atol, yy, n_, mm, n_end, n_ < n_end, p, h, max_m, step)[:3], k + 1)

        return jax.lax.while_loop(lambda c: jnp.any(c[1] < n_end), unsplit, (y, nn, m, 0))

    got = []
    for k in range(1, int(round(minutes / every_min)) + 1):
        since = jnp.full(n, (k - 1) * every_min - (0.0 if dosed_at_min is None else dosed_at_min))
        y, nn, m, _ = decide(y, nn, m, jnp.asarray(k * quanta, jnp.int64), since)
        assert np.all(np.asarray(nn) == k * quanta)  # every subject ends on the decision, off its sub-steps
        got.append(float(y[0, 0]))
    t = every_min * np.arange(1, len(got) + 1)
    return t, np.array(got), 1.0 / (1.0 + (1.0 / y0 - 1.0) * np.exp(-lam * t))


def test_the_behaviour_layer_follows_a_fast_latch_in_sub_steps_past_a_doses_transient():
    """Issue 7: the behaviour layer's `advance_to` redoes a one-quantum step over the tolerance in
    sub-steps as the dose-schedule engine does, given how long ago each subject was last dosed;
    without that the latch stalls near open. Within DOSE_TRANSIENT_MIN of a
    dose the steps are taken as they are, as in the engine."""
    t, stalled, exact = _latch_by_decisions(None)
    assert stalled[-1] < 0.5 < exact[-1], (stalled[-1], exact[-1])  # the stall the sub-steps mend
    _, got, _ = _latch_by_decisions(-np.inf)  # never dosed
    assert np.max(np.abs(got - exact)) < 0.02 and got[-1] > 0.99, np.max(np.abs(got - exact))
    # dosed at t = 0: no sub-steps before DOSE_TRANSIENT_MIN, so the latch lags the exact solution there
    _, fresh, _ = _latch_by_decisions(0.0)
    early = t <= core.DOSE_TRANSIENT_MIN
    assert np.allclose(fresh[early], stalled[early]) and fresh[-1] > 0.99, fresh
    # The default third-order method grows by R(0.35) = 1.418 per quantum (the flow: 1.419) and
    # follows the latch even with one-quantum steps taken as they are; its damping zone lies at
    # z = hλ ≈ 1.2-2.3 (tests/test_ros34pw2.py), a mode growing 4× faster
    for dosed in (None, -np.inf, 0.0):
        _, third, _ = _latch_by_decisions(dosed, step=core.ros34pw2_step)
        assert np.max(np.abs(third - exact)) < 0.02, (dosed, np.max(np.abs(third - exact)))


#: random subject 15 of a 16-subject life course (cohort seed 3; every use 20 mg IV heroin, 10 % of
#: bags with 0.1 mg fentanyl, no purity spread): the 4-h decision steps at which it used, and the
#: three whose bag carried fentanyl; the last one killed it in the engine before the fix
_COURSE_USES = (0, 1, 2, 3, 4, 7, 8, 10, 12, 14, 15, 16, 17, 18, 19, 21, 23, 24, 25, 26, 27, 28, 30, 31, 32,
                33, 34, 35, 37, 38, 39, 40, 42, 43, 44, 45, 46, 48, 49, 50, 51, 52, 53, 54, 56, 57, 58, 60, 61,
                62, 64, 65, 66, 68, 69, 70, 72, 73, 74, 75, 77, 78, 79, 80, 81, 82, 83, 84, 85)
_COURSE_LACED = (21, 30, 85)


def test_a_laced_bag_on_top_of_a_users_opioid_is_not_a_false_death():
    """Issue 5/7: one quantum after a fentanyl-laced bag put 2.0 of the brainstem's receptors
    bound, PaCO2 at 0 and PaO2 at 160 mmHg: the subject then did not breathe until CO2 built up
    again and died, 14 days into a life course, where the Radau reference (rtol 1e-6) keeps SpO2
    at 95.8 % or more. Such deaths were most of the life courses' overdose deaths. The cause was
    the Jacobian ROS2 solved with: fentanyl's Hill term x^0.844 had an unbounded slope at a
    vanishing drug tail (`safe_pow`, test_stepper.py; with it the engine needs no transient split
    here). Independent bounds: a bound fraction, so a signal, is at most 1; and the same bag
    leaves a typical naive adult at SpO2 90 %, which a user with 14 days of tolerance must not
    fall below."""
    model = default_model()
    doses = []
    for k in _COURSE_USES:
        doses.append(Dose("heroin", "20 mg", route="iv", at=f"{k * 240}min"))
        if k in _COURSE_LACED:
            doses.append(Dose("fentanyl", "0.1 mg", route="iv", at=f"{k * 240}min"))
    last = _COURSE_USES[-1] * 240.0
    # records every 2.5 min: interpolated, so the steps are those of any records 5 min apart or closer
    # (docs/guide/11-engine.md, *Interpolated records*), and close enough to find SpO2's lowest point
    # after the last bag within 0.01 % of 15 s records (95.79 %), at a quarter of their cost (most of
    # it was taking 80,000 records)
    grid = make_grid(last + 30.0, 2.5)
    p = subject_parameters(model, Scenario(duration="1d", cohort={"subjects": 16, "seed": 3}), 1, 3, first=15)
    ev = compile_doses(model, doses, last + 30.0, grid.h, p)
    out = integrate(model, grid, np.asarray(model.initial_state(p)), p, ev,
                    ("spo2", "cardiac_arrest", "mor_signal_brainstem"))[0]
    after = grid.record_times_min >= last
    assert out[:, 1].max() < 0.5, "false cardiac arrest"
    assert out[:, 2].max() <= 1.0 + 1e-9, out[:, 2].max()
    assert out[after, 0].min() > 90.0, out[after, 0].min()
