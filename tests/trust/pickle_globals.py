"""Globals for the unpickler's allow-entry tests: one harmless class the scanner does not know,
and a dangerous callable re-exported under a harmless name."""

from __future__ import annotations

import os


class Reviewed:
    """A user's class a policy may allow after review: it only keeps a value."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __reduce__(self) -> tuple[type[Reviewed], tuple[int]]:
        return (Reviewed, (self.value,))


# A module may re-export anything: ``pickle_globals.run`` is ``os.system`` by another name.
run = os.system
