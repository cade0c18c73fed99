"""Generate the documentation pages that come from the code (``python -m opioidsim.docs``).

``make docs`` runs this generator into ``docs/generated/`` and then mkdocs over ``docs/``. It writes

- ``model/index.md`` and one page per mechanism module of `default_modules()`: docstring, states
  (units, initial values), inputs and outputs, the parameter table (value, unit, CV, source) read
  from the `Parameter` objects, and the functions that compute the equations;
- ``readouts.md`` (the readout contract), ``scenarios.md`` (the built-in scenarios and their TOML),
  ``validation.md`` (the literature targets, with results when asked for: see
  `opioidsim.docs.validation_page`);
- ``tutorials/*.md``: the tutorial sources with their code executed (`opioidsim.docs.tutorials`);
- ``mkdocs-nav.yml``: the site's navigation, which ``mkdocs.yml`` inherits: the home page, the
  hand-written guide pages (``docs/guide/``, listed, not copied), the tutorials and the pages above.

The output is deterministic: the same code gives the same files, byte for byte.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from .markdown import cell
from .model_pages import (behaviour_page, treatment_page, model_index, module_page, module_page_name, readouts_page, scenarios_page,
                          typical_initial_state)
from .tutorials import Tutorial, TutorialError, execute, sources, title_of
from .validation_page import ValidationResultsError, read_results, run_targets, validation_page

#: a file in every generated folder: marks it as safe to wipe on the next run
MARKER = ".opioidsim-generated"
NAV_FILE = "mkdocs-nav.yml"

__all__ = ["MARKER", "NAV_FILE", "TutorialError", "ValidationResultsError", "generate", "main"]


def _prepare(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"{out} exists and is not a folder")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise FileExistsError(f"{out} is not empty and was not written by opioidsim.docs ({MARKER} is "
                                  "missing): refusing to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by python -m opioidsim.docs; replaced on every run\n", encoding="utf-8")


def _write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


def _nav(prefix: str, modules, tutorials: list[Tutorial], home: str | None,
         guide: list[tuple[str, str]] = ()) -> str:
    def q(s: str) -> str:  # a YAML double-quoted string
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["# written by python -m opioidsim.docs: the site navigation (mkdocs.yml inherits it)", "nav:"]
    if home:
        lines.append(f"  - Home: {home}")
    if guide:
        lines.append("  - Guide:")
        lines += [f"      - {q(title)}: {path}" for title, path in guide]
    if tutorials:
        lines.append("  - Tutorials:")
        lines += [f"      - {q(t.title)}: {prefix}tutorials/{t.slug}.md" for t in tutorials]
    lines.append("  - Model:")
    lines.append(f"      - Overview: {prefix}model/index.md")
    lines += [f"      - {q(m.name)}: {prefix}model/{module_page_name(m)}" for m in modules]
    lines.append(f"      - behaviour: {prefix}model/behaviour.md")
    lines.append(f"      - treatment: {prefix}model/treatment.md")
    lines.append(f"  - Readouts: {prefix}readouts.md")
    lines.append(f"  - Validation: {prefix}validation.md")
    lines.append(f"  - Scenarios: {prefix}scenarios.md")
    return "\n".join(lines) + "\n"


def _warn_if_stale(results_file: Path) -> None:
    """Say so on stderr when the package's code changed after the results file was written."""
    package = Path(__file__).resolve().parent.parent
    newest = max((p.stat().st_mtime, p) for p in [*package.rglob("*.py"), *package.rglob("*.toml")])
    if newest[0] > results_file.stat().st_mtime:
        print(f"opioidsim.docs: warning: {results_file} is older than {newest[1].relative_to(package.parent)}: "
              "its validation results may not match this code (re-run 'opioidsim validate --json')",
              file=sys.stderr)


def guide_pages(folder: str | Path) -> list[tuple[str, str]]:
    """The hand-written pages of `folder` (``NN-slug.md``, in the order of their numbers) as
    (title, path inside the docs folder) for the navigation; the folder lies directly in the
    mkdocs docs folder, so its pages are served as they are (not copied)."""
    folder = Path(folder)
    return [(title_of(p.read_text(encoding="utf-8"), p.stem), f"{folder.name}/{p.name}") for p in sources(folder)]


