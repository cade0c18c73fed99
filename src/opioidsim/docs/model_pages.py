"""Pages generated from the model itself: one per mechanism module, the readouts contract and the
built-in scenarios. Everything shown is read from the objects the engine runs (the module's
docstring, `states`, `parameters`, `inputs`, `rate_inputs`, `provides`, its rate and output
functions), so a page cannot disagree with the code it documents.
"""
from __future__ import annotations

import inspect
import re
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np

from ..params import Parameter
from ..readouts import READOUTS
from .markdown import cell, code, docstring_to_markdown, fenced, number, table

#: how a parameter's source begins, and what that means (docs/guide/13-parameters.md)
SOURCE_KINDS = (
    ("fitted", "chosen so that the model reproduces the published finding named in the source"),
    ("assumed", "no direct measurement; the reason and any supporting evidence are given"),
    ("derived", "computed from other values"),
    ("numerical", "a numerical smoothing width or rate, far from any physiological scale"),
    ("scale definition", "the definition of a rating scale"),
    ("scenario condition", "a value that a scenario sets"),
)


_KIND = re.compile(r"^(" + "|".join(k for k, _ in SOURCE_KINDS) + r")\b", re.I)
_YEAR = re.compile(r"\b(19|20)\d\d\b")


def source_kind(p: Parameter) -> str:
    """How a value was obtained, from the start of its source: `fitted`, `assumed`, `derived`,
    `numerical`, `scale definition`, `scenario condition`; else `cited` where the source names a
    publication (a year), `other` where it does not."""
    m = _KIND.match(p.source.strip())
    if m:
        return m.group(1).lower()
    return "cited" if _YEAR.search(p.source) else "other"


def module_page_name(module) -> str:
    return f"{module.name}.md"


def typical_initial_state(model) -> dict[str, float]:
    """Each state's initial value for a typical subject (modules may start at their own steady
    state, which can differ from the declared value)."""
    from ..engine.core import subject_parameters
    from ..scenarios import Scenario

    p = subject_parameters(model, Scenario(duration="1h"), 1, 0, variability=False)
    y0 = np.asarray(model.initial_state(p))[0]
    return {name: float(y0[i]) for i, name in enumerate(model.state_names)}


def _functions_source(module) -> list[tuple[str, str]]:
    """(qualified name, source) of the functions that define the module's equations: those of its
    class (outputs, rates, initial state, helpers) and the module-level functions of its file."""
    cls = type(module)
    pymod = sys.modules[cls.__module__]
    found: list[tuple[str, str]] = []
    for name, obj in vars(pymod).items():
        if inspect.isfunction(obj) and obj.__module__ == pymod.__name__:
            found.append((name, textwrap.dedent(inspect.getsource(obj))))
    for klass in reversed([k for k in cls.__mro__ if k.__module__ == pymod.__name__]):
        for name, obj in vars(klass).items():
            fn = obj.__func__ if isinstance(obj, (staticmethod, classmethod)) else obj
            if inspect.isfunction(fn):
                found.append((f"{klass.__name__}.{name}", textwrap.dedent(inspect.getsource(fn))))
    return found


def _source_file(module) -> str:
    path = Path(inspect.getfile(type(module)))
    parts = path.parts
    return "/".join(parts[parts.index("opioidsim"):]) if "opioidsim" in parts else path.name


def parameter_rows(params) -> list[list[str]]:
    rows = []
    for p in params:
        cv = ""
        if p.cv > 0:
            cv = number(p.cv) + (" (clipped to 0–1)" if p.bounded_fraction else "")
        src = cell(p.source)
        if p.note:
            src += "<br>*note:* " + cell(p.note)
        if p.cv > 0:
            src += "<br>*CV:* " + cell(p.cv_source)
        rows.append([code(p.name), number(p.value), cell(p.unit), cv, source_kind(p), src])
    return rows


PARAMETER_HEADER = ("parameter", "value", "unit", "CV", "kind", "source")


