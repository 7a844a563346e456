"""Access policy: who may see what (`policy`), the redaction that applies it (`redaction`),
and the people using the hub (`hub.users`). Enforcement happens in `hub.services.view`."""

from hub.access.policy import AccessPolicy, Level, PolicyError, load_policy

__all__ = ["AccessPolicy", "Level", "PolicyError", "load_policy"]
