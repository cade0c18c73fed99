"""User-set solver accuracy ([solver] rtol and smallest_step, `--rtol` / `--smallest-step`).

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
import jax.numpy as jnp

from opioidsim.engine import integrate, make_grid
from opioidsim.engine.core import scenario_grid, simulate
from opioidsim.engine.dosing import DoseEvents, compile_doses
from opioidsim.errors import ScenarioError
from opioidsim.model.base import Module, State
from opioidsim.model.model import Model
from opioidsim.params import Parameter
from opioidsim.scenarios import Dose, Scenario, load_scenario
from toy_models import BOLUS, BOLUS_NAMES


def _short(**kw) -> Scenario:
    args = dict(name="solver-short", duration="1h", record_every="1min", cohort={"subjects": 1, "seed": 3},
                doses=[Dose("heroin", "15 mg", route="iv", at="10min")], readouts=["plasma_heroin", "ventilation"])
    args.update(kw)
    return Scenario(**args)


def test_explicit_defaults_give_the_records_of_no_solver_table_bit_for_bit():
    implicit = simulate(_short())
    explicit = simulate(_short(solver={"rtol": 3e-3, "smallest_step": "3.75s"}))
    other = simulate(_short(solver={"rtol": 1e-4, "smallest_step": "1s"}))
    for k in ("plasma_heroin", "ventilation"):
        np.testing.assert_array_equal(explicit[k].values, implicit[k].values)
        assert not np.array_equal(other[k].values, implicit[k].values), k  # the settings take effect
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


class _Cubic(Module):
    """y' = −λ y³: stiff right after a bolus (time scale 1/(λ y²)), exact solution known."""

    name = "cubic"
    states = (State("y", "mg", 0.0, "amount"),)
    parameters = (Parameter("lam", 1.0, "1/min", "assumed: test"),)
    provides = ("y_out",)

    def outputs(self, y, u, p):
        return {"y_out": y["y"]}

    def rates(self, t, y, u, p):
        return {"y": -p["lam"] * y["y"] ** 3 + 0.0 * jnp.asarray(t)}


CUBIC = Model([_Cubic()])


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


def test_a_checkpoint_is_resumed_only_at_the_tolerance_it_was_made_with(tmp_path):
    from opioidsim.io.checkpoint import Checkpoint, CheckpointError

    grid = make_grid(300.0, 0.5, max_step=0.125)
    n = 2
    p = {k: np.full(n, v.internal_value) for k, v in BOLUS.parameters.items()}
    ev = DoseEvents(np.full((n, 1), 40, dtype=np.int64), np.zeros((n, 1), np.int32), np.full((n, 1), 5.0),
                    np.array([5.0]))
    y0 = BOLUS.initial_state(p)
    calls = []

    def stop(_fraction):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        integrate(BOLUS, grid, y0, p, ev, BOLUS_NAMES, progress=stop, rtol=1e-4,
                  checkpoint=Checkpoint(tmp_path / "ck", {"test": "rtol"}, every_s=0.0))
    with pytest.raises(CheckpointError, match="engine settings differ"):
        integrate(BOLUS, grid, y0, p, ev, BOLUS_NAMES, rtol=1e-5,
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
    ({"tolerance": 1e-5}, "solver.tolerance", "allowed here: rtol, smallest_step"),
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
    assert (sc.solver.rtol, sc.solver.smallest_step) == (1e-5, "0.5s")
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
