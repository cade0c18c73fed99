"""SBML export: the whole model (fast and slow parts) as SBML Level 3 Version 2.

The model's rate functions are written in jax.numpy, so nothing here is written per module: the
vector field is *traced*. `scalar_vector_field` calls every module's `outputs` and `rates` on
dicts of scalars (no stacking, so the traced program stays scalar), `jax.make_jaxpr` records it,
and the recorded equations are translated into SBML math. Equal sub-expressions are merged
(modules recompute shared quantities, e.g. weight-scaled volumes, in outputs and rates); a value
used more than once becomes an assignment rule `aux_<n>`, one used once is written inline.

What the file holds (ids are the public contract):

- every model parameter as a constant SBML parameter with its internal value (`opioidsim.units`:
  minutes, mg, L, nM, ng/mL, mmHg, L/min) and a unit definition for it; notes and an
  `opioidsim:parameter` annotation carry the declared value and unit, the source, note and
  between-subject cv, and DOIs or PubMed ids in the source become bqbiol:isDescribedBy links;
- every state as a parameter with a rate rule (id = state name; a state whose name is also a
  readout's, e.g. `paco2`, is `<name>_state`), its initial value the model's own initial state
  (`Model.initial_state`) for the exported subject;
- every readout the model provides as an assignment rule with the readout's id and unit;
- the scenario's doses (if any) as events at the dose times the engine uses (snapped to its grid),
  adding amount × bioavailability to the dose's target state, as `engine.dosing.compile_doses`;
  the trigger is `time > t`, so that a record at t is taken before the dose, as the engine does.

SBML `time` is in minutes. A primitive the translator does not know raises `SbmlExportError`
naming it (and the module-level list `TRANSLATED` says which it knows).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from xml.sax.saxutils import escape, quoteattr

import numpy as np

__all__ = ["SbmlExport", "SbmlExportError", "export_sbml", "write_sbml", "scalar_vector_field", "trace_model",
           "TRANSLATED", "ANNOTATION_NS"]

#: namespace of the opioidsim annotations on parameters, states and readouts
ANNOTATION_NS = "urn:opioidsim:sbml-annotation:1"
ANNOTATION_PREFIX = "opioidsim"
AUX_PREFIX = "aux_"
STATE_SUFFIX = "_state"
#: SBML Level 3 Version 2: it has max and min in its MathML subset
LEVEL, VERSION = 3, 2


class SbmlExportError(ValueError):
    """The model (or scenario) cannot be written as SBML: names the part and why."""


# ---------------------------------------------------------------------------------------------
# tracing
# ---------------------------------------------------------------------------------------------
def scalar_vector_field(model) -> tuple[Callable, tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """f(t, *states, *parameters) -> (rates, readouts), module by module as `Model.outputs` and
    `Model.rhs` wire them, on scalars. Returns (f, state names, parameter names, readout names)."""
    states, params, readouts = model.state_names, tuple(model.parameters), model.readouts
    n_s = len(states)

    def f(t, *args):
        y = dict(zip(states, args[:n_s]))
        p = dict(zip(params, args[n_s:]))
        out: dict = {}
        for b in model.blocks:
            u = {k: out[k] for k in b.module.inputs}
            out.update(b.module.outputs({s.name: y[s.name] for s in b.module.states}, u, p))
        rates = []
        for b in model.blocks:
            if b.size == 0:
                continue
            u = {k: out[k] for k in b.module.inputs + b.module.rate_inputs}
            r = b.module.rates(t, {s.name: y[s.name] for s in b.module.states}, u, p)
            rates.extend(r[s.name] for s in b.module.states)
        return tuple(rates), tuple(out[name] for name in readouts)

    return f, states, params, readouts


def trace_model(model):
    """The ClosedJaxpr of `scalar_vector_field(model)` at float64 scalars."""
    import jax

    jax.config.update("jax_enable_x64", True)
    f, states, params, _ = scalar_vector_field(model)
    zeros = [np.float64(0.0)] * (1 + len(states) + len(params))
    return jax.make_jaxpr(f)(*zeros)


# ---------------------------------------------------------------------------------------------
# jaxpr -> expression graph
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Node:
    op: str  # sym, num, or an operator below
    args: tuple[int, ...] = ()
    value: Any = None  # the id of a sym, the number of a num
    boolean: bool = False


_BINARY = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "^"}
_COMPARE = {"gt": ">", "lt": "<", "ge": ">=", "le": "<=", "eq": "==", "ne": "!="}
_FUNCS = {"exp": "exp", "ln": "ln", "sqrt": "sqrt", "tanh": "tanh", "abs": "abs", "floor": "floor",
          "ceil": "ceiling", "max": "max", "min": "min"}


class _Graph:
    """Expression DAG with hash-consing: one node per distinct (operator, arguments)."""

    def __init__(self) -> None:
        self.nodes: list[_Node] = []
        self._index: dict[_Node, int] = {}

    def add(self, node: _Node) -> int:
        i = self._index.get(node)
        if i is None:
            i = self._index[node] = len(self.nodes)
            self.nodes.append(node)
        return i

    def num(self, x: float) -> int:
        return self.add(_Node("num", value=float(x)))

    def op(self, op: str, *args: int, boolean: bool = False) -> int:
        return self.add(_Node(op, tuple(args), boolean=boolean))

    def is_bool(self, i: int) -> bool:
        return self.nodes[i].boolean


def _literal(g: _Graph, val) -> int:
    a = np.asarray(val)
    if a.shape != ():
        raise SbmlExportError(f"the traced model holds a non-scalar constant of shape {a.shape}; SBML export "
                              "needs the rate functions to work on scalars")
    if a.dtype == bool:
        return g.add(_Node("bool", value=bool(a), boolean=True))
    return g.num(float(a))


def _translate_eqn(g: _Graph, prim: str, ins: list[int], params: dict, in_avals) -> int:
    """One traced equation -> one graph node (its inputs already translated)."""
    if prim in _BINARY:
        return g.op(prim, *ins)
    if prim in ("max", "min"):
        return g.op(prim, *ins)
    if prim in ("exp", "sqrt", "tanh", "abs", "floor", "ceil"):
        return g.op(prim, *ins)
    if prim == "log":
        return g.op("ln", *ins)
    if prim == "neg":
        return g.op("neg", *ins)
    if prim == "log1p":
        return g.op("ln", g.op("add", g.num(1.0), ins[0]))
    if prim == "expm1":
        return g.op("sub", g.op("exp", ins[0]), g.num(1.0))
    if prim == "logistic":
        return g.op("div", g.num(1.0), g.op("add", g.num(1.0), g.op("exp", g.op("neg", ins[0]))))
    if prim == "integer_pow":
        return g.op("pow", ins[0], g.num(params["y"]))
    if prim == "square":
        return g.op("pow", ins[0], g.num(2.0))
    if prim == "rsqrt":
        return g.op("div", g.num(1.0), g.op("sqrt", ins[0]))
    if prim == "exp2":
        return g.op("pow", g.num(2.0), ins[0])
    if prim == "sign":
        x = ins[0]
        return g.op("piecewise", g.num(1.0), g.op("gt", x, g.num(0.0), boolean=True),
                    g.op("piecewise", g.num(-1.0), g.op("lt", x, g.num(0.0), boolean=True), g.num(0.0)))
    if prim == "clamp":  # clamp(lo, x, hi)
        return g.op("max", ins[0], g.op("min", ins[1], ins[2]))
    if prim == "is_finite":
        return g.op("lt", g.op("abs", ins[0]), g.num(math.inf), boolean=True)
    if prim in _COMPARE:
        return g.op(prim, *ins, boolean=True)
    if prim in ("and", "or", "not"):
        if not all(np.dtype(a.dtype) == bool for a in in_avals):
            raise SbmlExportError(f"JAX primitive {prim!r} on integers (bitwise) has no SBML equivalent; "
                                  "only its logical (boolean) form is translated")
        return g.op(prim, *ins, boolean=True)
    if prim == "select_n":
        pred, cases = ins[0], ins[1:]
        if len(cases) != 2 or np.dtype(in_avals[0].dtype) != bool:
            raise SbmlExportError("JAX primitive 'select_n' is translated only with a boolean predicate and "
                                  f"two cases (jnp.where); got {len(cases)} cases on {in_avals[0].dtype}")
        # select_n(p, a, b) is b where p is true, else a
        return g.op("piecewise", cases[1], pred, cases[0], boolean=g.is_bool(cases[0]) and g.is_bool(cases[1]))
    if prim == "convert_element_type":
        src, dst = np.dtype(in_avals[0].dtype), np.dtype(params["new_dtype"])
        if src == bool and np.issubdtype(dst, np.floating):
            return g.op("piecewise", g.num(1.0), ins[0], g.num(0.0))
        if np.issubdtype(src, np.floating) and np.issubdtype(dst, np.floating):
            return ins[0]
        if src == dst:
            return ins[0]
        raise SbmlExportError(f"JAX primitive 'convert_element_type' from {src} to {dst} has no SBML "
                              "equivalent (only bool -> float and float -> float are translated)")
    if prim in ("copy", "copy_p", "stop_gradient", "optimization_barrier"):
        return ins[0]
    raise SbmlExportError(f"JAX primitive {prim!r} has no SBML translation (translated: "
                          f"{', '.join(sorted(TRANSLATED))}); write the rate function with those or add "
                          "a translation in opioidsim/io/sbml.py")


#: JAX primitives the translator knows (calls such as jit and custom_jvp_call are inlined)
TRANSLATED = frozenset({*_BINARY, "max", "min", "exp", "sqrt", "tanh", "abs", "floor", "ceil", "log", "neg", "log1p",
                        "expm1", "logistic", "integer_pow", "square", "rsqrt", "exp2", "sign", "clamp", "is_finite",
                        *_COMPARE, "and", "or", "not", "select_n", "convert_element_type", "copy", "copy_p",
                        "stop_gradient", "optimization_barrier", "jit", "pjit", "custom_jvp_call",
                        "custom_vjp_call", "closed_call", "core_call", "remat", "checkpoint"})

_CALLS = {"jit": "jaxpr", "pjit": "jaxpr", "closed_call": "call_jaxpr", "core_call": "call_jaxpr",
          "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr", "remat": "jaxpr", "checkpoint": "jaxpr"}


def _inner(params: dict, key: str):
    j = params.get(key)
    if j is None and "fun_jaxpr" in params:
        j = params["fun_jaxpr"]
    if j is None:
        raise SbmlExportError(f"cannot inline a call: no {key!r} among its parameters {sorted(params)}")
    if hasattr(j, "jaxpr") and hasattr(j, "consts"):
        return j.jaxpr, list(j.consts)
    return j, []


def _walk(g: _Graph, jaxpr, consts: list, ins: list[int]) -> list[int]:
    """Translate `jaxpr` with its invars bound to graph nodes `ins`; returns its outvars' nodes."""
    from jax.extend.core import Literal

    env: dict = {}

    def read(v) -> int:
        if isinstance(v, Literal):
            return _literal(g, v.val)
        return env[v]

    for v, c in zip(jaxpr.constvars, consts):
        env[v] = _literal(g, c)
    for v, i in zip(jaxpr.invars, ins):
        env[v] = i
    for eqn in jaxpr.eqns:
        for v in list(eqn.invars) + list(eqn.outvars):
            shape = getattr(v.aval, "shape", ())
            if shape != ():
                raise SbmlExportError(f"JAX primitive {eqn.primitive.name!r} works on an array of shape {shape}; "
                                      "SBML export needs the rate functions on scalars")
        args = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        if name in _CALLS:
            inner, inner_consts = _inner(eqn.params, _CALLS[name])
            if name in ("custom_jvp_call", "custom_vjp_call"):  # the primal function's own arguments
                n = len(inner.invars)
                args = args[-n:] if n else []
            outs = _walk(g, inner, inner_consts, args)
        else:
            if len(eqn.outvars) != 1:
                raise SbmlExportError(f"JAX primitive {name!r} with {len(eqn.outvars)} results is not translated")
            outs = [_translate_eqn(g, name, args, eqn.params, [v.aval for v in eqn.invars])]
        for v, o in zip(eqn.outvars, outs):
            env[v] = o
    return [read(v) for v in jaxpr.outvars]


