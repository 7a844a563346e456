"""`hub demo`: the whole hub on one machine in one command.

Builds the sample estate (unless one is there), serves the youth justice REST
stand-in, ingests every legacy system through the bus and the worker, creates one
demo account per sample role, then serves the UI with a records worker, a routing
worker and the scheduler running beside it.
"""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

import click

from hub.config import ConfigError, load_config

DEMO_PASSWORD_ENV = "HUB_DEMO_PASSWORD"


@click.command("demo")
@click.option("--people", type=click.IntRange(min=10), default=2000, show_default=True,
              help="true people in the sample estate")
@click.option("--fresh", is_flag=True, help="rebuild the estate and the store from scratch")
@click.option("--host", default=None, help="default: web.host from hub.toml")
@click.option("--port", type=int, default=None, help="default: web.port from hub.toml")
@click.option("--no-serve", is_flag=True, help="build and ingest only (for scripts and tests)")
@click.pass_context
def demo(ctx: click.Context, people: int, fresh: bool, host: str | None, port: int | None, no_serve: bool) -> None:
    """Sample estate → adapters → bus → worker → store, then serve the UI."""
    from hub.bootstrap import bootstrap
    from hub.estate import generate
    from hub.estate.youth_justice_api import serve_youth_justice_in_thread

    try:
        config = load_config(ctx.find_root().obj.get("config_path", "hub.toml"))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    estate_dir = Path(config.systems.estate_dir)
    if fresh:
        _remove_sqlite_store(config.store.url)
    if fresh or not (estate_dir / "manifest.json").exists():
        click.echo(f"building a sample estate of {people:,} people in {estate_dir} …")
        manifest = generate(estate_dir, people=people)
        click.echo(f"  {manifest.total_rows():,} legacy rows in six systems")

    standin = serve_youth_justice_in_thread(estate_dir)
    os.environ["YJ_API_URL"] = standin.url
    os.environ["YJ_API_TOKEN"] = standin.token
    click.echo(f"youth justice REST stand-in on {standin.url}")

    hub = bootstrap(config)
    ctx.call_on_close(hub.close)
    ctx.call_on_close(standin.stop)
    password = _demo_accounts(hub, estate_dir.parent)

    from hub.routing_worker import run_routing_worker
    from hub.worker import run_worker

    for name in hub.systems.names():
        try:
            figures = hub.ingest.run(name, trigger="demo")
        except Exception as exc:  # one failing system must not stop the demo; the run row records it
            click.echo(f"  {name:<18} FAILED: {exc}", err=True)
            continue
        click.echo(f"  {name:<18} {figures.seen:>7,} rows, {figures.records_announced:>7,} records announced, "
                   f"{figures.quarantined:>4} quarantined ({figures.duration_s:.1f}s)")
    n = run_worker(hub.bus, hub.worker, batch_size=hub.config.worker.batch_size, idle_timeout_s=1.0)
    click.echo(f"worker stored {n:,} messages")
    if no_serve:
        return

    stop = threading.Event()
    threading.Thread(target=run_worker, name="records-worker", daemon=True, args=(hub.bus, hub.worker),
                     kwargs={"batch_size": hub.config.worker.batch_size, "should_stop": stop.is_set}).start()
    threading.Thread(target=run_routing_worker, name="routing-worker", daemon=True,
                     args=(hub.bus, hub.extras["routing_worker"]), kwargs={"should_stop": stop.is_set}).start()
    scheduler = _start_scheduler(hub)
    if scheduler is not None:
        ctx.call_on_close(scheduler.shutdown)

    from werkzeug.serving import run_simple

    from admin_ui import create_app

    host, port = host or hub.config.web.host, port or hub.config.web.port
    click.echo(f"\nThe hub is at http://{host}:{port}/  (Ctrl-C stops it)")
    click.echo(f"Sign in as any of: {', '.join(DEMO_USERS)} — password {password}")
    try:
        run_simple(host, port, create_app(hub), threaded=True)
    finally:
        stop.set()


DEMO_USERS = {
    "admin": ["integration_admin"],
    "steward": ["data_steward"],
    "programme": ["programme_manager"],
    "social.worker": ["social_worker"],
    "early.help": ["early_help_worker"],
    "ewo": ["education_welfare_officer"],
    "yot": ["youth_justice_officer"],
}


def _demo_accounts(hub, var_dir: Path) -> str:  # noqa: ANN001
    """One account per sample role, sharing one password: HUB_DEMO_PASSWORD, or made up once and
    kept in var/demo-password so a second `make demo` signs in with the same one."""
    from hub.users import UserError, add_user, list_users

    kept = var_dir / "demo-password"
    password = os.environ.get(DEMO_PASSWORD_ENV) or (kept.read_text().strip() if kept.exists() else "")
    password = password or secrets.token_urlsafe(12)
    var_dir.mkdir(parents=True, exist_ok=True)
    kept.write_text(password + "\n")
    kept.chmod(0o600)
    existing = {u.username for u in list_users(hub.store)}
    for username, roles in DEMO_USERS.items():
        if username in existing:
            continue
        try:
            add_user(hub.store, username, password, roles, actor="hub demo", display_name=username)
        except UserError as exc:
            raise click.ClickException(str(exc)) from exc
    return password


def _start_scheduler(hub):  # noqa: ANN001, ANN202
    """The adapters' schedules, in this process (production runs `hub scheduler` separately)."""
    try:
        from hub.scheduling import start_background_scheduler
    except ImportError:
        return None
    return start_background_scheduler(hub)


def _remove_sqlite_store(url: str) -> None:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def register(group: click.Group) -> None:
    group.add_command(demo)
