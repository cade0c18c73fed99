"""Errors that opioidsim reports to its users.

A bad scenario gets ONE clear message naming the field, the value and what is allowed, e.g.::

    scenario field 'dose[0].route' = 'oral': heroin can be given by iv, smoked, intranasal, im

The field is the path as the user wrote it: in a TOML file ``scenario.duration``,
``cohort.subjects``, ``dose[0].route``; in Python ``duration``, ``doses[0].route``.
"""
from __future__ import annotations

from typing import Any

__all__ = ["ScenarioError", "OutputExistsError", "MISSING"]


class _Missing:
    """Marks a required field that was left out (so the message says 'is missing')."""

    _instance: "_Missing | None" = None

    def __new__(cls) -> "_Missing":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<missing>"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def _short_repr(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:  # pragma: no cover - a repr that fails is not worth a second error
        text = f"<{type(value).__name__}>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


class ScenarioError(ValueError):
    """A scenario (file, dict or Python objects) that cannot be run as written.

    Attributes
    ----------
    field:   dotted path of the offending field, e.g. ``"dose[0].route"``; ``"<file>"`` for a file
             that cannot be read or parsed, ``"<name>"`` for an unknown scenario name.
    value:   the value found there (``MISSING`` when the field was left out).
    allowed: what would be accepted, in words.
    more:    how many further problems were found (only the first is described).
    """

    def __init__(self, field: str, value: Any, allowed: str, *, more: int = 0,
                 message: str | None = None) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.more = int(more)
        self._message = message
        super().__init__(self._compose())

    def _compose(self) -> str:
        if self._message is not None:
            text = self._message
        elif self.value is MISSING:
            text = f"scenario field '{self.field}' is missing: {self.allowed}"
        else:
            text = f"scenario field '{self.field}' = {_short_repr(self.value)}: {self.allowed}"
        if self.more:
            text += f" (and {self.more} more problem{'s' if self.more != 1 else ''})"
        # One line, always: the CLI prints it after "opioidsim: error: ".
        return " ".join(text.split("\n"))

    @property
    def message(self) -> str:
        return str(self)

    def __reduce__(self):  # picklable across processes (Dask workers, multiprocessing)
        return (_rebuild_scenario_error,
                (self.field, self.value, self.allowed, self.more, self._message))


def _rebuild_scenario_error(field, value, allowed, more, message):
    return ScenarioError(field, value, allowed, more=more, message=message)


class OutputExistsError(FileExistsError):
    """The results folder exists and is not empty (and overwriting was not asked for)."""

    def __init__(self, path: str, message: str | None = None) -> None:
        self.path = str(path)
        super().__init__(message or (
            f"output folder '{self.path}' already exists and is not empty; "
            "choose another folder or pass --overwrite (overwrite=True) to replace it"))

    def __str__(self) -> str:  # FileExistsError's own __str__ adds errno noise
        return self.args[0]
