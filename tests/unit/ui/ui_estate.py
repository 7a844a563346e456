"""A small sample estate ingested through the bus, for the console's page and browser tests:
every system's records, a few malformed rows in quarantine, open identity review pairs and
three poison messages in the dead-letter queue."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.auth import create_user

SYSTEMS_DIR = Path(__file__).resolve().parents[3] / "systems"
USERS = {
    "admin": ["integration_admin", "data_steward"],   # every console page and the people pages
    "steward": ["data_steward"],
    "programme": ["programme_manager"],
    "social.worker": ["social_worker"],
}
POISON = 3


@contextmanager
def estate_hub(base: Path, *, people: int = 60, store_url: str | None = None) -> Iterator[Any]:
    """The hub over a fresh estate in `base`, on SQLite there unless `store_url` names another store."""
    from canonical.messages import Envelope, MessageType
    from hub.bootstrap import bootstrap
    from hub.config import HubConfig
    from hub.estate import generate
    from hub.estate.youth_justice_api import serve_youth_justice_in_thread
    from hub.outbox import add_to_outbox
    from hub.services.messages import dead_letters
    from hub.worker import run_worker

    generate(base / "estate", people=people, malformed_rate=0.05)
    standin = serve_youth_justice_in_thread(base / "estate")
    saved = {k: os.environ.get(k) for k in ("YJ_API_URL", "YJ_API_TOKEN")}
    os.environ["YJ_API_URL"], os.environ["YJ_API_TOKEN"] = standin.url, standin.token
    config = HubConfig.model_validate({
        "store": {"url": store_url or f"sqlite:///{base}/hub.db"},
        "bus": {"max_attempts": 2, "base_delay_s": 0.01, "max_delay_s": 0.05},
        "systems": {"dir": str(SYSTEMS_DIR), "estate_dir": str(base / "estate")},
        "web": {"secret_key": "ui-tests"},
    })
    hub = bootstrap(config)
    try:
        for name in hub.systems.names():
            hub.ingest.run(name, trigger="test")
        poison = [Envelope(type=MessageType.RECORD_UPSERTED, source_system="youth_service",
                           payload={"not": "a source record", "n": i}) for i in range(POISON)]
        with hub.store.transaction() as s:
            add_to_outbox(s, poison)
        hub.relay.relay_all()
        # Each poison message fails, waits its back-off, fails again and is dead-lettered; a worker
        # pass can end while a retry is still waiting, so passes repeat until all are dead.
        for _ in range(30):
            run_worker(hub.bus, hub.worker, batch_size=200, idle_timeout_s=0.5)
            if len(dead_letters(hub.bus)) >= POISON:
                break
        assert len(dead_letters(hub.bus)) == POISON, "the poison messages were not dead-lettered"
        for username, roles in USERS.items():
            create_user(hub, username, roles)
        yield hub
    finally:
        hub.close()
        standin.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
