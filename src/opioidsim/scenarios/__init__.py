"""Scenarios: what to simulate (TOML files or Python objects), validated before anything runs.

>>> from opioidsim.scenarios import Scenario, Dose, load_scenario
>>> s = load_scenario("acute-heroin-iv")
>>> s2 = Scenario(duration="6h", doses=[Dose("heroin", "10 mg", route="smoked", at="10min")])
"""
from opioidsim.errors import ScenarioError
from opioidsim.scenarios.schema import (
    LIMITS,
    Cohort,
    Conditions,
    Dose,
    Scenario,
    Solver,
    builtin_dir,
    builtin_scenarios,
    load_scenario,
)

__all__ = [
    "Cohort", "Conditions", "Dose", "Scenario", "ScenarioError", "Solver", "LIMITS",
    "builtin_dir", "builtin_scenarios", "load_scenario",
]
