"""Policies defined outside the package: a module or ``.py`` file whose classes use
``@register``, named with ``--policy-module`` (or ``RunConfig.policy_modules``), or a package
that declares the entry-point group ``specregret.policies``.

A module is resolved to its file once, in the process that reads the configuration, and
worker processes (local or Ray) load that file, so a policy in the user's working directory
reaches every worker whatever its ``sys.path`` or working directory.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib import metadata
from pathlib import Path

from .errors import PolicyError

ENTRY_POINT_GROUP = "specregret.policies"
_LOADED: dict[str, str] = {}  # file path -> module name


def resolve_module(ref: str) -> str:
    """The absolute path of the file that defines ``ref`` (a module name or a ``.py`` path)."""
    if ref.endswith(".py") or "/" in ref:
        path = Path(ref).expanduser().resolve()
        if not path.is_file():
            raise PolicyError(f"--policy-module {ref}: file not found")
        return str(path)
    try:
        spec = importlib.util.find_spec(ref)
    except (ImportError, ValueError) as exc:
        raise PolicyError(f"--policy-module {ref}: cannot import ({exc})") from None
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        raise PolicyError(f"--policy-module {ref}: no module of that name on the Python path "
                          f"(give a module name or a path to a .py file)")
    return str(Path(spec.origin).resolve())


def load_module_file(path: str) -> None:
    """Import the file at ``path`` once per process (its ``@register`` calls fill the registry)."""
    if path in _LOADED:
        return
    name = f"specregret_user_{Path(path).stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PolicyError(f"--policy-module {path}: not a Python module")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # pickling and dataclasses look the module up by name
    try:
        spec.loader.exec_module(mod)
    except PolicyError as exc:  # e.g. a class that takes a built-in's name
        del sys.modules[name]
        raise PolicyError(f"--policy-module {path}: {exc}") from None
    except SystemExit as exc:  # sys.exit() at import would end the run with no word
        del sys.modules[name]
        raise PolicyError(f"--policy-module {path}: importing it called sys.exit({exc.code!r}); a policy module "
                          f"must not exit") from None
    except Exception as exc:  # the user's code: one line, not a traceback
        del sys.modules[name]
        raise PolicyError(f"--policy-module {path}: importing it failed: {type(exc).__name__}: {exc}") from None
    _LOADED[path] = name


def load_entry_points() -> None:
    """Import every module registered under the ``specregret.policies`` entry-point group."""
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except (Exception, SystemExit) as exc:
            raise PolicyError(f"entry point {ENTRY_POINT_GROUP}:{ep.name} ({ep.value}) failed to load: "
                              f"{type(exc).__name__}: {exc}") from None
