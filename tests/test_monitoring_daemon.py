"""Metrics from the real binaries: the daemon's listener and `muninctl metrics`, checked with
promtool, compared with the database, and read by a real node_exporter."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import peer_missing
from tests.peers import promtool
from tests.peers.dovecot import free_port
from tests.test_muninctl import (
    DEMO_MESSAGES,
    Daemon,
    add_mail,
    ctl,
    ctl_json,
    ok,
    public_dir,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.slow
NODE_EXPORTER = "prometheus-node-exporter"


def samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def database_counts(db: Path) -> dict[str, int]:
    """The monitoring SQL users run, as written."""
    with sqlite3.connect(db) as conn:
        sql = "SELECT processing_status, COUNT(*) FROM emails GROUP BY processing_status;"
        return dict(conn.execute(sql).fetchall())


def scrape(port: int, path: str = "/metrics", method: str = "GET") -> tuple[int, str, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = answer.read().decode()
            return answer.status, answer.headers["Content-Type"], body
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def deliver(maildir: Path, subject: str) -> None:
    name = f"{time.time_ns()}.M1P1.muninmon"
    text = (
        f"From: Ann <ann@example.com>\nTo: me@example.com\nSubject: {subject}\n"
        f"Message-ID: <{name}@example.com>\n\nPlease reply.\n"
    )
    (maildir / "tmp" / name).write_text(text)
    (maildir / "tmp" / name).rename(maildir / "new" / name)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Daemon, Path, int]]:
    """A daemon with the listener on, after it processed the demo Maildir; then, with the
    processor paused, three more messages fetched and left pending."""
    state = public_dir("mmet")
    maildir = state / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    add_mail(maildir, len(DEMO_MESSAGES))
    port = free_port()
    config = write_config(state, maildir)
    config.write_text(config.read_text() + f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    daemon = Daemon(state, config).start()
    try:
        ok(daemon.sock, "wait-idle", "--timeout", "60")
        ok(daemon.sock, "pause", "processor")
        for n in range(3):
            deliver(maildir, f"Waiting {n}")
        ok(daemon.sock, "fetch-now")
        wait_until(lambda: ctl_json(daemon.sock, "status")["queue"]["pending"] == 3)
        yield daemon, maildir, port
    finally:
        code, err = daemon.stop()
        shutil.rmtree(state)
    assert code == 0, err


def test_the_listener_s_exposition_passes_promtool_and_its_queue_is_the_database_s(
    served: tuple[Daemon, Path, int],
) -> None:
    daemon, _, port = served
    status, content_type, text = scrape(port)
    assert status == 200 and content_type == "text/plain; version=0.0.4; charset=utf-8"
    checked = promtool.check_metrics(text)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout
    got = samples(text)
    counts = database_counts(daemon.state / "muninmail.db")
    for name in ("pending", "processing", "completed", "failed"):
        assert got[f'muninmail_queue_messages{{status="{name}"}}'] == counts.get(name, 0)
    assert counts == {"completed": len(DEMO_MESSAGES), "pending": 3}
    assert got["muninmail_backlog_messages"] == 3
    assert got['muninmail_paused{component="processor"}'] == 1
    processed = len(DEMO_MESSAGES)
    assert got['muninmail_model_requests_total{outcome="ok"}'] == processed
    assert got['muninmail_messages_processed_total{outcome="completed"}'] == processed
    assert got["muninmail_model_request_duration_seconds_count"] == processed
    assert got['muninmail_messages_queued_total{account="demo"}'] == processed + 3
    synced = got['muninmail_mailbox_last_fetch_timestamp_seconds{account="demo",mailbox="INBOX"}']
    assert abs(synced - time.time()) < 600  # this run's sync, not "never" (0)


def test_the_listener_serves_metrics_only(served: tuple[Daemon, Path, int]) -> None:
    _, _, port = served
    assert scrape(port, "/")[0] == 404
    assert scrape(port, "/status")[0] == 404
    assert scrape(port, "/metrics", "POST")[0] == 405
    assert scrape(port, "/metrics", "HEAD")[0] == 200


def test_muninctl_metrics_prints_the_same_exposition(served: tuple[Daemon, Path, int]) -> None:
    daemon, _, port = served
    text = ok(daemon.sock, "metrics")
    checked = promtool.check_metrics(text)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout
    mine, listener = samples(text), samples(scrape(port)[2])
    queue = [k for k in mine if k.startswith("muninmail_queue_messages")]
    assert len(queue) == 4 and all(mine[k] == listener[k] for k in queue)


def test_metrics_written_with_output_are_read_by_node_exporter(
    served: tuple[Daemon, Path, int],
) -> None:
    daemon, _, _ = served
    folder = public_dir("mtxt")
    try:
        target = folder / "muninmail.prom"
        target.write_text("# an older file, replaced whole\n")
        assert ctl(daemon.sock, "metrics", "--output", str(target)).stdout == ""
        assert target.stat().st_mode & 0o777 == 0o644
        assert [p.name for p in folder.iterdir()] == ["muninmail.prom"]  # no temporary left
        checked = promtool.check_metrics(target.read_text())
        assert checked.returncode == 0, checked.stdout
        exported = samples(_node_exporter(folder))
        assert exported['muninmail_queue_messages{status="pending"}'] == 3
        assert exported["node_textfile_scrape_error"] == 0
    finally:
        shutil.rmtree(folder)


def test_an_output_that_cannot_be_written_exits_73(served: tuple[Daemon, Path, int]) -> None:
    daemon, _, _ = served
    done = ctl(daemon.sock, "metrics", "--output", "/nonexistent/folder/muninmail.prom")
    assert done.returncode == 73
    assert "cannot write in /nonexistent/folder" in done.stderr


def _node_exporter(folder: Path) -> str:
    """One scrape of a node_exporter that runs the textfile collector alone on `folder`."""
    binary = shutil.which(NODE_EXPORTER) or shutil.which("node_exporter")
    if binary is None:
        peer_missing("node_exporter (Debian package prometheus-node-exporter)")
        raise AssertionError("unreachable")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--web.listen-address=127.0.0.1:{port}",
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={folder}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                return scrape(port)[2]
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "node_exporter did not start listening"
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_a_changed_listener_waits_for_a_restart_and_the_old_one_serves_on(
    served: tuple[Daemon, Path, int],
) -> None:
    daemon, _, port = served
    good = daemon.config.read_text()
    try:
        daemon.config.write_text(good.replace(f":{port}", f":{free_port()}"))
        assert ok(daemon.sock, "reload") == (
            "reloaded; changes to metrics take effect after a restart\n"
        )
        assert scrape(port)[0] == 200
    finally:
        daemon.config.write_text(good)
        ok(daemon.sock, "reload")
