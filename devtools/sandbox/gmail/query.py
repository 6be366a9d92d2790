"""Gmail's search language (`q=`), the subset the sandbox serves.

`after:`/`before:` (YYYY/MM/DD, YYYY-MM-DD or epoch seconds; dates are UTC midnights, where
Gmail uses Pacific time), `newer_than:`/`older_than:` (Nd, Nm, Ny), `from:` (substring of the
From header), `subject:`, `has:attachment`, `filename:`, free words and "quoted phrases"
(substring of the subject, case-insensitive), `-term` negation, `a OR b`, `{a b}`; parentheses
are dropped (OR binds adjacent terms), and `in:`, `label:`, `is:`, `category:` are accepted and
ignored. `resultSizeEstimate` is an estimate, as in Gmail.

A query is a conjunction of groups, each a disjunction of predicates over a message's
`MessageMeta`; a date bound standing alone is kept apart, so the server narrows the range of
messages it scans instead of checking each one.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass

_DAY_S = 86400.0


class QueryError(ValueError):
    """A `q`, page token or paging parameter Gmail would answer 400 for."""


@dataclass(frozen=True)
class MessageMeta:
    subject: str
    sender: str
    ts: float
    filenames: tuple[str, ...]


_Predicate = Callable[[MessageMeta], bool]


@dataclass(frozen=True)
class Query:
    groups: tuple[tuple[_Predicate, ...], ...]  # all groups must hold; any predicate in a group
    after: float | None
    before: float | None

    @property
    def needs_meta(self) -> bool:
        return bool(self.groups)

    def matches(self, meta: MessageMeta) -> bool:
        return all(any(p(meta) for p in group) for group in self.groups)


_QUERY_TOKEN = re.compile(
    r'-?[A-Za-z_]+:(?:"[^"]*"|\([^)]*\)|\{[^}]*\}|[^\s(){}]+)|-?"[^"]*"|-?\{[^}]*\}|[()]|[^\s(){}]+'
)
_IGNORED_OPERATORS = frozenset(
    {"in", "label", "is", "category", "to", "deliveredto", "list", "larger", "smaller"}
)


def _parse_when(value: str) -> float:
    if value.isdigit():
        return float(value)
    match = re.fullmatch(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})", value)
    if match is None:
        raise QueryError(f"Invalid date in query: {value}")
    try:
        day = datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError as exc:
        raise QueryError(f"Invalid date in query: {value}") from exc
    return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp()


def _parse_age(value: str, now: float) -> float:
    match = re.fullmatch(r"(\d+)([dmy])", value.lower())
    if match is None:
        raise QueryError(f"Invalid age in query: {value}")
    days = int(match[1]) * {"d": 1, "m": 30, "y": 365}[match[2]]
    return now - days * _DAY_S


def _words(value: str) -> list[str]:
    inner = value.strip("(){}")
    parts = [p.strip('"').lower() for p in re.findall(r'"[^"]*"|\S+', inner)]
    return [p for p in parts if p and p != "or"]


def parse_query(q: str, now: float) -> Query:
    """Parse the supported subset of Gmail's search syntax (see the module docstring)."""
    groups: list[list[tuple[_Predicate, tuple[str, float] | None]]] = []
    join_next = False
    for token in _QUERY_TOKEN.findall(q):
        if token in ("(", ")"):
            continue
        if token in ("OR", "|"):
            join_next = bool(groups)
            continue
        term = _term(token, now)
        if join_next:
            groups[-1].append(term)
            join_next = False
        else:
            groups.append([term])
    after: float | None = None
    before: float | None = None
    kept: list[tuple[_Predicate, ...]] = []
    for group in groups:
        (_, bound), *rest = group
        if rest or bound is None:
            kept.append(tuple(p for p, _ in group))
        elif bound[0] == "after":
            # A date bound on its own narrows the scanned index range instead of being checked.
            after = bound[1] if after is None else max(after, bound[1])
        else:
            before = bound[1] if before is None else min(before, bound[1])
    return Query(tuple(kept), after, before)


def _term(token: str, now: float) -> tuple[_Predicate, tuple[str, float] | None]:
    negate = token.startswith("-") and len(token) > 1
    body = token[1:] if negate else token
    predicate: _Predicate
    bound: tuple[str, float] | None = None
    op, sep, value = body.partition(":")
    op = op.lower()
    if sep and op in ("after", "before", "newer_than", "older_than"):
        at = _parse_when(value) if op in ("after", "before") else _parse_age(value, now)
        if op in ("after", "newer_than"):
            predicate, bound = (lambda m: m.ts >= at), ("after", at)
        else:
            predicate, bound = (lambda m: m.ts < at), ("before", at)
    elif sep and op == "from":
        who = value.strip('"').lower()
        predicate = lambda m: who in m.sender  # noqa: E731
    elif sep and op == "subject":
        words = _words(value)
        predicate = lambda m: any(w in m.subject for w in words)  # noqa: E731
    elif sep and op == "has":
        wanted = value.lower() == "attachment"
        predicate = lambda m: bool(m.filenames) or not wanted  # noqa: E731
    elif sep and op == "filename":
        name = value.strip('"').lower()
        predicate = lambda m: any(f.endswith("." + name) or name in f for f in m.filenames)  # noqa: E731
    elif sep and op in _IGNORED_OPERATORS:
        predicate = lambda m: True  # noqa: E731
    else:
        free = _words(body) or [body.lower()]
        predicate = lambda m: any(w in m.subject for w in free)  # noqa: E731
    if negate:
        inner = predicate
        return (lambda m: not inner(m)), None
    return predicate, bound


def estimate_result_size(found: int, scanned: int, candidates: int) -> int:
    """Gmail's estimate is rough; so is this one: the page's hit rate over the range."""
    if candidates <= 0:
        return 0
    rate = found / scanned if scanned else 1.0
    guess = max(found, round(candidates * rate))
    if guess < 10:
        return guess
    digits = len(str(guess)) - 2
    return int(round(guess, -digits))
