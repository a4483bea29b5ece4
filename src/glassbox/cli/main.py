"""Entry point. Sub-commands are imported lazily so ``glassbox sign`` never pays for torch or
FastAPI; start-up time is part of the hashing benchmark."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from glassbox import __version__

# command name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "quickstart": "glassbox.cli.quickstart:quickstart",
    "audit": "glassbox.cli.audit:audit",
    "digest": "glassbox.cli.digest:digest",
    "dataset": "glassbox.cli.dataset:dataset",
    "keygen": "glassbox.cli.keys:keygen",
    "sign": "glassbox.cli.sign:sign",
    "verify": "glassbox.cli.sign:verify",
    "log": "glassbox.cli.log:log",
    "witness": "glassbox.cli.witness:witness",
    "build": "glassbox.cli.build:build",
    "rebuild": "glassbox.cli.build:rebuild",
    "spot-check": "glassbox.cli.build:spot_check",
    "scan": "glassbox.cli.scan:scan",
    "bom": "glassbox.cli.bom:bom",
    "hub": "glassbox.cli.hub:hub",
    "publish": "glassbox.cli.hub:publish",
    "pull": "glassbox.cli.hub:pull",
    "lineage": "glassbox.cli.lineage:lineage",
    "pipeline": "glassbox.cli.pipeline:pipeline",
    "label": "glassbox.cli.pipeline:label",
    "probe": "glassbox.cli.probe:probe",
}

HELP = {
    "quickstart": "Build, sign, log, scan and audit the digits example end to end.",
    "audit": "Walk the whole chain for a model and report, link by link, what holds.",
    "digest": "Hash a model (OMS-compatible manifest) or commit to a dataset.",
    "dataset": "Prove or verify that a record is in a committed dataset; diff two datasets.",
    "keygen": "Create a signing key pair (PEM).",
    "sign": "Sign a model in the OpenSSF model-signing (OMS) format.",
    "verify": "Verify a model's OMS signature and name any changed files.",
    "log": "Use or serve a transparency log.",
    "witness": "Run a witness that cosigns consistent log checkpoints.",
    "build": "Train a model from a recipe, hermetically, with SLSA provenance.",
    "rebuild": "Rebuild a model from its provenance and compare bit for bit.",
    "spot-check": "Replay random segments of a training trail and check them.",
    "scan": "Find malicious payloads in model files without executing them.",
    "bom": "Write a CycloneDX ML-BOM for a model.",
    "hub": "Run a Glassbox Hub: publish, pages, mirrors, gossip, bulk re-scans.",
    "publish": "Sign a model and publish it to a hub with its evidence.",
    "pull": "Download a release from a hub; move it into place only if your policy passes.",
    "lineage": "Say whether a model's weights derive from a named base model.",
    "pipeline": "Run or rebuild a pipeline of steps from upstream data to a model.",
    "label": "Sign label decisions (one attestation per labeller per batch).",
    "probe": "Run behaviour probes on a causal LM, signed; diff two versions' behaviour.",
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported only when invoked (or listed in ``--help``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("glassbox"):
                raise
            # An optional extra is missing: say which, instead of a traceback.
            missing = exc.name or "a dependency"
            raise click.UsageError(
                f"'{cmd_name}' needs {missing}; install the extra that provides it "
                "(see README: pip install 'glassbox[ml,server,postgres]')"
            ) from exc
        command: click.Command = getattr(module, attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing must not import every part (torch, FastAPI): use the static help lines.
        rows = [(name, HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="glassbox")
def cli() -> None:
    """Glassbox: check that a model is what it claims, is safe to load, and can be rebuilt."""


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="glassbox")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
