"""Regenerate docs/report.png: run the quickstart in a scratch directory, then photograph its
HTML report in headless Chromium (Debian's package; never ``playwright install``).

    python docs/make_screenshot.py [--chromium /usr/bin/chromium] [--out docs/report.png]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("report.png"))
    parser.add_argument("--tampered", action="store_true", help="photograph the tampered copy")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from glassbox.audit.quickstart import run_quickstart
    from glassbox.audit.report_html import CHROMIUM_ARGS

    with tempfile.TemporaryDirectory(prefix="glassbox-shot-") as scratch:
        os.environ["GLASSBOX_HOME"] = str(Path(scratch) / "home")
        result = run_quickstart(Path(scratch) / "quickstart", say=lambda _line: None)
        html = result.tampered_html if args.tampered else result.report_html
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=list(CHROMIUM_ARGS))
            page = browser.new_page(viewport={"width": 1180, "height": 1000})
            page.goto(html.as_uri())
            page.locator("#link-provenance > summary").click()
            page.screenshot(path=str(args.out), full_page=False)
            browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