# ---------------------------------------------------------------------------------------------
# graph -> infix formulas (libsbml's L3 parser reads them)
# ---------------------------------------------------------------------------------------------
def _number(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "INF" if x > 0 else "(-INF)"
    text = repr(float(x))
    return f"({text})" if x < 0 else text


class _Writer:
    """Infix text of graph nodes; a node with a name is referred to by it."""

    def __init__(self, g: _Graph, names: dict[int, str]):
        self.g, self.names = g, names

    def ref(self, i: int) -> str:
        if i in self.names:
            return self.names[i]
        node = self.g.nodes[i]
        if node.op in ("sym", "num", "bool"):
            return self.expr(i)
        return f"({self.expr(i)})"

    def expr(self, i: int) -> str:
        """The node's own formula (not its name)."""
        n = self.g.nodes[i]
        a = n.args
        if n.op == "sym":
            return n.value
        if n.op == "num":
            return _number(n.value)
        if n.op == "bool":
            return "true" if n.value else "false"
        if n.op in _BINARY:
            return f"{self.ref(a[0])} {_BINARY[n.op]} {self.ref(a[1])}"
        if n.op in _COMPARE:
            return f"{self.ref(a[0])} {_COMPARE[n.op]} {self.ref(a[1])}"
        if n.op == "neg":
            return f"-{self.ref(a[0])}"
        if n.op == "and":
            return f"{self.ref(a[0])} && {self.ref(a[1])}"
        if n.op == "or":
            return f"{self.ref(a[0])} || {self.ref(a[1])}"
        if n.op == "not":
            return f"!{self.ref(a[0])}"
        if n.op == "piecewise":
            return f"piecewise({self.ref(a[0])}, {self.ref(a[1])}, {self.ref(a[2])})"
        if n.op in _FUNCS:
            return f"{_FUNCS[n.op]}({', '.join(self.ref(x) for x in a)})"
        raise AssertionError(n.op)  # pragma: no cover - every graph op is written above


# ---------------------------------------------------------------------------------------------
# units
# ---------------------------------------------------------------------------------------------
def _unit_id(pint_unit: str) -> str:
    text = pint_unit.replace("**", "^").replace(" ", "")
    text = text.replace("/", "_per_").replace("*", "_").replace("^-", "_pow_m").replace("^", "_pow_")
    text = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return "u_" + ("dimensionless" if text in ("", "1", "dimensionless") else text)


_SBML_KINDS = {"kilogram": "UNIT_KIND_KILOGRAM", "meter": "UNIT_KIND_METRE", "second": "UNIT_KIND_SECOND",
               "mole": "UNIT_KIND_MOLE"}


def _add_unit_definition(model, libsbml, pint_unit: str, cache: dict[str, str]) -> str:
    """A unit definition for `pint_unit` (pint spelling), once per unit; returns its id."""
    from ..units import ureg

    if pint_unit in cache:
        return cache[pint_unit]
    q = ureg.Quantity(1.0, pint_unit).to_base_units()
    uid = _unit_id(pint_unit)
    ud = model.createUnitDefinition()
    ud.setId(uid)
    ud.setName(pint_unit)
    items = [(str(u), float(e)) for u, e in q.unit_items()]
    factor = float(q.magnitude)
    if not items:
        u = ud.createUnit()
        u.setKind(libsbml.UNIT_KIND_DIMENSIONLESS)
        u.setExponent(1.0)
        u.setScale(0)
        u.setMultiplier(factor)
    for k, (name, exp) in enumerate(items):
        if name not in _SBML_KINDS:
            raise SbmlExportError(f"unit {pint_unit!r} has base unit {name!r}, which SBML cannot express here")
        u = ud.createUnit()
        u.setKind(getattr(libsbml, _SBML_KINDS[name]))
        u.setExponent(exp)
        u.setScale(0)
        # (multiplier·kind)^exponent: the whole factor sits on the first unit
        u.setMultiplier(factor ** (1.0 / exp) if k == 0 else 1.0)
    cache[pint_unit] = uid
    return uid


def _declared_unit_id(model, libsbml, unit: str, cache: dict[str, str]) -> str:
    """Unit id for a unit as the readout/state contract writes it ("ng/mL", "%", "1", ...)."""
    from ..units import ureg

    pint_unit = "dimensionless" if unit in ("1", "") else ("percent" if unit == "%" else unit)
    pint_unit = str(ureg.Unit(pint_unit)) if pint_unit not in ("dimensionless",) else pint_unit
    return _add_unit_definition(model, libsbml, pint_unit, cache)


# ---------------------------------------------------------------------------------------------
# annotations
# ---------------------------------------------------------------------------------------------
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s,;()]+[^\s,;().])")
_PMID = re.compile(r"\bPMID:?\s*(\d{5,9})\b", re.IGNORECASE)


