"""`hub scheduler`: run every system's ingest on the schedule from its mapping file, obeying
pause, resume and "run now" from the web console (the switches live in the store)."""

from __future__ import annotations

import logging
import signal

import click

from hub.cli.context import get_hub


@click.command("scheduler")
@click.option("--poll", "poll_s", type=float, default=2.0, show_default=True,
              help="seconds between reads of the pause/resume/run-now switches")
@click.option("--list", "list_only", is_flag=True, help="print each system's schedule and state, then exit")
@click.pass_context
def scheduler(ctx: click.Context, poll_s: float, list_only: bool) -> None:
    """Run adapters on their schedules until stopped (SIGTERM or Ctrl-C)."""
    from hub.scheduling import HubScheduler, ScheduleControl, ScheduleError, specs_for
    from hub.services.schedules import adapter_enabled_check, daily_job

    hub = get_hub(ctx)
    try:
        specs = specs_for(hub.systems)
    except ScheduleError as exc:
        raise click.ClickException(str(exc)) from exc
    control = ScheduleControl(hub.store)
    if list_only:
        states = control.states()
        for name, spec in specs.items():
            state = states.get(name)
            paused = f"paused by {state.paused_by}" if state and state.paused else "active"
            click.echo(f"{name}\t{spec.text}\t{paused}")
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)  # not every 2-second poll
    runner = HubScheduler(control, specs, lambda name, trigger: hub.ingest.run(name, trigger=trigger),
                          adapter_enabled=adapter_enabled_check(hub), poll_s=poll_s, daily=daily_job(hub))
    signal.signal(signal.SIGTERM, lambda *_: runner.shutdown())  # lets a running ingest finish
    click.echo(f"scheduler: {len(specs)} system(s); switches read every {poll_s:g}s")
    try:
        runner.start()
    except (KeyboardInterrupt, SystemExit):
        runner.shutdown()


def register(group: click.Group) -> None:
    group.add_command(scheduler)
