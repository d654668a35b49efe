"""Bundled traces, one directory each (``builtin:NAME``)."""
