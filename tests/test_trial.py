"""Human courses and virtual trials: the [life]/[trial] tables, the programme timeline, the
randomisation, and one small simulated trial whose mechanisms are checked (the validation
targets V-MAT-1/2 and V-CM-1 are in test_validation.py)."""
from __future__ import annotations

import numpy as np
import pytest

from opioidsim.behavior import human as hu
from opioidsim.behavior.course import compile_course, relapsed
from opioidsim.errors import ScenarioError
from opioidsim.scenarios import load_scenario
from opioidsim.scenarios.course import Arm, Trial
from opioidsim.scenarios.schema import Scenario
from opioidsim.trial.simulate import randomise, urine_days
from opioidsim.validation.treatment import MAT1, REDUCED, run_trial

TRIAL_TOML = """
[scenario]
name = "t"
[cohort]
subjects = 4
[trial]
history = "14d"
follow_up = "2w"
[[trial.arm]]
name = "control"
[[trial.arm]]
name = "methadone"
medication = "methadone"
"""


def _error(text: str) -> str:
    with pytest.raises(ScenarioError) as exc:
        Scenario.from_toml_text(text)
    return str(exc.value)


def test_trial_table_round_trips_and_sets_duration():
    s = Scenario.from_toml_text(TRIAL_TOML)
    assert s.duration_min == pytest.approx((14 + 14) * 1440.0)
    assert Scenario.from_toml_text(s.to_toml()) == s


@pytest.mark.parametrize("change, field", [
    (('medication = "methadone"', 'medication = "metadone"'), "trial.arm[1].medication"),
    (('follow_up = "2w"', 'follow_up = "10d"'), "trial.follow_up"),
    (('name = "methadone"', 'name = "control"'), "trial.arm[1].name"),
    (('medication = "methadone"', 'medication = "methadone"\ninduction_cows = 8'), "trial.arm[1].induction_cows"),
    (('[[trial.arm]]\nname = "control"', '[[trial.arm]]\nname = "control"\ndose = "80 mg"'), "trial.arm[0].dose"),
    (('history = "14d"', 'history = "14d"\ndecide_every = "5h"'), "trial.decide_every"),
    (('medication = "methadone"', 'medication = "placebo"\ndose = "16 mg"'), "trial.arm[1].dose"),
    (('medication = "methadone"', 'medication = "placebo"\ntaper = "7d"'), "trial.arm[1].taper"),
    (('medication = "methadone"', 'blinds = "methadone"'), "trial.arm[1].blinds"),
    (('medication = "methadone"', 'medication = "placebo"\nblinds = "placebo"'), "trial.arm[1].blinds"),
    (('medication = "methadone"', 'medication = "placebo"\nopioid_free_days = 7'), "trial.arm[1].opioid_free_days"),
    (('history = "14d"', 'history = "14d"\ndetox = "91d"'), "trial.detox"),
    (('history = "14d"', 'history = "14d"\ndetox = "36h"'), "trial.detox"),
])
def test_bad_trial_input_names_the_field(change, field):
    msg = _error(TRIAL_TOML.replace(*change))
    assert field in msg, msg


PUBLISHED = """
[[trial.published]]
outcome = "retention"
arm = "methadone"
measure = "RR"
estimate = 4.44
lower = 3.26
upper = 6.04
source = "Mattick RP et al. 2009 Cochrane CD002209"
"""


def test_a_published_figure_round_trips_and_reaches_the_results():
    s = Scenario.from_toml_text(TRIAL_TOML + PUBLISHED)
    (p,) = s.trial.published
    assert (p.outcome, p.arm, p.measure, p.estimate, p.lower, p.upper) == ("retention", "methadone", "RR", 4.44,
                                                                           3.26, 6.04)
    assert Scenario.from_toml_text(s.to_toml()) == s
    no_ci = Scenario.from_toml_text(TRIAL_TOML + PUBLISHED.replace("lower = 3.26\nupper = 6.04\n", ""))
    assert no_ci.trial.published[0].lower is None and Scenario.from_toml_text(no_ci.to_toml()) == no_ci
    # a copy passes the unset bounds on as None (--subjects on a built-in trial did, and was refused)
    assert no_ci.with_cohort(subjects=8).trial.published == no_ci.trial.published
    assert Scenario.model_validate(no_ci.model_dump()) == no_ci


