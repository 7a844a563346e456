"""`hub scheduler --list` reads every system's schedule from its mapping file and shows the
switches the web console set; the in-process scheduler of `hub demo` reports to the store."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.scheduling import ScheduleControl, start_background_scheduler
from tests.unit.ui.ui_estate import estate_hub

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with estate_hub(tmp_path_factory.mktemp("ui-sched"), people=20) as h:
        yield h


def test_scheduler_list_shows_each_systems_schedule_and_pause(hub, tmp_path, monkeypatch):
    ScheduleControl(hub.store).pause("early_help", "amy", "testing")
    config = tmp_path / "hub.toml"
    config.write_text(f'[store]\nurl = "{hub.config.store.url}"\n[systems]\ndir = "{hub.config.systems.dir}"\n'
                      f'estate_dir = "{hub.config.systems.estate_dir}"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "scheduler", "--list"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split("\t", 1) for line in result.output.strip().splitlines())
    assert lines["social_care"] == "every 5 minutes\tactive"
    assert lines["youth_service"] == "cron 0 6 * * *\tactive"
    assert lines["early_help"] == "every 30 minutes\tpaused by amy"
    ScheduleControl(hub.store).resume("early_help", "amy")


def test_the_background_scheduler_reports_next_runs_and_takes_a_daily_snapshot(hub):
    from hub.store.base import utcnow
    from hub.store.tables.scheduling import BurndownSnapshotRow

    runner = start_background_scheduler(hub, poll_s=0.2)
    try:
        control = ScheduleControl(hub.store)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(
                control.state(n).next_run_at for n in hub.systems.names()):
            time.sleep(0.1)
        states = control.states()
        assert all(states[n].next_run_at and states[n].scheduler_seen_at for n in hub.systems.names())
    finally:
        runner.shutdown()  # waits for the daily job, which runs once at start
    with hub.store.transaction() as s:
        snapshot = s.get(BurndownSnapshotRow, utcnow().date().isoformat())
        assert snapshot is not None and snapshot.systems_total == len(hub.systems.names())
