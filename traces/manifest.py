"""Building trace manifests with the provenance fields every trace carries."""

from __future__ import annotations

import hashlib
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from .schema import SCHEMA_VERSION


def toolkit_version() -> str:
    try:
        return metadata.version("specregret")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def software_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Python and library versions that matter for reproducing a trace."""
    out = {"python": sys.version.split()[0]}
    for pkg in ("numpy", "pandas", "pyarrow", *extra):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def hardware_info() -> dict[str, Any]:
    return {"machine": platform.machine(), "processor": platform.processor() or "unknown",
            "system": platform.system()}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_manifest(
    *,
    kind: str,
    synthetic: bool,
    target: dict[str, Any],
    drafters: list[dict[str, Any]],
    k_max: int,
    decoding: dict[str, Any],
    prompt_set: dict[str, Any],
    seed: int | None,
    name: str,
    description: str = "",
    hardware: dict[str, Any] | None = None,
    software: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A manifest with every field of ``traces.schema.MANIFEST_REQUIRED``."""
    return {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "description": description,
        "kind": kind,
        "synthetic": synthetic,
        "target": target,
        "drafters": drafters,
        "k_max": int(k_max),
        "decoding": decoding,
        "prompt_set": prompt_set,
        "hardware": hardware or hardware_info(),
        "software": software or software_versions(),
        "seed": seed,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "toolkit_version": toolkit_version(),
        **extra,
    }
