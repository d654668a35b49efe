"""Errors of the collector (no heavy imports, so prompt parsing works without torch)."""


class CollectError(RuntimeError):
    """A collection problem to report as one clear line."""
