"""The whole story in one run: build, sign, log, scan, audit; then tamper and audit again.

Everything uses the embedded defaults (a fresh key, the local SQLite log under the data
directory), so it needs no set-up. Each step is one call into a part's public API; the same steps
are the commands a producer and a consumer would run by hand (printed as it goes).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from glassbox.audit.context import AuditOptions
from glassbox.audit.engine import AuditReport, audit_model
from glassbox.audit.report_html import write_html
from glassbox.audit.verdict import LINKS, Verdict
from glassbox.errors import InputError

MARKER = ".glassbox-quickstart"
_PACKAGE = Path(__file__).resolve().parents[1]


def _default_recipe() -> Path:
    """The digits example: a wheel carries it as ``glassbox/examples/digits`` (pyproject's
    force-include), a checkout at the repository root (``src/glassbox/`` -> ``examples/``)."""
    candidates = [
        root / "examples" / "digits" / "recipe.toml" for root in (_PACKAGE, _PACKAGE.parents[1])
    ]
    return next((c for c in candidates if c.is_file()), candidates[-1])


DEFAULT_RECIPE = _default_recipe()


@dataclass
class QuickstartResult:
    workdir: Path
    model: Path
    report: AuditReport
    report_html: Path
    tampered_report: AuditReport
    tampered_html: Path
    steps: list[tuple[str, float]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The honest release passes every link the default policy requires, and the tampered
        copy is caught."""
        return self.report.exit_code == 0 and self.tampered_report.exit_code == 1


def run_quickstart(
    workdir: Path,
    *,
    recipe: Path | None = None,
    say: Callable[[str], None] = print,
) -> QuickstartResult:
    """Run every step in ``workdir`` (created; reused only if an earlier quickstart made it)."""
    from glassbox.pipeline import build
    from glassbox.scan import attest_scan, scan_path
    from glassbox.sign import (
        generate_private_key,
        read_bundle,
        sign_model,
        write_bundle,
        write_keypair,
    )
    from glassbox.tlog import make_submission, open_log, parse_entry

    recipe = (recipe or DEFAULT_RECIPE).absolute()
    # Absolute: the build's training child runs in its own working directory.
    workdir = workdir.absolute()
    if not recipe.is_file():
        raise InputError(f"{recipe}: recipe not found")
    _prepare(workdir)
    steps: list[tuple[str, float]] = []

    def step(name: str, started: float) -> None:
        steps.append((name, time.monotonic() - started))

    t = time.monotonic()
    key = generate_private_key()
    _, pub = write_keypair(key, workdir / "producer")
    step("key", t)
    say(f"1. created a signing key: {pub} (glassbox keygen)")

    t = time.monotonic()
    out = workdir / "release"
    built = build(recipe, out, key=key, keep_checkpoints=True)
    model = built.model_dir
    step("build", t)
    say(f"2. built {recipe.parent.name} from its recipe: {model} (glassbox build)")

    t = time.monotonic()
    signed = sign_model(model, key)
    step("sign", t)
    say(f"3. signed it: {signed.signature_path} (glassbox sign)")

    t = time.monotonic()
    report = scan_path(model)
    scan_path_out = out / f"{model.name}.scan.json"
    write_bundle(attest_scan(report, key), scan_path_out)
    step("scan", t)
    say(
        f"4. scanned {report.files_scanned} files, {len(report.findings)} findings; "
        f"attestation {scan_path_out} (glassbox scan --attest)"
    )

    t = time.monotonic()
    log = open_log()
    try:
        public = key.public_key()
        appended = log.add(parse_entry(make_submission(read_bundle(signed.signature_path), public)))
        if built.bundle_path is not None:
            log.add(parse_entry(make_submission(read_bundle(built.bundle_path), public)))
        log.add(parse_entry(make_submission(read_bundle(scan_path_out), public)))
        proof_path = out / f"{model.name}.proof.json"
        log.proof_bundle(appended.index).write(proof_path)
    finally:
        log.close()
    step("log", t)
    say(f"5. logged it in the local log, entry {appended.index}: {proof_path} (glassbox log add)")

    t = time.monotonic()
    options = AuditOptions(keys=(pub,))
    audit = audit_model(model, options)
    html = write_html(audit, workdir / "report.html")
    step("audit", t)
    say(f"6. audited it (glassbox audit {model} --key {pub} --html {html})")

    t = time.monotonic()
    tampered_out = workdir / "tampered"
    shutil.copytree(out, tampered_out)
    tampered_model = tampered_out / model.name
    weights = _weights_file(tampered_model)
    _flip_last_byte(weights)
    tampered = audit_model(tampered_model, options)
    tampered_html = write_html(tampered, workdir / "report-tampered.html")
    step("tamper+audit", t)
    say(f"7. changed one byte of {weights} and audited the copy again")
    return QuickstartResult(workdir, model, audit, html, tampered, tampered_html, steps)


def _prepare(workdir: Path) -> None:
    """Create ``workdir``, or clear a previous quickstart's outputs; never touch anything else."""
    if workdir.exists():
        if not workdir.is_dir():
            raise InputError(f"{workdir}: exists and is not a directory")
        if any(workdir.iterdir()) and not (workdir / MARKER).is_file():
            raise InputError(f"{workdir}: not empty and not made by quickstart; choose another")
        for name in ("release", "tampered"):
            target = workdir / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
        for name in ("producer.key", "producer.pub", "report.html", "report-tampered.html"):
            (workdir / name).unlink(missing_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("created by glassbox quickstart; safe to delete\n")


def _weights_file(model: Path) -> Path:
    for pattern in ("*.safetensors", "*.bin", "*.pt", "*"):
        found = sorted(p for p in model.glob(pattern) if p.is_file() and p.name != "model.sig")
        if found:
            return found[0]
    raise InputError(f"{model}: the build produced no files to tamper with")


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def outcome_lines(result: QuickstartResult) -> list[str]:
    """The closing lines: what every link returned on each copy, and what the tampering broke.

    Only a link that *failed* on the tampered copy after passing on the release caught it; one
    that became unknown (say, the log has no entry for the changed bytes) is reported as that,
    not as a catch.
    """
    honest = {link.link: link.verdict for link in result.report.links}
    tampered = {link.link: link.verdict for link in result.tampered_report.links}
    caught = [n for n in LINKS if honest[n] is Verdict.PASS and tampered[n] is Verdict.FAIL]
    unsure = [n for n in LINKS if honest[n] is Verdict.PASS and tampered[n] is Verdict.UNKNOWN]
    verdict = f"caught by: {', '.join(caught) or 'nothing'} (fail)"
    if unsure:
        verdict += f"; unknown: {', '.join(unsure)}"
    return [
        f"honest release: {_outcome(result.report)}",
        f"tampered copy:  {_outcome(result.tampered_report)}",
        f"tampered copy {verdict}",
        f"report: {result.report_html}",
        f"tampered report: {result.tampered_html}",
    ]


def _outcome(report: AuditReport) -> str:
    """``pass (exit 0): integrity pass, ...; openness fail (advisory)``: every link's verdict."""
    links = ", ".join(
        f"{link.link} {link.verdict.value}"
        + ("" if link.link in report.required else " (advisory)")
        for link in report.links
    )
    return f"{report.overall.value} (exit {report.exit_code}): {links}"
