"""Which licences count as open, by SPDX identifier, from explicit reviewed lists.

Openness is decided from two allowlists, never by guessing from a licence's name: an unknown or
custom licence is "not on the reviewed list" and therefore not open. The lists were reviewed
against the OSI's list of approved licences (opensource.org/licenses) and the open data and
content licences that the Model Openness Framework v1.0 accepts (the LF AI & Data
model_openness_tool's licence table), both as of 2025. Adding a licence here is a deliberate,
reviewed change.

SPDX licence expressions (``MIT OR Apache-2.0``, ``GPL-2.0-only WITH Classpath-exception-2.0``)
are parsed, so a dual-licensed component is open when any branch is, and a conjunction only when
every part is. Hugging Face model cards write identifiers in lower case (``apache-2.0``); those
are matched case-insensitively to the canonical SPDX spelling.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from glassbox.errors import InputError

# OSI-approved licences (SPDX identifiers), reviewed against opensource.org/licenses.
OSI_APPROVED: frozenset[str] = frozenset(
    {
        "0BSD",
        "AAL",
        "AFL-1.1",
        "AFL-1.2",
        "AFL-2.0",
        "AFL-2.1",
        "AFL-3.0",
        "AGPL-3.0-only",
        "AGPL-3.0-or-later",
        "APL-1.0",
        "APSL-2.0",
        "Apache-1.1",
        "Apache-2.0",
        "Artistic-2.0",
        "BSD-1-Clause",
        "BSD-2-Clause",
        "BSD-2-Clause-Patent",
        "BSD-3-Clause",
        "BSD-3-Clause-LBNL",
        "BSL-1.0",
        "BlueOak-1.0.0",
        "CAL-1.0",
        "CDDL-1.0",
        "CECILL-2.1",
        "CPAL-1.0",
        "ECL-1.0",
        "ECL-2.0",
        "EFL-2.0",
        "EPL-1.0",
        "EPL-2.0",
        "EUPL-1.1",
        "EUPL-1.2",
        "GPL-2.0-only",
        "GPL-2.0-or-later",
        "GPL-3.0-only",
        "GPL-3.0-or-later",
        "ISC",
        "LGPL-2.1-only",
        "LGPL-2.1-or-later",
        "LGPL-3.0-only",
        "LGPL-3.0-or-later",
        "LPL-1.02",
        "MIT",
        "MIT-0",
        "MPL-1.1",
        "MPL-2.0",
        "MPL-2.0-no-copyleft-exception",
        "MS-PL",
        "MS-RL",
        "MulanPSL-2.0",
        "NCSA",
        "OFL-1.1",
        "OSL-3.0",
        "PostgreSQL",
        "Python-2.0",
        "UPL-1.0",
        "Unlicense",
        "ZPL-2.0",
        "ZPL-2.1",
        "Zlib",
    }
)

# Open data and open content licences (SPDX identifiers) accepted by MOF v1.0 for data,
# documentation and model parameters. Non-commercial (-NC) and no-derivatives (-ND) variants
# are deliberately absent: they restrict use, so they are not open.
OPEN_DATA: frozenset[str] = frozenset(
    {
        "CC0-1.0",
        "CC-BY-1.0",
        "CC-BY-2.0",
        "CC-BY-2.5",
        "CC-BY-3.0",
        "CC-BY-4.0",
        "CC-BY-SA-1.0",
        "CC-BY-SA-2.0",
        "CC-BY-SA-2.5",
        "CC-BY-SA-3.0",
        "CC-BY-SA-4.0",
        "CC-PDDC",
        "CDLA-Permissive-1.0",
        "CDLA-Permissive-2.0",
        "CDLA-Sharing-1.0",
        "ODC-By-1.0",
        "ODbL-1.0",
        "PDDL-1.0",
    }
)

# Deprecated SPDX identifiers still seen in the wild, mapped to their current spelling.
_DEPRECATED = {
    "GPL-2.0": "GPL-2.0-only",
    "GPL-2.0+": "GPL-2.0-or-later",
    "GPL-3.0": "GPL-3.0-only",
    "GPL-3.0+": "GPL-3.0-or-later",
    "LGPL-2.1": "LGPL-2.1-only",
    "LGPL-2.1+": "LGPL-2.1-or-later",
    "LGPL-3.0": "LGPL-3.0-only",
    "LGPL-3.0+": "LGPL-3.0-or-later",
    "AGPL-3.0": "AGPL-3.0-only",
}

_CANONICAL = {name.lower(): name for name in OSI_APPROVED | OPEN_DATA}
_CANONICAL.update({old.lower(): new for old, new in _DEPRECATED.items()})

_TOKEN = re.compile(r"\s*(\(|\)|[A-Za-z0-9.+:\-]+)")
_ID = re.compile(
    r"^[A-Za-z0-9.\-]+\+?$|^(DocumentRef-[A-Za-z0-9.\-]+:)?LicenseRef-[A-Za-z0-9.\-]+$"
)
_MAX_EXPRESSION = 1024


class LicenseKind(enum.Enum):
    """What a licence lets a component count as."""

    OSI = "osi-approved"
    OPEN_DATA = "open-data"
    NOT_OPEN = "not-open"
    NONE = "none"


def canonical_id(license_id: str) -> str:
    """The canonical SPDX spelling of ``license_id`` if it is on a reviewed list, else as given."""
    return _CANONICAL.get(license_id.strip().lower(), license_id.strip())


def kind_of(license_id: str) -> LicenseKind:
    """Classify one SPDX identifier (not an expression) against the reviewed lists."""
    ident = canonical_id(license_id)
    if ident in OSI_APPROVED:
        return LicenseKind.OSI
    if ident in OPEN_DATA:
        return LicenseKind.OPEN_DATA
    return LicenseKind.NOT_OPEN


@dataclass(frozen=True)
class LicenseExpr:
    """A parsed SPDX expression: a leaf (``op == "id"``), ``AND``, ``OR`` or ``WITH``."""

    op: str
    license_id: str = ""
    args: tuple[LicenseExpr, ...] = ()

    def ids(self) -> list[str]:
        """Every licence identifier named in the expression (exceptions excluded)."""
        if self.op == "id":
            return [self.license_id]
        if self.op == "WITH":
            return self.args[0].ids()
        return [i for arg in self.args for i in arg.ids()]

    def satisfies(self, accepted: Iterable[LicenseKind]) -> bool:
        """Whether a recipient may use the component under a licence of an ``accepted`` kind."""
        allowed = frozenset(accepted)
        if self.op == "id":
            return kind_of(self.license_id) in allowed
        if self.op == "WITH":
            # An SPDX exception only ever grants extra permissions: the base licence decides.
            return self.args[0].satisfies(allowed)
        if self.op == "OR":
            return any(arg.satisfies(allowed) for arg in self.args)
        return all(arg.satisfies(allowed) for arg in self.args)

    def __str__(self) -> str:
        if self.op == "id":
            return canonical_id(self.license_id)
        if self.op == "WITH":
            return f"{self.args[0]} WITH {self.args[1].license_id}"
        inner = f" {self.op} ".join(
            f"({arg})" if arg.op in {"AND", "OR"} and arg.op != self.op else str(arg)
            for arg in self.args
        )
        return inner


def parse_expression(text: str) -> LicenseExpr:
    """Parse an SPDX licence expression; raises ``InputError`` naming the problem."""
    if len(text) > _MAX_EXPRESSION:
        raise InputError(f"licence expression longer than {_MAX_EXPRESSION} characters")
    tokens: list[str] = []
    pos = 0
    stripped = text.strip()
    while pos < len(stripped):
        match = _TOKEN.match(stripped, pos)
        if match is None:
            raise InputError(f"licence expression {text!r}: unexpected {stripped[pos]!r}")
        tokens.append(match.group(1))
        pos = match.end()
    if not tokens:
        raise InputError("empty licence expression")
    parser = _Parser(text, tokens)
    expr = parser.parse_or(0)
    if parser.pos != len(tokens):
        raise InputError(f"licence expression {text!r}: unexpected {tokens[parser.pos]!r}")
    return expr


class _Parser:
    """Recursive descent over SPDX precedence: WITH binds tightest, then AND, then OR."""

    _MAX_DEPTH = 32

    def __init__(self, text: str, tokens: list[str]) -> None:
        self.text = text
        self.tokens = tokens
        self.pos = 0

    def _peek_keyword(self) -> str | None:
        if self.pos < len(self.tokens):
            word = self.tokens[self.pos].upper()
            if word in {"AND", "OR", "WITH"}:
                return word
        return None

    def parse_or(self, depth: int) -> LicenseExpr:
        args = [self.parse_and(depth)]
        while self._peek_keyword() == "OR":
            self.pos += 1
            args.append(self.parse_and(depth))
        return args[0] if len(args) == 1 else LicenseExpr("OR", args=tuple(args))

    def parse_and(self, depth: int) -> LicenseExpr:
        args = [self.parse_with(depth)]
        while self._peek_keyword() == "AND":
            self.pos += 1
            args.append(self.parse_with(depth))
        return args[0] if len(args) == 1 else LicenseExpr("AND", args=tuple(args))

    def parse_with(self, depth: int) -> LicenseExpr:
        base = self.parse_atom(depth)
        if self._peek_keyword() == "WITH":
            self.pos += 1
            exception = self._identifier()
            return LicenseExpr("WITH", args=(base, LicenseExpr("id", exception)))
        return base

    def parse_atom(self, depth: int) -> LicenseExpr:
        if depth > self._MAX_DEPTH:
            raise InputError(f"licence expression {self.text!r}: nested too deeply")
        if self.pos < len(self.tokens) and self.tokens[self.pos] == "(":
            self.pos += 1
            inner = self.parse_or(depth + 1)
            if self.pos >= len(self.tokens) or self.tokens[self.pos] != ")":
                raise InputError(f"licence expression {self.text!r}: missing ')'")
            self.pos += 1
            return inner
        return LicenseExpr("id", self._identifier())

    def _identifier(self) -> str:
        if self.pos >= len(self.tokens):
            raise InputError(f"licence expression {self.text!r}: ends too early")
        token = self.tokens[self.pos]
        if token in {"(", ")"} or self._peek_keyword() is not None or not _ID.match(token):
            raise InputError(f"licence expression {self.text!r}: expected a licence, got {token!r}")
        self.pos += 1
        return token
