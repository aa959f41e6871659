"""The keywords a Dovecot mailbox shows after the demo's mail is triaged there.

    .venv/bin/python -m bench.demo_keywords

Appends the bundled demo Maildir's mail to the INBOX of a Dovecot of its own (as the tests run
it), runs `muninmaild --once` on that account with `write_keywords = true`, and prints each
message's flags beside its subject, and whether any message's `\\Seen` changed.
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.daemon_proc import DEMO_MAILDIR, write_config
from tests.peers.dovecot import PASSWORD, USER, Dovecot

FLAGS = re.compile(rb"UID (\d+) FLAGS \(([^)]*)\)")


def account(dovecot: Dovecot) -> str:
    return f"""
[[accounts]]
name = "mail"
source = "imap"
server = "127.0.0.1"
port = {dovecot.imap_port}
security = "starttls"
ca_file = "{dovecot.cert}"
username = "{USER}"
password = "{PASSWORD}"
write_keywords = true
"""


def subjects(dovecot: Dovecot) -> dict[int, str]:
    with dovecot.client() as imap:
        imap.select("INBOX", readonly=True)
        _, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    found: dict[int, str] = {}
    for item in data:
        if isinstance(item, tuple):
            uid = re.search(rb"UID (\d+)", item[0])
            if uid:
                header = email.message_from_bytes(item[1], policy=email.policy.default)
                found[int(uid.group(1))] = str(header["subject"])[:60]
    return found


def main() -> None:
    mail = [
        p.read_bytes() for sub in ("cur", "new") for p in sorted((DEMO_MAILDIR / sub).glob("*"))
    ]
    dovecot = Dovecot()
    state = Path(tempfile.mkdtemp(prefix="munin-keywords-"))
    try:
        dovecot.append(mail)
        before = dovecot.flags()
        config = write_config(
            state / "muninmaild.toml", state, maildir=None, extra=account(dovecot)
        )
        command = [sys.executable, "-m", "muninmaild", "--config", str(config), "--once"]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        print(f"muninmaild --once exit {done.returncode}")
        after = dovecot.flags()
        titles = subjects(dovecot)
        for uid, flags in sorted(after.items()):
            keywords = " ".join(sorted(f for f in flags if not f.startswith("\\"))) or "-"
            print(f"{uid:3} {keywords:60} {titles.get(uid, '')}")
        changed = [u for u in after if ("\\Seen" in after[u]) != ("\\Seen" in before[u])]
        print(f"\\Seen changed on {len(changed)} of {len(after)} messages")
    finally:
        dovecot.remove()
        shutil.rmtree(state)


if __name__ == "__main__":
    main()
