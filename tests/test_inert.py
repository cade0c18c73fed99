"""The engine leaves out the drug states no dose of a run reaches (engine/inert.py): which ones,
that the run is the whole model's to rounding, and that a dose into a left-out state is refused."""
from __future__ import annotations

import numpy as np
import pytest

from opioidsim.engine import integrate, make_grid, simulate, subject_parameters
from opioidsim.engine.core import run_model
from opioidsim.engine.dosing import compile_doses, dose_targets
from opioidsim.engine.inert import ReducedModel, for_targets, whole_model
from opioidsim.model.model import default_model
from opioidsim.model.pk import COMPOUNDS
from opioidsim.scenarios import Dose, Scenario

HEROIN = [Dose("heroin", "20 mg", route="iv", at="1h", every="8h")]


def _states_of(model, compounds):
    # a compound's states carry its name (sixmam_central, effect_6mam, mor_bound_vta_6mam, ...)
    spelled = {c: (c, "sixmam") if c == "6mam" else (c,) for c in compounds}
    return {n for n in model.state_names for c in compounds if any(s in n for s in spelled[c])}


def test_heroin_alone_leaves_out_every_other_drug():
    full = default_model()
    model = run_model(Scenario(duration="1d", doses=HEROIN))
    assert isinstance(model, ReducedModel)
    chain = ("heroin", "6mam", "morphine")
    others = set(COMPOUNDS) - set(chain)
    # morphine is heroin's metabolite, not given: its own depots stay empty. Heroin's depots for
    # the routes not given are kept (a drug keeps every route, so all heroin runs share one model)
    morphine_depots = {n for n in _states_of(full, ["morphine"]) if n.endswith("_depot")}
    assert morphine_depots and set(model.left_out) == _states_of(full, others) | morphine_depots
    assert {"heroin_smoked_depot", "heroin_intranasal_depot"} <= set(model.state_names)
    smoked = run_model(Scenario(duration="1d", doses=[Dose("heroin", "20 mg", route="smoked", at="1h")]))
    assert smoked is model
    # what heroin reaches: its chain in plasma and brain, and its three ligands in every region
    kept = set(model.state_names)
    assert {"heroin_central", "sixmam_central", "morphine_central", "effect_morphine",
            "mor_bound_brainstem_6mam", "mor_bound_vta_heroin"} <= kept
    # every module that carries no drug keeps all of its states
    assert set(full.state_names) - kept == set(model.left_out)
    assert not [n for b in full.blocks if not b.module.carries_drug for n in (s.name for s in b.module.states)
                if n not in kept]


def test_a_metabolite_is_kept_with_the_drug_it_comes_from():
    # oral naltrexone: 6β-naltrexol forms from it (first pass and later), so it is reached through
    # metabolism, not by a dose
    model = run_model(Scenario(duration="1d", doses=[Dose("naltrexone", "50 mg", route="oral", at="1h")]))
    assert {"naltrexone_oral_depot", "naltrexone_central", "naltrexol_central", "effect_naltrexol",
            "mor_bound_vta_naltrexol"} <= set(model.state_names)
    assert "effect_heroin" in model.left_out and "naltrexone_xr_depot" in model.state_names  # every route kept


def test_without_doses_no_drug_state_is_integrated_and_the_readouts_are_those_of_no_drug():
    sc = Scenario(duration="6h", record_every="1h", readouts=["plasma_morphine", "mor_occupancy_vta", "ventilation"])
    model = run_model(sc)
    assert not [n for n in model.state_names if any(c in n for c in ("_central", "effect_", "mor_bound_"))]
    ds = simulate(sc)
    assert np.all(ds["plasma_morphine"].values == 0.0) and np.all(ds["mor_occupancy_vta"].values == 0.0)
    assert np.all(ds["ventilation"].values > 0)


@pytest.mark.parametrize("doses", [
    HEROIN,
    HEROIN + [Dose("buprenorphine", "8 mg", route="sublingual", at="20h"), Dose("naloxone", "0.4 mg", route="iv",
                                                                                  at="30h")],
])
def test_the_run_is_the_whole_models_to_rounding_and_the_left_out_states_stay_at_zero(doses):
    sc = Scenario(duration="2d", record_every="30min", cohort={"subjects": 3, "seed": 5}, doses=doses)
    full = whole_model()
    reduced = for_targets(default_model(), dose_targets(doses))
    assert isinstance(reduced, ReducedModel)
    grid = make_grid(sc.duration_min, sc.record_every_min)
    runs, stats = {}, {}
    for name, model in (("whole", full), ("reduced", reduced)):
        p = subject_parameters(model, sc, 3, 5)
        ev = compile_doses(model, sc.doses, sc.duration_min, grid.h, p)
        stats[name] = {}
        runs[name] = integrate(model, grid, model.initial_state(p), p, ev, full.readouts, stats=stats[name])
    # the same steps (the left-out states add no error: they are 0) and the same records to rounding
    np.testing.assert_array_equal(stats["whole"]["steps"], stats["reduced"]["steps"])
    np.testing.assert_allclose(runs["reduced"], runs["whole"], rtol=1e-9, atol=1e-12)
    # in the whole model the states left out never left 0 (what leaving them out assumes)
    left = [full.index[n] for n in reduced.left_out]
    assert np.all(stats["whole"]["y_final"][:, left] == 0.0)
    np.testing.assert_allclose(stats["reduced"]["y_final"], stats["whole"]["y_final"][:, reduced.kept],
                               rtol=1e-9, atol=1e-15)


def test_a_dose_into_a_left_out_state_is_refused_with_its_reason():
    model = run_model(Scenario(duration="1d", doses=HEROIN))
    p = subject_parameters(model, Scenario(duration="1d"), 1, 0)
    with pytest.raises(KeyError, match="fentanyl_central.*left out of this run's model"):
        compile_doses(model, [Dose("fentanyl", "0.1 mg", route="iv", at="1h")], 1440.0, 1 / 16, p)


def methadone_trial(subjects: int) -> Scenario:
    """A short trial (7 days of history, 1 week of follow-up): no substitution against methadone."""
    return Scenario.from_toml_text(f"""
[scenario]
name = "t"
[cohort]
subjects = {subjects}
seed = 3
[trial]
history = "7d"
follow_up = "1w"
[[trial.arm]]
name = "control"
[[trial.arm]]
name = "methadone"
medication = "methadone"
""")


def test_a_course_is_the_whole_models_to_rounding():
    # a methadone trial: heroin from the street, methadone in the clinic, a bystander's naloxone;
    # buprenorphine, naltrexone and fentanyl (no contaminated bags) are left out
    from opioidsim.trial.simulate import simulate_trial

    sc = methadone_trial(subjects=2)
    reduced, whole = simulate_trial(sc), simulate_trial(sc, model=whole_model())
    assert int(reduced.in_treatment.sum()) > 0  # someone was treated (not vacuous)
    for name in ("use_event", "in_treatment"):
        np.testing.assert_array_equal(reduced[name].values, whole[name].values)
    for name in ("cows", "mor_occupancy_vta"):  # physiology recorded each day at clinic time
        np.testing.assert_allclose(reduced[name].values, whole[name].values, rtol=1e-6, atol=1e-9)
