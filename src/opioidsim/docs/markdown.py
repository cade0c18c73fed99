"""Small Markdown helpers for the generated pages (Python-Markdown, as mkdocs renders it)."""
from __future__ import annotations

import math
import re
from typing import Iterable, Sequence

# Characters that Markdown would read as markup inside a table cell. `|` ends a cell, `*` and `_`
# start emphasis, `[` `]` links, `\` escapes; `<` could open an HTML tag.
_ESCAPE = {"\\": "\\\\", "|": "\\|", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]", "`": "\\`", "<": "&lt;"}


def cell(text: object) -> str:
    """`text` as one Markdown table cell: markup characters escaped, on one line."""
    s = " ".join(str(text).split())
    return "".join(_ESCAPE.get(ch, ch) for ch in s)


def code(text: object) -> str:
    """`text` as inline code (for names: readouts, states, parameters)."""
    return f"`{text}`"


def number(x: float) -> str:
    """A parameter value or initial value, to 6 significant digits (what the tables show)."""
    x = float(x)
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.6g}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table; cells must already be escaped (see `cell`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def docstring_to_markdown(doc: str) -> str:
    """A module docstring (plain text wrapped at ~100 columns) as Markdown.

    The docstrings are written to read as Markdown already (`code`, indented equation blocks);
    Python-Markdown only needs blank lines around a list that starts or ends inside a paragraph
    (a list item's continuation lines are indented).
    """
    item = re.compile(r"^[-*] ")
    out: list[str] = []
    in_list = False
    for line in (doc or "").strip("\n").splitlines():
        line = line.rstrip()
        prev = out[-1] if out else ""
        if item.match(line):
            if prev and not in_list and not prev.startswith("    "):
                out.append("")
            in_list = True
        elif not line:
            in_list = False
        elif in_list and not line.startswith(" "):  # the paragraph after a list
            out.append("")
            in_list = False
        out.append(line)
    return "\n".join(out).strip() + "\n"


def fenced(text: str, lang: str = "") -> str:
    """`text` in a fenced code block whose fence is longer than any backtick run inside it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}\n"
