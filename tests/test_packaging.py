"""The wheel holds every module and data file of the five packages, and nothing else.

An editable install (what ``make`` does) reads the source tree, so a package left out of the
wheel's configuration goes unnoticed until a user runs ``pip install .``: ``simulator.kernels``
was missing that way.  This builds the wheel and compares it with the files on disk.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("traces", "simulator", "theory", "experiments", "gpu_collect")
SHIPPED = {".py", ".json", ".jsonl", ".parquet"}


def _source_files() -> set[str]:
    out = set()
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*"):
            if p.is_file() and p.suffix in SHIPPED and "__pycache__" not in p.parts:
                out.add(p.relative_to(ROOT).as_posix())
    return out


def test_wheel_holds_every_module_and_data_file(tmp_path: Path) -> None:
    # a copy, because setuptools reuses ./build/lib: files of an earlier build would hide a gap
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "*.pyc")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, src / pkg, ignore=skip)
    for f in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / f, src / f)
    # no build isolation: the venv's setuptools (pulled in by torch) builds it offline in seconds
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path / "dist"), str(src)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = (tmp_path / "dist").glob("specregret-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n for n in names if ".dist-info/" not in n}
    missing = sorted(_source_files() - shipped)
    extra = sorted(n for n in shipped if n.split("/")[0] not in PACKAGES)
    assert not missing, f"pyproject.toml [tool.setuptools]: the wheel lacks {missing[:8]}"
    assert not extra, f"pyproject.toml [tool.setuptools]: the wheel ships files outside the packages: {extra[:8]}"
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry).decode()
    for cmd in ("specregret-sim", "specregret-traces", "specregret-experiments", "specregret-collect"):
        assert cmd in scripts, f"pyproject.toml [project.scripts]: {cmd} is not in the wheel"