@pytest.mark.parametrize("change, field, words", [
    (('arm = "methadone"\nmeasure', 'arm = "control"\nmeasure'), "trial.published[0].arm", "treatment arm"),
    (('arm = "methadone"\nmeasure', 'arm = "metadone"\nmeasure'), "trial.published[0].arm", "methadone"),
    (('outcome = "retention"', 'outcome = "retension"'), "trial.published[0].outcome", "urine_positive_final"),
    (('measure = "RR"', 'measure = "d"'), "trial.published[0].measure", "RR or OR"),
    (('estimate = 4.44', 'estimate = 7.0'), "trial.published[0].estimate", "3.26 to 6.04"),
    (('lower = 3.26\n', ''), "trial.published[0].upper", "lower"),
    (('estimate = 4.44\nlower = 3.26', 'estimate = 0.5\nlower = -1.0'), "trial.published[0].lower", "above 0"),
    (('estimate = 4.44', 'estimate = "4.44"'), "trial.published[0].estimate", "number"),
    (('source = "Mattick RP et al. 2009 Cochrane CD002209"\n', ''), "trial.published[0].source", "missing"),
])
def test_a_bad_published_figure_names_the_field(change, field, words):
    msg = _error(TRIAL_TOML + PUBLISHED.replace(*change))
    assert field in msg and words in msg, msg


def test_one_published_figure_per_outcome_arm_and_measure():
    msg = _error(TRIAL_TOML + PUBLISHED + PUBLISHED)
    assert "trial.published[1].measure" in msg and "already given" in msg, msg


def test_the_built_in_trials_name_the_figures_their_targets_check():
    """The meta-analyses behind V-MAT-1 and V-MAT-2 give a figure for each arm and outcome the
    targets read (Mattick 2009 retention RR 4.44 (3.26-6.04); Mattick 2014 by dose band)."""
    mat1 = {(p.outcome, p.arm): (p.estimate, p.lower, p.upper) for p in load_scenario(MAT1).trial.published}
    assert mat1[("retention", "methadone")] == (4.44, 3.26, 6.04)
    assert mat1[("urine_positive_final", "methadone")] == (0.66, 0.56, 0.78)
    mat2 = load_scenario("trial-buprenorphine-dose").trial
    names = {(p.outcome, p.arm) for p in mat2.published}
    assert names == {(o, a.name) for o in ("retention", "urine_negative_proportion") for a in mat2.arms[1:]}


def test_a_scenario_is_one_kind_of_course():
    msg = _error(TRIAL_TOML + '\n[life]\n[[life.period]]\nkind = "community"\nduration = "10d"\n')
    assert "trial" in msg and "life" in msg


def test_cohort_traits_are_checked():
    msg = _error(TRIAL_TOML.replace("subjects = 4", "subjects = 4\ndepression = 1.5"))
    assert "cohort.depression" in msg


def test_titration_taper_and_xr_schedule():
    """Methadone from 30 mg by 10/3 mg a day to 60 mg, then a 5-day linear taper; XR naltrexone every 28 days."""
    prog = Arm(name="m", medication="methadone", dose="60 mg", taper="5d")
    tl = compile_course([("treatment", 20, prog)], 4 * 60.0, 0.8)
    day = tl.med_mg.reshape(20, 6)[:, 0]
    expected = [min(30 + 10 / 3 * d, 60) for d in range(20)]
    for d in range(15, 20):  # the taper: (n − d − 1)/taper of the day's dose
        expected[d] *= (20 - d - 1) / 5
    assert day == pytest.approx(expected)
    assert tl.clinic.reshape(20, 6).sum(axis=1).tolist() == [1.0] * 20
    xr_ = compile_course([("treatment", 60, Arm(name="x", medication="naltrexone_xr"))], 4 * 60.0, 0.8)
    assert np.flatnonzero(xr_.dose_day.reshape(60, 6).max(axis=1)).tolist() == [0, 28, 56]


