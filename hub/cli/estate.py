"""`hub estate …`: build the sample legacy estate, change it, serve its REST stand-in."""

from __future__ import annotations

import datetime as dt
import json
import signal
import threading
import time

import click

from hub.config import ConfigError, load_config


def _default_estate_dir(ctx: click.Context) -> str:
    try:
        return load_config(ctx.find_root().obj.get("config_path", "hub.toml")).systems.estate_dir
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("estate")
def estate() -> None:
    """The sample estate: six legacy systems of a synthetic county (see docs/estate.md)."""


@estate.command("generate")
@click.option("--people", type=click.IntRange(min=1), default=2000, show_default=True,
              help="true people (children and adults)")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--out", "out_dir", default=None, help="estate directory (default: systems.estate_dir, var/estate)")
@click.option("--malformed-rate", type=click.FloatRange(0, 1), default=0.01, show_default=True)
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="the estate's 'today' (default 2026-09-01)")
@click.pass_context
def generate_command(ctx: click.Context, people: int, seed: int, out_dir: str | None, malformed_rate: float,
                     as_of: dt.datetime | None) -> None:
    """Write a sample estate; same seed, same files."""
    from hub.estate import generate

    out_dir = out_dir or _default_estate_dir(ctx)
    started = time.monotonic()
    manifest = generate(out_dir, people=people, seed=seed, malformed_rate=malformed_rate,
                        as_of=as_of.date() if as_of else None)
    took = time.monotonic() - started
    click.echo(f"estate of {manifest.people:,} people in {manifest.households:,} households written to {out_dir} "
               f"in {took:.1f}s: {manifest.total_rows():,} legacy rows")
    for system, entities in manifest.systems.items():
        click.echo(f"  {system:<18} " + ", ".join(f"{e} {n:,}" for e, n in entities.items()))


@estate.command("mutate")
@click.option("--dir", "estate_dir", default=None, help="estate directory (default: systems.estate_dir)")
@click.option("--changes", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--seed", type=int, default=None, help="default: from the clock")
@click.option("--kind", "kinds", multiple=True, help="only changes of this kind (repeatable)")
@click.pass_context
def mutate_command(ctx: click.Context, estate_dir: str | None, changes: int, seed: int | None,
                   kinds: tuple[str, ...]) -> None:
    """Make realistic changes in the legacy sources in place; print each as JSON."""
    from hub.estate.mutations import mutate

    try:
        done = mutate(estate_dir or _default_estate_dir(ctx), changes,
                      seed if seed is not None else time.time_ns(), kinds or None)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    for m in done:
        click.echo(json.dumps(m.as_dict(), sort_keys=True))


@estate.command("serve-youth-justice")
@click.option("--dir", "estate_dir", default=None, help="estate directory (default: systems.estate_dir)")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8091, show_default=True)
@click.option("--token", envvar="YJ_API_TOKEN", default="yj-demo-token", show_default=True,
              help="bearer token clients must send (env YJ_API_TOKEN)")
@click.pass_context
def serve_youth_justice(ctx: click.Context, estate_dir: str | None, host: str, port: int, token: str) -> None:
    """Serve the youth justice REST stand-in over the estate's youth_justice.db."""
    from werkzeug.serving import make_server

    from hub.estate.youth_justice_api import make_youth_justice_app

    server = make_server(host, port, make_youth_justice_app(estate_dir or _default_estate_dir(ctx), token),
                         threaded=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"youth justice stand-in on http://{host}:{server.server_port}/api/v1/young-people")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.shutdown()


def register(group: click.Group) -> None:
    group.add_command(estate)
