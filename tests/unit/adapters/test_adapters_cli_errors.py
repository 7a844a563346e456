"""A broken mapping file stops the CLI with one line naming the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hub.cli import main

REPO = Path(__file__).resolve().parents[3]


def test_cli_reports_mapping_errors_without_a_traceback(tmp_path):
    systems = tmp_path / "systems"
    systems.mkdir()
    text = (REPO / "systems" / "youth_service.toml").read_text()
    broken = text.replace('codes = "sex"', 'codes = "gender"')
    assert broken != text
    (systems / "youth_service.toml").write_text(broken)
    (tmp_path / "hub.toml").write_text(f'[store]\nurl = "sqlite:///{tmp_path}/hub.db"\n[systems]\ndir = "{systems}"\n')
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "hub.toml"), "systems", "list"])
    assert result.exit_code == 1
    line = next(i for i, ln in enumerate(broken.splitlines(), start=1) if 'codes = "gender"' in ln)
    assert result.output.strip() == (f"Error: {systems / 'youth_service.toml'}:{line}: "
                                     "entities.members.person.fields.sex.codes: unknown code table 'gender' "
                                     "(defined: sex)")
    assert "Traceback" not in result.output
