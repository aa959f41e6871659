"""Configuration: file, environment, secrets, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from muninmaild.config import loader, show
from muninmaild.config.settings import Secret, Settings
from muninmaild.errors import ConfigError


def load(tmp_path: Path, text: str, **env: str) -> Settings:
    path = tmp_path / "muninmaild.toml"
    path.write_text(text)
    return loader.load(path, env)


def test_defaults_without_a_file() -> None:
    settings = loader.load(None, {})
    assert settings.database.url == "sqlite+aiosqlite:////var/lib/muninmail/muninmail.db"
    assert settings.ai.backend == "rules"
    assert settings.accounts == ()


def test_design_example_keys_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "work.password").write_text("hunter22\n")
    (tmp_path / "cerebras.key").write_text("csk-abc\n")
    settings = load(
        tmp_path,
        f"""
[daemon]
state_dir = "/var/lib/muninmail"
control_socket = "/run/muninmail/control.sock"
log_level = "info"
[database]
url = "sqlite+aiosqlite:////var/lib/muninmail/muninmail.db"
[[accounts]]
name = "work"
source = "imap"
server = "imap.example.com"
port = 993
security = "tls"
username = "me@example.com"
password_file = "{tmp_path}/work.password"
mailboxes = ["INBOX"]
idle = true
poll_interval = 300
[processor]
concurrency = 4
max_attempts = 5
[ai]
backend = "cerebras"
model = "gpt-oss-120b"
base_url = "https://api.cerebras.ai"
api_key_file = "{tmp_path}/cerebras.key"
requests_per_minute = 30
tokens_per_minute = 60000
""",
    )
    [account] = settings.accounts
    assert account.password == Secret("hunter22")
    assert settings.ai.api_key == Secret("csk-abc")
    assert settings.ai.backend == "cerebras"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[processor]\nconcurrency = 'four'\n", "processor.concurrency"),
        ("[processor]\nconcurency = 4\n", "processor.concurency"),
        ("[processor]\nconcurrency = 0\n", "processor.concurrency"),
        ("[daemon]\nlog_level = 'loud'\n", "daemon.log_level"),
        ("[database]\nurl = 'mysql://x'\n", "database.url"),
        ("[[accounts]]\nname = 'a'\nsecurity = 'ssl'\n", "accounts[0].security"),
        ("[[accounts]]\nname = 'a'\nsource = 'maildir'\n", "accounts[0].path"),
        ("[[accounts]]\nname = 'a'\n[[accounts]]\nname = 'a'\n", "accounts.name"),
        ("[[accounts]]\nname = 'a'\nmailboxes = []\n", "accounts[0].mailboxes"),
        ("[ai]\nbackend = 'cerebras'\n", "ai.api_key_file"),
        ("[ai]\nbase_url = 'ftp://x'\n", "ai.base_url"),
        ("[ai.flags.invoice]\nkeywords = ['x']\n", "ai.flags.invoice.description"),
        ("[ai.flags.Bad-Name]\ndescription = 'x'\n", "ai.flags.Bad-Name"),
        ("[processor]\nlease_seconds = 30\n[ai]\ntimeout = 60\n", "processor.lease_seconds"),
        ("[nonsense]\n", "nonsense"),
        ("[processor]\nidle = true\n", "processor.idle"),
    ],
)
def test_bad_value_names_its_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert caught.value.key == key
    assert str(caught.value).startswith(key)


def test_invalid_toml_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path, "[processor\n")


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        loader.load(tmp_path / "nope.toml", {})


def test_seed_environment_overrides_the_file(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "[[accounts]]\nname = 'work'\nserver = 'old.example.com'\nusername = 'old'\n",
        IMAP_SERVER="imap.example.org",
        IMAP_USERNAME="robin",
        IMAP_PASSWORD="pw-from-env",
        DATABASE_URL="postgresql+asyncpg://u@127.0.0.1/munin",
        CEREBRAS_API_KEY="csk-env",
    )
    [account] = settings.accounts
    assert (account.server, account.username) == ("imap.example.org", "robin")
    assert account.password == Secret("pw-from-env")
    assert settings.database.url == "postgresql+asyncpg://u@127.0.0.1/munin"
    assert settings.ai.backend == "cerebras"


def test_seed_environment_alone_makes_an_account() -> None:
    settings = loader.load(None, {"IMAP_SERVER": "imap.example.org", "IMAP_USERNAME": "r"})
    [account] = settings.accounts
    assert (account.name, account.server, account.port) == ("default", "imap.example.org", 993)


def test_systemd_credentials_supply_secrets(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "work.password").write_text("from-credential")
    (creds / "cerebras.key").write_text("csk-credential")
    settings = load(tmp_path, "[[accounts]]\nname = 'work'\n", CREDENTIALS_DIRECTORY=str(creds))
    assert settings.accounts[0].password == Secret("from-credential")
    assert settings.ai.api_key == Secret("csk-credential")


def test_unreadable_secret_file_names_the_key_not_the_content(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f"[[accounts]]\nname = 'w'\npassword_file = '{tmp_path}/missing'\n")
    assert caught.value.key == "accounts[0].password_file"


def test_inline_and_file_secret_together_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not both"):
        load(tmp_path, "[[accounts]]\nname='w'\npassword='x'\npassword_file='/etc/x'\n")


def test_custom_flags_extend_the_defaults(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "[ai.flags.invoice]\ndescription = 'A bill to pay.'\nkeywords = ['invoice', 'bill']\n",
    )
    names = [f.name for f in settings.ai.flags]
    assert names == ["requires_response", "urgent", "meeting_request", "invoice"]
    assert settings.ai.flags[-1].keywords == ("invoice", "bill")


def test_check_config_output_masks_every_secret(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "[[accounts]]\nname = 'w'\npassword = 'imap-secret-1'\n",
        CEREBRAS_API_KEY="csk-secret-2",
        DATABASE_URL="postgresql+asyncpg://u:db-secret-3@127.0.0.1/x",
    )
    shown = show.render(settings)
    for secret in ("imap-secret-1", "csk-secret-2", "db-secret-3"):
        assert secret not in shown
    assert shown.count("********") == 3
    assert sorted(settings.secrets()) == ["csk-secret-2", "db-secret-3", "imap-secret-1"]


def test_secret_never_prints_itself() -> None:
    secret = Secret("top")
    assert "top" not in f"{secret} {secret!r}"
    assert secret.reveal() == "top"


def test_credentials_loaded_from_a_folder_carry_the_unit_prefix(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "muninmail_cerebras.key").write_text("csk-from-folder")
    settings = load(tmp_path, "", CREDENTIALS_DIRECTORY=str(creds))
    assert settings.ai.api_key == Secret("csk-from-folder")


def test_noop_backend_can_be_chosen_for_measurements(tmp_path: Path) -> None:
    assert load(tmp_path, "[ai]\nbackend = 'noop'\n").ai.backend == "noop"
