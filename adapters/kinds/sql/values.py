"""Values between the legacy database and the hub: rows as JSON, cursors that keep their
Python type, look-back arithmetic, and values written in the form a column holds."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, DateTime

from adapters.kinds.common import SourceConfigError

PLAIN = frozenset({str, int, float, bool, type(None)})


def jsonable(value: Any) -> Any:
    """A database value as JSON: dates as ISO text, decimals as text, bytes as hex."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def behind(value: Any, lookback: float) -> Any:
    """`value` moved back by `lookback`: seconds for a timestamp (also one held as ISO text, kept
    in its own format), units for a number."""
    if isinstance(value, dt.datetime):
        return value - dt.timedelta(seconds=lookback)
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return value - type(value)(lookback) if isinstance(value, Decimal) else value - lookback
    moment = as_datetime(value)
    if moment is None:
        raise SourceConfigError(f"watermark_lookback needs a timestamp or number watermark, not {value!r}")
    earlier = moment - dt.timedelta(seconds=lookback)
    text_value = earlier.isoformat(sep="T" if "T" in value else " ",
                                   timespec="microseconds" if "." in value else "seconds")
    if earlier.tzinfo is not None and value.endswith("Z"):
        text_value = text_value.removesuffix("+00:00") + "Z"
    return text_value


def as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def encode_cursor(values: list[Any]) -> str:
    """JSON that keeps the Python type, so the next run binds a value the column compares with."""
    def tag(v: Any) -> Any:
        if isinstance(v, dt.datetime):
            return {"datetime": v.isoformat()}
        if isinstance(v, dt.date):
            return {"date": v.isoformat()}
        if isinstance(v, Decimal):
            return {"decimal": str(v)}
        return v

    return json.dumps([tag(v) for v in values])


def decode_cursor(encoded: str) -> list[Any]:
    def untag(v: Any) -> Any:
        if isinstance(v, dict):
            (kind, text_value), = v.items()
            return {"datetime": dt.datetime.fromisoformat, "date": dt.date.fromisoformat,
                    "decimal": Decimal}[kind](text_value)
        return v

    return [untag(v) for v in json.loads(encoded)]


def coerce(sql_type: Any, value: Any) -> Any:
    """ISO text for a DATE/TIMESTAMP column becomes a date/datetime; everything else is passed as is."""
    if not isinstance(value, str) or not value:
        return value
    try:
        if isinstance(sql_type, DateTime):
            return dt.datetime.fromisoformat(value)
        if isinstance(sql_type, Date):
            return dt.date.fromisoformat(value[:10])
    except ValueError:
        return value  # the database says what it makes of it
    return value


def stamp(sql_type: Any, moment: dt.datetime) -> Any:
    """The write time as the modified column holds it: a (naive UTC) datetime, or ISO-like text."""
    utc = moment.astimezone(dt.UTC)
    if isinstance(sql_type, DateTime):
        return utc if sql_type.timezone else utc.replace(tzinfo=None)
    return utc.strftime("%Y-%m-%d %H:%M:%S")
