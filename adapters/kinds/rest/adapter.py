"""The `rest` kind's adapter: pages read into batches, and write-back by POST/PATCH."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import requests

from adapters.kinds.common import BatchBuilder, ChangeDetector, ScannedRow
from adapters.kinds.rest.client import HttpClient, RestError
from adapters.kinds.rest.config import RestEntity, RestSource, RestWrite
from adapters.port import (
    AdapterState,
    ApplyResult,
    ExtractBatch,
    RawChange,
    SourceFailure,
    WriteBack,
)


class RestAdapter:
    kind = "rest"

    def __init__(self, system: str, cfg: RestSource, entities: dict[str, RestEntity], *,
                 env: Mapping[str, str], sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.system, self.cfg, self.entities, self.now = system, cfg, entities, now
        self.http = HttpClient(cfg, env, sleep=sleep, clock=clock)

    # ---- extract -------------------------------------------------------------------------------
    def extract(self, state: AdapterState) -> Iterator[ExtractBatch]:
        for name, ent in self.entities.items():
            yield from self._entity(name, ent, state)

    def _entity(self, name: str, ent: RestEntity, state: AdapterState) -> Iterator[ExtractBatch]:
        since_key, full_key = f"{name}.updated_since", f"{name}.full_scan_at"
        since = state.cursor(since_key) if ent.updated_since_param else None
        full = since is None or self._full_scan_due(ent, state.cursor(full_key))
        params = dict(ent.params)
        if not full and ent.updated_since_param and since is not None:
            params[ent.updated_since_param] = since
        started = self.now().isoformat()
        detector, builder = ChangeDetector(state, name), BatchBuilder(self.cfg.batch_size)
        newest = since
        for item, location in self._items(ent, params):
            builder.add(self._outcome(name, ent, item, location, detector))
            if ent.updated_field and isinstance(item, dict):
                newest = _later(newest, _dig(item, ent.updated_field))
            if builder.full:
                yield builder.take()
        if full:
            for deletion in detector.deletions(self.http.url(ent.path)):
                builder.change(deletion)
                if builder.full:
                    yield builder.take()
            if ent.full_scan_every_s:
                builder.checkpoint({full_key: started})
        if ent.updated_since_param and newest is not None:
            builder.checkpoint({since_key: str(newest)})
        if not builder.empty:
            yield builder.take()

    def _outcome(self, name: str, ent: RestEntity, item: Any, location: str,
                 detector: ChangeDetector) -> RawChange | SourceFailure | None:
        if not isinstance(item, dict):
            detector.complete = False
            return SourceFailure(location, (f"{name}: item is not a JSON object",), repr(item)[:300])
        value = _dig(item, ent.id_field)
        source_id = None if value in (None, "") else str(value)
        if source_id is not None and ent.deleted_field and _dig(item, ent.deleted_field):
            detector.seen[source_id] = location
            # a marker for a record the hub does not hold (or already deleted) has nothing to say
            return RawChange(name, source_id, None, location) if source_id in detector.known else None
        problems = () if source_id else (f"{name}: item has no {ent.id_field!r}",)
        observed = _datetime(_dig(item, ent.updated_field)) if ent.updated_field else None
        return detector.observe(ScannedRow(source_id, item, location, observed, problems))

    def _full_scan_due(self, ent: RestEntity, last: str | None) -> bool:
        if ent.full_scan_every_s is None:
            return False
        if last is None:
            return True
        return (self.now() - dt.datetime.fromisoformat(last)).total_seconds() >= ent.full_scan_every_s

    def _items(self, ent: RestEntity, params: dict[str, Any]) -> Iterator[tuple[Any, str]]:
        """Every item of every page, with where it came from."""
        page_cfg = ent.pagination
        url: str | None = self.http.url(ent.path)
        base = dict(params)
        if page_cfg.style != "none" and page_cfg.size_param:
            base[page_cfg.size_param] = page_cfg.page_size
        query: dict[str, Any] | None = dict(base)
        page, cursors = page_cfg.first_page, set()
        for _ in range(page_cfg.max_pages):
            if page_cfg.style == "page":
                query[page_cfg.page_param] = page
            response = self._get(url or "", query)
            body = _json(response)
            items = _dig(body, ent.items_key) if ent.items_key else body
            if not isinstance(items, list):
                raise RestError(f"GET {response.url}: expected a list at {ent.items_key or 'the top level'}, "
                                f"got {type(items).__name__}")
            for i, item in enumerate(items):
                yield item, f"{response.url} [{i}]"
            if page_cfg.style == "none":
                return
            if page_cfg.style == "page":
                if len(items) < page_cfg.page_size:
                    return
                page += 1
            elif page_cfg.style == "cursor":
                following = _dig(body, page_cfg.next_cursor_key)
                if following in (None, ""):
                    return
                if following in cursors:  # stopping here would silently drop the rest
                    raise RestError(f"GET {response.url}: the API returned cursor {following!r} twice")
                cursors.add(following)
                query = {**base, page_cfg.cursor_param: following}
            else:
                url = response.links.get("next", {}).get("url")
                if not url:
                    return
                query = None  # the next link carries its own query
        raise RestError(f"{ent.path}: more than {page_cfg.max_pages} pages (pagination.max_pages)")

    def _get(self, url: str, params: dict[str, Any] | None) -> requests.Response:
        response = self.http.request("GET", url, params=params)
        if response.status_code in (401, 403):
            raise RestError(f"GET {response.url}: {response.status_code}: the API refused our credentials "
                            f"(token from {self.cfg.token_env or 'no token_env'})")
        if not response.ok:
            raise RestError(f"GET {response.url}: {response.status_code} {_excerpt(response)}")
        return response

    # ---- write-back ----------------------------------------------------------------------------
    def apply(self, change: WriteBack) -> ApplyResult:
        """POST a create, PATCH an update or close; 409/412 and other 4xx are refusals.

        A 5xx or an unreachable API raises RestError: the change is not refused, the bus retries it."""
        sid = change.source_id or ""
        ent = self.entities.get(change.entity)
        if ent is None or ent.write is None:
            return ApplyResult(sid, False, f"entity {change.entity!r} of {self.system} has no `write` section")
        write = ent.write
        body, ignored, problem = _body(write, change)
        if problem:
            return ApplyResult(sid, False, problem)
        if not body and change.operation == "update":
            return ApplyResult(sid, True, f"nothing to write: the API holds none of {ignored}")
        collection = write.path or ent.path
        if change.operation == "create":
            response = self.http.request("POST", self.http.url(collection), json=body)
        elif change.operation in ("update", "close"):
            if not sid:
                return ApplyResult(sid, False, f"{change.operation} needs the record's source_id")
            if change.operation == "close":
                if not write.close_set:
                    return ApplyResult(sid, False, "closing is not configured (`write.close_set`)")
                for field_name, value in write.close_set.items():
                    _put(body, field_name, value)
            headers = {}
            if change.expected_version is not None:
                headers[write.version_header] = write.version_format.format(version=change.expected_version)
            item = (write.item_path or "{path}/{id}").format(path=collection, id=quote(sid, safe=""))
            response = self.http.request("PATCH", self.http.url(item), json=body, headers=headers)
        else:
            return ApplyResult(sid, False, f"unknown operation {change.operation!r}")
        result = self._result(change, write, ent, response)
        if ignored and result.accepted:
            return ApplyResult(result.source_id, True, f"{result.detail}; not held by this system: {ignored}")
        return result

    def _result(self, change: WriteBack, write: RestWrite, ent: RestEntity,
                response: requests.Response) -> ApplyResult:
        sid = change.source_id or ""
        status = response.status_code
        if status in (409, 412):
            return ApplyResult(sid, False, f"conflict ({status}): {_excerpt(response)}")
        if status >= 500:
            raise RestError(f"{response.request.method} {response.url}: {status} {_excerpt(response)}")
        if not response.ok:
            return ApplyResult(sid, False, f"refused ({status}): {_excerpt(response)}")
        if change.operation == "create":
            created = _dig(_json(response), write.id_field or ent.id_field) if response.content else None
            if created in (None, "") and response.headers.get("Location"):
                created = response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
            sid = str(created) if created not in (None, "") else sid
        return ApplyResult(sid, True, f"{status} {response.reason or ''}".strip())


# ---- helpers ----------------------------------------------------------------------------------------
def _body(write: RestWrite, change: WriteBack) -> tuple[dict[str, Any], list[str], str]:
    """(JSON body, canonical paths with no field, the reason for a refusal or "")."""
    ignored = sorted(p for p in change.values if p not in write.fields)
    if ignored and write.unmapped == "reject":
        return {}, ignored, f"no JSON field is mapped for {ignored} (write.fields)"
    body: dict[str, Any] = {}
    for path, value in change.values.items():
        field_name = write.fields.get(path)
        if field_name is None:
            continue
        codes = write.codes.get(field_name)
        if codes is not None and value is not None:
            if str(value) not in codes:
                return {}, ignored, f"{path}={value!r} has no code in write.codes.{field_name}"
            value = codes[str(value)]
        _put(body, field_name, value)
    return body, ignored, ""


def _put(body: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        body = body.setdefault(part, {})
    body[last] = value


def _dig(data: Any, dotted: str | None) -> Any:
    if not dotted:
        return data
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise RestError(f"{response.url}: the body is not JSON: {_excerpt(response)}") from None


def _excerpt(response: requests.Response, limit: int = 300) -> str:
    text = response.text or ""
    return text if len(text) <= limit else text[:limit] + "…"


def _datetime(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def _later(current: Any, candidate: Any) -> Any:
    """The newer of two `updated_field` values: compared as datetimes when both parse, else as text."""
    if candidate in (None, ""):
        return current
    if current is None:
        return candidate
    a, b = _datetime(current), _datetime(candidate)
    if a is not None and b is not None and (a.tzinfo is None) == (b.tzinfo is None):
        return candidate if b > a else current
    return candidate if str(candidate) > str(current) else current
