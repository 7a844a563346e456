"""The audit log: each action leaves exactly one entry; the database refuses UPDATE, DELETE and
TRUNCATE on it; and `hub audit verify` finds an entry edited, removed or reordered by someone
who dropped that guard, and names it; on both stores."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from admin_ui import create_app
from hub.audit import verify
from hub.cli import main
from hub.store import Store
from hub.store.tables.access import AuditRow
from hub.users import set_roles
from tests.support.auth import (
    DEFAULT_PASSWORD,
    api_token,
    bearer,
    create_user,
    csrf_token,
    login_client,
)
from tests.support.services import create_pg_database, drop_pg_database
from tests.unit.access.access_estate import estate_records, ids, load, make_hub


def _entries(hub) -> list[AuditRow]:
    with hub.store.transaction() as s:
        return s.execute(select(AuditRow).order_by(AuditRow.seq)).scalars().all()


class Recorder:
    """Runs an action and returns the audit entries it added."""

    def __init__(self, hub) -> None:
        self.hub = hub

    def __call__(self, action) -> list[AuditRow]:
        before = len(_entries(self.hub))
        action()
        return _entries(self.hub)[before:]


def test_every_action_leaves_exactly_one_entry(store, tmp_path):
    hub = make_hub(store.url, str(tmp_path / "systems"))
    load(hub, estate_records())
    amy = ids(hub)["amy"]
    app = create_app(hub, testing=True)
    create_user(hub, "steward", ["data_steward"])
    run = Recorder(hub)
    state = {"anon": app.test_client()}

    steps = [
        ("user_add", lambda: create_user(hub, "sw", ["social_worker"])),
        ("user_roles", lambda: set_roles(hub.store, "sw", ["social_worker"], actor="test")),
        ("sign_in", lambda: state.update(sw=login_client(app, "sw"))),
        ("search", lambda: state["sw"].get("/persons?name=amy")),
        ("search", lambda: state["sw"].get("/api/v1/persons?name=amy")),
        ("view", lambda: state["sw"].get(f"/persons/{amy}?purpose=home+visit")),
        ("view", lambda: state["sw"].get(f"/api/v1/persons/{amy}")),
        ("break_glass", lambda: state["sw"].post(f"/persons/{amy}/break-glass", data={
            "reason": "concern raised by school today", "csrf_token": state["sw"].csrf_token})),
        ("access_denied", lambda: state["sw"].get("/audit")),
        ("token_create", lambda: state.update(token=api_token(hub, "sw"))),
        ("view", lambda: app.test_client().get(f"/api/v1/persons/{amy}", headers=bearer(state["token"]))),
        ("sign_in_failed", lambda: state["anon"].post("/login", data={
            "username": "sw", "password": "not the password", "csrf_token": csrf_token(state["anon"])})),
        ("sign_in", lambda: state.update(steward=login_client(app, "steward"))),
        ("export", lambda: state["steward"].get(f"/persons/{amy}/export.json")),
        ("export", lambda: state["steward"].get(f"/persons/{amy}/export.csv")),
        ("audit_read", lambda: state["steward"].get(f"/audit?person_id={amy}")),
        ("sign_out", lambda: state["sw"].post("/sign-out", data={"csrf_token": state["sw"].csrf_token})),
    ]
    for expected, action in steps:
        added = run(action)
        assert [e.action for e in added] == [expected], (expected, [(e.action, e.outcome) for e in added])
    views = [e for e in _entries(hub) if e.action == "view"]
    assert [v.detail["channel"] for v in views] == ["web", "api", "api"]
    assert views[0].purpose == "home visit" and views[0].person_id == amy
    glass = next(e for e in _entries(hub) if e.action == "break_glass")
    assert glass.purpose == "concern raised by school today" and glass.actor == "sw"
    search = next(e for e in _entries(hub) if e.action == "search")
    assert search.detail["criteria"] == {"name": "amy"} and search.client
    assert verify(hub.store).ok
    hub.bus.close()


def _chain(store, tmp_path, n: int = 6, *, drop_guard: bool = True):
    """A log of at least `n` entries; by default with the database guard dropped, as someone
    with the rights to do so would before editing it."""
    hub = make_hub(store.url, str(tmp_path / "systems"))
    for i in range(n):
        create_user(hub, f"user{i}", ["social_worker"])
    assert verify(hub.store).ok and verify(hub.store).checked >= n
    if drop_guard:
        _drop_guard(hub.store)
    return hub


def _drop_guard(store) -> None:
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.exec_driver_sql("DROP TRIGGER audit_log_append_only ON audit_log")
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_truncate ON audit_log")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")


@pytest.mark.parametrize("statement", [
    update(AuditRow).where(AuditRow.seq == 3).values(actor="someone else"),
    update(AuditRow).values(purpose="covering tracks"),
    delete(AuditRow).where(AuditRow.seq == 3),
    delete(AuditRow),
], ids=["update one", "update all", "delete one", "delete all"])
def test_the_database_refuses_to_change_or_remove_an_entry(store, tmp_path, statement):
    hub = _chain(store, tmp_path, drop_guard=False)
    before = [(r.seq, r.actor, r.purpose, r.entry_hash) for r in _entries(hub)]
    with pytest.raises(DBAPIError, match="append-only"), hub.store.transaction() as s:
        s.execute(statement)
    assert [(r.seq, r.actor, r.purpose, r.entry_hash) for r in _entries(hub)] == before
    assert verify(hub.store).ok
    create_user(hub, "after the refusal", ["social_worker"])  # appending still works
    assert verify(hub.store).ok and verify(hub.store).checked == len(before) + 1


def test_postgresql_refuses_truncate(tmp_path):
    url = create_pg_database()
    store = Store(url)
    try:
        store.migrate()
        hub = _chain(store, tmp_path, n=2, drop_guard=False)
        with pytest.raises(DBAPIError, match="append-only: TRUNCATE"), hub.store.engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_log"))
        assert verify(hub.store).ok and verify(hub.store).checked >= 2
    finally:
        store.dispose()
        drop_pg_database(url)


def test_verify_names_an_edited_entry(store, tmp_path):
    hub = _chain(store, tmp_path)
    with hub.store.transaction() as s:
        s.execute(update(AuditRow).where(AuditRow.seq == 4).values(actor="someone else"))
    report = verify(hub.store)
    assert not report.ok and report.seq == 4 and "edited" in report.problem


def test_verify_names_a_removed_entry(store, tmp_path):
    hub = _chain(store, tmp_path)
    with hub.store.transaction() as s:
        s.execute(delete(AuditRow).where(AuditRow.seq == 3))
    report = verify(hub.store)
    assert not report.ok and report.seq == 3 and "removed" in report.problem


def test_verify_names_reordered_entries(store, tmp_path):
    hub = _chain(store, tmp_path)
    with hub.store.transaction() as s:
        s.execute(update(AuditRow).where(AuditRow.seq == 2).values(seq=-2))
        s.execute(update(AuditRow).where(AuditRow.seq == 5).values(seq=2))
        s.execute(update(AuditRow).where(AuditRow.seq == -2).values(seq=5))
    report = verify(hub.store)
    assert not report.ok and report.seq == 2


def test_verify_notices_removed_entries_at_the_end(store, tmp_path):
    hub = _chain(store, tmp_path)
    with hub.store.transaction() as s:
        last = s.execute(select(AuditRow.seq).order_by(AuditRow.seq.desc()).limit(1)).scalar()
        s.execute(delete(AuditRow).where(AuditRow.seq == last))
    report = verify(hub.store)
    assert not report.ok and "removed" in report.problem


def test_hub_audit_verify_and_list_commands(sqlite_store, tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text(f'[store]\nurl = "{sqlite_store.url}"\n[systems]\ndir = "{tmp_path}/systems"\n')
    hub = _chain(sqlite_store, tmp_path, n=3)
    runner = CliRunner()
    ok = runner.invoke(main, ["--config", str(config), "audit", "verify"])
    assert ok.exit_code == 0 and "intact" in ok.output
    listed = runner.invoke(main, ["--config", str(config), "audit", "list", "--action", "user_add"])
    assert listed.exit_code == 0 and "3 entries" in listed.output
    with hub.store.transaction() as s:
        s.execute(update(AuditRow).where(AuditRow.seq == 2).values(purpose="covering tracks"))
    bad = runner.invoke(main, ["--config", str(config), "audit", "verify"])
    assert bad.exit_code == 1 and "entry 2" in bad.output and "edited" in bad.output


def test_hub_users_commands(sqlite_store, tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text(f'[store]\nurl = "{sqlite_store.url}"\n[systems]\ndir = "{tmp_path}/systems"\n')
    runner = CliRunner()
    base = ["--config", str(config), "users"]
    added = runner.invoke(main, base + ["add", "ann", "--role", "social_worker", "--team", "Team North",
                                        "--password", DEFAULT_PASSWORD])
    assert added.exit_code == 0, added.output
    assert runner.invoke(main, base + ["add", "bob", "--role", "wizard", "--password", DEFAULT_PASSWORD]).exit_code == 2
    roles = runner.invoke(main, base + ["roles", "ann", "--role", "social_worker", "--role", "data_steward"])
    assert "data_steward, social_worker" in roles.output
    listed = runner.invoke(main, base + ["list"])
    assert "ann\tdata_steward,social_worker teams=Team North" in listed.output
    token = runner.invoke(main, base + ["token", "ann", "--name", "case system"]).output.strip()
    assert token.startswith("hubt_")
    assert runner.invoke(main, base + ["remove", "ann"]).exit_code == 0
    assert "ann" not in runner.invoke(main, base + ["list"]).output


def test_a_policy_change_is_audited_once(sqlite_store, tmp_path, monkeypatch):
    from pathlib import Path

    from hub.services.view import access_policy

    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(Path("config/access_policy.toml").read_text())
    monkeypatch.setenv("HUB_ACCESS_POLICY", str(policy_file))
    for _ in range(2):
        hub = make_hub(sqlite_store.url, str(tmp_path / "systems"))
        access_policy(hub)
    assert [e.action for e in _entries(hub)] == ["policy_change"]
    policy_file.write_text(policy_file.read_text().replace("minutes = 60", "minutes = 30"))
    hub = make_hub(sqlite_store.url, str(tmp_path / "systems"))
    assert access_policy(hub).break_glass.minutes == 30
    changes = [e for e in _entries(hub) if e.action == "policy_change"]
    assert len(changes) == 2 and changes[1].detail["previous_hash"] == changes[0].detail["hash"]


def test_other_api_calls_leave_one_api_call_entry(sqlite_store, tmp_path):
    hub = make_hub(sqlite_store.url, str(tmp_path / "systems"))
    create_user(hub, "ops", ["integration_admin"])
    app = create_app(hub, testing=True)
    token = api_token(hub, "ops")
    run = Recorder(hub)
    client = app.test_client()
    added = run(lambda: client.get("/api/v1/me", headers=bearer(token)))
    assert [(e.action, e.target, e.outcome) for e in added] == [("api_call", "GET /api/v1/me", "200")]
    added = run(lambda: client.get("/api/v1/persons?name=x", headers=bearer(token)))
    assert [e.action for e in added] == ["access_denied"]  # integration admins may not search people
    assert run(lambda: app.test_client().get("/api/v1/me")) == []  # anonymous: refused, nobody to record
