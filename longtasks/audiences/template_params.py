"""A template's parameters for a broadcast to an audience: literals and audience columns.

`["Shalom", {"column": "first_name", "default": "friend"}]` gives every member its own
parameters, built from its row when its message is sent (never stored in Temporal). A member
whose cell is empty gets the default; with no default, its item fails (`missing_param`)
rather than sending WhatsApp a template with an empty parameter, which it refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MISSING_PARAM = "missing_param"


@dataclass(frozen=True)
class Column:
    name: str
    default: str | None = None


Param = str | Column


def from_json(raw: Sequence[Any] | None) -> list[Param]:
    """The stored form (`broadcasts.template_params`): strings and {"column", "default"}."""
    params: list[Param] = []
    for value in raw or []:
        if isinstance(value, dict):
            params.append(Column(str(value["column"]), value.get("default")))
        else:
            params.append(str(value))
    return params


def to_json(params: Sequence[Param]) -> list[Any]:
    return [p if isinstance(p, str) else {"column": p.name, "default": p.default} for p in params]


def columns_of(params: Sequence[Param]) -> list[str]:
    return [p.name for p in params if isinstance(p, Column)]


class MissingValue(Exception):
    def __init__(self, column: str, line: int) -> None:
        super().__init__(f"the '{column}' cell is empty on line {line} and has no default")
        self.column = column


@dataclass(frozen=True)
class Personalizer:
    """Resolves the parameters for one member's row; made once per page."""

    params: tuple[Param, ...]
    # For each parameter: the index of its column among the audience's variables (-1: literal).
    indexes: tuple[int, ...]

    @classmethod
    def for_audience(cls, params: Sequence[Param], variables: Sequence[str]) -> Personalizer:
        where = {name: i for i, name in enumerate(variables)}
        indexes = []
        for p in params:
            if isinstance(p, Column):
                if p.name not in where:
                    raise KeyError(f"the audience has no column '{p.name}'")
                indexes.append(where[p.name])
            else:
                indexes.append(-1)
        return cls(tuple(params), tuple(indexes))

    @property
    def personal(self) -> bool:
        return any(i >= 0 for i in self.indexes)

    def resolve(self, values: Sequence[str], line: int) -> tuple[str, ...]:
        out = []
        for p, i in zip(self.params, self.indexes, strict=True):
            if isinstance(p, str):
                out.append(p)
                continue
            value = values[i].strip() if i < len(values) else ""
            if not value:
                if p.default is None:
                    raise MissingValue(p.name, line)
                value = p.default
            out.append(value)
        return tuple(out)
