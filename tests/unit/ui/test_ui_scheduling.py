"""Schedules from mapping files, and the store-backed pause/resume/run-now switches the
scheduler process obeys."""

from __future__ import annotations

import threading

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from hub.scheduling import HubScheduler, ScheduleControl, ScheduleError, parse_schedule, trigger_for


@pytest.mark.parametrize("value, kind, text", [
    ("15m", "interval", "every 15 minutes"),
    ("every 2 hours", "interval", "every 2 hours"),
    (90, "interval", "every 90 seconds"),
    ({"minutes": 5}, "interval", "every 5 minutes"),
    ({"interval": "1d"}, "interval", "every 1 day"),
    ("*/10 * * * *", "cron", "cron */10 * * * *"),
    ({"cron": "0 2 * * *"}, "cron", "cron 0 2 * * *"),
    (None, "manual", "manual only"),
    ("manual", "manual", "manual only"),
])
def test_schedules_are_read_as_mapping_files_write_them(value, kind, text):
    spec = parse_schedule(value, "social_care")
    assert (spec.kind, spec.text) == (kind, text)
    assert (trigger_for(spec) is None) == (kind == "manual")


@pytest.mark.parametrize("value", ["soon", "61 * * * *", "-5m", {"colour": "blue"}])
def test_a_bad_schedule_names_the_system_and_the_value(value):
    with pytest.raises(ScheduleError, match="early_help"):
        parse_schedule(value, "early_help")


def test_switches_are_shared_through_the_store(store):
    web, scheduler_side = ScheduleControl(store), ScheduleControl(store)
    web.pause("education", "amy", "supplier maintenance tonight")
    state = scheduler_side.state("education")
    assert state.paused and state.paused_by == "amy" and state.paused_reason == "supplier maintenance tonight"
    web.resume("education", "amy")
    assert not scheduler_side.state("education").paused
    web.request_run("education", "amy")
    assert scheduler_side.take_run_requests() == ["education"]
    assert scheduler_side.take_run_requests() == []  # handed out once


def _scheduler(store, runs, *, enabled=lambda name: True):
    done = threading.Event()

    def run(name: str, trigger: str) -> None:
        runs.append((name, trigger))
        done.set()

    background = BackgroundScheduler(timezone="UTC")
    specs = {"social_care": parse_schedule("1h"), "youth_service": parse_schedule(None)}
    runner = HubScheduler(ScheduleControl(store), specs, run, adapter_enabled=enabled, poll_s=3600,
                          scheduler=background)
    return runner, done


def test_the_scheduler_pauses_resumes_and_runs_on_request(store):
    runs: list[tuple[str, str]] = []
    runner, done = _scheduler(store, runs)
    runner.build()
    runner.scheduler.start()
    try:
        web = ScheduleControl(store)
        runner.poll_control()
        assert web.state("social_care").next_run_at is not None
        assert web.state("social_care").schedule == "every 1 hour"
        assert web.state("youth_service").next_run_at is None  # manual only

        web.pause("social_care", "amy", "testing")
        runner.poll_control()
        assert runner.scheduler.get_job("ingest:social_care").next_run_time is None
        assert web.state("social_care").next_run_at is None
        assert runner.run_system("social_care", "schedule") == "skipped: paused"

        web.request_run("youth_service", "amy")
        assert runner.poll_control() == ["youth_service"]
        assert done.wait(10), "the requested run did not happen"
        assert runs == [("youth_service", "run_now")]

        web.resume("social_care", "amy")
        runner.poll_control()
        assert runner.scheduler.get_job("ingest:social_care").next_run_time is not None
    finally:
        runner.shutdown()


def test_a_system_whose_adapter_is_off_is_not_run(sqlite_store):
    runs: list[tuple[str, str]] = []
    runner, _ = _scheduler(sqlite_store, runs, enabled=lambda name: name != "social_care")
    assert runner.run_system("social_care", "run_now").startswith("skipped: adapter off")
    assert runner.run_system("youth_service", "schedule") == "ran"
    assert runs == [("youth_service", "schedule")]


def test_a_failing_run_is_reported_and_scheduling_goes_on(sqlite_store):
    def boom(name: str, trigger: str) -> None:
        raise RuntimeError("legacy database unreachable")

    runner = HubScheduler(ScheduleControl(sqlite_store), {"education": parse_schedule("5m")}, boom,
                          scheduler=BackgroundScheduler(timezone="UTC"))
    assert runner.run_system("education", "schedule") == "failed: RuntimeError: legacy database unreachable"
