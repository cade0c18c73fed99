"""A results folder, written atomically.

A results folder always holds the scenario it came from, the package version and the seed::

    out/demo/
      results.nc      the xarray Dataset (dims subject, time), NetCDF
      summary.csv     one row per readout (if a summary writer is given)
      report.html     the HTML report (if a report writer is given)
      scenario.toml   the scenario as run (cohort overrides applied), with a header comment
      run.json        version, seed, subjects, command, timings, status "complete"

Everything is written into a hidden temporary folder next to the target (same parent, so the
final ``rename`` is atomic) and moved into place only when complete. On any error the temporary
folder is removed: a results folder either exists complete or not at all.

A cohort run on Dask (``opioidsim run --cluster`` / ``--scheduler``, see `opioidsim.cluster`)
has ``results.zarr`` (a Zarr store, the same Dataset) in place of ``results.nc``: its workers
write the store inside ``<out>.incomplete/`` and `write_results(..., store=...)` moves it in.

Inside the temporary folder each file is first written as ``<name>.part``, flushed to disk and
then renamed, and run.json (``"status": "complete"``) comes last. So even a process killed
outright (SIGKILL, power loss) never leaves a half-written file under a results file name: what
it can leave is a hidden ``.<name>.partial-XXXX`` folder whose last file ends in ``.part``
(`opioidsim run --resume` removes those).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from ..overrides import scenario_settings

from opioidsim.errors import OutputExistsError

__all__ = ["write_results", "package_version", "check_out_dir", "result_attrs", "utc_now", "RESULT_FILES",
           "STORE_RESULT_FILES"]

RESULT_FILES = ("results.nc", "summary.csv", "report.html", "scenario.toml", "run.json")
#: the files of a results folder written from a Zarr store (a cohort run on Dask)
STORE_RESULT_FILES = ("results.zarr",) + RESULT_FILES[1:]

SummaryWriter = Callable[[Any, Path], None]
ReportWriter = Callable[[Any, Path, str], None]


def package_version() -> str:
    """The installed opioidsim version, or ``"0.1.0+unknown"`` when running from a bare tree."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("opioidsim")
    except Exception:  # PackageNotFoundError, or metadata unreadable
        pass
    try:
        import opioidsim

        v = getattr(opioidsim, "__version__", None)
        if isinstance(v, str) and v:
            return v
    except Exception:
        pass
    return "0.1.0+unknown"


def utc_now() -> str:
    """The time now in UTC, to the second, as results files record it (``2024-01-31T12:00:00Z``)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace(
        "+00:00", "Z")


def check_out_dir(out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Check (without writing anything) that results could be written to ``out_dir``.

    Raises OutputExistsError if it exists and is non-empty (unless ``overwrite``), or if it is a
    file. Returns the absolute path.
    """
    out = Path(os.path.abspath(os.fspath(out_dir)))
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise OutputExistsError(str(out_dir), f"output path '{out_dir}' exists and is not a "
                                                  "folder; choose another --out")
        if any(out.iterdir()) and not overwrite:
            raise OutputExistsError(str(out_dir))
    return out


def _make_temp_dir(parent: Path, name: str, tag: str) -> Path:
    # os.mkdir (not tempfile.mkdtemp) so the folder gets the user's normal permissions (umask).
    for _ in range(100):
        candidate = parent / f".{name}.{tag}-{secrets.token_hex(4)}"
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:
            continue
    raise OSError(f"could not create a temporary folder in {parent}")  # pragma: no cover


def _scenario_header(version: str, scenario: Any, when: str) -> str:
    lines = [
        "# opioidsim scenario, as run (research and teaching only; never a dosing guide)",
        f"# opioidsim version: {version}",
        f"# seed: {scenario.cohort.seed}   subjects: {scenario.cohort.subjects}",
        f"# written (UTC): {when}",
        "# re-run with: opioidsim run scenario.toml --out NEW_FOLDER",
    ]
    return "\n".join(lines) + "\n\n"


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float):
        return x if x == x and abs(x) != float("inf") else None
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    item = getattr(x, "item", None)  # numpy scalars
    if callable(item):
        try:
            return _jsonable(item())
        except Exception:
            pass
    return str(x)


def result_attrs(attrs: dict[str, Any], scenario: Any, created_utc: str,
                 version: Optional[str] = None) -> dict[str, Any]:
    """The attributes a results file carries: ``attrs`` (the Dataset's own) plus the version,
    scenario name and text, seed, subjects and creation time; the description and dose times
    from the scenario when ``attrs`` lacks them."""
    out = dict(attrs)
    out.update(
        opioidsim_version=version or package_version(),
        scenario_name=str(scenario.name),
        seed=int(scenario.cohort.seed),
        subjects=int(scenario.cohort.subjects),
        scenario_toml=scenario.to_toml(),
        created_utc=created_utc,
    )
    said = scenario_settings(scenario.to_toml_dict()) if hasattr(scenario, "to_toml_dict") else []
    if said:  # a what-if: the values set, readable without the TOML
        out["parameters_set"] = "; ".join(said)
    if "description" not in attrs and getattr(scenario, "description", ""):
        out["description"] = str(scenario.description)
    if "dose_times_min" not in attrs and hasattr(scenario, "dose_schedule"):
        times = [float(t) for t, _ in scenario.dose_schedule()]
        if times:  # (an empty array is not a valid NetCDF attribute)
            out["dose_times_min"] = times
    return out