def source_identifiers(text: str) -> list[str]:
    """identifiers.org URIs for the DOIs and PubMed ids written in a source text."""
    uris = [f"https://identifiers.org/doi:{d}" for d in _DOI.findall(text)]
    uris += [f"https://identifiers.org/pubmed:{n}" for n in _PMID.findall(text)]
    return list(dict.fromkeys(uris))


def _notes(lines: list[tuple[str, str]]) -> str:
    body = "".join(f"<p>{escape(k)}: {escape(v)}</p>" for k, v in lines if v != "")
    return f'<body xmlns="http://www.w3.org/1999/xhtml">{body}</body>'


def _annotation(tag: str, attrs: Mapping[str, Any]) -> str:
    text = " ".join(f"{k}={quoteattr(str(v))}" for k, v in attrs.items() if v not in (None, ""))
    return f'<{ANNOTATION_PREFIX}:{tag} xmlns:{ANNOTATION_PREFIX}="{ANNOTATION_NS}" {text}/>'


def _check(status: int, what: str) -> None:
    import libsbml

    if status != libsbml.LIBSBML_OPERATION_SUCCESS:
        raise SbmlExportError(f"libSBML refused {what}: {libsbml.OperationReturnValue_toString(status)}")


# ---------------------------------------------------------------------------------------------
# the export
# ---------------------------------------------------------------------------------------------
@dataclass
class SbmlExport:
    """An exported model: the SBML text and how the model's names map to SBML ids."""

    xml: str
    state_ids: dict[str, str]  # model state name -> SBML id
    parameter_ids: dict[str, str]  # model parameter name -> SBML id (the same name)
    readout_ids: dict[str, str]  # readout name -> SBML id (the same name)
    initial_state: dict[str, float]  # SBML state id -> initial value
    parameter_values: dict[str, float]  # SBML parameter id -> value (internal units)
    events: list[tuple[float, dict[str, str]]]  # (time in min, {state id: amount formula})
    n_aux: int  # intermediate values written as assignment rules
    consistency: dict[str, int] = field(default_factory=dict)  # severity -> count of libSBML messages
    messages: list[str] = field(default_factory=list)  # libSBML's errors and a sample of warnings


