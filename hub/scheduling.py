"""Adapter schedules: each legacy system's ingest runs on the schedule its mapping file
gives (an interval or a cron expression), under APScheduler 3.

Pause, resume and "run now" are rows in the store (`system_schedule`), not state inside
one process: the web pages write them, the `hub scheduler` process reads them every few
seconds, so both always agree, and a restarted scheduler keeps a pause.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from hub.store.base import utcnow
from hub.store.engine import Store
from hub.store.tables.scheduling import SystemScheduleRow

log = logging.getLogger(__name__)

_UNITS = {"s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60, "minutes": 60,
          "h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400}
_INTERVAL = re.compile(r"^(?:every\s+)?(\d+(?:\.\d+)?)\s*([a-z]+)$")


class ScheduleError(ValueError):
    """A system's schedule could not be understood; the message names the system and the value."""


@dataclass(frozen=True)
class ScheduleSpec:
    """What a mapping file's `schedule` means: every N seconds, a cron expression, or manual only."""

    kind: str  # interval | cron | manual
    interval_s: float | None = None
    cron: str | None = None

    @property
    def text(self) -> str:
        if self.kind == "interval" and self.interval_s is not None:
            return _describe_interval(self.interval_s)
        if self.kind == "cron":
            return f"cron {self.cron}"
        return "manual only"


def parse_schedule(value: Any, system: str = "?") -> ScheduleSpec:
    """Read a schedule as a mapping file may write it: "15m", "every 2 hours", a five-field cron
    line, {"interval": "10m"}, {"cron": "0 2 * * *"}, {"minutes": 5}, or an object carrying
    `interval_s`/`cron` attributes. Nothing (None, "", "manual") means it runs only on request."""
    if value is None or value == "" or value == "manual":
        return ScheduleSpec("manual")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _interval(float(value), system, value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text.startswith("cron "):
            return _cron(text[5:], system)
        if len(text.split()) == 5:
            return _cron(text, system)
        match = _INTERVAL.match(text)
        if match and match.group(2) in _UNITS:
            return _interval(float(match.group(1)) * _UNITS[match.group(2)], system, value)
        raise ScheduleError(f"system {system!r}: schedule {value!r} is neither an interval like '15m' "
                            "nor a five-field cron expression")
    if isinstance(value, Mapping):
        return _from_mapping(value, system)
    attrs = {k: getattr(value, k) for k in ("interval_s", "interval", "cron", "seconds", "minutes", "hours")
             if getattr(value, k, None) is not None}
    if attrs:
        return _from_mapping(attrs, system)
    raise ScheduleError(f"system {system!r}: schedule {value!r} is not understood")


def _from_mapping(value: Mapping[str, Any], system: str) -> ScheduleSpec:
    if value.get("cron"):
        return _cron(str(value["cron"]), system)
    if value.get("interval_s") is not None:
        return _interval(float(value["interval_s"]), system, value)
    if value.get("interval") is not None:
        return parse_schedule(value["interval"], system)
    seconds = sum(float(value.get(k) or 0) * n for k, n in (("seconds", 1), ("minutes", 60), ("hours", 3600)))
    if seconds:
        return _interval(seconds, system, value)
    if value.get("enabled") is False or not value:
        return ScheduleSpec("manual")
    raise ScheduleError(f"system {system!r}: schedule {dict(value)!r} has no interval or cron")


def _interval(seconds: float, system: str, original: Any) -> ScheduleSpec:
    if seconds <= 0:
        raise ScheduleError(f"system {system!r}: schedule {original!r} must be a positive interval")
    return ScheduleSpec("interval", interval_s=seconds)


def _cron(expression: str, system: str) -> ScheduleSpec:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expression.strip(), timezone="UTC")
    except ValueError as exc:
        raise ScheduleError(f"system {system!r}: cron {expression!r}: {exc}") from exc
    return ScheduleSpec("cron", cron=expression.strip())