def test_a_placebo_tablet_is_given_like_a_dose_but_holds_no_drug():
    """A blinded placebo arm: a tablet on every clinic day (so its doses are judged as the active
    arms' are), 0 mg in it, and enrolment with the agonist arms' expectation (the patient cannot
    tell); a drug-free programme gives nothing and expects nothing."""
    from opioidsim.behavior.course import PLACEBO_CODE

    placebo = compile_course([("treatment", 10, Arm(name="p", medication="placebo"))], 4 * 60.0, 0.8)
    free = compile_course([("treatment", 10, Arm(name="c"))], 4 * 60.0, 0.8)
    clinic = placebo.clinic > 0
    assert clinic.sum() == 10
    assert placebo.dose_day[clinic].tolist() == [1.0] * 10 and placebo.med_mg.max() == 0.0
    assert set(placebo.med[clinic].tolist()) == {PLACEBO_CODE}
    assert free.dose_day.max() == 0.0 and free.med.max() == 0
    assert placebo.expects_relief[clinic].tolist() == [1.0] * 10 and free.expects_relief.max() == 0.0
    for medication, expects in (("methadone", True), ("buprenorphine", True), ("naltrexone", False),
                                ("naltrexone_xr", False), ("none", False)):
        assert Arm(name="a", medication=medication).expects_relief is expects, medication


def test_a_placebo_follows_the_schedule_and_expectation_of_what_it_blinds():
    """A placebo of XR naltrexone is an inert injection every 28 days after the same opioid-free
    wait, and the patient expects of it what naltrexone does for withdrawal: nothing. Unsaid, a
    placebo imitates a daily agonist tablet (the built-in buprenorphine trial's)."""
    from opioidsim.behavior.course import PLACEBO_CODE

    arm = Arm(name="p", medication="placebo", blinds="naltrexone_xr", opioid_free_days=7)
    tl = compile_course([("treatment", 60, arm)], 4 * 60.0, 0.8)
    days = np.flatnonzero(tl.dose_day.reshape(60, 6).max(axis=1))
    assert days.tolist() == [0, 28, 56] and tl.med_mg.max() == 0.0 and set(tl.med[tl.clinic > 0]) == {PLACEBO_CODE}
    assert tl.expects_relief.max() == 0.0 and tl.opioid_free_min.max() == 7 * 1440.0
    assert Arm(name="p", medication="placebo", blinds="methadone").expects_relief
    assert Arm(name="p", medication="placebo").schedule() == (0.0, 0.0, 0.0, 1)
    # the unsaid placebo imitates buprenorphine's tablet, so it may wait for the same COWS threshold
    # (a blinded trial inducts both arms alike); an opioid-free wait belongs to naltrexone's placebo
    plain = Arm(name="p", medication="placebo", induction_cows=8)
    assert compile_course([("treatment", 7, plain)], 4 * 60.0, 0.8).induction_cows.max() == 8
    with pytest.raises(ValueError, match="opioid_free_days"):
        Arm(name="p", medication="placebo", opioid_free_days=7)
    with pytest.raises(ValueError, match="induction_cows"):
        Arm(name="p", medication="placebo", blinds="methadone", induction_cows=8)


PLACEBO_TRIAL = """
[scenario]
name = "placebo-check"
[cohort]
subjects = 4
seed = 5
[trial]
history = "7d"
follow_up = "1w"
block_size = 4
[[trial.arm]]
name = "no-tablet"
[[trial.arm]]
name = "placebo"
medication = "placebo"
[[trial.published]]
outcome = "retention"
arm = "placebo"
measure = "RR"
estimate = 1.0
source = "a figure to carry through the run"
"""


