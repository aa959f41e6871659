"""Configuration of the results written back: `write_keywords`, each flag's keyword, `[digest]`."""

from __future__ import annotations

from pathlib import Path

import pytest

from muninmaild.config import loader, show
from muninmaild.config.settings import DigestSettings, Settings
from muninmaild.errors import ConfigError

IMAP = """
[[accounts]]
name = "work"
server = "imap.example.com"
username = "me@example.com"
password = "pw"
"""
MAILDIR = """
[[accounts]]
name = "demo"
source = "maildir"
path = "/srv/mail"
"""


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "muninmaild.toml"
    path.write_text(text)
    return loader.load(path, {})


def test_keywords_are_off_unless_an_imap_account_asks(tmp_path: Path) -> None:
    settings = load(tmp_path, IMAP + MAILDIR)
    assert [a.write_keywords for a in settings.accounts] == [False, False]
    on = load(tmp_path, IMAP + "write_keywords = true\n")
    assert on.accounts[0].write_keywords is True
    with pytest.raises(ConfigError, match=r"accounts\[0\].write_keywords: .*imap account"):
        load(tmp_path, MAILDIR + "write_keywords = true\n")


def test_each_flag_has_a_keyword_and_built_in_ones_need_no_description(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
[ai.flags.urgent]
keyword = "$label1"

[ai.flags.invoice]
description = "A bill."
keyword = "Invoice"

[ai.flags.newsletter]
description = "A newsletter."
""",
    )
    flags = {f.name: f for f in settings.ai.flags}
    assert flags["urgent"].imap_keyword == "$label1"
    assert flags["urgent"].description.startswith("Something must happen soon")
    assert flags["requires_response"].imap_keyword == "munin_requires_response"
    assert flags["invoice"].imap_keyword == "Invoice"
    assert flags["newsletter"].imap_keyword == "munin_newsletter"
    with pytest.raises(ConfigError, match=r"ai.flags.newsletter.description: is required"):
        load(tmp_path, '[ai.flags.newsletter]\nkeyword = "news"\n')


@pytest.mark.parametrize(
    "keyword", ["two words", "\\\\Seen", "(x)", "a*", 'q\\"', "x]", "größer", "k" * 65]
)
def test_a_keyword_must_be_an_imap_atom(tmp_path: Path, keyword: str) -> None:
    with pytest.raises(ConfigError, match=r"ai.flags.urgent.keyword: .* is not an IMAP keyword"):
        load(tmp_path, f'[ai.flags.urgent]\nkeyword = "{keyword}"\n')


def test_the_digest_goes_to_an_imap_account(tmp_path: Path) -> None:
    assert load(tmp_path, IMAP).digest == DigestSettings(None, "INBOX")
    settings = load(tmp_path, IMAP + '[digest]\naccount = "work"\nmailbox = "Digests"\n')
    assert settings.digest == DigestSettings("work", "Digests")
    with pytest.raises(ConfigError, match=r"digest.account: there is no account 'home'"):
        load(tmp_path, IMAP + '[digest]\naccount = "home"\n')
    with pytest.raises(ConfigError, match=r"digest.account: .*name an imap account"):
        load(tmp_path, MAILDIR + '[digest]\naccount = "demo"\n')
    with pytest.raises(ConfigError, match=r"digest.mailbx: unknown key"):
        load(tmp_path, IMAP + '[digest]\nmailbx = "INBOX"\n')


def test_check_config_shows_the_new_keys(tmp_path: Path) -> None:
    text = IMAP + "write_keywords = true\n" + '[ai.flags.urgent]\nkeyword = "$label1"\n'
    text += '[digest]\naccount = "work"\n'
    rendered = show.render(load(tmp_path, text))
    assert "write_keywords = true" in rendered
    assert 'keyword = "$label1"' in rendered and 'keyword = "munin_meeting_request"' in rendered
    assert '[digest]\naccount = "work"\nmailbox = "INBOX"' in rendered
