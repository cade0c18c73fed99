"""Between-group animal experiments ([[paradigm.group]]): the format, one batched run of all
groups, the group coordinate, the per-group report, and a published direction (Ahmed 2000)."""
import numpy as np
import pytest

from opioidsim.behavior import simulate_paradigm
from opioidsim.behavior.report import paradigm_figure, paradigm_summary_table
from opioidsim.behavior.runner import group_timelines, subject_groups
from opioidsim.errors import ScenarioError
from opioidsim.scenarios import Scenario, load_scenario

GROUPS = """
[scenario]
name = "tiny-groups"
[cohort]
seed = 5
species = "rat"
[paradigm]
infusion = "60 ug/kg"
decide_every = "2min"
[[paradigm.phase]]
kind = "self_administration"
session_length = "1h"
[[paradigm.phase]]
name = "access"
kind = "self_administration"
sessions = 2
session_length = "1h"
[[paradigm.group]]
name = "ShA"
subjects = 1
"""
LGA = """
[[paradigm.group]]
name = "LgA"
subjects = 1
phase.access.session_length = "6h"
"""


def groups(extra: str = LGA) -> Scenario:
    return Scenario.from_toml_text(GROUPS + extra)


# --- the format --------------------------------------------------------------------------------------

def test_groups_set_the_cohort_and_round_trip_through_toml():
    s = groups()
    assert s.cohort.subjects == 2  # the groups' subjects together
    assert Scenario.from_toml_text(s.to_toml()) == s
    lga = s.paradigm.group_paradigm("LgA")
    assert [p.session_length for p in lga.phases] == ["1h", "6h"]
    assert [p.session_length for p in s.paradigm.group_paradigm("ShA").phases] == ["1h", "1h"]
    assert subject_groups(s.paradigm, 2) == [("ShA", range(0, 1)), ("LgA", range(1, 2))]


def test_subjects_option_means_subjects_in_each_group():
    s = groups().with_cohort(subjects=3)
    assert [g.subjects for g in s.paradigm.groups] == [3, 3] and s.cohort.subjects == 6


@pytest.mark.parametrize("edit, field, words", [
    (('seed = 5', 'seed = 5\nsubjects = 3'), "cohort.subjects", "ShA 1 + LgA 1 = 2"),
    (('phase.access.session_length = "6h"', 'phase.acess.session_length = "6h"'), "paradigm.group[1].phase.acess",
     "named phases: access"),
    (('phase.access.session_length = "6h"', 'phase.access.sessions = 3'), "paradigm.group[1].phase.access.sessions",
     "shared by all groups"),
    (('phase.access.session_length = "6h"', 'phase.access.speed = 3'), "paradigm.group[1].phase.access.speed",
     "session_length, ratio"),
    (('phase.access.session_length = "6h"', 'phase.access.session_length = "25h"'),
     "paradigm.group[1].phase.access.session_length", "from 1 min to 24 h"),
    (('phase.access.session_length = "6h"', 'phase.access.trigger = "cue"'),
     "paradigm.group[1].phase.access.trigger", "only reinstatement phases"),
    (('name = "LgA"', 'name = "ShA"'), "paradigm.group[1].name", "names must differ"),
    (('subjects = 1\nphase', 'subjects = 0\nphase'), "paradigm.group[1].subjects", "whole number from 1"),
    (('subjects = 1\nphase', 'subjects = 1\ncolour = "red"\nphase'), "paradigm.group[1].colour",
     "unknown key; allowed here: name, subjects, infusion, phase"),
    (('name = "LgA"', 'name = "LgA"\ninfusion = "-5 ug/kg"'), "paradigm.group[1].infusion", "0 or more"),
    (('name = "LgA"', 'name = "LgA/2"'), "paradigm.group[1].name", "letters, digits"),
    (('phase.access.session_length = "6h"', 'phase = "6h"'), "paradigm.group[1].phase", "table of changes"),
])
def test_bad_group_names_the_field(edit, field, words):
    text = GROUPS + LGA
    assert edit[0] in text
    with pytest.raises(ScenarioError) as e:
        Scenario.from_toml_text(text.replace(*edit))
    assert e.value.field == field
    assert words in str(e.value)
    assert "\n" not in str(e.value)


