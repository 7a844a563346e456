"""The `rest` adapter kind against `responses`-mocked APIs (and one real loopback socket for
timeouts): the three pagination styles, incremental reads, deletions, retries with back-off
and Retry-After, the client-side rate limit, the token from the environment, write-back."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import threading
import time

import pytest
import requests
import responses

from adapters.kinds import rest
from adapters.kinds.common import SourceConfigError
from adapters.port import WriteBack
from tests.contract.adapter_factories import PEOPLE, MemoryState, RestSource, run

BASE = RestSource.BASE


class FakeTime:
    """A clock that moves only when the adapter sleeps: retries and rate limits, measured exactly."""

    def __init__(self) -> None:
        self.now, self.sleeps = 1000.0, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds

    def clock(self) -> float:
        return self.now


def _adapter(source: dict, entities: dict, env: dict | None = None, fake: FakeTime | None = None):
    fake = fake or FakeTime()
    built = rest.build("yj", source, entities, base_dir=None, env=env or {})
    return rest.RestAdapter("yj", built.cfg, built.entities, env=env or {}, sleep=fake.sleep, clock=fake.clock)


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.mark.parametrize("style", ["page", "cursor", "link"])
def test_every_pagination_style_reads_every_page(tmp_path, mock, style):
    api = RestSource(tmp_path, mock, pagination=style)
    result = run(api.adapter(), MemoryState())
    assert sorted(result.upserted) == ["P1", "P2", "P3", "P4", "P5"]
    assert result.upserted["P4"]["surname"] == "Price"
    assert len(api.requests) == 3
    assert all(r.headers["Authorization"] == "Bearer contract-token" for r in api.requests)
    assert all(len(b.changes) <= 2 for b in result.batches)


def test_full_listing_detects_changes_unchanged_and_deletions(tmp_path, mock):
    api = RestSource(tmp_path, mock)
    state = MemoryState()
    run(api.adapter(), state)
    api.change("P1", forename="Amy")
    api.remove("P3")
    result = run(api.adapter(), state)
    assert list(result.upserted) == ["P1"] and result.deleted == ["P3"] and result.unchanged == 3


def test_item_without_id_is_reported_and_blocks_deletions(tmp_path, mock):
    api = RestSource(tmp_path, mock)
    state = MemoryState()
    run(api.adapter(), state)
    api.add_malformed()
    api.remove("P2")
    result = run(api.adapter(), state)
    assert [f.reasons[0] for f in result.failures] == ["children: item has no 'id'"]
    assert result.deleted == []


def test_incremental_reads_send_the_cursor_and_checkpoint_only_at_the_end(mock):
    calls = []

    def serve(request):
        calls.append(request.params.get("updated_since"))
        since = request.params.get("updated_since", "")
        items = [dict(p, updated_at=f"2024-01-0{i + 1}T10:00:00") for i, p in enumerate(PEOPLE)]
        return 200, {}, json.dumps([i for i in items if i["updated_at"] >= since])

    mock.add_callback("GET", f"{BASE}/children", callback=serve)
    entities = {"children": {"path": "/children", "updated_since_param": "updated_since",
                             "updated_field": "updated_at", "deleted_field": "gone"}}
    adapter = _adapter({"base_url": BASE, "batch_size": 2}, entities)
    state = MemoryState()
    first = run(adapter, state)
    assert len(first.upserted) == 5 and calls == [None]
    assert [bool(b.checkpoint) for b in first.batches] == [False, False, True]
    assert state.cursors == {"children.updated_since": "2024-01-05T10:00:00"}
    second = run(adapter, state)
    assert calls[-1] == "2024-01-05T10:00:00" and second.changes == [] and second.unchanged == 1


def test_deleted_marker_and_periodic_full_scan(mock):
    listing = [dict(p, updated_at="2024-01-01T00:00:00") for p in PEOPLE]
    mock.add_callback("GET", f"{BASE}/children", callback=lambda r: (200, {}, json.dumps(listing)))
    entities = {"children": {"path": "/children", "updated_since_param": "since", "updated_field": "updated_at",
                             "deleted_field": "deleted", "full_scan_every_s": 3600}}
    adapter = _adapter({"base_url": BASE}, entities)
    clock = [dt.datetime(2024, 2, 1, 12, tzinfo=dt.UTC)]
    adapter.now = lambda: clock[0]
    state = MemoryState()
    run(adapter, state)
    listing[1] = dict(listing[1], deleted=True)
    listing.pop(4)
    marked = run(adapter, state)  # incremental: the marker deletes, the vanished P5 does not
    assert marked.deleted == ["P2"]
    clock[0] += dt.timedelta(hours=1)
    assert run(adapter, state).deleted == ["P5"]


def test_retries_with_backoff_and_retry_after(mock):
    mock.add("GET", f"{BASE}/children", status=503)
    mock.add("GET", f"{BASE}/children", status=429, headers={"Retry-After": "7"})
    mock.add("GET", f"{BASE}/children", body=requests.ConnectionError("connection reset"))
    mock.add("GET", f"{BASE}/children", json=[{"id": "P1"}])
    fake = FakeTime()
    adapter = _adapter({"base_url": BASE, "retry": {"max_attempts": 5, "backoff_s": 1.0}},
                       {"children": {"path": "/children"}}, fake=fake)
    assert list(run(adapter, MemoryState()).upserted) == ["P1"]
    assert len(fake.sleeps) == 3
    assert 0.5 <= fake.sleeps[0] <= 1.0 and fake.sleeps[1] == 7 and 2.0 <= fake.sleeps[2] <= 4.0


def test_retries_give_up_with_a_clear_error(mock):
    mock.add("GET", f"{BASE}/children", status=502, body="bad gateway")
    adapter = _adapter({"base_url": BASE, "retry": {"max_attempts": 3}}, {"children": {"path": "/children"}})
    with pytest.raises(rest.RestError, match=r"/children: 502 bad gateway"):
        run(adapter, MemoryState())
    assert len(mock.calls) == 3


def test_rate_limit_spaces_requests(mock):
    mock.add("GET", re.compile(f"{BASE}/children.*"), json=[{"id": "x"}])
    fake = FakeTime()
    adapter = _adapter({"base_url": BASE, "rate_limit_per_s": 4},
                       {"children": {"path": "/children", "pagination": {"style": "page", "page_size": 1}}},
                       fake=fake)
    # every page is full, so the reader would go on forever: stop it after 5 pages
    items = adapter._items(adapter.entities["children"], {})
    [next(items) for _ in range(5)]
    assert fake.sleeps == [0.25, 0.25, 0.25, 0.25]


def test_token_comes_from_the_environment_only(mock):
    mock.add("GET", f"{BASE}/children", json=[])
    entities = {"children": {"path": "/children"}}
    with pytest.raises(SourceConfigError, match="never written in a mapping file"):
        rest.build("yj", {"base_url": BASE, "token": "abc"}, entities, base_dir=None, env={})
    missing = _adapter({"base_url": BASE, "token_env": "YJ_API_TOKEN"}, entities, env={})
    with pytest.raises(SourceConfigError, match="YJ_API_TOKEN .* is not set"):
        run(missing, MemoryState())
    keyed = _adapter({"base_url": BASE, "token_env": "YJ_KEY", "auth_header": "X-Api-Key", "auth_scheme": ""},
                     entities, env={"YJ_KEY": "k-123"})
    run(keyed, MemoryState())
    assert mock.calls[-1].request.headers["X-Api-Key"] == "k-123"


def test_refused_credentials_and_bad_bodies_are_clear_errors(mock):
    mock.add("GET", f"{BASE}/children", status=401)
    mock.add("GET", f"{BASE}/cases", json={"data": {"not": "a list"}})
    mock.add("GET", re.compile(f"{BASE}/loop.*"), json={"data": [{"id": 1}], "next_cursor": "same"})
    loop = _adapter({"base_url": BASE}, {"loop": {"path": "/loop", "items_key": "data",
                                                  "pagination": {"style": "cursor"}}})
    with pytest.raises(rest.RestError, match="returned cursor 'same' twice"):
        run(loop, MemoryState())
    adapter = _adapter({"base_url": BASE, "token_env": "T"}, {"children": {"path": "/children"}}, env={"T": "x"})
    with pytest.raises(rest.RestError, match="401: the API refused our credentials"):
        run(adapter, MemoryState())
    cases = _adapter({"base_url": BASE}, {"cases": {"path": "/cases", "items_key": "data"}})
    with pytest.raises(rest.RestError, match="expected a list at data, got dict"):
        run(cases, MemoryState())


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(1.0)
        try:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"[]")
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up, as the test wants

    def log_message(self, *args) -> None:
        return None


def test_read_timeout_on_a_real_socket():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        adapter = _adapter({"base_url": base, "read_timeout_s": 0.2, "retry": {"max_attempts": 2,
                                                                               "backoff_s": 0}},
                           {"children": {"path": "/children"}})
        started = time.monotonic()
        with pytest.raises(rest.RestError, match="failed after 2 attempt.*ReadTimeout"):
            run(adapter, MemoryState())
        assert time.monotonic() - started < 1.5
    finally:
        server.shutdown()
        server.server_close()


# ---- write-back ----------------------------------------------------------------------------------
WRITE = {"columns": {"person.names[0].given": "name.given", "person.sex": "sex"},
         "codes": {"sex": {"male": "M", "female": "F"}}, "close_set": {"status": "closed"}}


def _writer(**write):
    return _adapter({"base_url": BASE, "token_env": "T"},
                    {"children": {"path": "/children", "write": {**WRITE, **write}}}, env={"T": "tok"})


def test_apply_create_and_update_with_if_match(mock):
    mock.add("POST", f"{BASE}/children", status=201, json={"id": "P6"})
    mock.add("PATCH", f"{BASE}/children/P6", status=200, json={})
    adapter = _writer()
    created = adapter.apply(WriteBack("children", "create", None, {"person.names[0].given": "Faye",
                                                                   "person.sex": "female"}))
    assert created.accepted and created.source_id == "P6"
    assert json.loads(mock.calls[0].request.body) == {"name": {"given": "Faye"}, "sex": "F"}
    updated = adapter.apply(WriteBack("children", "close", "P6", {"person.sex": "male", "person.ethnicity": "WBRI"},
                                      expected_version=3))
    assert updated.accepted and updated.detail == "200 OK; not held by this system: ['person.ethnicity']"
    request = mock.calls[1].request
    assert request.headers["If-Match"] == '"3"' and request.headers["Authorization"] == "Bearer tok"
    assert json.loads(request.body) == {"sex": "M", "status": "closed"}


@pytest.mark.parametrize("status", [409, 412])
def test_apply_conflict_is_not_accepted(mock, status):
    mock.add("PATCH", f"{BASE}/children/P1", status=status, json={"error": "version mismatch"})
    result = _writer().apply(WriteBack("children", "update", "P1", {"person.sex": "male"}, expected_version=1))
    assert not result.accepted and f"conflict ({status})" in result.detail and "version mismatch" in result.detail
    assert len(mock.calls) == 1


def test_apply_refusals_and_server_errors(mock):
    mock.add("PATCH", f"{BASE}/children/P1", status=422, json={"error": "bad sex"})
    mock.add("POST", f"{BASE}/children", status=500)
    adapter = _writer()
    assert "refused (422)" in adapter.apply(WriteBack("children", "update", "P1", {"person.sex": "male"})).detail
    nothing = adapter.apply(WriteBack("children", "update", "P1", {"person.ethnicity": "x"}))
    assert nothing.accepted and nothing.detail == "nothing to write: the API holds none of ['person.ethnicity']"
    strict = _writer(unmapped="reject")
    unmapped = strict.apply(WriteBack("children", "update", "P1", {"person.ethnicity": "x"}))
    assert not unmapped.accepted and "['person.ethnicity'] (write.fields)" in unmapped.detail
    with pytest.raises(rest.RestError, match="500"):  # not a refusal: the bus retries it
        adapter.apply(WriteBack("children", "create", None, {"person.sex": "male"}))
    assert len([c for c in mock.calls if c.request.method == "POST"]) == 1  # a POST is never blindly resent


# ---- the sample estate's youth justice stand-in, over a real socket ---------------------------------
def test_sample_estate_youth_justice_api(tmp_path):
    from hub.estate import generate
    from hub.estate.youth_justice_api import serve_youth_justice_in_thread

    manifest = generate(tmp_path, people=3000, seed=3)
    server = serve_youth_justice_in_thread(tmp_path, token="t-123")
    try:
        source = {"base_url": f"{server.url}/api/v1", "token_env": "YJ_API_TOKEN", "batch_size": 5}
        entities = {"young-people": {
            "path": "/young-people", "items_key": "data", "id_field": "id",
            "updated_since_param": "updated_since", "updated_field": "updatedAt",
            "pagination": {"style": "cursor", "size_param": "limit", "page_size": 4},
            "write": {"fields": {"person.names[0].family": "name.family"}}}}
        adapter = rest.build("youth_justice", source, entities, base_dir=tmp_path, env={"YJ_API_TOKEN": "t-123"})
        state = MemoryState()
        first = run(adapter, state)
        assert len(first.upserted) == manifest.systems["youth_justice"]["young-people"]
        assert run(adapter, state).changes == []  # updated_since is inclusive: re-read, found unchanged
        some = min(first.upserted)
        version = first.upserted[some]["version"]
        change = WriteBack("young-people", "update", some, {"person.names[0].family": "Renamed"},
                           expected_version=version)
        assert adapter.apply(change).accepted
        conflict = adapter.apply(change)
        assert not conflict.accepted and "conflict (409)" in conflict.detail
        after = run(adapter, state)
        assert list(after.upserted) == [some] and after.upserted[some]["name"]["family"] == "Renamed"
        link = rest.build("youth_justice", {**source, "token_env": "YJ_API_TOKEN"},
                          {"young-people": {**entities["young-people"],
                                            "pagination": {"style": "link", "size_param": "limit",
                                                           "page_size": 3}}},
                          base_dir=tmp_path, env={"YJ_API_TOKEN": "t-123"})
        assert len(run(link, MemoryState()).upserted) == len(first.upserted)
    finally:
        server.stop()
