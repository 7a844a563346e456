"""The value steps of a field mapping: transforms, code tables and date formats.

Each is compiled once when the mapping loads (bad parameters are a MappingError
there) into a plain function; at translation time a step raises ValueError with
a message that becomes one of the record's quarantine reasons.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from canonical.codes import DatePrecision

Transform = Callable[[Any], Any]


class SpecError(ValueError):
    """A bad transform, code table or date format in a mapping (turned into MappingError by the loader)."""


def is_empty(value: Any) -> bool:
    if value is None:
        return True
    if value.__class__ is str:
        return not value or (value[0].isspace() or value[-1].isspace()) and not value.strip()
    if isinstance(value, (list, tuple)):
        return all(is_empty(v) for v in value)
    return False


def _text(value: Any) -> str:
    """A cell value as text: integral floats (spreadsheets' numbers) without the trailing .0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def _str_only(name: str, fn: Callable[[str], Any]) -> Transform:
    def apply(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, (list, tuple)):
            return [None if v is None else fn(_text(v)) for v in value]
        return fn(_text(value))
    apply.__name__ = name
    return apply


_WS = re.compile(r"\s+")


def split_name(full: str, part: str) -> str | None:
    """One part of a full name written "FAMILY, Given Middle" or "Given Middle Family"."""
    full = _WS.sub(" ", full.strip())
    if not full:
        return None
    if "," in full:
        family, _, rest = full.partition(",")
        given_parts = rest.split()
        family = family.strip()
    else:
        words = full.split(" ")
        family = words[-1] if len(words) > 1 else None
        given_parts = words[:-1] if len(words) > 1 else words
    if part == "family":
        return family or None
    if part == "given":
        return given_parts[0] if given_parts else None
    return " ".join(given_parts[1:]) or None


SIMPLE: dict[str, Transform] = {
    "trim": _str_only("trim", str.strip),
    "upper": _str_only("upper", str.upper),
    "lower": _str_only("lower", str.lower),
    "title": _str_only("title", lambda s: re.sub(r"(?<=[A-Za-z])'([A-Z])", lambda m: "'" + m.group(1), s.title())),
    "collapse_spaces": _str_only("collapse_spaces", lambda s: _WS.sub(" ", s).strip()),
    "strip_spaces": _str_only("strip_spaces", lambda s: _WS.sub("", s)),
    "digits": _str_only("digits", lambda s: re.sub(r"\D", "", s)),
    "text": _str_only("text", lambda s: s),
    "null_if_empty": lambda v: None if is_empty(v) else v,
    "compact": lambda v: None if v is None else [_text(x).strip() for x in (v if isinstance(v, (list, tuple)) else [v])
                                                 if not is_empty(x)],
}


def _split_name_step(part: Any) -> Transform:
    if part not in ("given", "middle", "family"):
        raise SpecError(f"split_name takes 'given', 'middle' or 'family', not {part!r}")
    return _str_only(f"split_name={part}", lambda s: split_name(s, part))


def _join_step(sep: Any) -> Transform:
    if not isinstance(sep, str):
        raise SpecError(f"join takes a separator string, not {sep!r}")

    def join(value: Any) -> Any:
        if value is None:
            return None
        items = value if isinstance(value, (list, tuple)) else [value]
        text = sep.join(_text(v).strip() for v in items if not is_empty(v))
        return text or None
    return join


def _split_step(sep: Any) -> Transform:
    if not isinstance(sep, str) or not sep:
        raise SpecError(f"split takes a non-empty separator string, not {sep!r}")
    return _str_only("split", lambda s: [p.strip() for p in s.split(sep) if p.strip()])


def _compile_regex(pattern: Any) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise SpecError(f"a regular expression must be a string, not {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise SpecError(f"bad regular expression {pattern!r}: {exc}") from None


def _regex_step(pattern: Any) -> Transform:
    rx = _compile_regex(pattern)

    def extract(s: str) -> str | None:
        m = rx.search(s)
        if not m:
            return None
        return m.group(1) if rx.groups else m.group(0)
    return _str_only("regex", extract)


def _replace_step(args: Any) -> Transform:
    if not (isinstance(args, (list, tuple)) and len(args) == 2 and all(isinstance(a, str) for a in args)):
        raise SpecError(f"replace takes [pattern, replacement], not {args!r}")
    rx = _compile_regex(args[0])
    return _str_only("replace", lambda s: rx.sub(args[1], s))


def _null_if_step(values: Any) -> Transform:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        raise SpecError(f"null_if takes a list of strings, not {values!r}")
    nulls = {v.strip().casefold() for v in values}
    return lambda v: None if v is not None and _text(v).strip().casefold() in nulls else v


def _default_step(default: Any) -> Transform:
    return lambda v: default if is_empty(v) else v


def _if_present_step(value: Any) -> Transform:
    return lambda v: None if is_empty(v) else value


PARAMETERISED: dict[str, Callable[[Any], Transform]] = {
    "split_name": _split_name_step, "join": _join_step, "split": _split_step, "regex": _regex_step,
    "replace": _replace_step, "null_if": _null_if_step, "default": _default_step,
    "if_present": _if_present_step,
}


def compile_transform(spec: Any) -> Transform:
    """`"trim"` or a one-key table such as `{ split_name = "family" }`."""
    if isinstance(spec, str):
        if spec in SIMPLE:
            return SIMPLE[spec]
        if spec in PARAMETERISED:
            raise SpecError(f"transform {spec!r} needs a parameter, e.g. {{ {spec} = ... }}")
        raise SpecError(f"unknown transform {spec!r} (known: {', '.join(sorted([*SIMPLE, *PARAMETERISED]))})")
    if isinstance(spec, Mapping) and len(spec) == 1:
        (name, arg), = spec.items()
        if name in PARAMETERISED:
            return PARAMETERISED[name](arg)
        raise SpecError(f"unknown transform {name!r} (with a parameter: {', '.join(sorted(PARAMETERISED))})")
    raise SpecError(f"a transform is a name or a one-key table, not {spec!r}")


# --- code tables ---

@dataclass(frozen=True)
class CodeTable:
    name: str
    codes: dict[str, Any]
    default: Any = None
    has_default: bool = False
    ignore_case: bool = True

    def lookup(self, value: Any) -> Any:
        if is_empty(value):
            return None
        key = _text(value).strip()
        key = key.casefold() if self.ignore_case else key
        if key in self.codes:
            return self.codes[key]
        if self.has_default:
            return self.default
        raise ValueError(f"code {_text(value)!r} is not in code table {self.name!r}")

    def values(self) -> list[Any]:
        return [*self.codes.values(), *([self.default] if self.has_default else [])]


def compile_code_table(name: str, spec: Any) -> CodeTable:
    """`{ map = {M = "male"}, default = "unknown", ignore_case = true }` or just `{M = "male"}`."""
    if not isinstance(spec, Mapping):
        raise SpecError(f"code table {name!r} must be a table")
    if "map" in spec:
        unknown = set(spec) - {"map", "default", "ignore_case"}
        if unknown:
            raise SpecError(f"code table {name!r}: unknown key(s) {', '.join(sorted(unknown))} "
                            "(map, default, ignore_case)")
        codes, has_default = spec["map"], "default" in spec
        ignore_case = spec.get("ignore_case", True)
        if not isinstance(codes, Mapping) or not isinstance(ignore_case, bool):
            raise SpecError(f"code table {name!r}: map must be a table and ignore_case true or false")
    else:
        codes, has_default, ignore_case = spec, False, True
    fold = (lambda k: str(k).strip().casefold()) if ignore_case else (lambda k: str(k).strip())
    table: dict[str, Any] = {}
    for code, value in codes.items():
        if fold(code) in table:
            raise SpecError(f"code table {name!r}: code {code!r} is listed twice")
        table[fold(code)] = value
    return CodeTable(name, table, spec.get("default") if has_default else None, has_default, ignore_case)


# --- dates ---

_DIRECTIVE = re.compile(r"%(.)")
_ALLOWED = set("dmyYbBjHMSfpaAzZ%")


@dataclass(frozen=True)
class DateFormat:
    text: str
    precision: DatePrecision

    def parse(self, value: str) -> dt.date | None:
        if self.text == "iso":
            try:
                return dt.date.fromisoformat(value[:10]) if len(value) >= 10 and (
                    len(value) == 10 or value[10] in "T ") else None
            except ValueError:
                return None
        if self.text == "excel":
            try:
                serial = float(value)
            except ValueError:
                return None
            return dt.date(1899, 12, 30) + dt.timedelta(days=int(serial)) if 0 < serial < 2958466 else None
        try:
            return dt.datetime.strptime(value, self.text).date()
        except ValueError:
            return None


def compile_date_format(text: Any) -> DateFormat:
    """A strptime format (checked: known directives, a year, and it round-trips), "iso" or "excel"."""
    if text in ("iso", "excel"):
        return DateFormat(text, DatePrecision.DAY)
    if not isinstance(text, str) or not text:
        raise SpecError(f"a date format is a strptime string, 'iso' or 'excel', not {text!r}")
    directives = _DIRECTIVE.findall(text)
    bad = [d for d in directives if d not in _ALLOWED]
    if bad or text.replace("%%", "").endswith("%"):
        raise SpecError(f"date format {text!r}: unknown directive %{bad[0] if bad else ''}")
    if "Y" not in directives and "y" not in directives:
        raise SpecError(f"date format {text!r} has no year (%Y or %y)")
    sample = dt.datetime(2001, 2, 3, 4, 5, 6)
    try:
        if dt.datetime.strptime(sample.strftime(text), text).year != 2001:
            raise ValueError("does not round-trip")
    except ValueError as exc:
        raise SpecError(f"date format {text!r} cannot be parsed back: {exc}") from None
    if "d" in directives or "j" in directives:
        precision = DatePrecision.DAY
    elif set(directives) & set("mbB"):
        precision = DatePrecision.MONTH
    else:
        precision = DatePrecision.YEAR
    return DateFormat(text, precision)


def parse_date(value: Any, formats: tuple[DateFormat, ...]) -> tuple[dt.date, DatePrecision] | None:
    """The first format that reads `value`, with the precision it implies; ValueError when none does."""
    if is_empty(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date(), DatePrecision.DAY
    if isinstance(value, dt.date):
        return value, DatePrecision.DAY
    return _parse_text(_text(value).strip(), formats)


@functools.lru_cache(maxsize=65536)
def _parse_text(text: str, formats: tuple[DateFormat, ...]) -> tuple[dt.date, DatePrecision]:
    # Legacy tables repeat the same dates (birthdays, term starts) many times: parsing is cached.
    for fmt in formats:
        parsed = fmt.parse(text)
        if parsed is not None:
            return parsed, fmt.precision
    raise ValueError(f"{text!r} matches none of the date formats {', '.join(f.text for f in formats)}")