def _default_scenario():
    from ..scenarios import Scenario

    return Scenario(name="physiology", description="the physiology without doses", duration="1d")


def _dose_events(model, scenario, ids: dict[str, str]) -> list[tuple[float, dict[str, str]]]:
    """Doses at the engine's snapped times, one event per time: {state id: added amount formula}."""
    from ..engine.core import scenario_grid
    from ..model.pk import DOSE_TARGETS

    if getattr(scenario, "paradigm", None) is not None or getattr(scenario, "life", None) is not None \
            or getattr(scenario, "trial", None) is not None:
        raise SbmlExportError(f"scenario {scenario.name!r} doses by a behaviour model ([paradigm], [life] or "
                              "[trial]); SBML export writes fixed dose schedules ([[dose]] entries) only")
    grid = scenario_grid(scenario)  # the scenario's smallest step ([solver]) snaps doses in the engine
    by_time: dict[float, dict[str, list[str]]] = {}
    for dose in scenario.doses:
        target, fraction, _ka = DOSE_TARGETS[(dose.drug, dose.route)]
        term = _number(dose.amount_mg) + (f" * {fraction}" if fraction else "")
        for t in dose.times_min(scenario.duration_min):
            t_snap = int(round(t / grid.h)) * grid.h  # the engine's snapping (engine/dosing.py)
            by_time.setdefault(t_snap, {}).setdefault(ids[target], []).append(term)
    return [(t, {sid: " + ".join(terms) for sid, terms in targets.items()}) for t, targets in sorted(by_time.items())]


