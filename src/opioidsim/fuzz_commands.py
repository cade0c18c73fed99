"""Fuzzing the other subcommands' command lines: sensitivity, calibrate, export-sbml, trial, bench
and explore (issue 9; `opioidsim.fuzz` covers scenario files, API calls and `opioidsim run`).

Each case is one generated command line, made of the subcommand's own flags with valid, broken and
absurd values in any order, plus the files they name: a built-in scenario, a generated (valid or
broken) scenario file, a missing path, a folder, and for ``calibrate`` a generated data CSV (good,
wrong headers, unknown readouts, text and NaN in number columns, negative times, duplicate columns,
bytes that are not UTF-8). The expensive part of each command is replaced by a stub that stops the
case as "accepted" the moment it is reached with checked inputs:

| command | stub |
|---|---|
| sensitivity | the batched evaluation of the samples (`sensitivity.evaluate_samples`), the Dask connection |
| calibrate | the forward problem (`calibration.fit.ForwardProblem`), after data, bounds and starts are read |
| export-sbml | the tracing of the model (`io.sbml.trace_model`), after the scenario's doses are read |
| trial | the engine (`cli._simulate`) |
| bench | `bench.run_bench` |
| explore | the server loop: the real server is built (host and port bound) without warm-up, then closed |

The oracle is `opioidsim.fuzz`'s: either the stub is reached, or the command exits 2 with exactly
one ``opioidsim: error:`` line, no traceback, and nothing new in the case's folder. ``--help`` is
not generated (it exits 0 by design).
"""
from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from opioidsim.fuzz import ACCEPTED_KINDS, FuzzFailure, mutated, valid_course, valid_like

COMMANDS = ("sensitivity", "calibrate", "export-sbml", "trial", "bench", "explore")

#: placeholders replaced by paths inside the case's folder
SCENARIO_ARGS = ["acute-heroin-iv", "morphine-analgesia", "rat-heroin-long-access",
                 "trial-contingency-management", "life-prison-release", "no-such-scenario", "", " ",
                 "@file", "@missing.toml", "@folder", "@data", "/dev/null", "acute-heroin-iv.toml"]
JUNK = ["", "-", "--", "--bogus", "nan", "inf", "-1", "0", "1e400", "abc", "é", "\x00x", "--out"]

# Every list of values starts with the valid ones (how many: VALID[...] / the int beside it), so
# that a case is often valid throughout and reaches its stub; the rest are broken.
_sens_readouts = (["plasma_morphine", "plasma_morphine:peak", "ventilation:trough,nac_dopamine:auc"],
                  ["spo2:banana", "bogus", "plasma_morphine:bogus", "", ",", ":", "plasma_morphine,plasma_morphine",
                   "cows:nadir"])
_parameters = (["morphine_clearance", "heroin_volume,morphine_clearance"],
               ["bogus", "", ",", "morphine_clearance,morphine_clearance", "mor_kd_morphine", "morphine_clearance,,x"])
_sens_ranges = (["morphine_clearance=0.5:3", "heroin_volume=5:20"],
                ["morphine_clearance=3:0.5", "morphine_clearance=nan:1", "morphine_clearance=-1:1",
                 "morphine_clearance=0:0", "x=1:2", "=:", "morphine_clearance", "morphine_clearance=1e400:2e400",
                 "morphine_clearance=1:inf"])
_dask = ([], ["local", "local:2", "local:0", "local:x", "local:100000", "remote", "tcp://127.0.0.1:1", "junk",
              "tcp://", ""])
_ints = (["1", "2", "16"], ["0", "-4", "1e6", "4294967297", "1048577", "nan", "", "x", "65"])
_out = (["@out"], ["@folder", "@file", "/proc/opioidsim-x", "", ".", "/", ".."])