def test_phase_names_must_differ_and_saline_is_zero_per_kg():
    with pytest.raises(ScenarioError) as e:
        Scenario.from_toml_text(GROUPS.replace('kind = "self_administration"\nsession_length = "1h"',
                                               'kind = "self_administration"\nname = "access"\nsession_length = "1h"', 1))
    assert e.value.field == "paradigm.phase[1].name"
    saline = groups(LGA.replace('name = "LgA"', 'name = "saline"\ninfusion = "0 ug/kg"'))
    assert saline.paradigm.group_paradigm("saline").infusion_mg_per_kg == 0.0
    assert saline.paradigm.group_paradigm("ShA").infusion_mg_per_kg == pytest.approx(0.06)


def test_builtin_short_vs_long_access_differs_only_in_the_access_phase():
    s = load_scenario("rat-heroin-short-vs-long-access")
    assert [g.name for g in s.paradigm.groups] == ["ShA", "LgA"]
    sha, lga = group_timelines(s.paradigm, s.record_every_min)
    # the same session calendar: session k starts on the same day for both groups
    assert [x["start_min"] for x in sha.sessions] == [x["start_min"] for x in lga.sessions]
    lengths = [(a["length_min"], b["length_min"]) for a, b in zip(sha.sessions, lga.sessions)]
    assert lengths.count((60.0, 360.0)) == 10 and lengths.count((60.0, 60.0)) == len(lengths) - 10


# --- one batched run --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def both():
    return simulate_paradigm(groups())


def test_results_carry_the_group_and_each_group_its_own_schedule(both):
    ds = both
    assert list(ds.group.values) == ["ShA", "LgA"]
    assert ds.session_length_min.values.tolist() == [[60.0, 60.0, 60.0], [60.0, 360.0, 360.0]]
    # on the shared time axis each rat has records only at its own decision steps: the LgA rat's
    # 2 min steps of hours 1-6 of its sessions are the ShA rat's home cage (one 30 min step)
    late = (ds.step_session.values[1] == 1) & (ds.time.values >= np.timedelta64(1440 + 120, "m"))
    assert late.any() and np.isnan(ds.lever_presses.values[0, late]).any()
    assert np.isfinite(ds.lever_presses.values[1, late]).all()


def test_a_rat_is_the_same_with_or_without_the_other_group(both):
    alone = simulate_paradigm(groups(extra=""))
    assert list(alone.group.values) == ["ShA"]
    sha = both.isel(subject=[0]).sel(time=alone.time)
    for name in ("lever_presses", "infusions", "craving", "nac_dopamine", "hedonic_state", "session_infusions"):
        assert np.array_equal(alone[name].values, sha[name].values), name


def test_long_access_rats_take_more_infusions_per_session(both):
    # Ahmed, Walker & Koob 2000 (Neuropsychopharmacology 22:413): long-access rats take more
    # heroin per session than short-access rats from the first long sessions on
    inf = both.session_infusions.values
    assert inf[1, 1:].min() > inf[0, 1:].max()
    assert inf[:, 0].min() >= 1  # both rats found the drug in the shared 1 h training session


def test_report_has_a_row_and_a_line_per_group(both, capsys):
    table = paradigm_summary_table(both)
    assert list(table["group"]) == ["ShA"] * 3 + ["LgA"] * 3
    lga = table[table["group"] == "LgA"]
    assert lga["length_h"].tolist() == [1.0, 6.0, 6.0]
    assert lga["session_infusions_mean"].tolist() == both.session_infusions.values[1].tolist()
    fig = paradigm_figure(both)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["ShA (n=1)", "LgA (n=1)"]
    from opioidsim.cli import _print_summary

    _print_summary(table, 2)
    out = capsys.readouterr().out
    assert "LgA" in out and "ShA" in out and "per group" in out


