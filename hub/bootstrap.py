"""The composition root: reads the config and wires store, bus, journal, systems,
ingest and worker. Nothing else constructs infrastructure."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hub.bus.bindings import DEFAULT_BINDINGS
from hub.bus.journal import Journal, StoreJournal
from hub.bus.port import Bus, RetryPolicy
from hub.config import HubConfig, load_config
from hub.identity.linker import IdentityLinker
from hub.identity.model_file import load_model
from hub.ingest import IngestService
from hub.outbox import OutboxRelay
from hub.store.engine import Store
from hub.systems import SystemRegistry
from hub.worker import RecordsWorker


@dataclass
class Hub:
    config: HubConfig
    store: Store
    bus: Bus
    journal: Journal
    systems: SystemRegistry
    relay: OutboxRelay
    ingest: IngestService
    worker: RecordsWorker
    extras: dict = field(default_factory=dict)

    def close(self) -> None:
        self.bus.close()
        self.store.dispose()


def make_bus(config: HubConfig, store: Store, journal: Journal) -> Bus:
    retry = RetryPolicy(config.bus.max_attempts, config.bus.base_delay_s, config.bus.max_delay_s)
    if config.bus.url == "sqlite":
        from hub.bus.sqlite import StoreQueueBus

        return StoreQueueBus(store, retry=retry, prefetch=config.bus.prefetch,
                             visibility_timeout_s=config.bus.visibility_timeout_s, journal=journal)
    if config.bus.url.startswith("amqp"):
        from hub.bus.amqp import AmqpBus

        return AmqpBus(config.bus.url, exchange=config.bus.exchange, queue_prefix=config.bus.queue_prefix,
                       retry=retry, prefetch=config.bus.prefetch, journal=journal)
    raise ValueError(f"bus.url {config.bus.url!r}: expected 'sqlite' or amqp://…")


def bootstrap(config: HubConfig | None = None, *, migrate: bool = True, bus: Bus | None = None) -> Hub:
    config = config or load_config(os.environ.get("HUB_CONFIG", "hub.toml"))
    store = Store(config.store.url, pool_size=config.store.pool_size)
    if migrate:
        store.migrate()
    journal = StoreJournal(store)
    bus = bus or make_bus(config, store, journal)
    bus.declare(DEFAULT_BINDINGS)
    env = dict(os.environ)
    env.setdefault("HUB_ESTATE_DIR", str(Path(config.systems.estate_dir).resolve()))
    systems = SystemRegistry(config.systems.dir, env=env)
    relay = OutboxRelay(store, bus, journal)
    from hub.lifecycle import build_services  # lifecycle, reconciliation, writes, routing worker

    routing = build_services(store, systems, relay, journal, max_attempts=config.bus.max_attempts,
                             base_dir=Path(config.source_path).resolve().parent if config.source_path else Path.cwd())
    ingest: IngestService = routing.pop("ingest")  # refuses systems whose adapter is off in their phase
    ingest.records_per_message = config.ingest.records_per_message
    return Hub(config=config, store=store, bus=bus, journal=journal, systems=systems, relay=relay,
               ingest=ingest, extras=routing,
               worker=RecordsWorker(store, journal=journal, linker=IdentityLinker(
                                        load_model(), candidate_records=config.worker.candidate_records),
                                    routing=routing["routing_config"],
                                    records_per_transaction=config.worker.records_per_transaction,
                                    bulk_link_backlog=config.worker.bulk_link_backlog,
                                    bulk_link_max_records=config.worker.bulk_link_max_records,
                                    bulk_link_process_at=config.worker.bulk_link_process_at,
                                    bulk_link_process_max_records=config.worker.bulk_link_process_max_records))