def module_page(module, model, providers: dict[str, str], initial: dict[str, float]) -> str:
    pymod = sys.modules[type(module).__module__]
    doc = pymod.__doc__ or type(module).__doc__ or ""
    title = doc.strip().splitlines()[0].rstrip(".") if doc.strip() else module.name
    body = "\n".join(doc.strip().splitlines()[1:])
    out = [f"# `{module.name}` — {title}\n",
           f"*Generated from `{_source_file(module)}` (`{type(module).__name__}`). "
           f"Time scale: **{module.timescale}**; {len(module.states)} state(s), {len(module.parameters)} "
           f"parameter(s).*\n"]
    if body.strip():
        out += ["## Mechanism\n", docstring_to_markdown(body)]

    out.append("## States\n")
    if module.states:
        rows = []
        for s in module.states:
            declared, start = s.initial, initial.get(s.name, s.initial)
            init = number(start) if np.isclose(start, declared) else f"{number(start)} (declared {number(declared)})"
            bounds = f"{number(s.lower)} … {number(s.upper)}"
            rows.append([code(s.name), cell(s.unit), init, bounds, cell(s.description)])
        out.append("Initial values are those of a typical subject (no between-subject variability).\n")
        out.append(table(("state", "unit", "initial value", "bounds", "description"), rows))
    else:
        out.append("None: this module is algebraic (its outputs follow its inputs and parameters at once).\n")

    out.append("## Inputs and outputs\n")

    def link_input(name: str) -> str:
        src = providers.get(name)
        return f"{code(name)} (from [{src}]({src}.md))" if src else code(name)

    out.append("**Inputs** (outputs of earlier modules, read by outputs and rates): "
               + (", ".join(link_input(i) for i in module.inputs) or "none") + "\n")
    out.append("**Rate inputs** (outputs of any module, read by the rates only): "
               + (", ".join(link_input(i) for i in module.rate_inputs) or "none") + "\n")
    rows = []
    for name in module.provides:
        r = READOUTS.get(name)
        if r is not None:
            rows.append([code(name), cell(r.units), f"[readout](../readouts.md): {cell(r.long_name)}"])
        else:
            readers = sorted(m.name for m in model.modules if name in m.inputs + m.rate_inputs)
            rows.append([code(name), "", "internal signal, read by " +
                         (", ".join(f"[{m}]({m}.md)" for m in readers) or "no module")])
    out.append("**Outputs:**\n")
    out.append(table(("output", "unit", "what"), rows) if rows else "none\n")

    out.append("## Parameters\n")
    if module.parameters:
        kinds = Counter(source_kind(p) for p in module.parameters)
        out.append("Taken from the `Parameter` objects the engine uses. *kind* is how the value was "
                   "obtained (see [the model overview](index.md#sources)): "
                   + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ". A CV is the lognormal "
                   "between-subject coefficient of variation.\n")
        out.append(table(PARAMETER_HEADER, parameter_rows(module.parameters)))
    else:
        out.append("None.\n")

    out.append("## Equations as implemented\n")
    out.append(f"The functions of `{_source_file(module)}` that compute this module's outputs and "
               "rates (`y`: this module's states, `u`: its inputs, `p`: parameters in internal units "
               "— minutes, mg, L, nM, ng/mL, mmHg).\n")
    for qualname, src in _functions_source(module):
        out.append(f"**`{qualname}`**\n")
        out.append(fenced(src, "python"))
    return "\n".join(out)


def model_index(model, pages: dict[str, str]) -> str:
    rows = []
    for m in model.modules:
        rows.append([f"[{m.name}]({pages[m.name]})", m.timescale, str(len(m.states)), str(len(m.parameters)),
                     cell(((sys.modules[type(m).__module__].__doc__ or "").strip().splitlines() or [""])[0])])
    kinds = Counter(source_kind(p) for p in model.parameters.values())
    kind_rows = [[k, str(kinds.get(k, 0)), cell(meaning)] for k, meaning in
                 (("cited", "taken or converted from the publication named (author, year, journal, table/figure)"),
                  *SOURCE_KINDS, ("other", "a product label, a definition or a role (a genotype indicator, a full agonist), as its source says"))]
    return "\n".join([
        "# The model\n",
        "The default model is these mechanism modules, wired in this order: each module reads the "
        "outputs of the ones before it (and its rates may read any module's outputs). "
        f"{len(model.states)} states and {len(model.parameters)} parameters in all.\n",
        table(("module", "time scale", "states", "parameters", "what it is"), rows),
        "## Sources\n",
        "Every number is a `Parameter` with a value, a unit and a source; a between-subject CV needs a "
        "source of its own. The *kind* column of each parameter table tells how a value was obtained, "
        "from the way its source begins:\n",
        table(("kind", "parameters", "meaning"), kind_rows),
    ])


