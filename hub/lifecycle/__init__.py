"""Lifecycle of legacy systems in the store: phases, readiness, audited transitions, the final
archive of decommissioning, the system-of-record matrix, and the ingest gate.

`service` (LifecycleService, PhaseGatedIngest, build_services), `sor` (the matrix as of a
transaction), `archive` (the final archive). The rules are in `routing.lifecycle`,
`routing.readiness` and `routing.sor`.
"""

from hub.lifecycle.archive import ArchiveWriter, verify_archive
from hub.lifecycle.service import LifecycleService, PhaseGatedIngest, build_services
from hub.lifecycle.sor import DEFAULT_SOR_FILE, load_phases, sor_file, system_of_record

__all__ = ["DEFAULT_SOR_FILE", "ArchiveWriter", "LifecycleService", "PhaseGatedIngest", "build_services",
           "load_phases", "sor_file", "system_of_record", "verify_archive"]