def write_results(
    ds: Any,
    out_dir: str | os.PathLike,
    scenario: Any,
    *,
    report_writer: Optional[ReportWriter] = None,
    summary_writer: Optional[SummaryWriter] = None,
    overwrite: bool = False,
    command: Optional[list[str] | str] = None,
    extra: Optional[dict[str, Any]] = None,
    store: Optional[str | os.PathLike] = None,
) -> Path:
    """Write a complete results folder for ``ds`` (an xarray Dataset) at ``out_dir``; return it.

    ``summary_writer(ds, path)`` writes summary.csv, ``report_writer(ds, path, scenario_toml)``
    writes report.html; each is skipped when None. ``command`` (argv) and ``extra`` (e.g. wall
    time) go into run.json. Refuses a non-empty existing ``out_dir`` unless ``overwrite=True``,
    in which case the old folder is replaced only once the new one is complete.

    ``store``: a finished Zarr store (a folder) holding ``ds``, its attributes already stamped
    (`result_attrs`); ``ds`` is the Dataset opened from it. The store is moved in as
    ``results.zarr`` (no results.nc is written) after the summary and report are written from
    it, and moved back where it was if the folder cannot be completed.
    """
    out = check_out_dir(out_dir, overwrite=overwrite)
    parent = out.parent
    parent.mkdir(parents=True, exist_ok=True)
    version = package_version()
    started = utc_now()
    scenario_toml = scenario.to_toml()

    tmp = _make_temp_dir(parent, out.name, "partial")
    moved: Optional[tuple[Path, Path]] = None  # (store's own place, its place in tmp)
    try:
        files: list[str] = []

        if store is None:
            stamped = ds.assign_attrs(result_attrs(ds.attrs, scenario, started, version))
            _write_whole(tmp / "results.nc", lambda path: stamped.to_netcdf(path))
            files.append("results.nc")
        else:
            stamped = ds  # the store's attributes were stamped when it was finished

        if summary_writer is not None:
            _write_whole(tmp / "summary.csv", lambda path: summary_writer(stamped, path))
            files.append("summary.csv")

        if report_writer is not None:
            _write_whole(tmp / "report.html", lambda path: report_writer(stamped, path, scenario_toml))
            files.append("report.html")

        _write_whole(tmp / "scenario.toml", lambda path: path.write_text(
            _scenario_header(version, scenario, started) + scenario_toml, encoding="utf-8"))
        files.append("scenario.toml")

        if store is not None:  # last of the data: a rename, after everything that reads it
            moved = (Path(store), tmp / "results.zarr")
            os.rename(*moved)
            files.insert(0, "results.zarr")

        info: dict[str, Any] = {
            "opioidsim_version": version,
            "status": "complete",
            "scenario": str(scenario.name),
            "seed": int(scenario.cohort.seed),
            "subjects": int(scenario.cohort.subjects),
            "duration": scenario.duration,
            "duration_min": scenario.duration_min,
            "record_every": scenario.record_every,
            "command": (command if isinstance(command, str) or command is None
                        else [str(c) for c in command]),
            "started_utc": started,
            "finished_utc": utc_now(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "files": files + ["run.json"],
        }
        if extra:
            info.update(extra)
        _write_whole(tmp / "run.json", lambda path: path.write_text(
            json.dumps(_jsonable(info), indent=2) + "\n", encoding="utf-8"))

        _move_into_place(tmp, out, overwrite=overwrite)
    except BaseException:
        if moved is not None and moved[1].exists():
            try:  # the store is the run's work: keep it where the run can be resumed from
                os.rename(moved[1], moved[0])
            except OSError:  # pragma: no cover - same file system, same parent: not expected
                pass
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_whole(path: Path, write: Callable[[Path], None]) -> None:
    """``write(part)`` to ``<path>.part``, flush it to disk, then rename it to ``path``."""
    part = path.with_name(path.name + ".part")
    write(part)
    try:
        fd = os.open(part, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # pragma: no cover - fsync is best effort (some file systems refuse it)
        pass
    os.replace(part, path)


def _move_into_place(tmp: Path, out: Path, *, overwrite: bool) -> None:
    if not (out.exists() or out.is_symlink()):
        os.rename(tmp, out)
        return
    # Re-check now that the results are ready (someone may have written there meanwhile).
    check_out_dir(out, overwrite=overwrite)
    if not any(out.iterdir()):
        os.rmdir(out)
        os.rename(tmp, out)
        return
    # overwrite=True: move the old folder aside, the new one in, then delete the old one.
    old = _make_temp_dir(out.parent, out.name, "old")
    os.rmdir(old)
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)  # put the old results back
        raise
    shutil.rmtree(old, ignore_errors=True)