def _flag_values(command: str) -> dict[str, tuple[list[str], list[str]] | None]:
    """Each flag and its (valid, broken) values (None: a switch)."""
    if command == "sensitivity":
        return {"--readouts": _sens_readouts, "--parameters": _parameters,
                "--statistic": (["peak", "trough", "auc", "final", "mean", "time_to_peak"], ["nadir", "x", ""]),
                "--method": (["sobol", "morris"], ["SOBOL", "fast", ""]), "--samples": (["16", "2", "4"], _ints[1]),
                "--seed": _ints, "--range": _sens_ranges,
                "--factor": (["2", "1.000001", "1000"], ["1", "1001", "0", "-2", "nan", "x"]),
                "--out": _out, "--overwrite": None, "--no-progress": None, "--cluster": _dask, "--scheduler": _dask}
    if command == "calibrate":
        return {"--data": (["@data"], ["@missing.csv", "@folder", "@file", ""]), "--parameters": _parameters,
                "--bounds": (["morphine_clearance=0.05:30"],
                             ["morphine_clearance=3:0.5", "morphine_clearance=nan:1", "morphine_clearance", "x=1:2",
                              "=", "morphine_clearance=:"]),
                "--start": (["morphine_clearance=2"], ["morphine_clearance=1e400", "morphine_clearance=x", "x=1", "="]),
                "--iterations": (["0", "1", "50", "10000"], ["10001", "-1", "x"]),
                "--method": (["lm", "adam"], ["sgd", ""]), "--log": None, "--out": _out}
    if command == "export-sbml":
        return {"--out": (["@model.xml"], ["@folder", "@file", "@missing-folder/model.xml", ""]),
                "--scenario": (["acute-heroin-iv", "morphine-analgesia", "@file"], SCENARIO_ARGS),
                "--overwrite": None}
    if command == "trial":
        return {"--out": _out, "--subjects": _ints, "--seed": _ints, "--overwrite": None, "--no-progress": None,
                "--checkpoint-every": (["0", "60", "86400"], ["-1", "86401", "nan", "inf", "x", ""])}
    if command == "bench":
        return {"--json": None, "--quick": None, "--subjects": (["2", "16"], _ints[1]),
                "--days": (["0.05", "1", "3650"], ["0.01", "3651", "nan", "x", "-1"]),
                "--reference-subjects": (["1"], _ints[1])}
    if command == "explore":
        return {"--port": (["0"], ["-1", "65536", "x", "1e3", ""]),
                "--host": (["127.0.0.1", "localhost"], ["::1", "256.1.1.1", "", "1.2.3.4", "::g"]),
                "--no-warmup": None, "--verbose": None}
    raise ValueError(command)


@st.composite
def command_line(draw) -> dict[str, Any]:
    """One generated case: argv with @placeholders, and the files to create."""
    command = draw(st.sampled_from(COMMANDS))
    flags = _flag_values(command)
    argv: list[str] = [command]

    def pick(valid: list[str], broken: list[str]) -> str:  # valid 7 times in 8
        return draw(st.sampled_from(valid if valid and draw(st.integers(0, 7)) else broken))

    if command in ("sensitivity", "calibrate", "trial"):  # the positional scenario (sometimes missing)
        if draw(st.integers(0, 9)):
            good = ["@trial"] if command == "trial" else ["acute-heroin-iv", "morphine-analgesia"]
            argv.append(pick(good, SCENARIO_ARGS))
    # the required flags are usually there, so the generated lines get past argparse
    required = {"sensitivity": ["--readouts", "--parameters"], "calibrate": ["--data", "--parameters"],
                "export-sbml": ["--out"]}.get(command, [])
    chosen = [f for f in required if draw(st.integers(0, 9))]
    chosen += draw(st.lists(st.sampled_from(sorted(flags)), max_size=3))
    for flag in chosen:
        argv.append(flag)
        if flags[flag] is not None:
            argv.append(pick(*flags[flag]))
    if draw(st.integers(0, 7)) == 0:
        argv.insert(draw(st.integers(1, len(argv))), draw(st.sampled_from(JUNK)))
    scenario = draw(st.one_of(valid_like(), mutated()))
    trial = draw(valid_course("trial"))
    return {"argv": argv, "scenario": scenario, "trial": trial, "csv": draw(data_csv())}


_CSV_HEADERS = ["subject,time [h],readout,value", "time [h],readout,value", "group,time [min],readout,value,sd",
                "time [h],plasma_morphine", "time,readout,value", "time [parsec],readout,value",
                "time [h],time [min],readout,value", "time [h],readout,value,unit", "time [h],readout,readout",
                "subject,group,time [h],readout,value", "time [h],bogus", "", "time [h],readout,value,colour"]
_CSV_CELLS = ["0.5", "1", "2", "-1", "nan", "inf", "", "x", "1e400", "plasma_morphine", "plasma_heroin",
              "ventilation", "bogus", "A", "ng/mL", "mg", "0", "1e9"]


