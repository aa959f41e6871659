"""systemd 252 as PID 1 of a throwaway namespace, for the unit tests (recipe: TESTING.md).

The machine is left as it was: the namespace has its own PID, mount, cgroup, UTS and IPC
namespaces; /etc and /var/lib (or other folders) are overlays whose changes land in the test's
folder (so the muninmail user, /etc/muninmail and /var/lib/muninmail exist only inside, and a
package installed inside with dpkg stays there); /run, /tmp, /var/tmp
and /var/log/journal are fresh tmpfs; and systemd's cgroups are children of the test's own,
removed at the end. Extra trees (an install made with `make install DESTDIR=...`) are laid over
system folders, and host folders can be bound inside.

Two steps the bare recipe lacks: `/` is made shared inside, since systemd moves each service's
credentials mount (LoadCredential=) out of a helper's mount namespace and it must propagate back;
and cgroupfs is mounted afresh inside the cgroup namespace, so systemd manages its own subtree.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from tests.kinds import needs_integration

SYSTEMD = Path("/lib/systemd/systemd")
UNITS_INSIDE = "/run/munin-units"
BOOT_TARGET = "munin-test.target"
JOURNALD_UNITS = ("systemd-journald.service", "systemd-journald.socket")
# journald wants these too; the first would make /dev/log, and /dev is the machine's own.
MASKED = ("systemd-journald-dev-log.socket", "systemd-journald-audit.socket")
# Empty stand-ins for the targets units depend on by default.
STUB_TARGETS: tuple[str, ...] = ("sysinit", "basic", "shutdown", "sockets", "timers", "paths")
STUB_TARGETS += ("slices", "network", "network-online", "multi-user", "local-fs", "remote-fs")
STUB_TARGETS += ("nss-lookup", "time-sync")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CGROUP_ROOT = Path("/sys/fs/cgroup")


def available() -> bool:
    """Root, systemd, the namespace tools and overlayfs."""
    tools = all(shutil.which(t) for t in ("unshare", "nsenter", "setpriv", "systemd-sysusers"))
    overlay = "overlay" in Path("/proc/filesystems").read_text()
    return os.geteuid() == 0 and SYSTEMD.exists() and tools and overlay


def write_units(folder: Path, units: Sequence[Path]) -> None:
    """The boot folder: the given units, journald's, an empty target to boot into, stubs."""
    folder.mkdir(parents=True, exist_ok=True)
    for unit in units:
        shutil.copy(unit, folder / unit.name)
    for name in JOURNALD_UNITS:
        shutil.copy(Path("/lib/systemd/system") / name, folder / name)
    for name in MASKED:
        (folder / name).unlink(missing_ok=True)
        (folder / name).symlink_to("/dev/null")
    for name in STUB_TARGETS:
        (folder / f"{name}.target").write_text(f"[Unit]\nDescription=stub {name}\n")
    (folder / BOOT_TARGET).write_text(
        "[Unit]\nDescription=muninmail tests\nWants=systemd-journald.service\n"
    )


class Hierarchy:
    """One cgroup hierarchy: its controllers ("" for cgroup2) and our folder in it."""

    def __init__(self, controllers: str, own: str) -> None:
        self.controllers = controllers
        self.name = controllers.removeprefix("name=")
        if controllers:
            self.base = CGROUP_ROOT / self.name
        else:
            unified = CGROUP_ROOT / "unified"
            self.base = unified if unified.is_dir() else CGROUP_ROOT
        self.own = self.base / own.lstrip("/")

    def mount_command(self) -> str:
        if not self.controllers:
            target = "/sys/fs/cgroup" if self.base == CGROUP_ROOT else "/sys/fs/cgroup/unified"
            return f"mkdir -p {target} && mount -t cgroup2 cgroup2 {target}"
        opts = f"none,{self.controllers}" if self.controllers.startswith("name=") else self.name
        target = f"/sys/fs/cgroup/{self.name}"
        return f"mkdir -p {target} && mount -t cgroup -o {opts} cgroup {target}"


def _hierarchies() -> list[Hierarchy]:
    found = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, own = line.split(":", 2)
        hierarchy = Hierarchy(controllers, own)
        if hierarchy.base.is_dir():
            found.append(hierarchy)
    return found


