"""`hub schema export`: the canonical model as JSON Schema files."""

from __future__ import annotations

import json
from pathlib import Path

import click

from canonical.schema_export import json_schemas


@click.group("schema")
def schema() -> None:
    """The canonical model's schema."""


@schema.command("export")
@click.option("--out", "out_dir", default="schema", show_default=True, type=click.Path(file_okay=False))
def export(out_dir: str) -> None:
    """Write one JSON Schema file per canonical model."""
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    for name, doc in json_schemas().items():
        (target / f"{name}.schema.json").write_text(json.dumps(doc, indent=2, sort_keys=True))
        click.echo(f"wrote {target / f'{name}.schema.json'}")


def register(group: click.Group) -> None:
    group.add_command(schema)
