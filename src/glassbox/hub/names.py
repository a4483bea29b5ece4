"""Names the hub accepts: ``org/name`` models, versions, and uploaded file paths.

Uploaded paths are hostile input: a path that is absolute, climbs (``..``), is not normalised,
holds a backslash or a control character, or names a hidden Glassbox file is refused before any
byte of it is written anywhere.
"""

from __future__ import annotations

import re

from glassbox.errors import InputError

_ORG = r"[a-z0-9][a-z0-9._-]{0,63}"
_MODEL = re.compile(rf"({_ORG})/([A-Za-z0-9][A-Za-z0-9._-]{{0,127}})")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
ORG = re.compile(_ORG)
MAX_PATH = 1024
MAX_FILES = 10_000


def split_model_name(name: str) -> tuple[str, str]:
    """``org/name`` -> (org, name); anything else is an ``InputError``."""
    match = _MODEL.fullmatch(name)
    if match is None or ".." in name:
        raise InputError(
            f"model name {name[:200]!r} is not 'org/name' (org: lower-case letters, digits, "
            "'.', '_', '-'; name: letters, digits, '.', '_', '-')"
        )
    return match.group(1), match.group(2)


def check_org(org: str) -> str:
    if ORG.fullmatch(org) is None or ".." in org:
        raise InputError(
            f"namespace {org[:200]!r} is not lower-case letters, digits, '.', '_', '-'"
        )
    return org


def check_version(version: str) -> str:
    if _VERSION.fullmatch(version) is None:
        raise InputError(f"version {version[:200]!r} is not letters, digits, '.', '_', '+', '-'")
    return version


def parse_ref(ref: str) -> tuple[str, str]:
    """``org/name@version`` -> (model name, version)."""
    name, sep, version = ref.rpartition("@")
    if not sep:
        raise InputError(f"{ref[:200]!r}: give NAME@VERSION (for example acme/tiny@1.0)")
    split_model_name(name)
    check_version(version)
    return name, version


def check_upload_path(path: str) -> str:
    """A relative POSIX path inside the model, or ``InputError`` naming the problem."""
    if not path or len(path) > MAX_PATH:
        raise InputError(f"file name {path[:100]!r} is empty or longer than {MAX_PATH}")
    if any(ord(c) < 32 or c == "\x7f" for c in path) or "\\" in path:
        raise InputError(f"file name {path[:100]!r} holds a control character or backslash")
    if path.startswith("/") or re.match(r"[A-Za-z]:", path):
        raise InputError(f"file name {path[:100]!r} is an absolute path; refusing it")
    parts = path.split("/")
    if ".." in parts:
        raise InputError(f"file name {path[:100]!r} escapes the model directory; refusing it")
    if any(p in ("", ".") for p in parts):
        raise InputError(f"file name {path[:100]!r} is not a normalised relative path")
    if parts[0] in ("model.sig", ".glassbox"):
        raise InputError(f"file name {path[:100]!r} is reserved (the signature lives beside it)")
    return path
