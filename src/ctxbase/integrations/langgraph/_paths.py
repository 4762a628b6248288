"""LangGraph store items as ctxbase state entries: namespaces and keys, and the rules
LangGraph's stores share (value filters, namespace matching).

A namespace ``("users", "u 1")`` under the root ``langgraph`` is the state namespace
``langgraph/users/u.201``: each label is a path segment, its characters outside ctxbase's
``[A-Za-z0-9_:@+=-]`` written as ``.XX`` (the hex of each UTF-8 byte). LangGraph labels
never contain ``.``, so the encoding is reversible and a label holding ``/`` stays one
segment. Keys are encoded the same way (``.`` included, as ``.2E``); the empty key is
``.`` alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ctxbase.errors import InvalidInputError

#: Characters a state segment keeps as they are (``.`` is the escape).
_PLAIN = re.compile(r"[A-Za-z0-9_:@+=\-]")
_ESCAPE = re.compile(r"\.([0-9A-F]{2})")
#: Longest state namespace and key (their columns' lengths).
MAX_LENGTH = 500


def encode(text: str) -> str:
    """``text`` as a state segment (see the module's docstring)."""
    if not text:
        return "."
    if all(_PLAIN.fullmatch(c) for c in text):
        return text
    return "".join(
        c if _PLAIN.fullmatch(c) else "".join(f".{b:02X}" for b in c.encode()) for c in text
    )


def decode(segment: str) -> str:
    if segment == ".":
        return ""
    if "." not in segment:
        return segment
    data = bytearray()
    position = 0
    for escape in _ESCAPE.finditer(segment):
        data += segment[position : escape.start()].encode()
        data.append(int(escape.group(1), 16))
        position = escape.end()
    data += segment[position:].encode()
    return data.decode()


def state_namespace(root: str, namespace: Sequence[str]) -> str:
    path = "/".join([root, *(encode(label) for label in namespace)])
    if len(path) > MAX_LENGTH:
        raise InvalidInputError(f"Namespace {tuple(namespace)!r} is too long to store")
    return path


def state_key(key: str) -> str:
    encoded = encode(key)
    if len(encoded) > MAX_LENGTH:
        raise InvalidInputError(f"Key {key[:40]!r}… is too long to store")
    return encoded


def item_namespace(root: str, path: str) -> tuple[str, ...]:
    """The LangGraph namespace of the state namespace ``path`` under ``root``."""
    return tuple(decode(segment) for segment in path[len(root) + 1 :].split("/"))


# --- what LangGraph's stores agree on ------------------------------------------------------


def matches(value: Mapping[str, Any], wanted: Mapping[str, Any] | None) -> bool:
    """Whether an item's ``value`` passes a search ``filter``: each key equal to its value
    (objects match field by field, lists element by element), or passing its operators
    (``$eq``, ``$ne``, ``$gt``, ``$gte``, ``$lt``, ``$lte``; comparisons are numeric, and
    false for a missing or non-numeric field)."""
    return not wanted or all(_passes(value.get(key), want) for key, want in wanted.items())


def _passes(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, Mapping):
        if any(str(key).startswith("$") for key in wanted):
            return all(_operator(actual, name, operand) for name, operand in wanted.items())
        return isinstance(actual, Mapping) and all(
            _passes(actual.get(key), want) for key, want in wanted.items()
        )
    if isinstance(wanted, list | tuple):
        return (
            isinstance(actual, list | tuple)
            and len(actual) == len(wanted)
            and all(_passes(a, w) for a, w in zip(actual, wanted, strict=True))
        )
    return bool(actual == wanted)


_COMPARISONS = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def _operator(actual: Any, name: str, operand: Any) -> bool:
    if name == "$eq":
        return bool(actual == operand)
    if name == "$ne":
        return bool(actual != operand)
    compare = _COMPARISONS.get(name)
    if compare is None:
        raise InvalidInputError(
            f"Unknown filter operator {name!r}", hint="use $eq, $ne, $gt, $gte, $lt or $lte"
        )
    try:
        return bool(compare(float(actual), float(operand)))
    except (TypeError, ValueError):
        return False


def namespace_matches(namespace: tuple[str, ...], conditions: Iterable[Any]) -> bool:
    """Whether ``namespace`` meets every match condition (``prefix`` or ``suffix``, where
    ``"*"`` stands for any one label)."""
    for condition in conditions:
        path = tuple(condition.path)
        if len(namespace) < len(path):
            return False
        if condition.match_type == "prefix":
            part = namespace[: len(path)]
        elif condition.match_type == "suffix":
            part = namespace[len(namespace) - len(path) :]
        else:
            raise InvalidInputError(f"Unknown match type {condition.match_type!r}")
        if any(want not in ("*", got) for want, got in zip(path, part, strict=True)):
            return False
    return True


def fixed_prefix(conditions: Iterable[Any]) -> tuple[str, ...]:
    """The labels every namespace meeting ``conditions`` starts with (from a prefix
    condition, up to its first wildcard): what SQL can narrow the search to."""
    longest: tuple[str, ...] = ()
    for condition in conditions:
        if condition.match_type != "prefix":
            continue
        labels: list[str] = []
        for label in condition.path:
            if label == "*":
                break
            labels.append(label)
        if len(labels) > len(longest):
            longest = tuple(labels)
    return longest
