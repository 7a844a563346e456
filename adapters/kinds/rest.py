"""The `rest` adapter kind: a JSON API read page by page, and written back with POST/PATCH.

Per entity: a collection `path`, where the records sit in the body (`items_key`), their id
(`id_field`), and a pagination style: `page` (page number and size), `cursor` (the next
cursor is in the body) or `link` (RFC 5988 `Link: <…>; rel="next"`). With
`updated_since_param` and `updated_field` the read is incremental: the newest `updated_field`
seen becomes the cursor, checkpointed only once every page has been read, so a crash
re-reads rather than skips (row hashes make the re-read silent). A full listing compares
row hashes and announces deletions; incremental runs do so every `full_scan_every_s`.

The token comes from the environment (`token_env`), never from a file. Every request has a
timeout, is spaced by the client-side rate limit, and is retried with exponential back-off
and jitter on 429/5xx and connection errors, honouring `Retry-After`.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import pathlib
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal
from urllib.parse import quote

import requests
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from adapters.kinds.common import (
    BatchBuilder,
    ChangeDetector,
    ScannedRow,
    SourceConfigError,
    parse_config,
)
from adapters.port import (
    AdapterState,
    ApplyResult,
    ExtractBatch,
    RawChange,
    SourceFailure,
    WriteBack,
)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SAFE_TO_RESEND = frozenset({429, 503})  # the server says it did not act: even a POST may be resent


class RestError(RuntimeError):
    """The API could not be read or written (after the retries): names the URL and the status."""


class Retry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(5, ge=1)
    backoff_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    retry_after_max_s: float = Field(300.0, ge=0)


class Pagination(BaseModel):
    model_config = ConfigDict(extra="forbid")

    style: Literal["none", "page", "cursor", "link"] = "none"
    page_param: str = "page"
    size_param: str | None = "page_size"
    page_size: int = Field(100, ge=1)
    first_page: int = 1
    cursor_param: str = "cursor"
    next_cursor_key: str = "next_cursor"
    max_pages: int = Field(100_000, ge=1)


class RestWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = None  # collection for POST; defaults to the entity's path
    item_path: str | None = None  # "{path}/{id}" by default
    # canonical path -> JSON field (dotted for nesting); `columns` is accepted as in the sql kind
    fields: dict[str, str] = Field(..., min_length=1, validation_alias=AliasChoices("fields", "columns"))
    codes: dict[str, dict[str, Any]] = Field(default_factory=dict)  # JSON field -> canonical -> legacy
    id_field: str | None = None  # in the POST response; defaults to the entity's id_field
    version_header: str = "If-Match"
    version_format: str = '"{version}"'
    close_set: dict[str, Any] = Field(default_factory=dict)
    # a value with no field: "ignore" sends the rest and names it in the detail; "reject" refuses
    unmapped: Literal["reject", "ignore"] = "ignore"


class RestEntity(BaseModel):
    """The source-side keys of one `[entities.<name>]` block (mapping keys are ignored here)."""

    model_config = ConfigDict(extra="allow")

    path: str = Field(..., min_length=1)
    items_key: str | None = None  # dotted; None when the body is the list itself
    id_field: str = "id"
    params: dict[str, str] = Field(default_factory=dict)
    pagination: Pagination = Field(default_factory=Pagination)
    updated_since_param: str | None = None
    updated_field: str | None = None
    deleted_field: str | None = None  # a truthy value marks the record deleted
    full_scan_every_s: float | None = Field(None, gt=0)
    write: RestWrite | None = None


class RestSource(BaseModel):
    model_config = ConfigDict(extra="allow")

    base_url: str = Field(..., min_length=1)
    token_env: str | None = None
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"
    headers: dict[str, str] = Field(default_factory=dict)
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(30.0, gt=0)
    rate_limit_per_s: float | None = Field(None, gt=0)
    retry: Retry = Field(default_factory=Retry)
    batch_size: int = Field(500, ge=1)
    verify_tls: bool = True


def build(system: str, source: dict, entities: dict[str, dict], *, base_dir: pathlib.Path,
          env: Mapping[str, str]) -> RestAdapter:
    if "token" in source:
        raise SourceConfigError("source.token: a token is never written in a mapping file; "
                                "name the environment variable that holds it with `token_env`")
    cfg = parse_config(RestSource, source, "source", "rest")
    parsed = {name: parse_config(RestEntity, ent, f"entities.{name}", "rest") for name, ent in entities.items()}
    for name, ent in parsed.items():
        if ent.updated_since_param and not ent.updated_field:
            raise SourceConfigError(f"entities.{name}.updated_field: needed with updated_since_param, "
                                    "to know how far an incremental read got")
    return RestAdapter(system, cfg, parsed, env=env)


def columns(source: dict, entity_cfg: dict, *, base_dir: pathlib.Path,
            env: Mapping[str, str]) -> list[str] | None:
    """An API's fields are only known once it answers: no load-time column check."""
    return None


class HttpClient:
    """One requests.Session with the auth header, timeouts, rate limit and retries."""

    def __init__(self, cfg: RestSource, env: Mapping[str, str], *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.env, self.sleep, self.clock = cfg, env, sleep, clock
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", **cfg.headers})
        self.session.verify = cfg.verify_tls
        self._authorised = False
        self._next_slot = 0.0

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.cfg.base_url.rstrip("/") + path

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """The response (any status once retries are spent); RestError when no response came."""
        self._authorise()
        resendable = method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        retry, attempt = self.cfg.retry, 0
        while True:
            attempt += 1
            self._throttle()
            try:
                response = self.session.request(method, url, timeout=(self.cfg.connect_timeout_s,
                                                                      self.cfg.read_timeout_s), **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                sent = not isinstance(exc, requests.ConnectTimeout)
                if attempt == retry.max_attempts or (sent and not resendable):
                    raise RestError(f"{method} {url} failed after {attempt} attempt(s): "
                                    f"{type(exc).__name__}: {exc}") from exc
                self.sleep(self._backoff(attempt))
                continue
            status = response.status_code
            if status not in RETRY_STATUSES or attempt == retry.max_attempts or (
                    not resendable and status not in SAFE_TO_RESEND):
                return response
            self.sleep(self._retry_after(response) or self._backoff(attempt))

    def _authorise(self) -> None:
        if self._authorised or not self.cfg.token_env:
            return
        token = self.env.get(self.cfg.token_env)
        if not token:
            raise SourceConfigError(f"environment variable {self.cfg.token_env} (source.token_env) is not set")
        scheme = f"{self.cfg.auth_scheme} " if self.cfg.auth_scheme else ""
        self.session.headers[self.cfg.auth_header] = scheme + token
        self._authorised = True

    def _throttle(self) -> None:
        if not self.cfg.rate_limit_per_s:
            return
        now = self.clock()
        if self._next_slot > now:
            self.sleep(self._next_slot - now)
            now = self._next_slot
        self._next_slot = now + 1.0 / self.cfg.rate_limit_per_s

    def _backoff(self, attempt: int) -> float:
        delay = min(self.cfg.retry.backoff_max_s, self.cfg.retry.backoff_s * 2 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0)  # jitter: clients that failed together do not retry together

    def _retry_after(self, response: requests.Response) -> float | None:
        value = response.headers.get("Retry-After")
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value) if value else None
            if when is None:
                return None
            seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
        return max(0.0, min(seconds, self.cfg.retry.retry_after_max_s))


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
            outcome = self._outcome(name, ent, item, location, detector)
            if outcome is None:
                builder.unchanged()
            elif isinstance(outcome, SourceFailure):
                builder.failure(outcome)
            else:
                builder.change(outcome)
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