def test_fuzzed_group_tables_get_the_documented_error_or_run():
    from hypothesis import HealthCheck, given, settings

    from opioidsim import fuzz

    tally = {}

    @settings(max_examples=80, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(fuzz.mutated_groups())
    def prop(d):
        result = fuzz.target_toml(d)  # raises FuzzFailure on anything but a field-named one-line error
        key = "accepted" if result == "accepted" else "groups" if "paradigm.group" in result else "other"
        tally[key] = tally.get(key, 0) + 1

    prop()
    assert tally.get("accepted", 0) >= 5 and tally.get("groups", 0) >= 15, tally


def _made_up_result(kinds, triggers, presses, cpp, names):
    """A result in the shape simulate_paradigm gives an experiment with groups (numbers made up)."""
    import xarray as xr

    n, s = len(names), len(kinds)
    per = lambda a: (("subject", "session"), np.asarray(a, dtype=float))  # noqa: E731
    return xr.Dataset(
        {"session_presses": per(presses), "session_infusions": per(np.zeros((n, s))),
         "first_hour_infusions": per(np.zeros((n, s))), "breakpoint": per(np.full((n, s), np.nan)),
         "cpp_score": per(cpp)},
        coords={"subject": np.arange(n), "session": np.arange(s), "group": ("subject", np.array(names)),
                "session_kind": ("session", np.array(kinds)), "session_phase": ("session", np.arange(s)),
                "session_trigger": (("subject", "session"), np.array([triggers[g] for g in names])),
                "session_length_min": (("subject", "session"), np.full((n, s), 60.0)),
                "session_start_min": (("subject", "session"), np.tile(np.arange(s) * 1440.0, (n, 1)))})


def test_reinstatement_and_place_preference_bars_by_group():
    kinds = ["self_administration", "extinction", "reinstatement"]
    triggers = {"cue": ["", "", "cue"], "shock": ["", "", "footshock"]}
    presses = [[30, 10, 40], [20, 6, 20], [25, 8, 70], [35, 12, 90]]
    ds = _made_up_result(kinds, triggers, presses, np.full((4, 3), np.nan), ["cue", "cue", "shock", "shock"])
    fig = paradigm_figure(ds)
    seeking = fig.axes[1]
    heights = [[p.get_height() for p in c] for c in seeking.containers if hasattr(c, "patches")]
    assert heights == [[8.0, 30.0], [10.0, 80.0]]  # per group: the mean of the extinction and test sessions
    assert {t.get_text() for t in seeking.texts} == {"cue", "footshock"}
    table = paradigm_summary_table(ds)
    test = table[table["kind"] == "reinstatement"].set_index("group")
    assert test.loc["shock", "trigger"] == "footshock" and test.loc["shock", "session_presses_mean"] == 80.0
    assert test.loc["shock", "session_presses_sem"] == pytest.approx(10.0)  # 70 and 90: SD √200, SEM √200 / √2

    cpp = np.full((4, 3), np.nan)
    cpp[:, 2] = [10.0, -30.0, 200.0, 260.0]
    ds = _made_up_result(["cpp_drug", "cpp_vehicle", "cpp_test"], {"saline": [""] * 3, "heroin": [""] * 3},
                         np.zeros((4, 3)), cpp, ["saline", "saline", "heroin", "heroin"])
    fig = paradigm_figure(ds)
    bars = [[p.get_height() for p in c] for c in fig.axes[1].containers if hasattr(c, "patches")]
    assert bars == [[-10.0], [230.0]]


def test_groups_on_the_same_step_grid_share_a_batch():
    from opioidsim.behavior.runner import _same_grid

    s = groups(LGA + LGA.replace('"LgA"', '"LgA saline"').replace('subjects = 1', 'subjects = 1\ninfusion = "0 ug/kg"'))
    tls = group_timelines(s.paradigm, s.record_every_min)
    # ShA alone (1 h sessions); LgA and its saline control on the same 6 h grid, in one batch
    assert _same_grid(tls, [0, 1, 2]) == [[0], [1, 2]]
