"""`hub bench …`: benchmarks, one module of `hub.bench` each."""

from __future__ import annotations

import importlib
import pkgutil

import click

import hub.bench as bench_pkg


@click.group("bench")
def bench() -> None:
    """Benchmarks that print tables of figures, each with a same-run baseline."""


def register(group: click.Group) -> None:
    for info in sorted(pkgutil.iter_modules(bench_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"hub.bench.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            bench.add_command(command)
    group.add_command(bench)
