"""`muninmaild`: parse arguments, load the configuration, run the daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from muninmaild import __version__
from muninmaild.config import loader, show
from muninmaild.config.settings import Settings
from muninmaild.errors import ConfigError, StoreError
from muninmaild.redact import Redactor
from muninmaild.service import logs

EX_CONFIG = 78
log = logging.getLogger("muninmaild")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="muninmaild", description="muninmail triage daemon")
    p.add_argument("--config", type=Path, help=f"TOML file (default {loader.DEFAULT_PATH})")
    p.add_argument(
        "--check-config",
        action="store_true",
        help="print the effective configuration, secrets masked, and exit",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="fetch what is there, process the queue, print a report and exit",
    )
    p.add_argument("--version", action="version", version=f"muninmaild {__version__}")
    return p


def load(path: Path | None) -> Settings:
    """The configuration, checked also for what only the model's side knows (schema limits)."""
    settings = loader.load(path)
    from muninmaild.ai.factory import check_settings  # no client library: it loads lazily

    check_settings(settings.ai)
    return settings


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load(args.config)
    except ConfigError as exc:
        # Logging is not set up yet: under journald the <3> prefix files the line as an error.
        prefix = "<3>" if logs.journal_stream() else ""
        print(f"{prefix}muninmaild: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    if args.check_config:
        sys.stdout.write(show.render(settings))
        return 0
    redact = Redactor(settings.secrets())
    logs.setup(settings.daemon.log_level, redact)
    from muninmaild.service import daemon  # the heavy imports, after the cheap checks

    try:
        return asyncio.run(
            daemon.run(settings, redact, once=args.once, reload_settings=lambda: load(args.config))
        )
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return EX_CONFIG
    except StoreError as exc:
        log.error("database error: %s", exc)
        return 1
    except Exception:
        log.exception("muninmaild stopped on an unexpected error")
        return 1


if __name__ == "__main__":
    sys.exit(main())
