"""The control socket itself: taken from systemd or bound at the configured path, and who may
use it.

A bound socket gets mode 0660 and the configured group before it listens, so nobody can connect
through looser permissions in between; its directory must not be writable by others, or anyone
could put their own socket in its place. Access is decided per connection from `SO_PEERCRED`:
root, the daemon's own user and members of the socket's group.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import pwd
import socket
import stat
import struct
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from muninmaild.errors import ConfigError

log = logging.getLogger(__name__)
KEY = "daemon.control_socket"
SOCKET_MODE = 0o660
DIR_MODE = 0o755
MAX_PATH_BYTES = 107  # sun_path holds 108 bytes with the terminating NUL
SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # Linux 4.13+; Python names it from 3.13
BACKLOG = 512  # asyncio listens again with it, for activated sockets too
ACTIVATION_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


@dataclass(frozen=True)
class PeerCred:
    pid: int
    uid: int
    gid: int
    groups: frozenset[int] = frozenset()


@dataclass(frozen=True)
class AccessPolicy:
    daemon_uid: int
    group_gid: int
    group_name: str
    member_uids: frozenset[int] = frozenset()

    def allows(self, peer: PeerCred) -> bool:
        if peer.uid in (0, self.daemon_uid) or peer.uid in self.member_uids:
            return True
        return peer.gid == self.group_gid or self.group_gid in peer.groups

    def refusal(self, peer: PeerCred) -> str:
        return (
            f"uid {peer.uid} may not steer muninmaild: only root, the daemon's user and "
            f"members of group {self.group_name} may"
        )


def peer_credentials(sock: socket.socket) -> PeerCred:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return PeerCred(pid, uid, gid, _peer_groups(sock))


def _peer_groups(sock: socket.socket) -> frozenset[int]:
    """The peer's supplementary groups; empty where the kernel cannot tell (then the group
    database decides, through `member_uids`)."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 1024)
    except OSError:
        return frozenset()
    return frozenset(struct.unpack(f"{len(raw) // 4}I", raw[: len(raw) // 4 * 4]))


@dataclass
class Listener:
    sock: socket.socket
    policy: AccessPolicy
    path: Path | None  # the file to remove at close; None when systemd owns the socket
    inode: int | None = None

    def close(self) -> None:
        self.sock.close()
        if self.path is None:
            return
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.inode:  # still ours, not a successor's
                os.unlink(self.path)


def open_listener(
    path: Path, group: str, env: MutableMapping[str, str] | None = None, first_fd: int = 3
) -> Listener:
    """The socket systemd handed us, else a new one bound at `path`. ConfigError if unusable."""
    env = os.environ if env is None else env
    sock = activated_socket(env, first_fd)
    if sock is not None:
        name = sock.getsockname()
        log.info("control socket from systemd: %s", name or "(unnamed)")
        return Listener(sock, _policy_for(name, group), None)
    return _bind(path, group)


def activated_socket(env: MutableMapping[str, str], first_fd: int = 3) -> socket.socket | None:
    """The first (or the one named `control`) socket of systemd socket activation, if any;
    never the one named `metrics`, which is the metrics listener's (service/metrics_http.py).

    The variables are removed afterwards, as sd_listen_fds() does, so no child takes them.
    """
    if env.get("LISTEN_PID") != str(os.getpid()):
        return None
    count = int(env.get("LISTEN_FDS", "0") or "0")
    names = env.get("LISTEN_FDNAMES", "").split(":")
    for var in ACTIVATION_VARS:
        env.pop(var, None)
    names += [""] * (count - len(names))
    ours = [i for i, name in enumerate(names[:count]) if name != "metrics"]
    if not ours:
        return None
    offset = names.index("control") if "control" in names[:count] else ours[0]
    sock = socket.socket(fileno=first_fd + offset)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        sock.close()
        raise ConfigError(KEY, "the socket passed by systemd is not a Unix stream socket")
    sock.set_inheritable(False)
    sock.setblocking(False)
    return sock


def _bind(path: Path, group: str) -> Listener:
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise ConfigError(KEY, f"{path} is longer than the {MAX_PATH_BYTES} bytes a socket allows")
    _check_directory(path.parent)
    _remove_stale(path)
    gid, group = resolve_group(group)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        # Permissions are set before listen(): until then every connect is refused.
        os.chmod(path, SOCKET_MODE)
        _chgrp(path, gid)
        sock.listen(BACKLOG)
        sock.setblocking(False)
        inode = os.stat(path).st_ino
    except OSError as exc:
        sock.close()
        raise ConfigError(KEY, f"cannot listen on {path}: {exc.strerror or exc}") from None
    return Listener(sock, _policy_for(str(path), group), path, inode)


def _check_directory(directory: Path) -> None:
    if not directory.exists():
        try:
            directory.mkdir(mode=DIR_MODE, parents=True)
        except OSError as exc:
            raise ConfigError(KEY, f"cannot create {directory}: {exc.strerror}") from None
    mode = directory.stat().st_mode
    if not stat.S_ISDIR(mode):
        raise ConfigError(KEY, f"{directory} is not a directory")
    if mode & stat.S_IWOTH:
        raise ConfigError(
            KEY,
            f"the directory {directory} is writable by others, so anyone could replace the "
            "socket; use a directory only the daemon's user can write (chmod o-w)",
        )


def _remove_stale(path: Path) -> None:
    """Remove a socket left by a daemon that died; refuse if one still listens there."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ConfigError(KEY, f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise ConfigError(KEY, f"another muninmaild is already listening on {path}")


def resolve_group(name: str) -> tuple[int, str]:
    """The configured group, or the daemon's own when it does not exist (a developer machine)."""
    try:
        return grp.getgrnam(name).gr_gid, name
    except KeyError:
        gid = os.getgid()
        own = _group_name(gid)
        log.info(
            "group %s does not exist; the control socket gets the daemon's group %s", name, own
        )
        return gid, own


def _chgrp(path: Path, gid: int) -> None:
    try:
        os.chown(path, -1, gid)
    except PermissionError:
        log.warning("cannot give %s to group %s; it keeps its group", path, _group_name(gid))


def _policy_for(name: object, group: str) -> AccessPolicy:
    """The group is the socket file's own, whoever set it (we, or systemd's SocketGroup=)."""
    try:
        gid = os.stat(str(name)).st_gid if isinstance(name, str) and name else None
    except OSError:
        gid = None
    if gid is None:
        gid, group = resolve_group(group)
    else:
        group = _group_name(gid)
    return AccessPolicy(os.getuid(), gid, group, _member_uids(gid))


def _member_uids(gid: int) -> frozenset[int]:
    """Users listed as members in the group database, resolved once at start-up."""
    try:
        names = grp.getgrgid(gid).gr_mem
    except KeyError:
        return frozenset()
    uids = set()
    for name in names:
        with contextlib.suppress(KeyError):
            uids.add(pwd.getpwnam(name).pw_uid)
    return frozenset(uids)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
