"""The user's reviewed extension of the scanner's allowlist.

The default gate fails on anything the scanner cannot prove safe, so a model with its own
layer classes fails until someone reviews them. The answer is a reviewed entry, never a lower
gate: each entry names one callable (``pkg.module.Class``) or one module's contents
(``pkg.module.*``) and says why it is safe. Entries can admit what the scanner does not know;
they never admit what it knows is dangerous (``os.system`` stays critical whatever the file
says).

File format (TOML), the same table the trust policy embeds under ``[scan]``::

    [[allow]]
    callable = "mylab.layers.GatedBlock"
    reason = "our layer; reviewed in PR 412: __setstate__ only assigns tensors"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glassbox.errors import InputError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?:\.\*)?$")


@dataclass(frozen=True)
class AllowEntry:
    callable: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"callable": self.callable, "reason": self.reason}


def parse_allowlist(data: dict[str, Any], where: str) -> list[AllowEntry]:
    """Entries of an ``allow`` array of tables (``{"allow": [{"callable", "reason"}]}``)."""
    raw = data.get("allow", [])
    if not isinstance(raw, list):
        raise InputError(f"{where}: 'allow' must be an array of tables")
    entries = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InputError(f"{where}: allow[{i}] must be a table")
        name = item.get("callable")
        reason = item.get("reason")
        if not isinstance(name, str) or not _NAME.match(name) or "." not in name:
            raise InputError(f"{where}: allow[{i}].callable must be 'module.name' or 'module.*'")
        if not isinstance(reason, str) or not reason.strip():
            raise InputError(f"{where}: allow[{i}] ({name}) has no reason; every entry is reviewed")
        extra = set(item) - {"callable", "reason"}
        if extra:
            raise InputError(f"{where}: allow[{i}] has unknown keys {sorted(extra)}")
        entries.append(AllowEntry(name, reason.strip()))
    return entries


def load_allowlist(path: Path) -> list[AllowEntry]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read allowlist ({exc.strerror or exc})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a valid TOML allowlist ({exc})") from exc
    return parse_allowlist(data, str(path))
