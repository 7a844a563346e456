"""Canonical paths: where a mapped value goes in a Person, Involvement or Relationship.

Grammar: segments separated by dots; a segment is a field name, optionally with
a selector in brackets for a repeated field: a position (`names[0].given`,
`addresses[1].postcode`) or, where the items carry a code, that code
(`identifiers[nhs_number]`, `contacts[mobile]`, `names[preferred].given`).
`identifiers[<scheme>]` and `contacts[<kind>]` without a further segment mean
their `value`. Every path is checked against the pydantic model when the
mapping is loaded.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from canonical.involvement import Involvement, Relationship
from canonical.person import Address, ContactDetail, Identifier, PartialDate, Person, PersonName

MODELS: dict[str, type[BaseModel]] = {"person": Person, "involvement": Involvement, "relationship": Relationship}
# Fields the engine fills itself from the record block's `subject` / `related` templates.
RESERVED = {"involvement": {"subject"}, "relationship": {"subject", "related"}}
# Repeated values that may be selected by their code instead of a position.
KEYED_BY: dict[type[BaseModel], str] = {Identifier: "scheme", ContactDetail: "kind", PersonName: "type",
                                        Address: "type"}
# `identifiers[nhs_number]` alone means its value.
IMPLICIT_LEAF: dict[type[BaseModel], str] = {Identifier: "value", ContactDetail: "value"}

_SEGMENT = re.compile(r"^([a-z_][a-z0-9_]*)(?:\[([A-Za-z0-9_]+)\])?$")


class PathError(ValueError):
    pass


@dataclass(frozen=True)
class Step:
    field: str
    repeated: bool = False
    selector: int | str | None = None  # position, or the code the item is keyed by
    key_field: str | None = None  # for a code selector: the item's field holding the code


@dataclass(frozen=True, eq=False)
class Leaf:
    """What kind of value a path ends in; decides how mapped values are coerced."""

    type: str  # "str", "str_list", "date", "partial_date", "enum", "int", "bool"
    enum: type[enum.Enum] | None = None

    @functools.cached_property
    def choices(self) -> frozenset[str]:
        return frozenset(e.value for e in self.enum) if self.enum else frozenset()

    @functools.cached_property
    def choice_list(self) -> str:
        return ", ".join(e.value for e in self.enum) if self.enum else ""


@dataclass(frozen=True)
class CanonicalPath:
    text: str
    steps: tuple[Step, ...]
    leaf: Leaf


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner type, repeated) of an annotation: Optional[X] → X; tuple[X, ...] → X, repeated."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    if origin is tuple:
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        inner, _ = _unwrap(args[0])
        return inner, True
    return annotation, False


def _leaf(annotation: Any, repeated: bool, text: str) -> Leaf:
    if isinstance(annotation, type):
        if issubclass(annotation, PartialDate):
            return Leaf("partial_date")
        if issubclass(annotation, enum.Enum):
            return Leaf("enum", annotation)
        if issubclass(annotation, bool):
            return Leaf("bool")
        if issubclass(annotation, int):
            return Leaf("int")
        if issubclass(annotation, dt.date):
            return Leaf("date")
        if issubclass(annotation, str):
            return Leaf("str_list" if repeated else "str")
    raise PathError(f"{text!r} ends in a structured value; name one of its fields")


def compile_path(record: str, text: str) -> CanonicalPath:
    """Check `text` against the model of `record` ("person", "involvement", "relationship")."""
    model: type[BaseModel] = MODELS[record]
    steps: list[Step] = []
    segments = text.split(".")
    for i, segment in enumerate(segments):
        m = _SEGMENT.match(segment)
        if not m:
            raise PathError(f"{text!r}: {segment!r} is not a field name with an optional [selector]")
        name, selector = m.groups()
        if i == 0 and name in RESERVED.get(record, ()):
            raise PathError(f"{text!r}: {record} {name} is set by the block's `{name}` key, not by a field")
        if name not in model.model_fields:
            known = ", ".join(sorted(model.model_fields))
            raise PathError(f"{text!r}: {model.__name__} has no field {name!r} (fields: {known})")
        inner, repeated = _unwrap(model.model_fields[name].annotation)
        last = i == len(segments) - 1
        structured = isinstance(inner, type) and issubclass(inner, BaseModel) and not issubclass(inner, PartialDate)
        if selector is not None and not (repeated and structured):
            raise PathError(f"{text!r}: {name} is not a repeated structure, it takes no [selector]")
        if repeated and structured and selector is None:
            raise PathError(f"{text!r}: {name} is repeated; say which one, e.g. {name}[0]")
        if structured:
            step = Step(name, repeated)
            if selector is not None:
                if selector.isdigit():
                    step = Step(name, True, int(selector))
                else:
                    key_field = KEYED_BY.get(inner)
                    if key_field is None:
                        raise PathError(f"{text!r}: {name} items are selected by position, e.g. {name}[0]")
                    code_type, _ = _unwrap(inner.model_fields[key_field].annotation)
                    codes = [e.value for e in code_type]
                    if selector not in codes:
                        raise PathError(f"{text!r}: {selector!r} is not a {key_field} of {name} "
                                        f"(one of {', '.join(codes)})")
                    step = Step(name, True, selector, key_field)
            steps.append(step)
            if last:
                implicit = IMPLICIT_LEAF.get(inner)
                if implicit is None or step.key_field is None:
                    raise PathError(f"{text!r} ends in a structured value; name one of its fields")
                steps.append(Step(implicit))
                return CanonicalPath(text, tuple(steps), Leaf("str"))
            model = inner
            continue
        if not last:
            raise PathError(f"{text!r}: {name} has no fields below it")
        steps.append(Step(name))
        return CanonicalPath(text, tuple(steps), _leaf(inner, repeated, text))
    raise PathError(f"{text!r} is empty")


def loc_to_path(loc: tuple[Any, ...]) -> str:
    """pydantic error location → the path notation used in mapping files."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(record)"
