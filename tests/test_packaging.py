"""`make deb` and `make dist`: the package lintian accepts, and what installing it does.

The .deb is installed with dpkg inside a throwaway namespace running systemd 252
(tests/peers/systemd_ns.py), where /etc, /var, /usr and /opt are overlays: the maintainer
scripts create the user and the configuration folders and enable nothing; the packaged units
start the daemon; a purge takes everything away again.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import peer_missing
from tests.peers.systemd_ns import SystemdNamespace, available, write_units

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parent.parent
PKG_INSIDE = "/run/munin-pkg"


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make deb`, which also runs lintian and fails on its errors and warnings."""
    if os.geteuid() != 0 or not shutil.which("dpkg-deb") or not Path("/usr/bin/python3").exists():
        peer_missing("dpkg-deb, Debian's python3 and root (for lintian)")
    out = tmp_path_factory.mktemp("deb")
    result = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "deb", f"DIST={out}"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (package,) = out.glob("muninmail_*.deb")
    return package


def _dpkg_deb(*args: str) -> str:
    return subprocess.run(["dpkg-deb", *args], capture_output=True, text=True, check=True).stdout


def test_lintian_leaves_no_finding_unexplained(deb: Path) -> None:
    """Every finding, informational and pedantic ones too, is fixed or overridden with a reason
    (packaging/lintian-overrides)."""
    result = subprocess.run(
        ["lintian", "--pedantic", "--display-info", str(deb)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    findings = [line for line in result.stdout.splitlines() if re.match(r"[EWIPX]: ", line)]
    assert result.returncode == 0 and findings == [], result.stdout + result.stderr


def test_the_package_holds_the_venv_the_commands_units_and_config(deb: Path) -> None:
    listing = _dpkg_deb("--contents", str(deb))
    paths = {line.split()[5].removeprefix(".") for line in listing.splitlines()}
    for path in (
        "/lib/systemd/system/muninmaild.service",
        "/lib/systemd/system/muninmaild.socket",
        "/lib/systemd/system/muninmaild-metrics.socket",
        "/lib/systemd/system/muninmail-digest.service",
        "/lib/systemd/system/muninmail-digest.timer",
        "/usr/share/doc/muninmail/digest.md",
        "/usr/share/doc/muninmail/keywords.md",
        "/usr/lib/sysusers.d/muninmail.conf",
        "/etc/muninmail/muninmaild.toml",
        "/usr/share/doc/muninmail/copyright",
        "/usr/share/doc/muninmail/README.md",
        "/opt/muninmail/venv/bin/muninmaild",
        "/opt/muninmail/venv/pyvenv.cfg",
    ):
        assert path in paths, path
    assert "/usr/bin/muninctl -> /opt/muninmail/venv/bin/muninctl" in listing
    assert "/usr/bin/muninmaild -> /opt/muninmail/venv/bin/muninmaild" in listing
    assert not any("__pycache__" in p for p in paths)  # compiled by postinst
    control = _dpkg_deb("--field", str(deb))
    assert "python3 (>= 3.11), python3 (<< 3.12)" in control
    conffiles = subprocess.run(
        ["dpkg-deb", "--info", str(deb), "conffiles"], capture_output=True, text=True, check=True
    ).stdout
    assert conffiles.split() == ["/etc/muninmail/muninmaild.toml"]


@pytest.fixture(scope="module")
def installed(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemdNamespace]:
    if not available():
        peer_missing("systemd in a throwaway namespace (root, unshare, overlayfs)")
    work = tmp_path_factory.mktemp("dpkg")
    write_units(work / "units", [])
    ns = SystemdNamespace(
        work,
        work / "units",
        binds={PKG_INSIDE: deb.parent},
        writable=("/etc", "/var", "/usr", "/opt"),
        system_units=True,  # the package's units, in /lib/systemd/system
    )
    try:
        ns.boot()
        # Container images carry a policy-rc.d that forbids maintainer scripts to start or stop
        # services (deb-systemd-invoke obeys it); a machine booted with systemd has none.
        ns.check("rm", "-f", "/usr/sbin/policy-rc.d")
        ns.check("dpkg", "--install", f"{PKG_INSIDE}/{deb.name}", timeout=240)
        yield ns
    finally:
        ns.stop()


def test_installing_creates_the_user_and_folders_and_enables_nothing(
    installed: SystemdNamespace,
) -> None:
    ns = installed
    assert ns.check("getent", "passwd", "muninmail").startswith("muninmail:")
    owners = ns.check("stat", "-c", "%U:%G %a", "/etc/muninmail", "/etc/muninmail/credentials")
    assert owners.split("\n")[:2] == ["root:muninmail 750", "root:root 750"]
    for unit in (
        "muninmaild.service",
        "muninmaild.socket",
        "muninmaild-metrics.socket",
        "muninmail-digest.timer",
    ):
        assert ns.run("systemctl", "is-enabled", unit).stdout.strip() == "disabled"
        assert ns.run("systemctl", "is-active", unit).stdout.strip() == "inactive"
    assert "0.1" in ns.check("muninctl", "--version")
    site = "/opt/muninmail/venv/lib/python3.11/site-packages"
    assert ns.run("test", "-d", f"{site}/muninmaild/__pycache__").returncode == 0  # postinst


def test_the_packaged_units_run_the_daemon_an_upgrade_restarts_it_a_purge_removes_all(
    installed: SystemdNamespace,
) -> None:
    ns = installed
    ns.check("systemctl", "enable", "--now", "muninmaild.service", "muninmail-digest.timer")
    before = ns.show("muninmaild.service")
    assert before["ActiveState"] == "active"
    assert "queue:" in ns.check("muninctl", "status")
    ns.check("dpkg", "--install", f"{PKG_INSIDE}/{_package(ns)}", timeout=240)  # an upgrade
    after = ns.show("muninmaild.service")
    assert after["ActiveState"] == "active" and after["MainPID"] != before["MainPID"]
    assert ns.check("systemctl", "is-enabled", "muninmaild.service").strip() == "enabled"
    ns.check("dpkg", "--purge", "muninmail", timeout=120)
    assert ns.run("systemctl", "is-active", "muninmaild.service").stdout.strip() == "inactive"
    for path in (
        "/opt/muninmail",
        "/etc/muninmail",
        "/var/lib/muninmail",
        "/usr/bin/muninctl",
        "/etc/systemd/system/multi-user.target.wants/muninmaild.service",
        "/etc/systemd/system/sockets.target.wants/muninmaild.socket",
        "/etc/systemd/system/timers.target.wants/muninmail-digest.timer",
    ):
        assert ns.run("test", "-e", path).returncode == 1, path


def test_make_dist_builds_an_sdist_and_a_wheel(tmp_path: Path) -> None:
    result = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "dist", f"DIST={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (sdist,) = tmp_path.glob("muninmail-*.tar.gz")
    (wheel,) = tmp_path.glob("muninmail-*-py3-none-any.whl")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for path in ("Makefile", "systemd/muninmaild.service", "packaging/build-deb.sh", "README.md"):
        assert path in names, path
    with zipfile.ZipFile(wheel) as whl:
        members = set(whl.namelist())
    assert {"muninmaild/cli.py", "muninctl/cli.py"} <= members
    entry_points = next(n for n in members if n.endswith("entry_points.txt"))
    with zipfile.ZipFile(wheel) as whl:
        assert "muninmaild = muninmaild.cli:main" in whl.read(entry_points).decode()


def _package(ns: SystemdNamespace) -> str:
    return ns.check("sh", "-c", f"cd {PKG_INSIDE} && ls muninmail_*.deb").strip()
