"""Shared fixtures: a migrated store on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import pytest

from hub.store import Store
from tests.support.services import create_pg_database, drop_pg_database


def _sqlite_store(tmp_path) -> Store:
    store = Store(f"sqlite:///{tmp_path}/hub.db")
    store.migrate()
    return store


def _pg_store() -> tuple[Store, str]:
    url = create_pg_database()
    store = Store(url)
    store.migrate()
    return store, url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """The same test on both store implementations."""
    if request.param == "sqlite":
        s = _sqlite_store(tmp_path)
        yield s
        s.dispose()
        return
    s, url = _pg_store()
    yield s
    s.dispose()
    drop_pg_database(url)


@pytest.fixture
def sqlite_store(tmp_path):
    s = _sqlite_store(tmp_path)
    yield s
    s.dispose()


def pytest_collection_modifyitems(config, items):
    """The fault tests stop and restart the shared PostgreSQL and RabbitMQ: run them last, so a
    service still settling after a restart can never fail an unrelated test."""
    items.sort(key=lambda item: "tests/faults/" in item.nodeid.replace("\\", "/"))
