"""The master identity index in the hub: store repository, the linker the worker uses, review queue, stewardship, training and evaluation."""
