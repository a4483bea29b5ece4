"""Where Glassbox keeps user state (keys, the embedded log, caches).

``GLASSBOX_HOME`` overrides everything, so tests and CI never touch a real user's data.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The directory for durable state (embedded log, keys); created on first use."""
    override = os.environ.get("GLASSBOX_HOME")
    if override:
        base = Path(override)
    else:
        import platformdirs  # only here: it costs several ms of every command's start-up

        base = Path(platformdirs.user_data_dir("glassbox"))
    base.mkdir(parents=True, exist_ok=True)
    return base


def cache_dir() -> Path:
    """The directory for disposable state (digest cache); safe to delete at any time."""
    override = os.environ.get("GLASSBOX_HOME")
    if override:
        base = Path(override) / "cache"
    else:
        import platformdirs

        base = Path(platformdirs.user_cache_dir("glassbox"))
    base.mkdir(parents=True, exist_ok=True)
    return base
