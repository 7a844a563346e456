"""Quarantine entries met twice in one run: an initial load skips the settle and supersede
statements for rows that cannot have an open entry, and still resolves a row corrected in a later
file of the same run and supersedes a row quarantined again."""

from __future__ import annotations

from pathlib import Path

from hub.bootstrap import bootstrap
from hub.config import HubConfig
from hub.services import quarantine as q

DROPS = """
[system]
name = "school_drops"
kind = "xml_files"
title = "School pupil drops"
service_category = "education"
schedule = "every 1h"
trust_rank = 5

[source]
inbox = "{inbox}"
mode = "delta"
batch_size = 2

[entities.pupils]
record_xpath = "/export/pupil"
id_xpath = "@id"
[entities.pupils.fields]
Surname = "surname/text()"
Born = "born/text()"

[entities.pupils.person.fields]
"names[0].family" = {{ field = "Surname", required = true }}
birth_date = {{ field = "Born", date = "%Y-%m-%d" }}
"""


def _drop(inbox: Path, name: str, pupils: list[tuple[str, str, str]]) -> None:
    rows = "".join(f'<pupil id="{i}"><surname>{s}</surname><born>{b}</born></pupil>' for i, s, b in pupils)
    (inbox / name).write_text(f"<export>{rows}</export>", encoding="utf-8")


def test_rows_quarantined_and_corrected_within_one_initial_load(tmp_path):
    inbox, systems = tmp_path / "inbox", tmp_path / "systems"
    inbox.mkdir()
    systems.mkdir()
    (systems / "school_drops.toml").write_text(DROPS.format(inbox=inbox))
    # A: fine; B: no surname, corrected in the second file; C: no surname in both files
    _drop(inbox, "a.xml", [("A", "Ash", "2012-01-02"), ("B", "", "2012-01-03"), ("C", "", "2012-01-04")])
    _drop(inbox, "b.xml", [("B", "Birch", "2012-01-03"), ("C", "", "2013-01-04")])
    hub = bootstrap(HubConfig.model_validate({"store": {"url": f"sqlite:///{tmp_path}/hub.db"},
                                              "systems": {"dir": str(systems), "estate_dir": str(tmp_path)}}))
    try:
        figures = hub.ingest.run("school_drops")
        assert (figures.status, figures.new, figures.changed, figures.quarantined) == ("ok", 1, 1, 3)
        entries = q.list_quarantine(hub.store, system="school_drops", status=None, page_size=100)["entries"]
        status = sorted((e["source_id"], e["status"], e["location"].split(":")[0]) for e in entries)
        assert status == [("B", "resolved", "a.xml"), ("C", "open", "b.xml"), ("C", "superseded", "a.xml")]
        again = hub.ingest.run("school_drops")  # nothing new dropped: nothing changes
        assert (again.new, again.quarantined) == (0, 0)
    finally:
        hub.close()
