"""`ai.skip`: which mail the headers decide (bulk, automated), told apart from a person's mail."""

from __future__ import annotations

from pathlib import Path

import pytest

from muninmaild.config.loader import load
from muninmaild.errors import ConfigError
from muninmaild.mail.headers import (
    is_automated,
    is_bulk,
    is_no_reply_sender,
    why_automated,
    why_bulk,
    why_skipped,
)

BOTH = ("bulk", "automated")
PERSON = "Ann Berg <ann.berg@example.com>"
GENERATED = {"auto-submitted": "auto-generated"}
AUTO = "automated: Auto-Submitted: auto-generated"
NO_REPLY = "automated: a sender that takes no replies"


@pytest.mark.parametrize(
    ("headers", "from_addr", "kinds", "expected"),
    [
        # bulk: the list headers, Precedence
        ({"list-id": "<team.lists.example>"}, PERSON, BOTH, "bulk: List-Id"),
        ({"list-unsubscribe": "<mailto:leave@x>"}, PERSON, BOTH, "bulk: List-Unsubscribe"),
        ({"precedence": "bulk"}, PERSON, BOTH, "bulk: Precedence: bulk"),
        ({"precedence": "List"}, PERSON, BOTH, "bulk: Precedence: list"),
        ({"precedence": " junk "}, PERSON, BOTH, "bulk: Precedence: junk"),
        ({"precedence": "first-class"}, PERSON, BOTH, None),
        ({"list-id": "  "}, PERSON, BOTH, None),  # an empty header says nothing
        # automated: Auto-Submitted other than "no", and no-reply senders
        (GENERATED, PERSON, BOTH, AUTO),
        ({"auto-submitted": "auto-replied; x=y"}, PERSON, BOTH, AUTO[:-9] + "replied"),
        ({"auto-submitted": "No"}, PERSON, BOTH, None),
        ({"auto-submitted": "no; comment"}, PERSON, BOTH, None),
        ({}, "GitHub <notifications@github.com>", BOTH, NO_REPLY),
        ({}, "noreply@example.com", BOTH, NO_REPLY),
        # a person, a reply with In-Reply-To, importance: the model is asked
        ({}, PERSON, BOTH, None),
        ({"in-reply-to": "<a@b>", "importance": "high"}, PERSON, BOTH, None),
        # only the kinds configured
        ({"list-id": "<x>"}, PERSON, ("automated",), None),
        (GENERATED, PERSON, ("bulk",), None),
        ({}, "noreply@example.com", ("bulk",), None),
        ({"list-id": "<x>"} | GENERATED, PERSON, ("automated",), AUTO),
        ({"list-id": "<x>"}, "noreply@x.org", (), None),
        # bulk is named first when both apply
        ({"list-id": "<x>"}, "noreply@x.org", BOTH, "bulk: List-Id"),
    ],
)  # fmt: skip
def test_skip_decisions(
    headers: dict[str, str], from_addr: str, kinds: tuple[str, ...], expected: str | None
) -> None:
    assert why_skipped(headers, from_addr, kinds) == expected


@pytest.mark.parametrize(
    "address",
    [
        "noreply@example.com",
        "no-reply@accounts.example.com",
        "no_reply@example.com",
        "no.reply@example.com",
        "NoReply@Example.com",
        "donotreply@example.com",
        "do-not-reply@example.com",
        "do_not_reply@example.com",
        "DoNotReply@example.com",
        "noreply-dmarc-support@example.com",
        "billing-noreply@example.com",
        "shop.noreply@example.com",
        "info_do_not_reply@example.com",
        "noreply2@example.com",
        "noreply+bounce-123@example.com",
        "MAILER-DAEMON@mx.example.com",
        "postmaster@example.com",
        "notifications@github.com",
        "notification@example.com",
        '"Example Shop" <no-reply@shop.example>',
        "<noreply@example.com>",
    ],
)
def test_no_reply_senders(address: str) -> None:
    assert is_no_reply_sender(address)


@pytest.mark.parametrize(
    "address",
    [
        "ann.berg@example.com",
        "noreen@example.com",  # begins with "no"
        "nora.reply@example.com",  # "no" and "reply", but a name
        "norbert.replyer@example.com",
        "snoreply@example.com",  # "noreply" inside a word
        "noreplies@example.com",
        "reply@example.com",
        "replies-welcome@example.com",
        "notifications-team@example.com",  # a machine word, but not the whole local part
        "notify.anna@example.com",
        "post.master@example.com",
        "postmasters@example.com",
        "mailer@example.com",
        "daemon@example.com",
        "No Reply <ann.berg@example.com>",  # the display name is never read
        "Postmaster General <pm@example.com>",
        "ann@noreply.example.com",  # the domain is not the local part
        "",
        "undisclosed-recipients:;",
        "not an address",
    ],
)
def test_near_misses_are_people(address: str) -> None:
    assert not is_no_reply_sender(address)


def test_bulk_and_automated_keep_their_header_only_meaning() -> None:
    """The prompt and the rules read the headers alone, as before; the sender is opt-in."""
    assert is_bulk({"list-id": "<x>"}) and why_bulk({"list-id": "<x>"}) == "List-Id"
    assert not is_automated({})
    assert not is_automated({}, PERSON)
    assert is_automated({}, "noreply@example.com")
    assert is_automated({"Auto-Submitted": "auto-generated"})  # a caller's own spelling
    assert why_automated({"auto-submitted": "no"}, "noreply@x.org") == (
        "a sender that takes no replies"
    )


# -- the configuration ------------------------------------------------------------------------


def config(tmp_path: Path, ai: str) -> Path:
    path = tmp_path / "muninmaild.toml"
    path.write_text(f'[ai]\nbackend = "openai"\nmodel = "m"\nbase_url = "http://h/v1"\n{ai}\n')
    return path


def test_skip_defaults_to_nothing_and_the_cache_to_on(tmp_path: Path) -> None:
    ai = load(config(tmp_path, ""), env={}).ai
    assert (ai.skip, ai.cache, ai.cache_days, ai.cache_entries) == ((), True, 7, 20000)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[]", ()),
        ('["bulk"]', ("bulk",)),
        ('["automated", "bulk"]', ("automated", "bulk")),
        ('["bulk", "bulk"]', ("bulk",)),
    ],
)
def test_skip_takes_the_kinds(tmp_path: Path, value: str, expected: tuple[str, ...]) -> None:
    assert load(config(tmp_path, f"skip = {value}"), env={}).ai.skip == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('skip = ["newsletters"]', '\'newsletters\' is not one of "bulk", "automated"'),
        ('skip = "bulk"', "must be a list of non-empty strings"),
        ("cache = 1", "must be true or false"),
        ("cache_days = 0", "must be at least 1"),
        ("cache_entries = 0", "must be at least 1"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        load(config(tmp_path, line), env={})
    assert raised.value.key.startswith("ai.")


def test_configuration_md_documents_skip_and_cache() -> None:
    """The documented example's [ai] keys load, with the defaults they claim."""
    import tomllib

    doc = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    ai = tomllib.loads(example)["ai"]
    assert (ai["skip"], ai["cache"], ai["cache_days"], ai["cache_entries"]) == (
        [],
        True,
        7,
        20000,
    )
    assert "### Fewer model requests: `skip` and `cache`" in doc
    for word in ("noreply", "mailer-daemon", "postmaster", "notifications", "List-Id"):
        assert word in doc.split("### Fewer model requests", 1)[1]