class SystemdNamespace:
    """Boot with `boot()`, drive with `run()`/`systemctl()`/`journal()`, end with `stop()`."""

    def __init__(
        self,
        workdir: Path,
        units: Path,
        *,
        overlays: Mapping[str, Path] | None = None,
        binds: Mapping[str, Path] | None = None,
        writable: Sequence[str] = ("/etc", "/var/lib"),
        system_units: bool = False,
    ) -> None:
        self.workdir = workdir
        self.units = units
        self.writable = tuple(writable)  # folders whose changes go to the test's folder
        self.system_units = system_units  # also load units from the usual folders (a package's)
        self.overlays = dict(overlays or {})  # folder inside -> a tree laid over it, read-only
        self.binds = dict(binds or {})  # folder inside -> host folder
        self.pid = 0
        self._unshare: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None
        self._cgroups: list[Path] = []

    # -- lifecycle ------------------------------------------------------------------------------

    def boot(self, timeout: float = 30.0) -> None:
        needs_integration("systemd")
        hierarchies = _hierarchies()
        tag = f"munin-test-{os.getpid()}-{time.monotonic_ns()}"
        procs = []
        for h in hierarchies:
            with contextlib.suppress(OSError):
                (h.own / tag).mkdir()
                self._cgroups.append(h.own / tag)
                procs.append(str(h.own / tag / "cgroup.procs"))
        # The launcher joins the new cgroups itself (cpuset refuses tasks until configured: fine),
        # then the namespaces are made and systemd replaces the inner shell.
        launcher = 'for f in "$@"; do echo $$ > "$f" 2>/dev/null || true; done; exec "$0" "$@"'
        inner = self._boot_script(hierarchies)
        command = ["unshare", "--pid", "--fork", "--mount", "--mount-proc", "--cgroup", "--uts"]
        command += ["--ipc", "--propagation", "private", "sh", "-c", inner]
        self._log = (self.workdir / "boot.log").open("wb")
        self._unshare = subprocess.Popen(
            ["sh", "-c", launcher.replace('"$0" "$@"', shlex.join(command)), "sh", *procs],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            env={"PATH": PATH, "LANG": "C.UTF-8"},
        )
        self.pid = self._wait_for_systemd(timeout)
        journald = ["systemctl", "is-active", "--quiet", "systemd-journald.service"]
        self.wait_for(lambda: self.run(*journald).returncode == 0, timeout, "journald to start")

    def _boot_script(self, hierarchies: list[Hierarchy]) -> str:
        steps = ["set -e", "mount -t tmpfs -o mode=0755 tmpfs /run", "mkdir -p /run/systemd"]
        steps.append(f"mkdir -p {UNITS_INSIDE} && mount --bind {self.units} {UNITS_INSIDE}")
        for inside in self.writable:
            up, work = self._overlay_dirs(inside)
            layers = f"lowerdir={inside},upperdir={up},workdir={work}"
            steps.append(f"mount -t overlay overlay -o {layers} {inside}")
        for inside, tree in self.overlays.items():
            steps.append(f"mount -t overlay overlay -o lowerdir={tree}:{inside} {inside}")
        for inside, host in self.binds.items():
            steps.append(f"mkdir -p {inside} && mount --bind {host} {inside}")
        steps += [f"mount -t tmpfs tmpfs {d}" for d in ("/tmp", "/var/tmp")]
        if Path("/var/log/journal").is_dir():
            steps.append("mount -t tmpfs tmpfs /var/log/journal")
        if any(h.controllers for h in hierarchies):
            steps.append("mount -t tmpfs -o mode=0755 tmpfs /sys/fs/cgroup")
        steps += [h.mount_command() for h in hierarchies]
        steps.append("mount --make-rshared /")
        # A trailing ":" appends systemd's usual unit folders after ours.
        path = UNITS_INSIDE + (":" if self.system_units else "")
        steps.append(f"exec env SYSTEMD_UNIT_PATH={path} {SYSTEMD} --system --unit={BOOT_TARGET}")
        return "\n".join(steps)

    def _overlay_dirs(self, inside: str) -> tuple[Path, Path]:
        name = inside.strip("/").replace("/", "-")
        up, work = self.workdir / f"{name}.upper", self.workdir / f"{name}.work"
        up.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        return up, work

    def _wait_for_systemd(self, timeout: float) -> int:
        assert self._unshare is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._unshare.poll() is not None:
                log = (self.workdir / "boot.log").read_text(errors="replace")
                raise RuntimeError(f"the namespace ended at once: {log}")
            children = _children(self._unshare.pid)
            if children and Path(f"/proc/{children[0]}/exe").resolve() == SYSTEMD.resolve():
                return children[0]
            time.sleep(0.05)
        raise TimeoutError("systemd did not start in the namespace")

    def stop(self) -> None:
        """Kill systemd, which ends everything in its PID namespace; remove its cgroups."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        if self._unshare is not None:
            self._unshare.wait(timeout=30)
            self._unshare = None
        if self._log is not None:
            self._log.close()
            self._log = None
        self.pid = 0
        for top in self._cgroups:
            _remove_cgroup(top)
        self._cgroups = []

    # -- driving it -----------------------------------------------------------------------------

    def run(
        self,
        *command: str,
        user: str | None = None,
        input: str | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """A command inside the namespace, as root or as `user` with that user's groups."""
        as_user = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"] if user else []
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "-p", "-u", "-i", *as_user, *command],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={"PATH": PATH, "LANG": "C.UTF-8", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"},
            check=False,
        )

    def check(self, *command: str, **options: Any) -> str:
        result = self.run(*command, **options)
        if result.returncode != 0:
            raise AssertionError(
                f"{shlex.join(command)} exited {result.returncode}: {result.stderr}{result.stdout}"
            )
        return result.stdout

    def systemctl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return self.run("systemctl", "--no-ask-password", *args, timeout=timeout)

    def show(self, unit: str) -> dict[str, str]:
        out = self.check("systemctl", "show", unit)
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def write(self, path: str, text: str, mode: str = "0644") -> None:
        self.check("sh", "-c", f'cat > "$0" && chmod {mode} "$0"', path, input=text)

    def cursor(self) -> str:
        """The journal's current end, for `journal(after=...)`."""
        out = self.check("journalctl", "-n", "0", "--show-cursor", "--no-pager", "-q")
        return out.strip().removeprefix("-- cursor: ")

    def journal(self, *matches: str, after: str | None = None) -> list[dict[str, Any]]:
        args = ["journalctl", "--no-pager", "-o", "json", "--output-fields=MESSAGE,PRIORITY"]
        args += [f"--after-cursor={after}"] if after else []
        out = self.check(*args, *matches)
        entries = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        for entry in entries:  # journald stores undecodable messages as byte lists
            if isinstance(entry.get("MESSAGE"), list):
                entry["MESSAGE"] = bytes(entry["MESSAGE"]).decode("utf-8", "replace")
        return entries

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float, what: str, every: float = 0.1
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(every)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _remove_cgroup(top: Path) -> None:
    """Empty cgroups go bottom-up; the kernel may take a moment to let the last task go."""
    deadline = time.monotonic() + 10
    while top.exists() and time.monotonic() < deadline:
        for folder, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        time.sleep(0.05)
