"""Executable tutorials: Markdown pages whose ```python blocks run when the docs are built.

A tutorial source is a Markdown file (``docs/tutorials_src/NN-slug.md``). Its fenced ```python
blocks run in order in one namespace per page; what a block prints is inserted after it as a
``text`` block, and the matplotlib figures it leaves open (pyplot's, and new ``Figure`` objects
left in a variable, as the report functions return them) are saved as PNG files and inserted as
images (then closed). A block that raises stops the build with an error naming the page, the block
and its line. The page title is its first ``# `` heading.
"""
from __future__ import annotations

import contextlib
import io
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

from .markdown import fenced

_FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^`\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$\n?", re.M | re.S)


class TutorialError(RuntimeError):
    """A tutorial block raised: the docs build fails."""


@dataclass(frozen=True)
class Tutorial:
    slug: str  # output file name without .md
    title: str
    markdown: str  # the executed page
    images: dict[str, bytes]  # file name → PNG


def title_of(text: str, default: str) -> str:
    m = re.search(r"^# (.+)$", text, re.M)
    return m.group(1).strip() if m else default


def slug_of(path: Path) -> str:
    """``01-five-steps.md`` → ``five-steps`` (a leading number only orders the pages)."""
    return re.sub(r"^\d+[-_]", "", path.stem)


def _save_figures(prefix: str, images: dict[str, bytes], namespace: dict | None = None,
                  seen: list | None = None) -> list[str]:
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    figures = [plt.figure(num) for num in plt.get_fignums()]
    if namespace is not None and seen is not None:
        # figures made without pyplot (report functions return matplotlib.figure.Figure objects)
        # and left in a variable: each once, in the order of the variables' names
        for name in sorted(namespace):
            value = namespace[name]
            if isinstance(value, Figure) and not any(value is f for f in seen + figures):
                figures.append(value)
    names = []
    for fig in figures:
        if seen is not None:
            seen.append(fig)  # kept, so that it is saved once
        buf = io.BytesIO()
        # no metadata: the same figure gives the same bytes in every build
        fig.savefig(buf, format="png", dpi=80, metadata={"Software": None})
        name = f"{prefix}-{len(images) + 1}.png"
        images[name] = buf.getvalue()
        names.append(name)
        plt.close(fig)
    return names


def execute(path: Path, log=None) -> Tutorial:
    """Run one tutorial source and return the page with outputs and figures inserted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.close("all")
    text = path.read_text(encoding="utf-8")
    slug = slug_of(path)
    namespace: dict = {"__name__": f"tutorial_{slug.replace('-', '_')}"}
    images: dict[str, bytes] = {}
    seen: list = []  # figures already on the page
    out: list[str] = []
    pos, block = 0, 0
    for m in _FENCE.finditer(text):
        out.append(text[pos:m.end()])
        pos = m.end()
        if m.group("info").strip() != "python":
            continue
        block += 1
        line = text.count("\n", 0, m.start()) + 1
        where = f"tutorial {path.name}, block {block} (line {line})"
        if log:
            log(where)
        stdout = io.StringIO()
        try:
            # padded so that a traceback gives the line in the tutorial source
            compiled = compile("\n" * line + m.group("body"), str(path), "exec")
            with contextlib.redirect_stdout(stdout):
                exec(compiled, namespace)
        except BaseException as exc:  # noqa: BLE001 - any failure fails the build, named
            if isinstance(exc, KeyboardInterrupt):
                raise
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            raise TutorialError(f"{where} raised {type(exc).__name__}: {exc}\n{tb}") from exc
        finally:
            figures = _save_figures(slug, images, namespace, seen)
        printed = stdout.getvalue()
        if printed.strip():
            out.append("\n" + fenced(printed, "text"))
        for name in figures:
            out.append(f"\n![figure {name}](img/{name})\n")
    out.append(text[pos:])
    plt.close("all")
    return Tutorial(slug, title_of(text, slug), "".join(out), images)


def sources(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).glob("*.md") if p.is_file())