def export_sbml(model=None, scenario=None, *, params: Mapping[str, Any] | None = None, check: bool = True) -> SbmlExport:
    """Export `model` (default: the full model) as SBML L3V2.

    `scenario` (a Scenario, built-in name or .toml path; default: none) adds its doses as events and
    its conditions (e.g. pain_stimulus) to the parameter values. `params` (name -> value in
    internal units, scalars or length-1 arrays) gives the exported subject; default: the typical
    subject of the scenario (`subject_parameters(..., variability=False)`). `check` runs libSBML's
    consistency checks and fills `consistency` and `messages`."""
    import libsbml

    from .. import __version__
    from ..engine.core import _as_scenario, subject_parameters
    from ..model.model import default_model
    from ..readouts import READOUTS
    from ..overrides import in_effect
    from ..units import internal_unit

    model = model or default_model()
    scenario = _default_scenario() if scenario is None else _as_scenario(scenario)
    if params is None:
        params = subject_parameters(model, scenario, 1, scenario.cohort.seed, variability=False)
    p_values = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in params.items()}
    missing = [k for k in model.parameters if k not in p_values]
    if missing:
        raise SbmlExportError(f"params lacks {len(missing)} model parameter(s), e.g. {missing[:3]}")
    y0 = model.initial_state({k: np.asarray([v]) for k, v in p_values.items()})[0]

    # ids: states keep their names unless a readout has it
    readouts = model.readouts
    state_ids = {s: (s + STATE_SUFFIX if s in readouts else s) for s in model.state_names}
    all_ids = list(state_ids.values()) + list(model.parameters) + list(readouts)
    dup = {i for i in all_ids if all_ids.count(i) > 1}
    if dup:
        raise SbmlExportError(f"SBML ids used twice: {sorted(dup)}")
    bad = [i for i in all_ids if not re.fullmatch(r"[A-Za-z_]\w*", i) or i.startswith(AUX_PREFIX)
           or i in ("time", "pi", "e", "true", "false", "inf", "infinity", "nan", "notanumber", "avogadro",
                    "exponentiale")]
    if bad:
        raise SbmlExportError(f"names that cannot be SBML ids here: {bad}")

    events = _dose_events(model, scenario, state_ids)  # before the tracing: a behaviour scenario is refused

    # trace and translate
    closed = trace_model(model)
    g = _Graph()
    t_node = g.add(_Node("sym", value="time"))
    ins = [t_node] + [g.add(_Node("sym", value=state_ids[s])) for s in model.state_names] \
        + [g.add(_Node("sym", value=k)) for k in model.parameters]
    outs = _walk(g, closed.jaxpr, list(closed.consts), ins)
    n_s = model.n_states
    rate_nodes, readout_nodes = outs[:n_s], outs[n_s:]

    # which values get a name: readouts, and any non-trivial numeric value used more than once
    uses = [0] * len(g.nodes)
    reachable = set()
    stack = list(outs)
    while stack:
        i = stack.pop()
        if i in reachable:
            continue
        reachable.add(i)
        stack.extend(g.nodes[i].args)
    for i in reachable:
        for a in g.nodes[i].args:
            uses[a] += 1
    for i in outs:
        uses[i] += 1
    names: dict[int, str] = {}
    for r, i in zip(readouts, readout_nodes):
        if i not in names and g.nodes[i].op not in ("sym", "num"):
            names[i] = r
    aux: list[int] = []
    for i in sorted(reachable):
        node = g.nodes[i]
        if i in names or node.op in ("sym", "num", "bool") or node.boolean or uses[i] < 2:
            continue
        names[i] = f"{AUX_PREFIX}{len(aux)}"
        aux.append(i)
    bool_outs = [r for r, i in zip(readouts, readout_nodes) if g.is_bool(i)]
    if bool_outs:
        raise SbmlExportError(f"readouts {bool_outs} are boolean; make them numbers (e.g. .astype(float))")
    w = _Writer(g, names)

    # the document
    doc = libsbml.SBMLDocument(LEVEL, VERSION)
    m = doc.createModel()
    m.setId("opioidsim")
    m.setName(f"opioidsim {__version__}: {scenario.name}")
    m.setMetaId("opioidsim_model")
    units: dict[str, str] = {}
    minute = _add_unit_definition(m, libsbml, "minute", units)
    _check(m.setTimeUnits(minute), "the time unit")
    _check(m.setNotes(_notes([
        ("opioidsim", f"version {__version__}; research and teaching only, never a dosing guide for a person"),
        ("scenario", f"{scenario.name}: {scenario.description}"),
        ("time", "SBML time is in minutes from the start of the scenario"),
        ("ids", f"states are SBML parameters with rate rules, named as in the model; a state whose name is also a "
                f"readout's has the suffix {STATE_SUFFIX!r}. Readouts are assignment rules named as the readout. "
                f"{AUX_PREFIX}<n> are intermediate values used more than once."),
        ("subject", "parameter values and initial states are those of the exported subject (default: the "
                    "typical subject of the scenario, no between-subject variability)"),
        ("doses", "each dose is an event at its time (snapped to the engine's grid) adding amount x "
                  "bioavailability to its target state; its trigger is time > t, so that the dose enters just "
                  "after an output at t, as in the engine"),
        ("engine", "the engine also clips each state to its declared bounds after every step (removing "
                   "round-off undershoots); the SBML model has no such clipping"),
    ]), True), "the model notes")

    def parameter(pid: str, *, value: float | None, constant: bool, unit: str | None, name: str = "",
                  notes: list | None = None, annotation: str | None = None, uris: list[str] = ()) -> None:
        par = m.createParameter()
        _check(par.setId(pid), f"id {pid!r}")
        par.setConstant(constant)
        if value is not None:
            par.setValue(float(value))
        if unit is not None:
            par.setUnits(unit)
        if name:
            par.setName(name)
        if notes or annotation or uris:
            par.setMetaId(f"meta_{pid}")
        if notes:
            _check(par.setNotes(_notes(notes), True), f"the notes of {pid!r}")
        if annotation:
            _check(par.appendAnnotation(annotation), f"the annotation of {pid!r}")
        for uri in uris:
            cv = libsbml.CVTerm(libsbml.BIOLOGICAL_QUALIFIER)
            cv.setBiologicalQualifierType(libsbml.BQB_IS_DESCRIBED_BY)
            cv.addResource(uri)
            _check(par.addCVTerm(cv), f"the identifier {uri} of {pid!r}")

    # the declarations the exported values come from: the species' and the scenario's [parameters]
    # in place of the sourced ones (their notes say so)
    declared = in_effect(model.parameters, scenario.parameters, getattr(scenario.cohort, "species", "human"))
    for name in model.parameters:
        par = declared[name]
        iu = internal_unit(par.unit)
        parameter(name, value=p_values[name], constant=True, unit=_add_unit_definition(m, libsbml, iu, units),
                  notes=[("source", par.source), ("declared", f"{par.value!r} {par.unit}"), ("internal unit", iu),
                         ("note", par.note), ("between-subject cv", f"{par.cv:g}" if par.cv else ""),
                         ("cv source", par.cv_source)],
                  annotation=_annotation("parameter", {"source": par.source, "declaredValue": repr(par.value),
                                                       "declaredUnit": par.unit, "internalUnit": iu,
                                                       "note": par.note, "cv": repr(par.cv) if par.cv else None,
                                                       "cvSource": par.cv_source}),
                  uris=source_identifiers(par.source + " " + par.cv_source))
    module_of = {s.name: b.module.name for b in model.blocks for s in b.module.states}
    for k, s in enumerate(model.states):
        sid = state_ids[s.name]
        parameter(sid, value=float(y0[k]), constant=False, unit=_declared_unit_id(m, libsbml, s.unit, units),
                  name=s.description, notes=[("state", s.name), ("module", module_of[s.name]),
                                             ("unit", s.unit), ("bounds", f"[{s.lower:g}, {s.upper:g}]")],
                  annotation=_annotation("state", {"name": s.name, "module": module_of[s.name], "unit": s.unit,
                                                   "lower": repr(s.lower), "upper": repr(s.upper)}))
    for r in readouts:
        ro = READOUTS[r]
        parameter(r, value=None, constant=False, unit=_declared_unit_id(m, libsbml, ro.units, units),
                  name=ro.long_name, annotation=_annotation("readout", {"name": r, "unit": ro.units}))
    for i in aux:
        parameter(names[i], value=None, constant=False, unit=None)

    def rule(kind: str, var: str, formula: str) -> None:
        math_ast = libsbml.parseL3Formula(formula)
        if math_ast is None:
            raise SbmlExportError(f"libSBML could not parse the formula of {var!r}: "
                                  f"{libsbml.getLastParseL3Error()} in {formula[:200]!r}")
        r = m.createAssignmentRule() if kind == "assignment" else m.createRateRule()
        _check(r.setVariable(var), f"the rule variable {var!r}")
        _check(r.setMath(math_ast), f"the math of {var!r}")

    # assignment rules in dependency order (node ids are topological), readouts that are plain
    # symbols or numbers after them
    for i in sorted(names):
        rule("assignment", names[i], w.expr(i))
    for r, i in zip(readouts, readout_nodes):
        if names.get(i) != r:
            rule("assignment", r, w.ref(i) if i in names else w.expr(i))
    for s, i in zip(model.state_names, rate_nodes):
        rule("rate", state_ids[s], names[i] if i in names else w.expr(i))

    for k, (t, targets) in enumerate(events):
        e = m.createEvent()
        e.setId(f"dose_{k}")
        e.setName(f"dose at {t:g} min")
        e.setUseValuesFromTriggerTime(True)
        trig = e.createTrigger()
        trig.setInitialValue(False)
        trig.setPersistent(True)
        # `time > t`, not >=: the dose enters just after the record at t (and at t = 0 just after
        # the initial record), the engine's convention (engine/core.py, engine/reference.py)
        _check(trig.setMath(libsbml.parseL3Formula(f"time > {_number(t)}")), "an event trigger")
        for sid, amount in targets.items():
            ea = e.createEventAssignment()
            ea.setVariable(sid)
            _check(ea.setMath(libsbml.parseL3Formula(f"{sid} + {amount}")), "an event assignment")

    counts: dict[str, int] = {}
    messages: list[str] = []
    if check:
        doc.checkConsistency()
        sev_names = {libsbml.LIBSBML_SEV_INFO: "info", libsbml.LIBSBML_SEV_WARNING: "warning",
                     libsbml.LIBSBML_SEV_ERROR: "error", libsbml.LIBSBML_SEV_FATAL: "fatal"}
        for k in range(doc.getNumErrors()):
            err = doc.getError(k)
            sev = sev_names.get(err.getSeverity(), "other")
            counts[sev] = counts.get(sev, 0) + 1
            if sev in ("error", "fatal") or len(messages) < 20:
                messages.append(f"{sev} {err.getErrorId()} line {err.getLine()}: {err.getMessage().strip()}")
    xml = libsbml.writeSBMLToString(doc)
    return SbmlExport(xml=xml, state_ids=state_ids, parameter_ids={k: k for k in model.parameters},
                      readout_ids={r: r for r in readouts},
                      initial_state={state_ids[s]: float(y0[k]) for k, s in enumerate(model.state_names)},
                      parameter_values={k: p_values[k] for k in model.parameters}, events=events,
                      n_aux=len(aux), consistency=counts, messages=messages)


def write_sbml(export: SbmlExport, path) -> None:
    """Write the SBML file atomically (the old file or the whole new one, never half)."""
    import os

    from .checkpoint import atomic_write_text

    atomic_write_text(path, export.xml)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # the temporary file was private; the export is an ordinary file
