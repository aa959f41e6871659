"""muninmaild under a real systemd 252: the installed units, journald, the watchdog, activation.

One boot serves the module (tests/peers/systemd_ns.py): `make install` into a staging folder laid
over /usr/local, its units in the boot folder, the muninmail user made by systemd-sysusers from
the installed sysusers.d file, and a configuration reading a Maildir that the tests deliver to.
The tests run in file order and share the daemon's state, as an administrator's commands would.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import peer_missing
from tests.daemon_proc import DEMO_MAILDIR
from tests.peers.dovecot import PASSWORD as DOVECOT_PASSWORD
from tests.peers.dovecot import USER as DOVECOT_USER
from tests.peers.dovecot import Dovecot
from tests.peers.systemd_ns import SystemdNamespace, available, write_units

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/usr/local"
MAILDIR = "/var/lib/munin-test/maildir"
MUNINCTL = f"{PREFIX}/bin/muninctl"
SERVICE = "muninmaild.service"
MEMBER, OUTSIDER = "munintester", "outsider"
CONFIG = f"""
[daemon]
log_level = "{{level}}"
drain_timeout = 5

[[accounts]]
name = "demo"
source = "maildir"
path = "{MAILDIR}"
poll_interval = 1
"""


@dataclass
class Site:
    ns: SystemdNamespace
    maildir: Path  # the host side of MAILDIR

    def muninctl(self, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.ns.run(MUNINCTL, *args, user=user)

    def status(self) -> dict[str, object]:
        result: dict[str, object] = json.loads(self.ns.check(MUNINCTL, "--json", "status"))
        return result

    def queue(self) -> dict[str, int]:
        counts: dict[str, int] = self.status()["queue"]  # type: ignore[assignment]
        return counts

    def messages(self) -> list[dict[str, object]]:
        out = self.ns.check(MUNINCTL, "--json", "list", "--limit", "1000")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def wait_idle(self) -> None:
        self.ns.check(MUNINCTL, "wait-idle", "--timeout", "30", timeout=45)

    def deliver(self, subject: str) -> None:
        """A new message, delivered the Maildir way: written in tmp/, renamed into new/."""
        name = f"{time.time_ns()}.M1P1.munintest"
        text = (
            f"From: Test Sender <sender@example.com>\nTo: admin@example.com\n"
            f"Subject: {subject}\nMessage-ID: <{name}@example.com>\n\nPlease reply.\n"
        )
        (self.maildir / "tmp" / name).write_text(text)
        (self.maildir / "tmp" / name).chmod(0o644)
        (self.maildir / "tmp" / name).rename(self.maildir / "new" / name)

    def mail_count(self) -> int:
        return sum(1 for _ in (self.maildir / "new").iterdir()) + sum(
            1 for _ in (self.maildir / "cur").iterdir()
        )

    def configure(self, text: str) -> None:
        self.ns.write("/etc/muninmail/muninmaild.toml", text)

    def show(self) -> dict[str, str]:
        return self.ns.show(SERVICE)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not available() or not Path("/usr/bin/python3").exists():
        peer_missing("systemd in a throwaway namespace (root, unshare, overlayfs)")
    work = tmp_path_factory.mktemp("systemd")
    dest = work / "dest"
    subprocess.run(
        ["make", "-s", "-C", str(ROOT), "install", f"DESTDIR={dest}", f"PREFIX={PREFIX}"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    units = sorted((dest / PREFIX.lstrip("/") / "lib/systemd/system").iterdir())
    write_units(work / "units", units)
    maildir = work / "maildir"
    shutil.copytree(DEMO_MAILDIR, maildir, ignore=shutil.ignore_patterns("README*"))
    for sub in ("cur", "tmp"):
        (maildir / sub).mkdir(exist_ok=True)
    subprocess.run(["chmod", "-R", "a+rX", str(maildir)], check=True)
    ns = SystemdNamespace(
        work,
        work / "units",
        overlays={PREFIX: dest / PREFIX.lstrip("/")},
        binds={MAILDIR: maildir},
    )
    try:
        ns.boot()
        _provision(ns)
        yield Site(ns, maildir)
    finally:
        ns.stop()


def _provision(ns: SystemdNamespace) -> None:
    """What the package's postinst does, plus two users to try muninctl with.

    The machine may have run muninmail already: its users, /etc/muninmail and its queue in
    /var/lib/muninmail are seen inside too (under the overlays, so nothing here changes them).
    The tests start from a fresh install: the folders are emptied inside only, and users that
    exist are used as they are."""
    ns.check("rm", "-rf", "/etc/muninmail", "/var/lib/muninmail")  # in the overlays only
    ns.check("systemd-sysusers", f"{PREFIX}/lib/sysusers.d/muninmail.conf")
    for user in (MEMBER, OUTSIDER):
        if ns.run("id", "-u", user).returncode != 0:
            ns.check("useradd", "--no-create-home", user)
    ns.check("usermod", "--append", "--groups", "muninmail", MEMBER)
    if "muninmail" in ns.check("id", "-nG", OUTSIDER).split():
        ns.check("gpasswd", "--delete", OUTSIDER, "muninmail")
    ns.check("install", "-d", "-o", "root", "-g", "muninmail", "-m", "0750", "/etc/muninmail")
    ns.write("/etc/muninmail/muninmaild.toml", CONFIG.format(level="info"))


def _messages(entries: list[dict[str, object]]) -> list[str]:
    return [str(e.get("MESSAGE", "")) for e in entries]


def test_installed_units_verify_cleanly_and_score_at_most_1_2(site: Site) -> None:
    unit_dir = f"{PREFIX}/lib/systemd/system"
    verify = site.ns.run(
        "systemd-analyze",
        "verify",
        f"{unit_dir}/muninmaild.service",
        f"{unit_dir}/muninmaild.socket",
    )
    assert verify.returncode == 0 and verify.stdout + verify.stderr == ""
    assert f"ExecStart={PREFIX}/bin/muninmaild " in site.ns.check("cat", f"{unit_dir}/{SERVICE}")
    # The source unit too (security needs no binary); run inside, as systemd-analyze writes /run.
    site.ns.check("mkdir", "-p", "/run/munin-source")
    site.ns.write(f"/run/munin-source/{SERVICE}", (ROOT / "systemd" / SERVICE).read_text())
    for unit in (f"{unit_dir}/{SERVICE}", f"/run/munin-source/{SERVICE}"):
        out = site.ns.check("systemd-analyze", "security", "--offline=true", "--no-pager", unit)
        score = re.search(r"Overall exposure level for \S+: ([\d.]+)", out)
        assert score is not None and float(score.group(1)) <= 1.2, out[-400:]


def test_start_reaches_active_with_the_queue_counts_in_its_status(site: Site) -> None:
    assert site.ns.run("test", "-e", "/etc/muninmail/credentials").returncode == 1
    # Type=notify: start returns once the daemon said READY=1. (How soon: bench P7.)
    result = site.ns.systemctl("start", SERVICE)
    assert result.returncode == 0, result.stderr
    show = site.show()
    assert (show["ActiveState"], show["SubState"]) == ("active", "running")
    assert re.fullmatch(
        r"pending \d+, processing \d+, completed \d+, failed \d+", show["StatusText"]
    )
    # A missing credentials folder is made by systemd (ConfigurationDirectory=), not a failure.
    assert site.ns.run("test", "-d", "/etc/muninmail/credentials").returncode == 0
    total = site.mail_count()
    site.ns.wait_for(
        lambda: f"completed {total}," in site.show()["StatusText"], 20, "the status line's counts"
    )


def test_muninctl_works_through_the_activated_socket(site: Site) -> None:
    site.ns.check("systemctl", "stop", SERVICE)
    assert site.show()["ActiveState"] == "inactive"
    assert site.ns.show("muninmaild.socket")["ActiveState"] == "active"
    # The connection itself starts the daemon, which takes over the socket systemd holds.
    result = site.muninctl("status")
    assert result.returncode == 0, result.stderr
    assert "queue:" in result.stdout
    assert site.show()["ActiveState"] == "active"
    member = site.muninctl("--json", "status", user=MEMBER)
    assert member.returncode == 0, member.stderr
    assert json.loads(member.stdout)["queue"]["completed"] == site.mail_count()
    outsider = site.muninctl("status", user=OUTSIDER)
    assert outsider.returncode == 77, outsider.stdout + outsider.stderr


def test_reload_applies_a_changed_setting(site: Site) -> None:
    """log_level "debug" after `systemctl reload`: the next message's history shows its debug
    line, under its MUNIN_EMAIL_ID= field."""
    pid = site.show()["MainPID"]
    old = site.messages()[0]["id"]
    assert not any("completed" in m for m in _messages(site.ns.journal(f"MUNIN_EMAIL_ID={old}")))
    site.configure(CONFIG.format(level="debug"))
    cursor = site.ns.cursor()
    site.ns.check("systemctl", "reload", SERVICE)
    site.ns.wait_for(
        lambda: "reloaded" in _messages(site.ns.journal("-u", SERVICE, after=cursor)),
        15,
        "the daemon to log that it reloaded",
    )
    site.deliver("After the reload")
    site.ns.check(MUNINCTL, "fetch-now")
    site.wait_idle()
    new = next(m["id"] for m in site.messages() if m["subject"] == "After the reload")
    history = site.ns.journal(f"MUNIN_EMAIL_ID={new}")
    assert f"message {new} completed" in _messages(history)
    assert site.show()["MainPID"] == pid  # reloaded in place, not restarted


def test_journal_priority_err_shows_error_lines_only(site: Site) -> None:
    cursor = site.ns.cursor()
    site.configure('[daemon]\nlog_level = "loud"\n')
    site.ns.check("systemctl", "reload", SERVICE)
    site.ns.wait_for(
        lambda: any("reload refused" in m for m in _messages(_errors_since(site, cursor))),
        15,
        "the refused reload's error line",
    )
    errors = site.ns.journal("-u", SERVICE, "-p", "err")
    shown = {e["__CURSOR"] for e in errors}
    recent = site.ns.journal("-u", SERVICE, after=cursor)
    assert all(int(str(e["PRIORITY"])) <= 3 for e in errors)
    hidden = [e for e in recent if int(str(e["PRIORITY"])) > 3]
    assert hidden and not any(e["__CURSOR"] in shown for e in hidden)  # "Reloading ..." etc.
    assert any("daemon.log_level" in m for m in _messages(_errors_since(site, cursor)))
    assert site.show()["ActiveState"] == "active"
    site.configure(CONFIG.format(level="info"))
    site.ns.check("systemctl", "reload", SERVICE)


def _errors_since(site: Site, cursor: str) -> list[dict[str, object]]:
    """`journalctl -u muninmaild -p err`, limited to entries after `cursor`. (journalctl 252
    finds nothing when --after-cursor and -p are combined, so the cursors are compared here.)"""
    recent = {e["__CURSOR"] for e in site.ns.journal("-u", SERVICE, after=cursor)}
    return [e for e in site.ns.journal("-u", SERVICE, "-p", "err") if e["__CURSOR"] in recent]


def test_watchdog_kills_a_frozen_daemon_and_no_message_is_lost(site: Site) -> None:
    dropin = site.ns.units / f"{SERVICE}.d"
    dropin.mkdir(exist_ok=True)
    (dropin / "watchdog.conf").write_text("[Service]\nWatchdogSec=3s\n")
    try:
        site.ns.check("systemctl", "daemon-reload")
        site.ns.check("systemctl", "restart", SERVICE)
        before = site.show()
        assert before["WatchdogUSec"] == "3s"
        cursor = site.ns.cursor()
        site.ns.check("kill", "-STOP", before["MainPID"])
        subjects = [f"Frozen {n}" for n in range(5)]
        for subject in subjects:  # mail that arrives while the daemon hangs
            site.deliver(subject)
        site.ns.wait_for(
            lambda: (
                "muninmaild.service: Failed with result 'watchdog'."
                in _messages(site.ns.journal("-u", SERVICE, after=cursor))
            ),
            20,
            "the watchdog to fire",
        )
        site.ns.wait_for(
            lambda: _restarted(site.show(), before), 30, "systemd to restart the daemon"
        )
        site.wait_idle()
        queue = site.queue()
        assert queue == {
            "pending": 0,
            "processing": 0,
            "completed": site.mail_count(),
            "failed": 0,
        }
        done = {m["subject"] for m in site.messages() if m["status"] == "completed"}
        assert set(subjects) <= done
    finally:
        shutil.rmtree(dropin)
        site.ns.check("systemctl", "daemon-reload")


def _restarted(now: dict[str, str], before: dict[str, str]) -> bool:
    return (
        now["ActiveState"] == "active"
        and int(now["NRestarts"]) == int(before["NRestarts"]) + 1
        and now["MainPID"] not in ("0", before["MainPID"])
    )


def test_stop_sends_stopping_and_exits_0_within_the_stop_timeout(site: Site) -> None:
    site.ns.check("systemctl", "restart", SERVICE)  # without the test watchdog
    pid = site.show()["MainPID"]
    site.ns.check("systemctl", "log-level", "debug")  # systemd logs each notification it gets
    cursor = site.ns.cursor()
    try:
        site.ns.check("systemctl", "stop", SERVICE)
    finally:
        site.ns.check("systemctl", "log-level", "info")
    show = site.show()
    assert (show["ActiveState"], show["Result"]) == ("inactive", "success")
    # Exited with status 0: a stop that outlasted TimeoutStopUSec would end in Result=timeout
    # and a SIGKILL (ExecMainCode 2, killed).
    assert (show["ExecMainCode"], show["ExecMainStatus"]) == ("1", "0")
    messages = _messages(site.ns.journal("-u", SERVICE, after=cursor))
    assert any(
        m.startswith(f"muninmaild.service: Got notification message from PID {pid} (STOPPING=1")
        for m in messages
    ), messages
    assert "stopped" in messages


def test_a_broken_config_ends_failed_with_a_readable_line_and_no_restart_loop(
    site: Site,
) -> None:
    site.configure('[daemon]\nlog_levle = "info"\n')
    restarts = int(site.show()["NRestarts"])
    cursor = site.ns.cursor()
    assert site.ns.systemctl("start", SERVICE).returncode != 0
    show = site.show()
    assert (show["ActiveState"], show["SubState"], show["ExecMainStatus"]) == (
        "failed",
        "failed",
        "78",
    )
    # A restart to come would show as SubState "auto-restart" for RestartSec; "failed" means
    # systemd has decided against one (RestartPreventExitStatus=78).
    assert int(site.show()["NRestarts"]) == restarts
    errors = _messages(_errors_since(site, cursor))
    line = "muninmaild: configuration error: daemon.log_levle"
    assert any(m.startswith(line) for m in errors), errors
    site.configure(CONFIG.format(level="info"))
    site.ns.check("systemctl", "reset-failed", SERVICE)


DIGEST = "muninmail-digest"


def test_the_digest_timer_verifies_and_its_service_delivers_as_a_socket_group_member(
    site: Site, dovecot: Dovecot
) -> None:
    """The packaged timer is installed but not enabled; its service, started as the timer
    starts it, runs `muninctl digest --deliver` as a dynamic user in the socket's group, and
    the daemon appends the digest to a real Dovecot once a day."""
    unit_dir = f"{PREFIX}/lib/systemd/system"
    units = [f"{unit_dir}/{DIGEST}.timer", f"{unit_dir}/{DIGEST}.service"]
    verify = site.ns.run("systemd-analyze", "verify", *units)
    assert verify.returncode == 0 and verify.stdout + verify.stderr == "", verify.stderr
    assert f"ExecStart={PREFIX}/bin/muninctl digest --deliver" in site.ns.check("cat", units[1])
    assert site.ns.run("systemctl", "is-enabled", f"{DIGEST}.timer").stdout.strip() == "disabled"
    calendar = site.ns.show(f"{DIGEST}.timer")["TimersCalendar"]
    assert "OnCalendar=*-*-* 07:00:00" in calendar

    dovecot.append([b"From: Ann <ann@example.com>\r\nSubject: Hi\r\n\r\nPlease reply.\r\n"])
    imap = (
        f'\n[[accounts]]\nname = "mail"\nserver = "127.0.0.1"\nport = {dovecot.imap_port}\n'
        f'security = "none"\nusername = "{DOVECOT_USER}"\npassword = "{DOVECOT_PASSWORD}"\n'
        '\n[digest]\naccount = "mail"\n'
    )
    site.configure(CONFIG.format(level="info") + imap)
    site.ns.check("systemctl", "restart", SERVICE)
    site.wait_idle()
    cursor = site.ns.cursor()
    for _ in range(2):  # the second run of the day appends nothing
        started = site.ns.systemctl("start", f"{DIGEST}.service", timeout=180)
        assert started.returncode == 0, started.stderr + _journal_text(site, cursor)
        assert site.ns.show(f"{DIGEST}.service")["Result"] == "success"
    lines = _messages(site.ns.journal("-u", f"{DIGEST}.service", after=cursor))
    assert any(re.fullmatch(r"digest 24h/\S+ delivered to mail/INBOX", m) for m in lines), lines
    assert any("is already in mail/INBOX" in m and "nothing appended" in m for m in lines)
    with dovecot.client() as client:
        client.select("INBOX", readonly=True)
        _, found = client.uid("SEARCH", "HEADER", "X-Muninmail-Digest", "24h")
    assert len(found[0].split()) == 1
    # Whoever ran it was neither root nor the daemon's user: a member of the socket's group.
    ran_as = site.ns.show(f"{DIGEST}.service")
    assert ran_as["DynamicUser"] == "yes" and ran_as["SupplementaryGroups"] == "muninmail"

    site.ns.check("systemctl", "start", f"{DIGEST}.timer")
    assert site.ns.show(f"{DIGEST}.timer")["ActiveState"] == "active"
    listed = site.ns.check("systemctl", "list-timers", "--all", "--no-pager")
    assert f"{DIGEST}.timer" in listed and f"{DIGEST}.service" in listed
    site.ns.check("systemctl", "stop", f"{DIGEST}.timer")
    site.configure(CONFIG.format(level="info"))
    site.ns.check("systemctl", "restart", SERVICE)


def _journal_text(site: Site, cursor: str) -> str:
    return "\n".join(_messages(site.ns.journal(after=cursor)))
