"""The request bodies one mail costs, for each model backend and each mode of our model server.

    .venv/bin/python -m bench.request_bodies [MAIL_FILE]

For every pairing it runs `muninmaild --once` over a Maildir holding that one mail (the demo's
second mail by default) against `FakeModelServer(flavour=...)`, and prints the bodies the server
received, with the long texts cut to their first characters, and whether the mail completed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.daemon_proc import DEMO_MAILDIR, write_config
from tests.fakes.model_server import FakeModelServer

PAIRINGS = (
    ("cerebras", "cerebras", "gpt-oss-120b"),
    ("cerebras", "cerebras", "llama3.1-8b"),
    ("openai", "local", "qwen3:4b"),
    ("openai", "sloppy", "qwen3:4b"),
    ("openai", "no_json_schema", "qwen3:4b"),
)


def shortened(body: Any) -> Any:
    """The body with the prompt, the mail and the schema cut to what a reader needs."""
    body = json.loads(json.dumps(body))
    for message in body.get("messages", []):
        text = str(message.get("content", ""))
        if len(text) > 120:
            message["content"] = f"{text[:120]}... ({len(text)} characters)"
    schema = body.get("response_format", {}).get("json_schema")
    if schema:
        schema["schema"] = f"(the triage schema, {len(json.dumps(schema['schema']))} characters)"
    return body


def run(mail: Path, backend: str, flavour: str, model: str) -> None:
    state = Path(tempfile.mkdtemp(prefix="munin-bodies-"))
    try:
        maildir = state / "Maildir"
        for sub in ("new", "cur", "tmp"):
            (maildir / sub).mkdir(parents=True)
        shutil.copy(mail, maildir / "new" / mail.name.split(":")[0])
        with FakeModelServer(flavour=flavour) as server:
            base = server.base_url + ("/v1" if backend == "openai" else "")
            ai = f'\n[ai]\nbackend = "{backend}"\nbase_url = "{base}"\nmodel = "{model}"\n'
            config = write_config(state / "muninmaild.toml", state, maildir=maildir, extra=ai)
            keys = {"CEREBRAS_API_KEY": "example-key", "OPENAI_API_KEY": "example-key"}
            done = subprocess.run(
                [sys.executable, "-m", "muninmaild", "--config", str(config), "--once"],
                capture_output=True,
                text=True,
                env=os.environ | keys,
                check=False,
            )
            print(f"== backend {backend}, server mode {flavour}, model {model}")
            print(f"   --once exit {done.returncode}, requests {server.requests}")
            for n, body in enumerate(server.last_bodies(), 1):
                print(f"request {n}: {json.dumps(shortened(body), ensure_ascii=False, indent=1)}")
    finally:
        shutil.rmtree(state)


def main() -> None:
    mails = sorted(p for sub in ("cur", "new") for p in (DEMO_MAILDIR / sub).glob("*"))
    mail = Path(sys.argv[1]) if len(sys.argv) > 1 else mails[1]
    for backend, flavour, model in PAIRINGS:
        run(mail, backend, flavour, model)


if __name__ == "__main__":
    main()
