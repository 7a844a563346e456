"""The hub: composition of the domain packages with store, bus, worker, scheduler and CLI."""
