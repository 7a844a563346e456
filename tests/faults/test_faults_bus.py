"""Fault tests of the RabbitMQ deployment: ~300 source records through outbox → RabbitMQ →
`hub worker` processes → PostgreSQL while something breaks; afterwards every record is in the
store exactly once with its newest version and every person is one hub person."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import func, select, text

from hub.services import messages as svc
from hub.store.tables.messaging import MessageJournalRow
from tests.faults.fault_rig import REPO, FaultRig, postgres, rabbitmq
from tests.support.services import services_required
from tests.unit.bus.bus_records import valid_nhs_number
from tests.unit.hub.records_factory import person_record, upserted

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(180)]

N_PEOPLE = 100


def stops_shared_services() -> None:
    """Stopping PostgreSQL or RabbitMQ breaks whatever else uses them on this machine: these
    tests run where the services are the suite's own (CI, `make test`: HUB_REQUIRE_SERVICES=1)."""
    if not services_required():
        pytest.skip("stops the machine's PostgreSQL/RabbitMQ: runs with HUB_REQUIRE_SERVICES=1 (CI)")


@pytest.fixture
def rig(tmp_path):
    made = FaultRig(tmp_path)
    yield made
    made.close()


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(rig):
    envelopes, newest = rig.records(N_PEOPLE)
    rig.feed(envelopes)
    victim = rig.start_worker()
    rig.start_worker()
    rig.wait_processed(len(envelopes) // 4)
    victim.send_signal(signal.SIGKILL)  # holding a prefetch window of unacknowledged messages
    victim.wait(10)
    rig.start_worker()  # its replacement
    rig.wait_processed(len(envelopes))
    rig.check_store(newest, N_PEOPLE)


def test_a_broker_restart_mid_stream_loses_nothing(rig):
    stops_shared_services()
    envelopes, newest = rig.records(N_PEOPLE)
    rig.start_worker()
    rig.start_worker()
    restarted = threading.Event()

    def restart_broker_half_way(chunk: int) -> None:
        if chunk == 2:
            try:
                rabbitmq("stop_app")
                time.sleep(2)
            finally:
                rabbitmq("start_app")
                restarted.set()

    rig.feed(envelopes, chunk=50, pause_s=0.2, between=restart_broker_half_way)  # the relay reconnects too
    assert restarted.is_set()
    rig.wait_processed(len(envelopes))
    rig.check_store(newest, N_PEOPLE)


def test_postgresql_down_for_ten_seconds_mid_stream_loses_nothing(rig):
    stops_shared_services()
    envelopes, newest = rig.records(N_PEOPLE)
    rig.feed(envelopes)
    rig.start_worker()
    rig.start_worker()
    rig.wait_processed(len(envelopes) // 5)
    try:
        postgres("stop")
        time.sleep(10)
    finally:
        postgres("start")
    rig.wait_processed(len(envelopes))
    rig.check_store(newest, N_PEOPLE)
    assert all(w.poll() is None for w in rig.workers), "a worker died during the outage"
    assert rig.hub.bus.dead_letters("records") == []  # an outage spends no message's attempts


class TwiceBus:
    """Publishes every message twice: the at-least-once bus at its worst."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def publish(self, envelopes) -> None:
        self.inner.publish(list(envelopes) + list(envelopes))

    def publish_serialized(self, outbound) -> None:  # the outbox relay's path
        self.inner.publish_serialized(list(outbound) + list(outbound))

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def test_every_message_delivered_twice_is_applied_once(rig):
    envelopes, newest = rig.records(N_PEOPLE)
    rig.hub.relay.bus = TwiceBus(rig.hub.bus)
    rig.start_worker()
    rig.start_worker()
    rig.feed(envelopes)
    rig.wait_processed(len(envelopes))
    rig.wait_for(lambda: rig.hub.bus.stats("records").ready == 0, 30, "the duplicates to drain")
    rig.check_store(newest, N_PEOPLE)
    with rig.hub.store.transaction() as s:
        handled = s.execute(select(func.count()).where(MessageJournalRow.event == "processed")).scalar_one()
    assert handled >= 2 * len(envelopes)  # both copies reached a worker; the inbox applied one


POISON_TRIGGER = """
CREATE FUNCTION refuse_poison() RETURNS trigger AS $$
BEGIN
  IF NEW.source_id = 'POISON1' THEN RAISE EXCEPTION 'legacy row POISON1 breaks a store rule'; END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON source_record
  FOR EACH ROW EXECUTE FUNCTION refuse_poison();
"""


def _hub_cli(rig: FaultRig, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), HUB_CONFIG=str(rig.config_file))
    return subprocess.run([sys.executable, "-c", "from hub.cli import main; main()", *args], cwd=rig.tmp_path,
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def test_a_poison_message_is_retried_dead_lettered_then_replayed_after_the_fix(tmp_path):
    rig = FaultRig(tmp_path, max_attempts=4, base_delay_s=0.1)
    try:
        with rig.hub.store.transaction() as s:
            s.execute(text(POISON_TRIGGER))
        envelopes, newest = rig.records(30)
        poison = upserted(person_record("sys_c", "POISON1", "Pat", "Poison", None, nhs=valid_nhs_number(999)))
        rig.start_worker()
        rig.start_worker()
        rig.feed([*envelopes[:40], poison, *envelopes[40:]])
        rig.wait_processed(len(envelopes))  # the others are not held back
        rig.wait_for(lambda: len(rig.hub.bus.dead_letters("records")) == 1, 30, "the poison message to die")
        [dead] = rig.hub.bus.dead_letters("records")
        assert dead.message_id == str(poison.message_id) and dead.attempts == 4
        assert "legacy row POISON1 breaks a store rule" in dead.error
        # the journal records the dead-lettering after the broker has it: wait for the journal too
        rig.wait_for(lambda: any(e["event"] == "dead_lettered" for e in svc.message_journey(
            rig.hub.store, str(poison.message_id))["events"]), 10, "the dead-lettering to be journaled")
        journey = svc.message_journey(rig.hub.store, str(poison.message_id))
        failures = [e for e in journey["events"] if e["event"] in ("retried", "dead_lettered")]
        assert failures[-1]["event"] == "dead_lettered"  # at least once: a retry may be journaled twice
        assert {e["detail"].split(":")[0] for e in failures if e["event"] == "retried"} == {
            "attempt 1", "attempt 2", "attempt 3"}

        with rig.hub.store.transaction() as s:  # the fix
            s.execute(text("DROP TRIGGER refuse_poison ON source_record"))
        out = _hub_cli(rig, "messages", "replay", str(poison.message_id))
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["replayed"] == 1
        rig.wait_processed(len(envelopes) + 1)
        rig.wait_for(lambda: svc.message_journey(rig.hub.store, str(poison.message_id))["status"] == "processed",
                     10, "the replayed message to be processed")
        assert rig.hub.bus.dead_letters("records") == []
        newest["sys_c/person/POISON1"] = 1
        rig.check_store(newest, 31)
    finally:
        rig.close()
