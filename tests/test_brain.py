"""Brain damage, cognition and synthetic imaging (issue 6): model/inflammation.py, structure.py,
cognition.py, neuroimaging.py and opioidsim.imaging."""
import numpy as np
import pytest

from opioidsim import imaging
from opioidsim.model.cognition import CognitionModule
from opioidsim.model.model import default_model
from opioidsim.model.pk import PharmacokineticsModule
from opioidsim.model.structure import REGIONS, StructureModule
from opioidsim.readouts import READOUTS

CONTRACT = ["glial_activation", "white_matter", "hypoxic_injury", "pfc_control", "executive", "memory", "attention",
            "memory_verbal", "memory_spatial",
            "pet_d2_bp", "fmri_cue_nac", *(f"gmv_{r}" for r in REGIONS), *(f"vbm_{r}" for r in REGIONS)]


def _typical_params(model):
    return {k: np.array([v.internal_value]) for k, v in model.parameters.items()}


def test_contract_names_are_readouts_of_the_default_model():
    # DESIGN.md's readout names (the public contract) for issue 6, with the regions of the seed table
    model = default_model()
    for name in CONTRACT:
        assert name in READOUTS and name in model.readouts, name


def test_drug_naive_brain_is_intact_and_does_not_drift():
    model = default_model()
    p = _typical_params(model)
    y0 = model.initial_state(p)
    out = model.outputs(y0, p)
    for r in REGIONS:
        assert float(out[f"gmv_{r}"][0]) == 1.0
    for name in ("pfc_control", "executive", "memory", "memory_verbal", "memory_spatial", "attention", "white_matter"):
        assert float(out[name][0]) == pytest.approx(1.0, abs=1e-9)
    assert float(out["glial_activation"][0]) == 0.0 and float(out["hypoxic_injury"][0]) == 0.0
    assert float(out["fmri_cue_nac"][0]) == 0.0  # no cue learnt, no cue response
    # none of the new slow states moves in a drug-free brain
    d = np.asarray(model.rhs(0.0, y0, p))[0]
    for name in ("glial_activation", "gm_reversible_loss", "gm_lasting_loss", "wm_loss", "hypoxic_injury",
                 "tle_hazard", "opioid_exposure"):
        assert d[model.index[name]] == 0.0, name


def test_only_inhaled_heroin_carries_leukoencephalopathy_risk():
    pk = PharmacokineticsModule()
    model = default_model()
    p = _typical_params(model)
    y = {s.name: np.zeros(1) for s in pk.states}
    assert float(pk.outputs(y, {}, p)["inhaled_heroin"][0]) == 0.0
    y_iv = dict(y, heroin_central=np.ones(1))
    assert float(pk.outputs(y_iv, {}, p)["inhaled_heroin"][0]) == 0.0  # an injection is not inhaled
    y_smoked = dict(y, heroin_smoked_depot=np.ones(1))
    inhaled = float(pk.outputs(y_smoked, {}, p)["inhaled_heroin"][0])
    assert inhaled > 0.0
    s = StructureModule()
    ys = {st.name: np.zeros(1) for st in s.states}
    u = {"mor_signal_vta": np.zeros(1), "glial_activation": np.zeros(1), "spo2": np.full(1, 97.0)}
    assert float(s.rates(0.0, ys, dict(u, inhaled_heroin=np.zeros(1)), p)["tle_hazard"][0]) == 0.0
    assert float(s.rates(0.0, ys, dict(u, inhaled_heroin=np.array([inhaled])), p)["tle_hazard"][0]) > 0.0


def test_hypoxic_injury_needs_deep_desaturation():
    s = StructureModule()
    p = _typical_params(default_model())
    ys = {st.name: np.zeros(1) for st in s.states}
    u = {"mor_signal_vta": np.zeros(1), "glial_activation": np.zeros(1), "inhaled_heroin": np.zeros(1)}
    rate = lambda spo2: float(s.rates(0.0, ys, dict(u, spo2=np.array([spo2])), p)["hypoxic_injury"][0])  # noqa: E731
    assert rate(95.0) == 0.0 and rate(86.0) == 0.0  # ordinary dips after a usual dose do no harm
    assert 0.0 < rate(70.0) < rate(50.0)


def test_cognition_falls_with_pfc_loss_low_d2_and_inflammation():
    c = CognitionModule()
    p = _typical_params(default_model())
    base = {"gmv_pfc": 1.0, "gmv_acc": 1.0, "gmv_temporal": 1.0, "white_matter": 1.0, "hypoxic_injury": 0.0,
            "glial_activation": 0.0, "tonic_d2_signal": 0.25, "d2_signal_reference": 0.25}
    ctl = lambda **kw: float(c.outputs({}, {**base, **kw}, p)["pfc_control"][0])  # noqa: E731
    assert ctl() == pytest.approx(1.0)
    assert ctl(gmv_pfc=0.9) < 1.0 and ctl(tonic_d2_signal=0.2) < 1.0 and ctl(glial_activation=0.5) < 1.0
    assert ctl(tonic_d2_signal=0.4) == pytest.approx(1.0)  # intoxication does not raise control above intact
    assert 0.0 < ctl(gmv_pfc=0.0, tonic_d2_signal=0.0, glial_activation=1.0, white_matter=0.0) < 0.5


