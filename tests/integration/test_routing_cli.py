"""`hub systems …` and `hub routing …` from the command line, on a hub.toml of its own."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hub.cli import main
from tests.integration.routing_legacy import LegacySystem, make_hub, sync


@pytest.fixture
def cli(sqlite_store, tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_ARCHIVE_DIR", str(tmp_path / "archive"))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "routing.toml").write_text("[readiness]\nquiet_days = 0\n")
    sc = LegacySystem(tmp_path, "social_care", "social_care")
    sc.client("C1", "Amy", "Smith")
    hub = make_hub(sqlite_store, tmp_path)
    sync(hub, "social_care")
    hub.close()
    config = tmp_path / "hub.toml"
    config.write_text(f'[store]\nurl = "{sqlite_store.url}"\n[systems]\ndir = "{tmp_path / "systems"}"\n')
    runner = CliRunner()
    yield lambda *args: runner.invoke(main, ["--config", str(config), *args], catch_exceptions=False), sc


def test_systems_commands(cli):
    run, sc = cli
    listing = run("systems")
    assert listing.exit_code == 0 and "social_care" in listing.output and "connected" in listing.output
    sc.client("C2", "Ben", None)
    assert '"quarantined": 1' in run("ingest", "--system", "social_care", "--process").output
    checks = run("systems", "checks", "social_care")
    assert "NOT READY" in checks.output and "[FAIL] quarantine_cleared: 1 open quarantine entry" in checks.output
    refused = run("systems", "advance", "social_care", "--reason", "go", "--who", "pat")
    assert refused.exit_code == 1 and "refused: social_care cannot move to hub_primary" in refused.output
    assert "[FAIL] quarantine_cleared" in refused.output
    sc.execute("DELETE FROM clients WHERE client_id = 'C2'")
    run("quarantine", "accept", "1", "--reason", "deleted at source")
    run("ingest", "--system", "social_care", "--process")
    moved = run("systems", "advance", "social_care", "--reason", "go", "--who", "pat")
    assert moved.exit_code == 0 and "social_care: connected → hub_primary (pat: go)" in moved.output
    assert "hub_primary" in run("systems", "list").output
    rows = json.loads(run("systems", "list", "--json").output)
    assert rows[0]["phase"] == "hub_primary" and rows[0]["changed_by"] == "pat"
    history = run("systems", "history", "social_care").output.splitlines()
    assert "connected → hub_primary  done  pat: go" in history[0] and "refused" in history[1]
    assert "failed: quarantine_cleared" in history[1]
    sor = run("systems", "sor", "--system", "social_care", "--entity", "person").output
    assert "address" in sor and "phase hub_primary" in sor
    rec = run("systems", "reconcile", "social_care")
    assert rec.exit_code == 0 and "social_care: clean: legacy 1 rows" in rec.output
    back = run("systems", "revert", "social_care", "--reason", "not yet")
    assert back.exit_code == 0 and "hub_primary → connected" in back.output
    again = run("systems", "revert", "social_care", "--reason", "again")
    assert again.exit_code == 1 and "first phase" in again.output
    assert run("systems", "checks", "nowhere").exit_code == 1


def test_routing_commands(cli):
    run, _ = cli
    assert run("routing", "rules").exit_code == 0
    assert run("routing", "deliveries").output == ""
    assert json.loads(run("routing", "alerts", "--json").output) == []
    out = run("routing", "run", "--idle-exit", "0.3")
    assert out.exit_code == 0 and "routing worker stopped after" in out.output
