"""The console's flows page says how many person records a records worker holds to link in bulk
(they are in no person's view yet) and how many changes wait to be announced."""

from __future__ import annotations

from admin_ui import create_app
from hub.identity import bulk_link
from hub.services.flows import flow_report
from tests.support.auth import login_client
from tests.unit.ui.ui_estate import estate_hub


def _hold(store) -> None:
    with store.transaction() as s:
        bulk_link.hold(s, ["sys_a/person/1", "sys_a/person/2", "sys_a/person/3"],
                       {"sys_a": [{"ref": {"system": "sys_a", "entity": "involvement", "source_id": "I1"},
                                   "version": 1, "created": True, "changed": {}}]})


def test_the_flow_report_counts_what_is_held(store):
    assert flow_report(store).held == (0, 0)
    _hold(store)
    assert flow_report(store).held == (3, 1)


def test_the_flows_page_shows_what_is_held_only_while_something_is(tmp_path, monkeypatch):
    with estate_hub(tmp_path, people=10) as hub:  # its workers would link held rows at once: counts stand in
        client = login_client(create_app(hub, testing=True), "admin")
        assert 'id="held"' not in client.get("/console/flows/live").get_data(as_text=True)
        monkeypatch.setattr(bulk_link, "held_counts", lambda _s: (3, 1))
        page = client.get("/console/flows/live").get_data(as_text=True)
        assert 'id="held"' in page and "3 person records not in anyone's view yet" in page
        assert "1 changes not yet announced" in page