def _describe_interval(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"every {n} {unit}{'s' if n != 1 else ''}"
    return f"every {seconds:g} seconds"


def trigger_for(spec: ScheduleSpec) -> Any:
    """The APScheduler trigger of a schedule (None for manual-only systems)."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if spec.kind == "interval" and spec.interval_s:
        return IntervalTrigger(seconds=spec.interval_s, timezone="UTC")
    if spec.kind == "cron" and spec.cron:
        return CronTrigger.from_crontab(spec.cron, timezone="UTC")
    return None


def system_schedule(defn: Any) -> ScheduleSpec:
    """The schedule a system definition (from its mapping file) carries."""
    return parse_schedule(getattr(defn, "schedule", None), getattr(defn, "name", "?"))


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands timestamps back without a zone; every stored time is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class ScheduleState:
    system: str
    paused: bool = False
    paused_by: str | None = None
    paused_reason: str | None = None
    paused_at: dt.datetime | None = None
    run_requested_at: dt.datetime | None = None
    run_requested_by: str | None = None
    next_run_at: dt.datetime | None = None
    schedule: str | None = None
    scheduler_seen_at: dt.datetime | None = None

    @classmethod
    def of(cls, row: SystemScheduleRow) -> ScheduleState:
        return cls(system=row.system, paused=row.paused, paused_by=row.paused_by, paused_reason=row.paused_reason,
                   paused_at=as_utc(row.paused_at), run_requested_at=as_utc(row.run_requested_at),
                   run_requested_by=row.run_requested_by, next_run_at=as_utc(row.next_run_at),
                   schedule=row.schedule, scheduler_seen_at=as_utc(row.scheduler_seen_at))


class ScheduleControl:
    """The store-backed switches the web writes and the scheduler obeys."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def states(self) -> dict[str, ScheduleState]:
        with self.store.transaction() as s:
            return {r.system: ScheduleState.of(r) for r in s.execute(select(SystemScheduleRow)).scalars()}

    def state(self, system: str) -> ScheduleState:
        return self.states().get(system, ScheduleState(system))

    def pause(self, system: str, who: str, reason: str = "") -> ScheduleState:
        return self._set(system, paused=True, paused_by=who, paused_reason=reason or None, paused_at=utcnow())

    def resume(self, system: str, who: str) -> ScheduleState:
        return self._set(system, paused=False, paused_by=who, paused_reason=None, paused_at=None)

    def request_run(self, system: str, who: str) -> ScheduleState:
        return self._set(system, run_requested_at=utcnow(), run_requested_by=who)

    def take_run_requests(self) -> list[str]:
        """Claim every pending "run now" (each is handed out once)."""
        with self.store.transaction() as s:
            rows = s.execute(select(SystemScheduleRow).where(SystemScheduleRow.run_requested_at.is_not(None))
                             .with_for_update(skip_locked=True)).scalars().all()
            names = [r.system for r in rows]
            if names:
                s.execute(update(SystemScheduleRow).where(SystemScheduleRow.system.in_(names))
                          .values(run_requested_at=None, run_requested_by=None))
            return names

    def report(self, system: str, *, next_run_at: dt.datetime | None, schedule: str) -> None:
        """The scheduler's heartbeat for one system: its next run and the schedule it follows."""
        self._set(system, next_run_at=next_run_at, schedule=schedule, scheduler_seen_at=utcnow())

    def _set(self, system: str, **values: Any) -> ScheduleState:
        with self.store.transaction() as s:
            row = s.get(SystemScheduleRow, system, with_for_update=True)
            if row is None:
                row = SystemScheduleRow(system=system, paused=False)
                s.add(row)
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            s.flush()
            return ScheduleState.of(row)


RunSystem = Callable[[str, str], Any]


class HubScheduler:
    """Runs every system's ingest on its schedule and obeys the store's switches.

    `run_system(name, trigger)` does one ingest (the hub's `IngestService.run`);
    `adapter_enabled(name)` says whether the system's lifecycle phase still polls it.
    """

    def __init__(self, control: ScheduleControl, systems: Mapping[str, ScheduleSpec], run_system: RunSystem, *,
                 adapter_enabled: Callable[[str], bool] | None = None, poll_s: float = 2.0,
                 daily: Callable[[], Any] | None = None, scheduler: Any = None) -> None:
        from apscheduler.schedulers.blocking import BlockingScheduler

        self.control, self.specs, self._run = control, dict(systems), run_system
        self.adapter_enabled = adapter_enabled or (lambda _name: True)
        self.poll_s, self.daily = poll_s, daily
        self.scheduler = scheduler or BlockingScheduler(timezone="UTC")
        self._locks = {name: threading.Lock() for name in self.specs}
        self._poll_lock, self._stopping = threading.Lock(), threading.Event()
        self.runs: list[tuple[str, str, str]] = []  # (system, trigger, outcome), newest last

    def build(self) -> None:
        """Add one job per scheduled system, the control poll and the daily job."""
        for name, spec in self.specs.items():
            trigger = trigger_for(spec)
            if trigger is not None:
                self.scheduler.add_job(self.run_system, trigger, args=[name, "schedule"], id=f"ingest:{name}",
                                       name=f"ingest {name} ({spec.text})", max_instances=1, coalesce=True,
                                       misfire_grace_time=60, replace_existing=True)
        self.scheduler.add_job(self.poll_control, "interval", seconds=self.poll_s, id="control",
                               max_instances=1, coalesce=True, replace_existing=True, next_run_time=utcnow())
        if self.daily is not None:
            self.scheduler.add_job(self.daily, "cron", hour=0, minute=5, id="daily", max_instances=1,
                                   coalesce=True, replace_existing=True, next_run_time=utcnow())

    def start(self) -> None:
        self.build()
        self.scheduler.start()

    def shutdown(self) -> None:
        """Stop scheduling and wait for the jobs in progress (ingests, the daily job) to finish.

        APScheduler's `shutdown(wait=True)` holds its job-store lock while it waits, and the
        control poll reads the job store, so the poll is stopped first: no job left running
        then needs that lock."""
        self._stopping.set()
        with self._poll_lock:
            pass
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)

    def run_system(self, name: str, trigger: str) -> str:
        """One ingest, unless the system is paused (scheduled runs only) or its adapter is off."""
        if trigger == "schedule" and self.control.state(name).paused:
            return self._note(name, trigger, "skipped: paused")
        if not self.adapter_enabled(name):
            return self._note(name, trigger, "skipped: adapter off in this lifecycle phase")
        with self._locks.setdefault(name, threading.Lock()):
            try:
                self._run(name, trigger)
            except Exception as exc:  # the ingest run row already records the failure; keep scheduling
                log.exception("ingest of %s failed", name)
                return self._note(name, trigger, f"failed: {type(exc).__name__}: {exc}")
        return self._note(name, trigger, "ran")

    def poll_control(self) -> list[str]:
        """Apply pause/resume to the jobs, start requested runs, report next runs; return runs started."""
        with self._poll_lock:
            if self._stopping.is_set():
                return []
            return self._poll()

    def _poll(self) -> list[str]:
        states = self.control.states()
        for name, spec in self.specs.items():
            job = self.scheduler.get_job(f"ingest:{name}")
            paused = states.get(name, ScheduleState(name)).paused
            if job is not None:
                if paused and job.next_run_time is not None:
                    job.pause()
                elif not paused and job.next_run_time is None:
                    job.resume()
            next_run = job.next_run_time if job is not None else None
            self.control.report(name, next_run_at=next_run.astimezone(dt.UTC) if next_run else None,
                                schedule=spec.text)
        started = []
        for name in self.control.take_run_requests():
            if name in self.specs:
                self.scheduler.add_job(self.run_system, "date", args=[name, "run_now"], id=f"now:{name}",
                                       replace_existing=True, misfire_grace_time=None)
                started.append(name)
        return started

    def _note(self, name: str, trigger: str, outcome: str) -> str:
        self.runs.append((name, trigger, outcome))
        del self.runs[:-200]
        log.info("ingest %s (%s): %s", name, trigger, outcome)
        return outcome


def specs_for(systems: Any) -> dict[str, ScheduleSpec]:
    """Each registered system's schedule, read from its mapping file."""
    return {defn.name: system_schedule(defn) for defn in systems.all()}


def start_background_scheduler(hub: Any, *, poll_s: float = 2.0) -> HubScheduler:
    """The adapters' schedules inside this process, on a background thread (for `hub demo`;
    production runs `hub scheduler` as its own process). Call `.shutdown()` to stop it."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from hub.services.schedules import adapter_enabled_check, daily_job

    runner = HubScheduler(ScheduleControl(hub.store), specs_for(hub.systems),
                          lambda name, trigger: hub.ingest.run(name, trigger=trigger),
                          adapter_enabled=adapter_enabled_check(hub), poll_s=poll_s, daily=daily_job(hub),
                          scheduler=BackgroundScheduler(timezone="UTC"))
    runner.start()
    return runner
