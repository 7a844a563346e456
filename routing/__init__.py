"""Routing, system of record and lifecycle rules, pure: `lifecycle` (phases and gates),
`readiness` (checks over gathered facts), `sor` (the system-of-record matrix), `rules`
(routes and their transforms), `alerts` (alert rules), `fields` (the flat field vocabulary)."""
