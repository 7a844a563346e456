"""The key flows in a real browser: replay a dead letter, decide a review pair, fix and re-run
a quarantined record, accept one with a reason, advance a system's phase with a reason (and see
a refused one explained), pause and resume an adapter; a role without "console" is refused;
keyboard focus follows the visual order of a form; the flows panel refreshes itself."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from hub.identity.review import list_reviews
from hub.services.messages import dead_letters
from hub.services.quarantine import list_quarantine
from tests.browser.browser_support import screenshot

MISSING_VALUE = re.compile(r"has no value \(from ([^)]+)\)")


def _missing_value_entry(hub) -> tuple[dict, str]:
    """An open entry whose reason is a missing value of a field of its raw row (a column, or a
    dotted path into a nested record such as name.family)."""
    for e in list_quarantine(hub.store, status="open", page_size=1000)["entries"]:
        for reason in e["reasons"]:
            found = MISSING_VALUE.search(reason)
            if not (e["source_id"] and found):
                continue
            node = e["raw"]
            path = [found.group(1)] if found.group(1) in node else found.group(1).split(".")
            for step in path:
                node = node.get(step, {}) if isinstance(node, dict) else {}
            if not isinstance(node, (dict, list)):
                return e, found.group(1)
    raise AssertionError("the estate has no row with a missing value")


def test_replay_a_dead_letter(estate_hub, page_as, base_url):
    before = dead_letters(estate_hub.bus)
    assert before, "the fixture dead-letters three poison messages"
    page = page_as("admin")
    page.goto(base_url + "/console/dead-letters")
    expect(page.locator("#dead-letter-count")).to_have_text(f"{len(before)} dead letters")
    target = before[0]["message_id"]
    page.locator(f"label[for='select-{target}']").click()
    screenshot(page, "flow-dead-letter-selected")
    page.locator("#replay-selected").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("1 dead letter sent back")
    expect(page.locator("#dead-letter-count")).to_have_text(f"{len(before) - 1} dead letter"
                                                             f"{'' if len(before) - 1 == 1 else 's'}")
    screenshot(page, "flow-dead-letter-replayed")
    assert target not in {d["message_id"] for d in dead_letters(estate_hub.bus)}
    page.goto(f"{base_url}/console/messages/{target}")
    expect(page.locator("#journey")).to_contain_text("Replayed on records")


def test_decide_a_review_pair(estate_hub, page_as, base_url):
    pair = list_reviews(estate_hub.store, status="open").items[-1]
    page = page_as("steward")
    page.goto(base_url + "/review")
    page.get_by_role("link", name=f"Pair {pair['id']}", exact=True).click()
    expect(page.locator("#side-by-side")).to_be_visible()
    expect(page.locator("#evidence tbody tr").first).to_be_visible()
    page.locator("#decide").click()  # no choice, no reason: both errors are shown
    expect(page.locator(".govuk-error-summary")).to_contain_text("Enter the reason for your decision")
    page.locator("label[for='decision-not_same']").click()
    page.locator("#reason").fill("Different dates of birth and different NHS numbers: twins in one household.")
    screenshot(page, "flow-review-deciding")
    page.locator("#decide").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("not the same person")
    expect(page.locator("#pair-summary")).to_contain_text("not same")
    screenshot(page, "flow-review-decided")
    assert list_reviews(estate_hub.store, status="not_same").total >= 1


def test_fix_a_quarantined_record_and_re_run_it(estate_hub, page_as, base_url):
    entry, field = _missing_value_entry(estate_hub)
    page = page_as("admin")
    page.goto(f"{base_url}/quarantine/{entry['id']}")
    expect(page.locator("#entry-reasons")).to_contain_text("has no value")
    page.locator("#raw-row").get_by_label(field, exact=True).fill("Okonkwo")
    screenshot(page, "flow-quarantine-fixing")
    page.locator("#rerun").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("re-ran successfully")
    expect(page.locator("#entry-summary")).to_contain_text("resolved")
    expect(page.locator("#entry-summary")).to_contain_text(f"{field}: ")
    screenshot(page, "flow-quarantine-fixed")


def test_accept_a_quarantined_record_with_a_reason(estate_hub, page_as, base_url):
    entry = next(e for e in list_quarantine(estate_hub.store, status="open", page_size=1000)["entries"]
                 if not any(MISSING_VALUE.search(r) for r in e["reasons"]))
    page = page_as("admin")
    page.goto(f"{base_url}/quarantine/{entry['id']}")
    page.locator("#accept").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Enter why this record is accepted")
    page.locator("#reason").fill("The school re-sent this export corrected; the broken copy is not needed.")
    page.locator("#accept").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("accepted")
    expect(page.locator("#entry-summary")).to_contain_text("The school re-sent this export corrected")
    screenshot(page, "flow-quarantine-accepted")


def test_advance_a_system_with_a_reason_and_see_a_refusal_explained(estate_hub, page_as, base_url):
    lifecycle = estate_hub.extras["lifecycle"]
    connected = [n for n in estate_hub.systems.names() if lifecycle.phase(n).value == "connected"]
    checks = {n: lifecycle.checks(n) for n in connected}
    blocked = next(n for n in connected if not checks[n]["ready"])
    ready = next((n for n in connected if checks[n]["ready"]), None) or _clear_blockers(
        estate_hub, next(n for n in connected if n != blocked))
    page = page_as("programme")
    page.goto(base_url + "/decommissioning")
    expect(page.locator("#systems")).to_contain_text(blocked)
    page.get_by_role("link", name=blocked, exact=True).click()
    page.locator("#advance-reason").fill("Trying early to see what is left to do")
    page.locator("#advance").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text(f"{blocked} cannot move to hub primary")
    screenshot(page, "flow-advance-refused")

    page.goto(f"{base_url}/decommissioning/{ready}")
    page.locator("#advance").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text(f"Enter why you advance {ready}")
    page.locator("#advance-reason").fill("The replacement system went live on Monday; legacy front end retired")
    page.locator("#advance").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text(
        f"{ready} moved from connected to hub primary")
    expect(page.locator("#system-summary")).to_contain_text("hub primary")
    expect(page.locator("#history")).to_contain_text("The replacement system went live on Monday")
    screenshot(page, "flow-advanced")
    assert lifecycle.phase(ready).value == "hub_primary"
    page.goto(base_url + "/decommissioning")
    expect(page.locator("#burndown-table")).to_be_attached()


def _clear_blockers(hub, system: str) -> str:
    """Test setup when no system happens to be ready: accept its quarantine and decide the review
    pairs touching it, as a data steward would, so that its readiness checks pass."""
    from hub.identity import review as rv
    from hub.identity.model_file import load_model
    from hub.services.quarantine import accept

    for entry in list_quarantine(hub.store, system=system, status="open", page_size=1000)["entries"]:
        accept(hub.store, entry["id"], "browser test setup", who="test")
    for status in ("open", "unsure"):
        for pair in rv.list_reviews(hub.store, status=status, system=system, page_size=1000).items:
            rv.decide(hub.store, pair["id"], "not_same", user="test", reason="browser test setup",
                      model=getattr(hub.worker.linker, "model", None) or load_model())
    hub.relay.relay_all()
    assert hub.extras["lifecycle"].checks(system)["ready"], hub.extras["lifecycle"].checks(system)
    return system


def test_pause_resume_and_request_a_run(estate_hub, page_as, base_url):
    from hub.scheduling import ScheduleControl

    system = estate_hub.systems.names()[-1]
    page = page_as("admin")
    page.goto(f"{base_url}/adapters/{system}")
    page.locator("#pause-reason").fill("Supplier maintenance tonight")
    page.locator("#pause").click()
    expect(page.locator("#adapter-summary")).to_contain_text("Supplier maintenance tonight")
    assert ScheduleControl(estate_hub.store).state(system).paused
    page.locator("#resume").click()
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("resumed")
    page.locator("#run-now").click()
    expect(page.locator("#adapter-summary")).to_contain_text("by admin")
    control = ScheduleControl(estate_hub.store)
    assert not control.state(system).paused
    assert control.take_run_requests() == [system]
    screenshot(page, "flow-adapter-run-requested")


def test_a_role_without_console_is_refused(page_as, base_url):
    page = page_as("social.worker")
    for path in ("/console", "/console/dead-letters", "/adapters", "/decommissioning", "/quarantine"):
        response = page.goto(base_url + path)
        assert response is not None and response.status == 403, path
        expect(page.locator("h1")).to_have_text("You cannot see this page")
    expect(page.locator("#navigation")).not_to_contain_text("Message flows")
    screenshot(page, "flow-console-refused")


def test_keyboard_focus_follows_the_message_filter_form(page_as, base_url):
    page = page_as("admin")
    page.goto(base_url + "/console/messages")
    page.locator("#type").focus()
    order = []
    for _ in range(9):
        order.append(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        shadow = page.evaluate("getComputedStyle(document.activeElement).boxShadow")
        assert outline != "none" or shadow != "none", f"no visible focus on {order[-1]}"
        page.keyboard.press("Tab")
    assert order == ["type", "system", "status", "since", "until", "person_id", "ref_key", "apply-filter",
                     "Clear filter"]
    screenshot(page, "flow-focus-order")


def test_the_flows_panel_refreshes_itself(page_as, base_url):
    page = page_as("admin")
    page.goto(base_url + "/console")
    stamp = page.locator("#flows-updated")
    first = stamp.text_content()
    assert first and first.startswith("Figures at")
    # htmx fetches the figures again every 5 seconds and swaps them in: the time stamp moves on
    expect(stamp).not_to_have_text(first, timeout=15_000)
    expect(page.locator("#queues")).to_be_visible()
    expect(page.locator("#flows-charts svg.hub-chart").first).to_be_visible()


def test_trace_a_message_to_the_golden_record(page_as, base_url):
    page = page_as("admin")
    page.goto(base_url + "/console/messages?system=education&status=processed&type=source.record.batch")
    page.locator("#messages a[href^='/console/messages/']").first.click()
    expect(page.locator("#carried-records")).to_be_visible()
    page.locator("#carried-records a[href^='/console/trace']", has_text="/person/").first.click()
    expect(page.locator("#trace-records")).to_be_visible()
    golden = page.locator("#trace-records a[href^='/persons/']").first
    person_id = golden.text_content()
    golden.click()
    expect(page).to_have_url(re.compile(rf"/persons/{person_id}$"))
    expect(page.locator("h1")).to_be_visible()
    screenshot(page, "flow-trace-to-golden-record")
