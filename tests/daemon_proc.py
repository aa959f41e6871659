"""Start `muninmaild` as a real process, the way systemd would, for black-box tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.kinds import needs_integration

DEMO_MAILDIR = Path(__file__).resolve().parent.parent / "muninmaild" / "demo" / "maildir"


def write_config(
    path: Path,
    state: Path,
    *,
    maildir: Path | None = DEMO_MAILDIR,
    db_url: str | None = None,
    extra: str = "",
) -> Path:
    db = db_url or f"sqlite+aiosqlite:///{state / 'muninmail.db'}"
    text = f"""
[daemon]
state_dir = "{state}"
control_socket = "{state}/control.sock"
log_level = "info"
drain_timeout = 5

[database]
url = "{db}"
"""
    if maildir is not None:
        text += f"""
[[accounts]]
name = "demo"
source = "maildir"
path = "{maildir}"
poll_interval = 1
backfill = "all"
"""
    path.write_text(text + extra)
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without IMAP_*, CEREBRAS_* and DATABASE_URL, which would steer the daemon."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAP_", "CEREBRAS_"))}
    env.pop("DATABASE_URL", None)
    env.pop("NOTIFY_SOCKET", None)
    env.pop("WATCHDOG_USEC", None)
    env.pop("JOURNAL_STREAM", None)
    return env | extra


def start(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    needs_integration("the daemon as a process")
    return subprocess.Popen(
        [sys.executable, "-m", "muninmaild", "--config", str(config), *args],
        env=env if env is not None else clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str], timeout: float = 15.0) -> tuple[int, str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def finish(proc: subprocess.Popen[str], timeout: float = 60.0) -> tuple[int, str, str]:
    """Wait for a process that ends by itself (--once, a refused start)."""
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err