def generate(out: str | Path, *, validation: str = "list", tutorials_src: str | Path | None = None,
             guide_src: str | Path | None = None, nav_prefix: str = "generated/", home: str | None = "index.md",
             log: Callable[[str], None] | None = None) -> list[Path]:
    """Write the generated pages into `out` (replacing what an earlier run wrote there).

    validation: ``"list"`` (targets only), ``"run"`` (simulate each target, reduced forms where
    they exist) or the path of a JSON file from ``opioidsim validate --json``.
    tutorials_src: a folder of tutorial sources to execute (None: no tutorials).
    guide_src: the folder of hand-written pages (e.g. ``docs/guide``) to list in the navigation.
    nav_prefix: where `out` lies inside the mkdocs docs folder (for the navigation file).
    Returns the files written, sorted.
    """
    from ..model.model import Model, default_modules
    from ..validation import TARGETS

    out = Path(out)
    # check inputs before anything is replaced
    results_file = None
    if validation not in ("list", "run"):
        results_file = Path(validation)
        if not results_file.is_file():
            raise ValidationResultsError(f"--validation must be 'list', 'run' or a JSON file from "
                                         f"'opioidsim validate --json'; {validation!r} is none of these")
    tutorial_files = sources(Path(tutorials_src)) if tutorials_src is not None else []
    if tutorials_src is not None and not tutorial_files:
        raise FileNotFoundError(f"no tutorial sources (*.md) in {tutorials_src}")
    guide = guide_pages(guide_src) if guide_src is not None else []
    if guide_src is not None and not guide:
        raise FileNotFoundError(f"no guide pages (*.md) in {guide_src}")

    modules = default_modules()
    model = Model(modules)
    files: dict[str, str | bytes] = {}

    # the model
    providers = {name: m.name for m in model.modules for name in m.provides}
    initial = typical_initial_state(model)
    pages = {m.name: module_page_name(m) for m in modules}
    files["model/index.md"] = model_index(model, pages)
    for m in modules:
        files[f"model/{pages[m.name]}"] = module_page(m, model, providers, initial)
    files["model/behaviour.md"] = behaviour_page()
    files["model/treatment.md"] = treatment_page()
    files["readouts.md"] = readouts_page(model)
    files["scenarios.md"] = scenarios_page()

    # validation
    if results_file is not None:
        results = read_results(results_file, TARGETS)
        _warn_if_stale(results_file)
        how = (f"Simulated values from `opioidsim validate --json` (full-size runs), read from "
               f"`{cell(results_file.name)}`.")
    elif validation == "run":
        results = run_targets(TARGETS, log)
        how = ("Simulated when this site was built, each target in its reduced form where it has one "
               "(as the default test run checks it), else in full.")
    else:
        results = None
        how = "Targets only: this build did not simulate them."
    files["validation.md"] = validation_page(TARGETS, results, how)

    # tutorials
    tutorials = [execute(p, log) for p in tutorial_files]
    for t in tutorials:
        files[f"tutorials/{t.slug}.md"] = t.markdown
        for name, png in t.images.items():
            files[f"tutorials/img/{name}"] = png

    files[NAV_FILE] = _nav(nav_prefix, modules, tutorials, home, guide)

    _prepare(out)
    written = []
    for rel, content in sorted(files.items()):
        _write(out / rel, content)
        written.append(out / rel)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m opioidsim.docs",
        description="Write the documentation pages generated from the code (model modules, parameters, "
                    "readouts, validation targets, scenarios, executed tutorials).")
    parser.add_argument("--out", default="docs/generated", help="folder to (re)write (default docs/generated)")
    parser.add_argument("--validation", default="list", metavar="list|run|FILE.json",
                        help="'list' the targets only (default), 'run' them here (reduced forms where they "
                             "exist), or read FILE.json written by 'opioidsim validate --json'")
    parser.add_argument("--tutorials", default=None, metavar="DIR",
                        help="execute the tutorial sources in DIR (e.g. docs/tutorials_src); default: none")
    parser.add_argument("--guide", default=None, metavar="DIR",
                        help="list the hand-written pages of DIR (e.g. docs/guide, a folder directly in the "
                             "mkdocs docs folder) in the navigation, in the order of their NN- prefixes")
    parser.add_argument("--nav-prefix", default="generated/",
                        help="path of --out inside the mkdocs docs folder (default 'generated/')")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    t0 = time.monotonic()

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"[docs {time.monotonic() - t0:6.1f} s] {msg}", file=sys.stderr, flush=True)

    try:
        written = generate(args.out, validation=args.validation, tutorials_src=args.tutorials, guide_src=args.guide,
                           nav_prefix=args.nav_prefix, log=log)
    except (TutorialError, ValidationResultsError, FileExistsError, FileNotFoundError) as exc:
        print(f"opioidsim.docs: error: {exc}", file=sys.stderr)
        return 1
    log(f"wrote {len(written)} files to {args.out}")
    return 0