@st.composite
def data_csv(draw) -> bytes:
    """A calibration data file: a valid one, or one broken in its header, cells or encoding."""
    if draw(st.integers(0, 3)):  # valid 3 times in 4: calibrate has many flags that must all be valid
        return b"subject,time [h],readout,value\nA,0.5,plasma_morphine,31.2\nA,1,plasma_morphine,22.9\n"
    header = draw(st.sampled_from(_CSV_HEADERS))
    n = len(header.split(",")) if header else 1
    rows = draw(st.lists(st.lists(st.sampled_from(_CSV_CELLS), min_size=max(1, n - 1), max_size=n + 1),
                         max_size=4))
    text = "\n".join([header] + [",".join(r) for r in rows]) + "\n"
    raw = text.encode()
    if draw(st.integers(0, 9)) == 0:
        raw = b"\xff\xfe" + raw[::-1]  # not UTF-8
    return raw


class _Reached(Exception):
    """The stub was reached: the command accepted its inputs."""


def _stubs(command: str):
    """Context managers that replace the expensive part of `command` by `_Reached`."""
    from opioidsim import cli

    def reached(*_a, **_k):
        raise _Reached()

    patches: list[tuple[Any, str, Any]] = [(cli, "_simulate", reached)]
    if command == "sensitivity":
        from opioidsim import cluster, sensitivity

        patches += [(sensitivity, "evaluate_samples", reached), (cluster, "Connection", reached)]
    elif command == "calibrate":
        from opioidsim.calibration import fit

        patches.append((fit, "ForwardProblem", reached))
    elif command == "export-sbml":
        from opioidsim.io import sbml

        patches.append((sbml, "trace_model", reached))
    elif command == "bench":
        from opioidsim import bench

        patches.append((bench, "run_bench", reached))
    elif command == "explore":
        from opioidsim.explorer import server

        real = server.make_server

        def build_and_close(host, port, *, warmup=True, quiet=True):
            srv = real(host, port, warmup=False, quiet=quiet)  # binds: a bad host or port fails here
            srv.server_close()
            raise _Reached()

        patches.append((server, "make_server", build_and_close))
    return patches


def target_command(case: dict[str, Any], workdir: Path) -> str:
    """Run one generated command line; 'accepted' (its stub reached) or 'rejected:<command>'."""
    import tomli_w

    from opioidsim import cli

    folder = Path(tempfile.mkdtemp(dir=workdir))
    inputs = {"file": folder / "scenario.toml", "trial": folder / "trial.toml", "data": folder / "data.csv",
              "folder": folder / "a-folder"}
    try:
        inputs["file"].write_text(tomli_w.dumps(case["scenario"]), encoding="utf-8")
    except (TypeError, ValueError):  # no TOML form (e.g. a key that is not text)
        inputs["file"].write_text("[scenario\n", encoding="utf-8")
    inputs["trial"].write_text(tomli_w.dumps(case["trial"]), encoding="utf-8")
    inputs["data"].write_bytes(case["csv"])
    inputs["folder"].mkdir()
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))

    def path(arg: str) -> str:
        if not arg.startswith("@"):
            return arg
        key = arg[1:]
        return str(inputs[key]) if key in inputs else str(folder / key)

    argv = [path(a) for a in case["argv"]]
    command = case["argv"][0]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in _stubs(command)]
    for obj, name, stub in _stubs(command):
        setattr(obj, name, stub)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = cli.main(argv)
            except _Reached:
                code = None
            except BaseException as exc:  # noqa: BLE001 - the point: nothing else may escape
                raise FuzzFailure(f"opioidsim {' '.join(argv)!r} raised {type(exc).__name__}: {exc}") from exc
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)
        after = sorted(p.relative_to(folder) for p in folder.rglob("*"))
        shutil.rmtree(folder, ignore_errors=True)
    if code is None:
        ACCEPTED_KINDS[command] += 1
        return "accepted"
    text = err.getvalue()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if code != 2 or len(lines) != 1 or not lines[0].startswith("opioidsim: error: ") or "Traceback" in text:
        raise FuzzFailure(f"opioidsim {' '.join(map(repr, argv))}: exit {code}, stderr {text!r}")
    if after != before:
        raise FuzzFailure(f"opioidsim {' '.join(map(repr, argv))} was refused but left "
                          f"{sorted(set(map(str, after)) ^ set(map(str, before)))}")
    return f"rejected:{command}"
