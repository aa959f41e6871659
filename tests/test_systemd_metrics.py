"""The metrics listener under a real systemd 252 with the installed units: socket-activated by
`muninmaild-metrics.socket`, or bound from `[metrics] listen`; either way the service keeps its
hardening (`systemd-analyze security` at most 1.2 for the unit as loaded), and the check and
the metrics work through the installed muninctl.

One boot serves the module (tests/peers/systemd_ns.py); the tests run in file order.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import peer_missing
from tests.daemon_proc import DEMO_MAILDIR
from tests.peers import promtool
from tests.peers.dovecot import free_port
from tests.peers.systemd_ns import SystemdNamespace, available, write_units
from tests.test_monitoring_daemon import samples, scrape

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/usr/local"
UNIT_DIR = f"{PREFIX}/lib/systemd/system"
MAILDIR = "/var/lib/munin-test/maildir"
MUNINCTL = f"{PREFIX}/bin/muninctl"
SERVICE = "muninmaild.service"
SOCKET = "muninmaild-metrics.socket"
CONFIG = f"""
[daemon]
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
    port: int  # where the metrics socket listens (a drop-in over the packaged 9464)

    def active(self, unit: str) -> str:
        return self.ns.show(unit)["ActiveState"]

    def scrape_when_up(self, port: int) -> str:
        found: list[str] = []

        def answered() -> bool:
            try:
                status, _, text = scrape(port)
            except OSError:
                return False
            found.append(text)
            return status == 200

        self.ns.wait_for(answered, 30, f"metrics on port {port}")
        return found[-1]

    def exposure(self) -> float:
        """`systemd-analyze security` of the service as systemd has loaded it, drop-ins
        and all (not the file alone)."""
        out = self.ns.check("systemd-analyze", "security", "--no-pager", SERVICE)
        score = re.search(r"Overall exposure level for \S+: ([\d.]+)", out)
        assert score is not None, out[-400:]
        return float(score.group(1))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not available() or not Path("/usr/bin/python3").exists():
        peer_missing("systemd in a throwaway namespace (root, unshare, overlayfs)")
    work = tmp_path_factory.mktemp("systemd-metrics")
    dest = work / "dest"
    subprocess.run(
        ["make", "-s", "-C", str(ROOT), "install", f"DESTDIR={dest}", f"PREFIX={PREFIX}"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    units = sorted((dest / PREFIX.lstrip("/") / "lib/systemd/system").iterdir())
    write_units(work / "units", units)
    port = free_port()
    dropin = work / "units" / f"{SOCKET}.d"
    dropin.mkdir()
    (dropin / "port.conf").write_text(f"[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n")
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
        ns.check("systemd-sysusers", f"{PREFIX}/lib/sysusers.d/muninmail.conf")
        ns.check("install", "-d", "-o", "root", "-g", "muninmail", "-m", "0750", "/etc/muninmail")
        ns.write("/etc/muninmail/muninmaild.toml", CONFIG)
        yield Site(ns, port)
    finally:
        ns.stop()


def test_the_installed_units_verify_and_the_listener_is_off_until_enabled(site: Site) -> None:
    units = [f"{UNIT_DIR}/{u}" for u in (SERVICE, "muninmaild.socket", SOCKET)]
    verify = site.ns.run("systemd-analyze", "verify", *units)
    assert verify.returncode == 0 and verify.stdout + verify.stderr == ""
    assert site.ns.run("systemctl", "is-enabled", SOCKET).stdout.strip() == "disabled"
    site.ns.check("systemctl", "enable", "--now", "muninmaild.socket")
    site.ns.check("systemctl", "start", SERVICE)
    assert site.active(SERVICE) == "active"
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        scrape(site.port)  # nobody listens: metrics are opt-in


def test_socket_activated_metrics_keep_the_service_at_1_2_or_better(site: Site) -> None:
    # systemd refuses to start a socket whose service runs already: stop, then start both.
    site.ns.check("systemctl", "enable", SOCKET)
    site.ns.check("systemctl", "stop", SERVICE)
    cursor = site.ns.cursor()
    site.ns.check("systemctl", "start", SOCKET, SERVICE)
    shown = site.ns.show(SOCKET)
    assert shown["ActiveState"] == "active"
    assert set(shown["IPAddressDeny"].split()) == {"::/0", "0.0.0.0/0"}  # in no set order
    assert set(shown["IPAddressAllow"].split()) == {"127.0.0.0/8", "::1/128"}
    text = site.scrape_when_up(site.port)
    checked = promtool.check_metrics(text)
    assert checked.returncode == 0 and checked.stdout == "", checked.stdout
    site.ns.wait_for(
        lambda: (
            samples(scrape(site.port)[2]).get('muninmail_queue_messages{status="completed"}')
            == len(list((DEMO_MAILDIR / "new").iterdir()))
        ),
        30,
        "the demo mail to be processed",
    )
    journal = [str(e.get("MESSAGE")) for e in site.ns.journal("-u", SERVICE, after=cursor)]
    assert f"metrics: serving http://127.0.0.1:{site.port}/metrics" in journal
    exposure = site.exposure()
    assert exposure <= 1.2
    print(f"\nsystemd-analyze security {SERVICE} with {SOCKET} in use: {exposure}")
    # The installed client, through the control socket beside it.
    check = site.ns.run(MUNINCTL, "check")
    assert check.returncode == 0 and check.stdout.startswith("MUNINMAIL OK: "), check.stdout
    assert "muninmail_build_info" in site.ns.check(MUNINCTL, "metrics")


def test_a_scrape_starts_a_stopped_daemon_that_takes_both_sockets(site: Site) -> None:
    site.ns.check("systemctl", "stop", SERVICE)
    assert site.active(SERVICE) == "inactive" and site.active(SOCKET) == "active"
    status, _, text = scrape(site.port)  # systemd holds the connection while the daemon starts
    assert status == 200 and "muninmail_queue_messages" in text
    assert site.active(SERVICE) == "active"
    assert site.ns.run(MUNINCTL, "ping").returncode == 0  # the control socket came along


def test_listen_in_the_configuration_works_under_the_hardened_unit(site: Site) -> None:
    site.ns.check("systemctl", "disable", "--now", SOCKET)
    port = free_port()
    site.ns.write("/etc/muninmail/muninmaild.toml", CONFIG + f'\n[metrics]\nlisten = "{port}"\n')
    site.ns.check("systemctl", "restart", SERVICE)
    text = site.scrape_when_up(port)
    assert "muninmail_fetch_state" in text
    assert site.exposure() <= 1.2
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        scrape(site.port)  # the socket unit is off again
    site.ns.write("/etc/muninmail/muninmaild.toml", CONFIG)
    site.ns.check("systemctl", "stop", SERVICE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the daemon closed its own listener
        try:
            scrape(port)
        except OSError:
            return
        time.sleep(0.1)
    raise AssertionError(f"port {port} still answers after the daemon stopped")