def test_a_placebo_arm_enrols_expecting_relief_and_gets_no_drug():
    """Four subjects, a week of history and a week of follow-up (a minute or two, mostly the
    compile): the placebo arm enrols with `medication_expectation`, the drug-free arm with
    nothing; neither is given a milligram; a placebo patient's expectation moves only through
    the judged tablets (learn_medication_relief), never above 1."""
    from opioidsim.trial.simulate import simulate_trial

    from opioidsim.trial.stats import published_comparison, trial_outcomes

    ds = simulate_trial(Scenario.from_toml_text(PLACEBO_TRIAL))
    # the scenario's published figure travels with the results, beside the same estimate
    (row,) = published_comparison(ds).itertuples()
    rr = trial_outcomes(ds).query("outcome == 'retention' and measure == 'RR'").iloc[0]
    assert (row.arm, row.published, row.source) == ("placebo", 1.0, "a figure to carry through the run")
    assert row.simulated == rr.estimate or (np.isnan(row.simulated) and np.isnan(rr.estimate))
    arm = ds.arm.values
    assert (arm == "placebo").sum() == 2 and (arm == "no-tablet").sum() == 2  # one block of four
    assert ds.attrs["randomisation"] == "permuted blocks of 4, 1:1 within each block"
    expected = next(q.value for q in hu.PARAMETERS if q.name == "medication_expectation")
    relief = ds.medication_relief.values
    assert ds.medication_mg.values.max() == 0.0
    assert relief[arm == "no-tablet"].max() == 0.0
    first = np.argmax(ds.in_treatment.values > 0, axis=1)  # the enrolment day (everyone attends it)
    # what the day's record holds is the value at the day's end: the enrolment visit sets the
    # expectation and at most one judged tablet (at medication_relief_learning_rate) can have moved it that day
    rate = next(q.value for q in hu.PARAMETERS if q.name == "medication_relief_learning_rate")
    for s in np.flatnonzero(arm == "placebo"):
        r0 = relief[s, first[s]]
        assert (1 - rate) * expected - 1e-9 <= r0 <= expected + rate * (1 - expected) + 1e-9, r0
    assert np.all((relief >= 0.0) & (relief <= 1.0))


def test_forced_abstinence_has_no_supply_and_aftercare_keeps_support():
    prog = Arm(name="a", psychosocial=["group_therapy", "aftercare"])
    tl = compile_course([("forced_abstinence", 3, None), ("treatment", 2, prog), ("community", 100, None)],
                        6 * 60.0, 0.7)
    per_day = tl.available.reshape(-1, 4)[:, 0]
    # the first programme day's first step is still before the clinic visit the patient is
    # discharged to (test_a_forced_abstinence_into_treatment_ends_at_the_first_clinic_visit)
    assert per_day[:4].tolist() == [0.0] * 4 and per_day[4:].tolist() == [0.7] * 101
    support = tl.support.reshape(-1, 4)[:, 0]
    assert support[3:5].tolist() == [1.0, 1.0]  # group therapy
    assert support[5:5 + 84].min() == 1.0 and support[5 + 84:].max() == 0.0  # 12 weeks of aftercare


def test_a_forced_abstinence_into_treatment_ends_at_the_first_clinic_visit():
    """Leaving a detox unit (or prison) for a programme: no street supply on the first day until
    the clinic visit, the supply as usual from then on; from the community, the first day is as any
    other."""
    prog = Arm(name="a")
    spd, clinic = 4, 2  # 6 h steps: 0, 6, 12, 18 h; the clinic (9 h) at the first step from 9 h
    tl = compile_course([("forced_abstinence", 2, None), ("treatment", 2, prog)], 6 * 60.0, 0.7)
    first_day = slice(2 * spd, 3 * spd)
    assert tl.clinic[first_day].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert tl.available.tolist() == [0.0] * (2 * spd + clinic) + [0.7] * (2 * spd - clinic)
    tl = compile_course([("community", 2, None), ("treatment", 2, prog)], 6 * 60.0, 0.7)
    assert tl.available.tolist() == [0.7] * (4 * spd)


def test_a_trial_with_detox_runs_history_then_detox_then_follow_up():
    from opioidsim.trial.simulate import trial_timeline

    trial = Trial(history="7d", detox="5d", follow_up="1w", decide_every="6h", arms=[{"name": "a"}])
    tl = trial_timeline(trial, trial.arms[0])
    assert tl.n_days == 7 + 5 + 7 and trial.before_randomisation_days == 12
    per_step = tl.available.reshape(-1, 4)
    assert (per_step[:7] > 0).all() and (per_step[7:12] == 0).all()  # street use, then the unit
    assert per_step[12].tolist() == [0.0, 0.0, 0.8, 0.8]  # discharged to the clinic (9 h)
    assert tl.programme.reshape(-1, 4)[:, 0].tolist() == [0.0] * 12 + [1.0] * 7
    assert Trial(arms=[{"name": "a"}]).to_toml_dict()["detox"] == "0d"  # none unless asked


