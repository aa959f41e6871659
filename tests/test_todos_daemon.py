"""To-dos that can be closed, through the real binary: ids, done, undone, --all, --overdue.

A Maildir of three messages, one to-do each: due long ago (overdue whatever today is), due in
the far future, and without a date. The daemon's offline rules backend finds them.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.daemon_proc import clean_env
from tests.reliability.harness import (
    MUNINCTL,
    Daemon,
    fill_maildir,
    maildir_account,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

BODIES = {
    "old": "Please send me the report by 2001-02-03.",
    "far": "Please book the room for the offsite by 2999-01-05.",
    "undated": "Could you please review the draft?",
}


def mail(n: int, body: str) -> bytes:
    return (
        f"From: Ann <ann@example.com>\nTo: robin@example.com\nSubject: Task {n}\n"
        f"Date: Tue, 01 Dec 2026 09:00:00 +0000\nMessage-ID: <todo-{n}@example.com>\n\n{body}\n"
    ).encode()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    state = tmp_path_factory.mktemp("todos")
    fill_maildir(state / "maildir", [mail(n, b) for n, b in enumerate(BODIES.values(), 1)])
    config = write_config(
        state, accounts=[maildir_account("demo", state / "maildir")], ai={"backend": "rules"}
    )
    running = Daemon(state, config).start()
    running.wait_idle()
    yield running
    running.kill()


def ctl(daemon: Daemon, *args: str, code: int = 0) -> str:
    done = daemon.ctl(*args)
    assert done.returncode == code, done.stdout + done.stderr
    return done.stdout + done.stderr


def todos(daemon: Daemon, *args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ctl(daemon, "--json", "todos", *args).splitlines()]


def ids(daemon: Daemon) -> dict[str, int]:
    """The to-dos' ids by the key of their message in BODIES, told apart by their due dates."""
    by_due = {t["due"]: t["todo_id"] for t in todos(daemon, "--all")}
    return {"old": by_due["2001-02-03"], "far": by_due["2999-01-05"], "undated": by_due[None]}


def test_every_todo_has_an_id_and_overdue_ones_are_marked(daemon: Daemon) -> None:
    listed = todos(daemon)
    assert [t["due"] for t in listed] == ["2001-02-03", "2999-01-05", None]
    assert [t["overdue"] for t in listed] == [True, False, False]
    assert len({t["todo_id"] for t in listed}) == 3 and all(t["done"] is False for t in listed)
    table = ctl(daemon, "todos").splitlines()
    assert table[0].split() == ["ID", "DUE", "PRIORITY", "MSG", "TASK"]
    assert table[1].split()[:3] == [str(listed[0]["todo_id"]), "2001-02-03", "OVERDUE"]
    assert "OVERDUE" not in table[2] and table[3].split()[1] == "-"


def test_done_and_undone_change_what_todos_lists(daemon: Daemon) -> None:
    by = ids(daemon)
    out = ctl(daemon, "done", str(by["far"]), str(by["undated"]))
    assert out.startswith("closed 2 to-do(s)") and out.count(" done ") == 2
    assert [t["todo_id"] for t in todos(daemon)] == [by["old"]]
    everything = todos(daemon, "--all")
    assert [(t["todo_id"], t["done"]) for t in everything] == [
        (by["old"], False),
        (by["far"], True),
        (by["undated"], True),
    ]
    assert everything[1]["done_at"] is not None
    table = ctl(daemon, "todos", "--all").splitlines()
    assert table[0].split()[:3] == ["ID", "STATE", "DUE"]
    assert [line.split()[1] for line in table[1:]] == ["open", "done", "done"]

    again = json.loads(ctl(daemon, "--json", "undone", str(by["far"]), str(by["old"])))
    assert again["changed"] == 1 and {t["done"] for t in again["todos"]} == {False}
    assert [t["todo_id"] for t in todos(daemon)] == [by["old"], by["far"]]
    ctl(daemon, "undone", str(by["undated"]))


def test_overdue_lists_only_open_todos_past_their_date(daemon: Daemon) -> None:
    by = ids(daemon)
    (overdue,) = todos(daemon, "--overdue")
    assert overdue["todo_id"] == by["old"]
    # The JSON lines of a listing feed `done -`: every overdue to-do closed in one go.
    piped = daemon.ctl("--json", "todos", "--overdue")
    done = ctl_with_input(daemon, piped.stdout, "done", "-")
    assert done.startswith("closed 1 to-do(s)")
    assert todos(daemon, "--overdue") == []
    assert ctl(daemon, "todos", "--overdue").strip() == "no overdue to-dos"
    ctl(daemon, "undone", str(by["old"]))


def test_unknown_ids_change_nothing_and_bad_usage_is_refused(daemon: Daemon) -> None:
    by = ids(daemon)
    out = ctl(daemon, "done", str(by["old"]), "999999", code=1)
    assert "there is no to-do 999999; nothing changed (not_found)" in out
    assert all(not t["done"] for t in todos(daemon, "--all"))
    assert "do not go together" in ctl(daemon, "todos", "--all", "--overdue", code=2)
    assert "not a to-do id" in ctl(daemon, "done", "x", code=2)


def test_a_closed_todo_stays_closed_after_a_restart(daemon: Daemon) -> None:
    by = ids(daemon)
    ctl(daemon, "done", str(by["undated"]))
    daemon.stop()
    daemon.start()
    assert [t["todo_id"] for t in todos(daemon)] == [by["old"], by["far"]]
    detail = json.loads(ctl(daemon, "--json", "show", str(todos(daemon, "--all")[2]["id"])))
    assert detail["todos"][0]["done"] is True and detail["todos"][0]["todo_id"] == by["undated"]


def ctl_with_input(daemon: Daemon, stdin: str, *args: str) -> str:
    done = subprocess.run(
        [MUNINCTL, "--socket", str(daemon.sock), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
