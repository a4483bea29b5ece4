"""A real hub process that stops dead at a chosen point of a publish, for the crash tests.

Run as ``python crashing_hub.py POINT MARKER DB BLOBS LOG_KEY PORT``. At POINT the request
writes the process id to MARKER and sleeps; the test then kills the process with SIGKILL,
exactly as a crash would. Fault injection is the only thing patched here: everything else is
the hub as ``glassbox hub serve`` runs it.

- ``upload``: a file is in staging, nothing is claimed yet;
- ``claimed``: the name is claimed, nothing is logged;
- ``commit``: statements are logged and blobs adopted, the release transaction never runs.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn

from glassbox.hub import service
from glassbox.hub.app import create_app
from glassbox.hub.db import HubDB


def main() -> None:
    point, marker, db_url, blobs, log_key, port = sys.argv[1:7]

    def stop_here() -> None:
        Path(marker).write_text(str(os.getpid()))
        time.sleep(3600)  # until SIGKILL

    if point == "upload":
        receive = service.Hub._receive

        def received(self: Any, *args: Any) -> Any:
            row = receive(self, *args)
            stop_here()
            return row

        service.Hub._receive = received  # type: ignore[method-assign]
    elif point == "claimed":
        service.Hub._record = lambda self, *a, **k: stop_here()  # type: ignore[method-assign]
    elif point == "commit":
        HubDB.insert_release = lambda self, *a, **k: stop_here()  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown fault point {point!r}")
    hub = service.open_hub(db_url, blobs, log_key, origin="hub.test/procs")
    app = create_app(hub, rate_per_minute=1000, close_hub=True)
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")


if __name__ == "__main__":
    main()