DETOX_TRIAL = """
[scenario]
name = "detox-check"
[cohort]
subjects = 4
seed = 5
[trial]
history = "7d"
detox = "7d"
follow_up = "1w"
block_size = 4
[[trial.arm]]
name = "placebo"
medication = "placebo"
[[trial.arm]]
name = "xr-naltrexone"
medication = "naltrexone_xr"
dose = "380 mg"
opioid_free_days = 7
"""


def test_after_a_detox_every_naltrexone_patient_is_injected_at_the_enrolment_visit():
    """Extended-release naltrexone needs 7 opioid-free days; a 7-day inpatient detox gives them
    to everyone, whatever their wish to use, since the unit has no supply and they are discharged
    to the clinic. So every subject of the naltrexone arm has its 380 mg on day 0 (and no second
    injection within the week: XR is given every 28 days), and the report says how they came."""
    from opioidsim.trial.simulate import simulate_trial
    from opioidsim.trial.stats import consort_text

    ds = simulate_trial(Scenario.from_toml_text(DETOX_TRIAL))
    xr_arm = ds.arm.values == "xr-naltrexone"
    assert xr_arm.sum() == 2
    mg = ds.medication_mg.values[xr_arm]
    assert (mg[:, 0] == 380.0).all() and (mg[:, 1:] == 0.0).all()
    assert ds.attrs["detox_days"] == 7 and ds.sizes["day"] == 7
    assert "after 7 days of inpatient detoxification" in consort_text(ds)


def test_urine_days_spread_over_the_week():
    assert urine_days(1) == (6,)
    assert urine_days(3) == (1, 4, 6)
    assert urine_days(7) == tuple(range(7))


def test_randomisation_follows_allocation_and_does_not_depend_on_the_cohort():
    trial = Trial(arms=[{"name": "a"}, {"name": "b", "allocation": 3}])
    arms = randomise(trial, 5, np.arange(20000))
    assert abs((arms == 1).mean() - 0.75) < 0.015  # binomial sd 0.003
    assert np.array_equal(randomise(trial, 5, np.arange(100, 200)), arms[100:200])


def test_permuted_blocks_hold_the_allocation_ratio_in_every_block():
    trial = Trial(arms=[{"name": "a"}, {"name": "b", "allocation": 2}, {"name": "c"}], block_size=8)
    arms = randomise(trial, 11, np.arange(8 * 3000))
    per_block = np.stack([(arms.reshape(-1, 8) == k).sum(axis=1) for k in range(3)], axis=1)
    assert (per_block == [2, 4, 2]).all()  # 8 subjects, ratio 1:2:1, in every block
    # a subject's arm depends on the seed and its block only, not on who else is run
    assert np.array_equal(randomise(trial, 11, np.arange(4, 21)), arms[4:21])
    assert np.array_equal(randomise(trial, 11, np.array([23999, 5])), arms[[23999, 5]])
    assert not np.array_equal(randomise(trial, 12, np.arange(8 * 3000)), arms)


def test_permuted_blocks_are_uniform_over_orders_and_positions():
    trial = Trial(arms=[{"name": "a"}, {"name": "b"}], block_size=4)
    blocks = randomise(trial, 3, np.arange(4 * 6000)).reshape(-1, 4)
    # each block one of the C(4, 2) = 6 orders, each with probability 1/6 (binomial sd 0.0048)
    _, counts = np.unique(blocks @ np.array([8, 4, 2, 1]), return_counts=True)
    assert len(counts) == 6 and np.abs(counts / len(blocks) - 1 / 6).max() < 0.02
    # and every position in a block is arm b half the time (sd 0.0065)
    assert np.abs(blocks.mean(axis=0) - 0.5).max() < 0.026


def test_a_short_last_block_stays_within_its_block():
    trial = Trial(arms=[{"name": "a"}, {"name": "b"}], block_size=6)
    for seed in range(50):
        arms = randomise(trial, seed, np.arange(10))  # one full block, then 4 of the next 6
        assert (arms[:6] == 1).sum() == 3
        assert 1 <= (arms[6:] == 1).sum() <= 3  # at most the block's 3 slots of an arm