def test_working_memory_domains_follow_their_own_substrates():
    # verbal material: prefrontal and temporal language cortex; spatial: prefrontal cortex and the
    # hypoxia-vulnerable hippocampus (Smith & Jonides 1999); `memory` is the mean of the two
    c = CognitionModule()
    p = _typical_params(default_model())
    base = {"gmv_pfc": 1.0, "gmv_acc": 1.0, "gmv_temporal": 1.0, "white_matter": 1.0, "hypoxic_injury": 0.0,
            "glial_activation": 0.0, "tonic_d2_signal": 0.25, "d2_signal_reference": 0.25}
    out = lambda **kw: {k: float(v[0]) for k, v in c.outputs({}, {**base, **kw}, p).items()}  # noqa: E731
    intact = out()
    assert intact["memory_verbal"] == pytest.approx(1.0) and intact["memory_spatial"] == pytest.approx(1.0)
    temporal = out(gmv_temporal=0.9)
    assert temporal["memory_verbal"] < 1.0 and temporal["memory_spatial"] == pytest.approx(1.0)
    hypoxic = out(hypoxic_injury=0.1)
    assert hypoxic["memory_spatial"] < hypoxic["memory_verbal"] < 1.0
    pfc = out(gmv_pfc=0.9)
    assert pfc["memory_spatial"] < 1.0 and pfc["memory_verbal"] < 1.0  # both lean on the prefrontal cortex
    for o in (temporal, hypoxic, pfc):
        assert o["memory"] == pytest.approx(0.5 * (o["memory_verbal"] + o["memory_spatial"]))
        assert 0.0 < o["memory_spatial"] <= 1.0 and 0.0 < o["memory_verbal"] <= 1.0


def test_hedges_g_and_welch_on_a_hand_example():
    users, controls = np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0, 5.0])
    # pooled SD 1, mean difference −2, J = 1 − 3/(4·6 − 9) = 0.8
    assert imaging.hedges_g(users, controls) == pytest.approx(-1.6)
    row = imaging.compare_groups({"x": users}, {"x": controls}).iloc[0]
    assert row["direction"] == "lower" and row["df"] == pytest.approx(4.0)
    assert row["t"] == pytest.approx(-2.0 / np.sqrt(2.0 / 3.0))


def test_life_course_grey_matter_falls_with_years_and_recovers_in_part():
    years = np.array([1.0, 5.0, 5.0, 10.0])
    abstinent = np.array([0.0, 0.0, 730.0, 0.0])
    _, scans = imaging.life_course(years, abstinent, signal=0.2, seed=0)
    pfc = scans["gmv_pfc"]
    assert pfc[0] < 1.0 and pfc[1] < pfc[0] and pfc[3] < pfc[1]  # more years, less grey matter
    assert pfc[1] < pfc[2] < 1.0  # two years of abstinence restore part of it, not all
    assert scans["white_matter"][1] < 1.0
    # a scanner sees the subject's own anatomy times what is left
    for r in REGIONS:
        assert np.all(scans[f"gmv_{r}"] < 1.0)


def test_cytokines_from_activated_glia_lower_mood_but_are_not_scored_by_cows():
    # inflammation-induced depressed mood (Eisenberger 2010; Dantzer 2008): negative affect rises
    # with glial activation at a fixed CRF and hedonic state, COWS's anxiety item does not
    from opioidsim.model.stress import StressModule

    s = StressModule()
    p = _typical_params(default_model())
    y = {"crf": np.array([1.2]), "stress_sensitization": np.zeros(1)}
    out = lambda g: s.outputs(y, {"hedonic_state": np.array([-1.0]), "glial_activation": np.array([g])}, p)  # noqa: E731
    rest, inflamed = out(0.0), out(0.4)
    assert float(inflamed["negative_affect"][0]) > float(rest["negative_affect"][0])
    assert float(inflamed["anxiety"][0]) == float(rest["anxiety"][0])
    assert float(out(1.0)["negative_affect"][0]) <= 10.0  # still inside the 0-10 scale
    # the model wires it: glial activation is an input of the stress module, provided upstream
    model = default_model()
    assert "glial_activation" in StressModule.inputs
    order = [m.name for m in model.modules]
    assert order.index("inflammation") < order.index("stress")
