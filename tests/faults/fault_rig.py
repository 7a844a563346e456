"""The rig of the fault tests: real RabbitMQ and PostgreSQL, the hub's outbox relay in the
test process, and `hub worker` processes started and killed like an operator would.

Each rig has its own database, exchange and queue prefix, written into its own hub.toml,
and removes them afterwards. `check_store` is the verdict every fault test shares: every
source record is in the store exactly once with its newest version, every person once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import func, select

from canonical.messages import Envelope
from hub.bootstrap import Hub, bootstrap
from hub.config import load_config
from hub.identity import bulk_link
from hub.outbox import add_to_outbox
from hub.store.tables.messaging import InboxRow
from hub.store.tables.records import SourceRecordRow
from hub.worker import CONSUMER
from tests.support.services import create_pg_database, drop_pg_database, require_rabbitmq
from tests.unit.bus.bus_records import person_versions

REPO = Path(__file__).resolve().parents[2]
PG_CLUSTER = ["pg_ctlcluster", "--skip-systemctl-redirect"]


class FaultRig:
    def __init__(self, tmp_path: Path, *, max_attempts: int = 5, base_delay_s: float = 0.2,
                 batch_size: int = 20) -> None:
        amqp_url = require_rabbitmq()
        self.tmp_path = tmp_path
        self.pg_url = create_pg_database("hub_fault")
        self.name = f"fault_{uuid.uuid4().hex[:8]}"
        self.config_file = tmp_path / "hub.toml"
        self.config_file.write_text(
            f'[store]\nurl = "{self.pg_url}"\n'
            f'[bus]\nurl = "{amqp_url}"\nexchange = "{self.name}"\nqueue_prefix = "{self.name}"\n'
            f"prefetch = 50\nmax_attempts = {max_attempts}\nbase_delay_s = {base_delay_s}\nmax_delay_s = 2.0\n"
            f"[worker]\nbatch_size = {batch_size}\n"
            f'[systems]\ndir = "{tmp_path / "systems"}"\nestate_dir = "{tmp_path / "estate"}"\n')
        self.hub: Hub = bootstrap(load_config(self.config_file))
        self.workers: list[subprocess.Popen] = []
        self.sent: list[Envelope] = []

    # -- the stream --------------------------------------------------------------------
    def records(self, n_people: int = 100, seed: int = 7) -> tuple[list[Envelope], dict[str, int]]:
        """~300 messages: `n_people` people in two systems, a third of the records in three
        versions, shuffled so that older versions often arrive after newer ones."""
        envelopes, newest = person_versions(n_people)
        random.Random(seed).shuffle(envelopes)
        return envelopes, newest

    def feed(self, envelopes: Sequence[Envelope], *, chunk: int = 50, pause_s: float = 0.0,
             between: Callable[[int], None] | None = None) -> None:
        """Write to the outbox and relay to the bus, a chunk at a time."""
        for i in range(0, len(envelopes), chunk):
            part = list(envelopes[i:i + chunk])
            with self.hub.store.transaction() as s:
                add_to_outbox(s, part)
            self.hub.relay.relay_all()
            self.sent.extend(part)
            if between:
                between(i // chunk)
            time.sleep(pause_s)

    # -- workers ---------------------------------------------------------------------------
    def start_worker(self) -> subprocess.Popen:
        log = open(self.tmp_path / f"worker-{len(self.workers)}.log", "w")  # noqa: SIM115 - the process owns it
        env = dict(os.environ, PYTHONPATH=str(REPO), HUB_CONFIG=str(self.config_file))
        proc = subprocess.Popen([sys.executable, "-c", "from hub.cli import main; main()", "worker"],
                                cwd=self.tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(proc)
        return proc

    def worker_logs(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.tmp_path.glob("worker-*.log")))

    # -- observing ---------------------------------------------------------------------------
    def processed(self) -> int:
        with self.hub.store.transaction() as s:
            return s.execute(select(func.count()).select_from(InboxRow)
                             .where(InboxRow.consumer == CONSUMER)).scalar_one()

    def wait_for(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                if condition():
                    return
            except Exception as exc:  # noqa: BLE001 - the store may be the thing that is down right now
                last_error = exc
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what} (last error: {last_error!r})"
                             f"\n{self.worker_logs()}")

    def held(self) -> bool:
        """Records a worker held while behind, not linked yet (hub/identity/bulk_link.py)."""
        with self.hub.store.read() as s:
            return bulk_link.has_pending(s)

    def wait_processed(self, n: int, timeout_s: float = 90.0) -> None:
        """`n` messages applied and every record linked (a worker behind links in bulk afterwards)."""
        self.wait_for(lambda: self.processed() >= n and not self.held(), timeout_s, f"{n} messages processed")

    def check_store(self, newest: dict[str, int], n_people: int) -> None:
        """Every record exactly once with its newest version; each person one hub person."""
        with self.hub.store.transaction() as s:
            rows = s.execute(select(SourceRecordRow.ref_key, SourceRecordRow.version, SourceRecordRow.person_id)
                             .where(SourceRecordRow.entity == "person")).all()
        keys = [r.ref_key for r in rows]
        assert len(keys) == len(set(keys)) == len(newest), (len(keys), len(set(keys)), len(newest))
        stale = {r.ref_key: (r.version, newest[r.ref_key]) for r in rows if r.version != newest[r.ref_key]}
        assert not stale, f"records not at their newest version: {stale}"
        by_person: dict[str | None, list[str]] = {}
        for r in rows:
            by_person.setdefault(r.person_id, []).append(r.ref_key)
        odd = {p: keys for p, keys in by_person.items() if len(keys) != len(rows) // n_people}
        assert len(by_person) == n_people, f"{len(by_person)} persons for {n_people} people: {odd}"
        assert self.processed() == len({str(e.message_id) for e in self.sent})

    # -- clean-up ------------------------------------------------------------------------------
    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def close(self) -> None:
        self.stop_workers()
        try:
            self.hub.bus.delete_topology(["records", "routing", "alerts"])
        finally:
            self.hub.close()
            drop_pg_database(self.pg_url)


def rabbitmq(action: str) -> None:
    """Stop the whole RabbitMQ node (`rabbitmqctl stop`) or start it (`rabbitmq-server -detached`,
    which Debian runs as the rabbitmq user). A whole-node restart, not `stop_app`/`start_app`: on
    this broker `start_app` does not restart the quorum queues' at-least-once dead-letter
    supervisor, leaving every queue that uses it unable to elect a leader until the node restarts."""
    if action == "stop_app":
        subprocess.run(["rabbitmqctl", "stop"], check=True, capture_output=True, timeout=120)
        return
    subprocess.run(["rabbitmq-server", "-detached"], check=False, capture_output=True, timeout=120)
    for _ in range(120):
        if subprocess.run(["rabbitmqctl", "await_startup"], check=False, capture_output=True,
                          timeout=120).returncode == 0:
            break
        time.sleep(1)
    wait_until_quorum_queues_work()


def wait_until_quorum_queues_work(timeout_s: float = 180.0) -> None:
    """After `start_app` the AMQP port answers before the quorum-queue (Ra) system has recovered;
    declaring or publishing then fails with INTERNAL_ERROR. Wait for a full round trip on a probe
    queue so the next test starts on a working broker."""
    import pika

    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        name = f"probe-{uuid.uuid4().hex[:8]}"
        try:
            connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
            try:
                channel = connection.channel()
                channel.confirm_delivery()
                channel.queue_declare(name, durable=True, arguments={  # as the hub's queues are declared
                    "x-queue-type": "quorum", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": name,
                    "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"})
                channel.basic_publish("", name, b"probe", properties=pika.BasicProperties(delivery_mode=2))
                ok = channel.basic_get(name, auto_ack=True)[2] == b"probe"
                channel.queue_delete(name)
            finally:
                connection.close()
            if ok:
                return
        except Exception as exc:  # the broker is still recovering: try again
            last = exc
        time.sleep(1)
    raise RuntimeError(f"RabbitMQ quorum queues did not recover within {timeout_s:.0f}s: {last!r}")


def postgres(action: str) -> None:
    """Stop or start the local PostgreSQL cluster (every database on it)."""
    version = max(os.listdir("/etc/postgresql"), key=lambda v: int(v) if v.isdigit() else 0)
    subprocess.run([*PG_CLUSTER, version, "main", action], check=True, capture_output=True, timeout=120)
    if action == "start":
        for _ in range(100):
            if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"], check=False).returncode == 0:
                return
            time.sleep(0.2)
