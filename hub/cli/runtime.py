"""`hub serve`, `hub worker`, `hub ingest`: the long-running processes and a one-off poll."""

from __future__ import annotations

import json
import signal
import threading

import click

from hub.cli.context import get_hub
from hub.worker import run_worker


@click.command("serve")
@click.option("--host", default=None, help="default: web.host from hub.toml")
@click.option("--port", type=int, default=None, help="default: web.port from hub.toml")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the web pages and the JSON API."""
    from werkzeug.serving import run_simple

    from admin_ui import create_app

    hub = get_hub(ctx)
    app = create_app(hub)
    run_simple(host or hub.config.web.host, port or hub.config.web.port, app, threaded=True)


@click.command("worker")
@click.option("--batch-size", type=int, default=None)
@click.option("--idle-exit", type=float, default=None, help="stop after this many idle seconds (default: run forever)")
@click.pass_context
def worker(ctx: click.Context, batch_size: int | None, idle_exit: float | None) -> None:
    """Consume source-record messages into the store (run several for more throughput)."""
    hub = get_hub(ctx)
    if hub.config.worker.storing_helper and hub.config.source_path and hub.worker.bulk_link_backlog:
        from hub import storing_helper

        hub.worker.storing_helper = storing_helper.starter(hub.config.source_path)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    n = run_worker(hub.bus, hub.worker, batch_size=batch_size or hub.config.worker.batch_size,
                   idle_timeout_s=idle_exit, should_stop=stop.is_set)
    click.echo(f"worker stopped after {n} message(s)")


@click.command("ingest")
@click.option("--system", "systems", multiple=True, help="system name (repeatable); default: every system")
@click.option("--process/--no-process", default=False, help="also run the worker until the queue is empty")
@click.pass_context
def ingest(ctx: click.Context, systems: tuple[str, ...], process: bool) -> None:
    """Poll legacy systems now; print each run's figures."""
    hub = get_hub(ctx)
    for name in systems or hub.systems.names():
        figures = hub.ingest.run(name, trigger="cli")
        click.echo(json.dumps(figures.as_dict()))
    if process:
        n = run_worker(hub.bus, hub.worker, batch_size=hub.config.worker.batch_size, idle_timeout_s=1.0)
        click.echo(f"processed {n} message(s)")


def register(group: click.Group) -> None:
    for command in (serve, worker, ingest):
        group.add_command(command)
