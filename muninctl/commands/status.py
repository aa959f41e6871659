"""`muninctl status`: the daemon, its queue, its accounts and the model at a glance."""

from __future__ import annotations

from typing import Any

import click

from muninctl import context, output
from muninctl.commands.pause import describe


@click.command("status")
@context.json_option
def command() -> None:
    """Show the queue counts, pauses, accounts, token use and the last error."""
    result = context.call("status")
    if context.options().json:
        output.echo_json(result)
    else:
        output.echo_lines(render(result))


def render(s: dict[str, Any]) -> list[str]:
    q, model = s["queue"], s["model"]
    failed = output.paint(str(q["failed"]), "red" if q["failed"] else None)
    last = s.get("last_error")
    lines = [
        f"muninmaild {s['version']}, pid {s['pid']}, up {output.duration(s['uptime_s'])}",
        f"state:      {describe(s['paused'])}",
        f"queue:      pending {q['pending']}, processing {q['processing']}, "
        f"completed {q['completed']}, failed {failed}",
        f"model:      {model['backend']} ({model['model']}), "
        f"tokens {model['tokens_in']} in, {model['tokens_out']} out",
        f"last error: {_last_error(last)}",
    ]
    if model.get("hold"):  # older daemons do not send it
        lines.insert(4, f"model hold: {hold_line(model['hold'])}")
    if model.get("today"):
        lines.insert(4, f"today:      {_today(model['today'])}")
    if "cache" in model:  # older daemons do not send it
        at = len(lines) - 1  # before the last error
        lines[at:at] = [f"skip:       {_skip(model['skip'])}", f"cache:      {_cache(model)}"]
    if s.get("database"):  # older daemons do not send it
        lines.append(f"database:   {_database(s['database'])}")
    if s.get("retention"):  # older daemons do not send it
        lines.append(f"retention:  {_retention(s['retention'])}")
    if s.get("backlog"):  # older daemons do not send it
        lines.insert(3, f"backlog:    {backlog_line(s['backlog'])}")
    if s["accounts"]:
        lines += ["", *output.table(ACCOUNT_HEADERS, [_account(a) for a in s["accounts"]])]
        lines += keyword_lines(s["accounts"])
    cluster = s.get("cluster")  # older daemons do not send it
    if cluster and len(cluster["instances"]) > 1:
        lines += ["", *_cluster(cluster, s.get("instance"))]
    return lines


def _retention(r: dict[str, Any]) -> str:
    if not r["days"]:
        return "off (results kept forever)"
    head = f"completed mail older than {r['days']} days is removed"
    if r["last_run_at"] is None:
        return f"{head}; not run yet"
    return f"{head}; last run {r['last_run_at']}, removed {r['removed']}"


INSTANCE_HEADERS = ("INSTANCE", "HOST", "PID", "VERSION", "STATE", "HEARTBEAT", "FETCHES")
INSTANCE_COLOURS = {"alive": "green", "gone": "red"}


def _cluster(cluster: dict[str, Any], me: str | None) -> list[str]:
    """Shown once several instances share the database: who is alive, who fetches what."""
    fetches: dict[str, list[str]] = {}
    for m in cluster["mailboxes"]:
        fetches.setdefault(m["holder"], []).append(f"{m['account']}/{m['mailbox']}")
    rows: list[list[output.Cell]] = [
        [
            i["id"] + (" (this)" if i["id"] == me else ""),
            i["host"],
            str(i["pid"]),
            i["version"],
            (i["state"], INSTANCE_COLOURS.get(i["state"])),
            output.when(i["heartbeat_at"]),
            ", ".join(fetches.get(i["id"], [])) or "-",
        ]
        for i in cluster["instances"]
    ]
    return output.table(INSTANCE_HEADERS, rows)


ACCOUNT_HEADERS = (
    "ACCOUNT",
    "STATE",
    "CAUGHT UP",
    "LAST FETCH",
    "QUEUED",
    "BACKFILL",
    "LAST ERROR",
)
STATE_COLOURS = {"idle": "green", "backoff": "red", "auth_failed": "red", "paused": "yellow"}


def _account(a: dict[str, Any]) -> list[output.Cell]:
    return [
        a["name"],
        (a["state"], STATE_COLOURS.get(a["state"])),
        output.yes_no(a["caught_up"]),
        output.when(a["last_fetch_at"]),
        str(a["queued"]),
        _backfill(a.get("backfill")),
        (output.text_or_dash(a["last_error"]), "red" if a["last_error"] else None),
    ]


