"""What a run ran on: Python, the libraries that shape a model, and the code version."""

from __future__ import annotations

import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata

from django.conf import settings

LIBRARIES = ("scikit-surprise", "numpy", "scipy", "pandas", "Django", "celery")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def code_version() -> dict:
    """The git commit (and whether the tree had local changes), else the package version."""
    base = str(settings.BASE_DIR)
    try:
        commit = subprocess.run(["git", "-C", base, "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", base, "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10).stdout.strip())
        return {"source": "git", "commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import tomllib

        with open(settings.BASE_DIR / "pyproject.toml", "rb") as handle:
            version = tomllib.load(handle)["project"]["version"]
    except (OSError, KeyError, ValueError):
        version = _version("usher") or "unknown"
    return {"source": "package", "version": version}


def environment_capture() -> dict:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "code": code_version(),
    }
