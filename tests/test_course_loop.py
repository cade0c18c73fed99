"""The course loop (behavior/course.py `_course_runner`) takes each subject of a batch through the
timeline's phases at its own pace: one subject starts its next phase while another is still
stepping through a use. Nothing a subject records may depend on who shares its batch, on how far
the others have got, or on where the timeline is cut into compiled calls (the last one padded)."""
from __future__ import annotations

import numpy as np

from opioidsim.behavior import course
from opioidsim.behavior.course import simulate_life
from opioidsim.scenarios.schema import Scenario

# three days: two in the community (uses at different times, so some subjects step through a use's
# transient while others take one long step), one in forced abstinence; 18 decision steps
LIFE_TOML = """
[scenario]
name = "course-loop"
[cohort]
subjects = 16
seed = 5
[life]
decide_every = "4h"
[[life.period]]
kind = "community"
duration = "2d"
[[life.period]]
kind = "forced_abstinence"
duration = "1d"
"""


def test_a_subject_records_in_its_batch_what_it_records_alone_whatever_the_calls(monkeypatch):
    sc = Scenario.from_toml_text(LIFE_TOML)
    # the batch in calls of 5 decision steps: 4 calls, the last one padded
    monkeypatch.setattr(course, "STEPS_PER_CALL", 5)
    batch = simulate_life(sc)
    monkeypatch.undo()
    uses = batch.uses.values.sum(axis=1)
    most, least = int(np.argmax(uses)), int(np.argmin(uses))
    # they used different numbers of times, so they needed different numbers of steps
    assert uses[most] > uses[least], uses
    for i in (most, least):
        # alone, the whole course is one compiled call (18 of its 128 decision steps real)
        alone = simulate_life(sc, subjects=range(i, i + 1))
        for name in batch.data_vars:
            np.testing.assert_array_equal(alone[name].values[0], batch[name].values[i], err_msg=name)


def test_the_batch_held_together_at_each_phase_gives_the_same_records(monkeypatch):
    # the loop as it was until stop 48, a phase at a time for the whole batch, is the reference:
    # each subject at its own pace must take the same steps and draws, and so record the same
    import functools

    from opioidsim.engine import core

    def compile_anew():  # the runners are cached by model and readouts, not by the loop they use
        course._course_runner.cache_clear()
        course._split_course_runner.cache_clear()

    sc = Scenario.from_toml_text(LIFE_TOML)
    runs = {}
    for together in (False, True):
        monkeypatch.setattr(course, "through_phases", functools.partial(core.through_phases, together=together))
        compile_anew()
        runs[together] = simulate_life(sc)
    monkeypatch.undo()
    compile_anew()  # the next course compiles the loop as it is
    assert runs[True].uses.values.sum() > 0
    for name in runs[True].data_vars:
        np.testing.assert_array_equal(runs[True][name].values, runs[False][name].values, err_msg=name)