def _backfill(b: dict[str, Any] | None) -> str:
    """The window, and how much of the mail there at the first sync it left out."""
    if b is None:  # older daemons do not send it
        return "-"
    if b["window"] == "all" and not b["left_out"]:
        return "all"
    return f"{b['window']}, {b['left_out']} left out"


LIMITED_BY = {"pace": "at the recent pace", "budget": "at the model budget's pace"}


def backlog_line(b: dict[str, Any]) -> str:
    """How much is left and when it will be done, in words."""
    left = f"{b['messages']} message(s) to process"
    if not b["messages"]:
        return "none"
    if b["limited_by"] == "paused":
        return f"{left}; the processor is paused"
    if b["eta_s"] is None:
        return f"{left}; no pace measured yet"
    rate = b["pace_per_min"] if b["limited_by"] == "pace" else b["budget_per_min"]
    how = LIMITED_BY.get(b["limited_by"], "")
    return (
        f"{left}, done in about {output.duration(b['eta_s'])} "
        f"({output.when(b['done_at'])}, {how} of {rate:g}/min)"
    )


def _database(d: dict[str, Any]) -> str:
    if d["failing"]:
        return output.paint(f"failing: {d['last_error']}", "red")
    if d["last_error"]:
        return f"ok (failed at {output.when(d['last_error_at'])}: {d['last_error']})"
    return "ok"


def _last_error(last: dict[str, Any] | None) -> str:
    if not last:
        return "-"
    return f"message {last['id']} at {output.when(last['at'])}: {last['message']}"


def keyword_lines(accounts: list[dict[str, Any]]) -> list[str]:
    """Accounts that write keywords: how many, and every mailbox that refuses them."""
    lines = []
    for a in accounts:
        k = a.get("keywords")  # older daemons do not send it; null: keywords are not written
        if not k:
            continue
        state = (k["state"], STATE_COLOURS.get(k["state"]))
        when = f", last {output.when(k['last_written_at'])}" if k["last_written_at"] else ""
        line = f"keywords {a['name']}: {output.paint(*state)}, {k['written']} written{when}"
        if k["last_error"]:
            line += f"; {output.paint(k['last_error'], 'red')}"
        lines.append(line)
        for r in k["refused"]:
            lines.append(output.paint(f"  {r['mailbox']}: {r['reason']}", "yellow"))
    return ["", *lines] if lines else []


HOLD_WORDS = {
    "quota": "model quota spent until {until}",
    "account": "model held until {until} (muninctl resume tries at once): {message}",
    "rate_limit": "rate limited until {until}",
}


def hold_line(hold: dict[str, Any]) -> str:
    """Why the model is not being asked, and until when (local time)."""
    until = output.when(hold.get("until"))[-5:]  # HH:MM
    words = HOLD_WORDS.get(hold.get("reason", ""), "held until {until}: {message}")
    text = words.format(until=until, message=hold.get("message", ""))
    if hold.get("reason") == "quota":
        window = str(hold.get("message", "")).partition(": ")[2].partition(" (")[0]
        text += f" ({window})" if window else ""
    return output.paint(text, "yellow" if hold.get("reason") == "rate_limit" else "red")


def _today(today: dict[str, Any]) -> str:
    """Requests and tokens since midnight UTC, beside the daily limits when there are any."""

    def of(used: int, limit: int | None) -> str:
        return f"{used} of {limit}" if limit else str(used)

    requests = of(today["requests"], today.get("requests_limit"))
    tokens = of(today["tokens"], today.get("tokens_limit"))
    line = f"{requests} requests, {tokens} tokens (since 00:00 UTC)"
    if "cached" in today:  # older daemons do not send them
        line += f"; without a request: {today['cached']} cached, {today['skipped']} skipped"
    return line


def _skip(kinds: list[str]) -> str:
    """What `ai.skip` leaves to the offline rules."""
    return f"{', '.join(kinds)} mail answered offline" if kinds else "nothing (ai.skip)"


def _cache(model: dict[str, Any]) -> str:
    """The answer cache: on or off, and how full."""
    cache = model["cache"]
    if cache is None:
        return "off"
    return (
        f"{cache['entries']} answers kept (at most {cache['max_entries']}, "
        f"for {cache['max_age_days']} days)"
    )