def test_stratified_blocks_balance_every_stratum_of_the_co_occurring_disorders():
    from opioidsim.behavior.course import co_occurring_disorders
    from opioidsim.scenarios.schema import Cohort

    trial = Trial(arms=[{"name": "a"}, {"name": "b"}], block_size=4, stratify=["depression", "ptsd"])
    cohort = Cohort(subjects=6000, seed=3, depression=0.3, ptsd=0.2)
    arms = randomise(trial, 3, np.arange(6000), cohort)
    d = co_occurring_disorders(cohort, np.arange(6000))
    sizes = []
    for dep in (False, True):
        for ptsd in (False, True):
            mine = arms[(d["depression"] == dep) & (d["ptsd"] == ptsd)]
            full = mine[:len(mine) // 4 * 4].reshape(-1, 4)
            assert (full.sum(axis=1) == 2).all()  # every block of 4 within the stratum: 2 and 2
            assert abs((mine == 1).sum() - (mine == 0).sum()) <= 2  # at most a part block apart
            sizes.append(len(mine))
    assert min(sizes) > 200  # the four strata are all there (expected 672 to 3360 of 6000)
    # a subject's arm still needs no one else to be run
    assert np.array_equal(randomise(trial, 3, np.arange(2500, 2600), cohort), arms[2500:2600])
    assert np.array_equal(randomise(trial, 3, np.array([5999, 0]), cohort), arms[[5999, 0]])
    assert trial.randomisation.endswith("stratified by depression and PTSD")


@pytest.mark.parametrize("line, field, words", [
    ('stratify = ["depression"]', "trial.stratify", "set block_size too"),
    ('block_size = 2\nstratify = ["anxiety"]', "trial.stratify[0]", "from depression, ptsd"),
    ('block_size = 2\nstratify = "ptsd"', "trial.stratify", "must be a list"),
])
def test_bad_stratification_names_the_field(line, field, words):
    msg = _error(TRIAL_TOML.replace('follow_up = "2w"', f'follow_up = "2w"\n{line}'))
    assert field in msg and words in msg, msg


def test_block_size_must_fit_the_allocation():
    msg = _error(TRIAL_TOML.replace('follow_up = "2w"', 'follow_up = "2w"\nblock_size = 3'))
    assert "trial.block_size" in msg and "= 3" in msg and "multiple of the arms' total allocation, 2" in msg
    s = Scenario.from_toml_text(TRIAL_TOML.replace('follow_up = "2w"', 'follow_up = "2w"\nblock_size = 4\n'
                                                                       'stratify = ["ptsd"]'))
    assert s.trial.block_size == 4 and s.trial.stratify == ["ptsd"] and Scenario.from_toml_text(s.to_toml()) == s


def test_relapse_needs_a_week_without_use():
    use = np.array([[1, 0, 0, 0, 0, 0, 0, 0, 1],   # 7 clean days then use: relapse
                    [1, 0, 0, 0, 0, 0, 1, 0, 0],   # 5 clean days: not
                    [0, 0, 0, 0, 0, 0, 0, 0, 0]])  # never used again: not
    assert relapsed(use).tolist() == [1.0, 0.0, 0.0]


# the simulated trial: minutes of compile and integration on 2 cores, so in the slow run with the
# full validation targets (the tests above cover the tables, timeline and randomisation by default)
@pytest.fixture(scope="module")
def small_trial():
    """The reduced V-MAT-1 trial (shared with the validation test through run_trial's cache)."""
    return run_trial(MAT1, **REDUCED)


@pytest.mark.slow
def test_small_trial_dataset_shape_and_bookkeeping(small_trial):
    ds, table = small_trial
    assert ds.sizes["subject"] == REDUCED["subjects"]
    assert set(ds.arm.values) <= {"no-substitution", "methadone"}
    assert ds.sizes["week"] == int(REDUCED["follow_up"].rstrip("w")) and ds.day.values[0] == 0
    # every subject is counted once in the CONSORT flow
    from opioidsim.trial.stats import consort_flow

    flow = consort_flow(ds)
    assert int(flow.randomised.sum()) == REDUCED["subjects"]
    # retained ⇒ in treatment on the last day; a dropout day only for those who left
    assert np.all(ds.in_treatment.values[:, -1][ds.retained.values > 0] == 1)
    assert np.all(np.isnan(ds.dropout_day.values) == (ds.in_treatment.values.min(axis=1) > 0))
    assert set(table.outcome) >= {"retention", "urine_positive_final"}


@pytest.mark.slow
def test_methadone_is_given_only_to_its_arm_and_relieves_withdrawal(small_trial):
    ds, _ = small_trial
    met = ds.arm.values == "methadone"
    assert met.any() and (~met).any()
    assert ds.medication_mg.values[~met].max() == 0.0
    given = ds.medication_mg.values[met]
    assert given.max() <= 80.0 + 1e-9 and given[:, 0].max() == pytest.approx(30.0)  # the first dose
    # morning withdrawal in the second week: methadone holds it down (it sits on the receptors)
    week2 = (ds.day.values >= 7) & (ds.day.values < 14)
    assert np.nanmean(ds.cows.values[met][:, week2]) < np.nanmean(ds.cows.values[~met][:, week2])
    # everyone comes to the enrolment visit, and each methadone subject gets its first dose there
    assert np.all(ds.attended.values[:, 0] == 1)
    assert np.all(ds.medication_mg.values[met][:, 0] > 0)
    # relief is expected and learned from the clinic's dose only: none without medication; methadone
    # patients enrol expecting some, and what the doses do moves it in at least half of them within
    # the first week (subjects who dropped out before any clean judgement keep the expectation)
    assert ds.medication_relief.values[~met].max() == 0.0
    expected = next(q.value for q in hu.PARAMETERS if q.name == "medication_expectation")
    relief = ds.medication_relief.values[met]
    assert np.all(relief[:, 0] >= 0.0) and np.all(relief <= 1.0)
    assert (np.abs(relief[:, 6] - expected) > 1e-6).mean() >= 0.5


@pytest.mark.slow
def test_the_same_subject_lives_the_same_life_alone(small_trial):
    """Counter-based draws: subject 3 run on its own equals subject 3 in the trial."""
    ds, _ = small_trial
    from opioidsim.trial.simulate import simulate_trial

    sc = load_scenario(MAT1).with_cohort(subjects=REDUCED["subjects"])
    tr = sc.trial.model_copy(update={"history": REDUCED["history"], "follow_up": REDUCED["follow_up"]})
    sc = sc.model_copy(update={"trial": tr, "duration": f"{tr.length_min:g}min"})
    alone = simulate_trial(sc, subjects=range(3, 4))
    assert str(alone.arm.values[0]) == str(ds.arm.sel(subject=3).values)
    assert np.array_equal(alone.use_event.values[0], ds.use_event.sel(subject=3).values)


def test_course_batches_share_small_compiled_sizes_and_pad_large_arms_little():
    """A course batch holds every subject of its arm or chunk; up to 64 rows it is one of the
    powers of two 16, 32, 64 (small arms of any size share three compiled loops), above that it
    pads by fewer than 32 rows (not up to twice the arm) and never exceeds a chunk."""
    from opioidsim.behavior.course import course_batch_size
    from opioidsim.engine.core import SUBJECT_CHUNK

    sizes = {r: course_batch_size(r) for r in range(1, SUBJECT_CHUNK + 1)}
    assert all(size >= r for r, size in sizes.items())
    assert {sizes[r] for r in range(1, 65)} == {16, 32, 64}
    assert all(sizes[r] - r < 32 and sizes[r] % 32 == 0 for r in range(65, SUBJECT_CHUNK + 1))
    assert max(sizes.values()) == SUBJECT_CHUNK
    # the built-in V-MAT-2 design's arms (81, 78, 74, 87 of 320) share one batch of 96, not 128
    assert {course_batch_size(r) for r in (81, 78, 74, 87)} == {96}


# ---- a short life course: the compiled course loop must run to the end ---------------------------
# slow: a course decides every few hours and integrates each interval adaptively, minutes on 2
# cores even for 3 subjects over 4 days, so in the slow run only
LIFE_TOML = """
[scenario]
name = "short-life"
[cohort]
subjects = 3
seed = 11
[life]
decide_every = "4h"
[[life.period]]
kind = "community"
duration = "2d"
[[life.period]]
kind = "forced_abstinence"
duration = "2d"
"""

_LIFE_SCRIPT = """
import sys, numpy as np
from opioidsim.scenarios.schema import Scenario
from opioidsim.behavior.course import simulate_life
ds = simulate_life(Scenario.from_toml_text(open(sys.argv[1]).read()))
np.savez(sys.argv[2], uses=ds.uses.values, cows=ds.cows.values, period=ds.period.values)
"""


@pytest.mark.slow
def test_a_short_life_course_runs_to_the_end_and_abstinence_means_no_use_and_withdrawal(tmp_path):
    """In a subprocess with a time limit: a jaxlib CPU scheduler once deadlocked this loop with
    every thread idle (see opioidsim/__init__.py), which would otherwise stall the whole run."""
    import subprocess
    import sys

    (tmp_path / "life.toml").write_text(LIFE_TOML)
    (tmp_path / "run.py").write_text(_LIFE_SCRIPT)
    out = tmp_path / "life.npz"
    try:
        subprocess.run([sys.executable, str(tmp_path / "run.py"), str(tmp_path / "life.toml"), str(out)],
                       check=True, timeout=3600, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        pytest.fail("a 4-day, 3-subject life course did not finish in an hour (a hang?)")
    except subprocess.CalledProcessError as e:
        pytest.fail(e.stderr[-2000:])
    r = np.load(out)
    community, prison = r["period"] == 0, r["period"] == 1
    # daily users with a supply use every day; in prison there is none to use
    assert (r["uses"][:, community] >= 1).all()
    assert (r["uses"][:, prison] == 0).all()
    # withdrawal after a day or more without heroin in dependent users (V-WD-1: onset within
    # 8-24 h): the morning COWS of the second prison day is above that of the first community day
    assert (r["cows"][:, -1] > r["cows"][:, 0]).all(), r["cows"]


def test_builtin_naltrexone_trial_retains_more_and_keeps_more_abstinent_than_its_placebo():
    # Krupitsky E et al. 2011 Lancet 377:1506, XR naltrexone vs placebo injections after detox:
    # retention 53 % vs 38 %, confirmed abstinent weeks 90 % vs 35 %. The built-in design, with 32
    # of its 64 people, must show both directions (a blocked use teaches that heroin does little)
    _, t = run_trial("trial-naltrexone-xr", subjects=32)

    def row(outcome):
        return t[(t.outcome == outcome) & (t.arm == "xr-naltrexone")].iloc[0]

    retention, abstinent = row("retention"), row("days_abstinent")
    assert retention.control == "placebo"
    assert retention.value_arm > retention.value_control
    assert abstinent.value_arm > abstinent.value_control


@pytest.mark.xfail(strict=True, reason="known gap: the placebo patients tested in the first 4 weeks give far more "
                   "negative urines than a real placebo arm's (43 % of 28 since stop 39; 57 % of 14 before, when "
                   "only abstainers stayed): subjects with a readiness above about 1.6, on any arm, use at most "
                   "once, whatever the withdrawal; docs/guide/06-treatment-and-trials.md, 'Stop 39', "
                   "'Withdrawal that wears the resolve down' and 'Lapses the resolve does not hold back'")
def test_placebo_patients_mostly_give_opioid_positive_urines():
    # Fudala PJ et al. 2003 N Engl J Med 349:949, 4 weeks of blinded placebo tablets given daily:
    # 5.8 % of the urines were opioid-negative (16 mg buprenorphine: 20.7 %). Accept up to 15 % of
    # the placebo arm's tested urines negative in the built-in buprenorphine design cut to 4 weeks
    from opioidsim.validation.treatment import MAT2

    ds, _ = run_trial(MAT2, subjects=48, history="30d", follow_up="4w")
    tested = ds["urine_positive"].values[ds.arm.values == "placebo"]
    tested = tested[~np.isnan(tested)]
    assert tested.size >= 10  # enough placebo urines to judge
    assert 1.0 - tested.mean() <= 0.15, f"{1.0 - tested.mean():.0%} of {tested.size} placebo urines negative"
