"""Every implementation of the `Bus` port, for the one contract suite.

An implementation registers a factory in BUS_FACTORIES: it takes the pytest
`request` and `tmp_path` and returns (bus, cleanup)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hub.bus.bindings import DEFAULT_BINDINGS
from hub.bus.port import RetryPolicy
from hub.bus.sqlite import StoreQueueBus
from hub.store import Store
from tests.support.services import create_pg_database, drop_pg_database, require_rabbitmq

CONTRACT_RETRY = RetryPolicy(max_attempts=3, base_delay_s=0.05, max_delay_s=0.2)


def _store_bus_on_sqlite(request, tmp_path):
    store = Store(f"sqlite:///{tmp_path}/bus.db")
    store.migrate()
    bus = StoreQueueBus(store, retry=CONTRACT_RETRY, poll_interval_s=0.01)
    return bus, store.dispose


def _store_bus_on_postgres(request, tmp_path):
    url = create_pg_database("hub_bus")
    store = Store(url)
    store.migrate()
    bus = StoreQueueBus(store, retry=CONTRACT_RETRY, poll_interval_s=0.01)

    def cleanup() -> None:
        store.dispose()
        drop_pg_database(url)

    return bus, cleanup


def _amqp_bus(request, tmp_path):
    """RabbitMQ, with its own exchange and queue prefix, journaling into a PostgreSQL store."""
    import uuid

    from hub.bus.amqp import AmqpBus
    from hub.bus.journal import StoreJournal

    amqp_url = require_rabbitmq()
    url = create_pg_database("hub_amqp")
    store = Store(url)
    store.migrate()
    name = f"test_{uuid.uuid4().hex[:10]}"
    bus = AmqpBus(amqp_url, exchange=name, queue_prefix=name, retry=CONTRACT_RETRY, prefetch=50,
                  journal=StoreJournal(store))

    def cleanup() -> None:
        bus.delete_topology([b.queue for b in DEFAULT_BINDINGS])  # every queue a test may declare
        bus.close()
        store.dispose()
        drop_pg_database(url)

    return bus, cleanup


BUS_FACTORIES: dict[str, Callable] = {
    "sqlite-bus-on-sqlite": _store_bus_on_sqlite,
    "sqlite-bus-on-postgresql": _store_bus_on_postgres,
    "amqp-on-rabbitmq": _amqp_bus,
}


@pytest.fixture(params=sorted(BUS_FACTORIES))
def bus(request, tmp_path):
    made, cleanup = BUS_FACTORIES[request.param](request, tmp_path)
    yield made
    made.close()
    cleanup()