def readouts_page(model) -> str:
    providers = {name: m.name for m in model.modules for name in m.provides}
    rows = []
    for r in READOUTS.values():
        src = providers.get(r.name)
        rows.append([code(r.name), cell(r.units), cell(r.long_name),
                     f"[{src}](model/{src}.md)" if src else "not produced yet"])
    return "\n".join([
        "# Readouts\n",
        "Readout names, units and meanings are the public contract: scripts, notebooks and reports rely "
        "on them. This table is generated from `opioidsim.readouts.READOUTS`. A unit of `1` means "
        "dimensionless (a fraction, a score or a 0/1 flag). Every variable of a results Dataset carries "
        "its readout's unit (`units`) and meaning (`long_name`) as attributes.\n",
        table(("readout", "unit", "meaning", "module"), rows),
    ])


def scenarios_page() -> str:
    from ..scenarios import builtin_dir, builtin_scenarios

    names = builtin_scenarios()
    out = ["# Built-in scenarios\n",
           "Shipped with the package (`src/opioidsim/scenarios/builtin/`). `opioidsim scenarios` lists "
           "them, `opioidsim scenarios NAME` prints one, `opioidsim run NAME` runs it and "
           "`opioidsim.load_scenario(NAME)` loads it in Python.\n",
           table(("name", "description"), [[f"[{code(n)}](#{n})", cell(d)] for n, d in names.items()])]
    for name, desc in names.items():
        text = builtin_dir().joinpath(f"{name}.toml").read_text(encoding="utf-8")
        out += [f"## {name}\n", cell(desc) + "\n", fenced(text, "toml")]
    return "\n".join(out)


def behaviour_page() -> str:
    """The behaviour layer's page: what the agent does (its module docstrings) and every agent
    parameter with value, unit and source, read from the Parameter objects."""
    from ..behavior import agent, runner, timeline

    out = ["# behaviour (the agent and the paradigms)\n",
           "Source: `src/opioidsim/behavior/` (agent.py, timeline.py, runner.py). Not a mechanism module of "
           "the ODE model: the agent reads the model's outputs every decision step and gives doses.\n",
           (agent.__doc__ or "").strip() + "\n",
           "## How a paradigm runs\n", (runner.__doc__ or "").strip() + "\n",
           (timeline.__doc__ or "").strip() + "\n",
           "## Agent parameters\n", table(PARAMETER_HEADER, parameter_rows(agent.PARAMETERS))]
    return "\n".join(out)


def treatment_page() -> str:
    """The human layer's page: life courses, the programme and virtual trials (module docstrings)
    and every parameter of the person with value, unit and source, read from the Parameter objects."""
    from ..behavior import course, human
    from ..trial import simulate

    out = ["# treatment (people, programmes and virtual trials)\n",
           "Source: `src/opioidsim/behavior/human.py`, `behavior/course.py`, `trial/`. The same agent as the "
           "animal paradigms (see behaviour), living a person's life: street use, clinic attendance, medication "
           "through the PK and receptor modules.\n",
           (human.__doc__ or "").strip() + "\n",
           "## How a course runs\n", (course.__doc__ or "").strip() + "\n",
           "## Virtual trials\n", (simulate.__doc__ or "").strip() + "\n",
           "## Parameters of the person\n", table(PARAMETER_HEADER, parameter_rows(human.PARAMETERS))]
    return "\n".join(out)
