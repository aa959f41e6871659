"""Read the TOML file, the environment and the secrets into `Settings`.

Precedence, lowest first: built-in defaults, the TOML file, the environment variables
(`IMAP_SERVER`, `IMAP_USERNAME`, `IMAP_PASSWORD`, `CEREBRAS_API_KEY`, `DATABASE_URL`). Secrets
come from the file (`password`, `api_key`), from a file it names (`password_file`,
`api_key_file`) or from a systemd credential in `$CREDENTIALS_DIRECTORY` (`<account>.password`,
`cerebras.key`, or `openai.key` for the `openai` backend). Every problem is a `ConfigError`
naming the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from muninmaild.config.reader import TableReader, path_value
from muninmaild.config.settings import (
    BACKFILL_PATTERN,
    DEFAULT_FLAGS,
    REASONING_EFFORTS,
    SKIP_KINDS,
    STRUCTURED_OUTPUTS,
    AccountSettings,
    AISettings,
    DaemonSettings,
    DatabaseSettings,
    DigestSettings,
    FlagSpec,
    MetricsSettings,
    ProcessorSettings,
    Secret,
    Settings,
    parse_listen,
)
from muninmaild.errors import ConfigError

DEFAULT_PATH = Path("/etc/muninmail/muninmaild.toml")
SECTIONS = ("daemon", "database", "accounts", "processor", "ai", "metrics", "digest")
LOG_LEVELS = ("debug", "info", "warning", "error")
# An IMAP keyword (RFC 3501 atom) that every server and client takes: no spaces, none of
# `(){%*"\]`, no leading backslash (those are system flags), ASCII only (Thunderbird's tags).
KEYWORD_PATTERN = r"[A-Za-z0-9$_.+:/@&!#~^|=-]{1,64}"
# LoadCredential=muninmail:/etc/muninmail/credentials names each file's credential muninmail_<file>.
CREDENTIAL_PREFIX = "muninmail_"


def load(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build the effective settings. `path=None` reads the default file if it exists."""
    env = os.environ if env is None else env
    raw, source = _read_toml(path)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(unknown[0], "unknown section or key at the top level")
    creds = _credentials_dir(env)
    daemon = _daemon(_table(raw, "daemon"))
    database = _database(_table(raw, "database"), daemon, env)
    accounts = _accounts(raw.get("accounts", []), creds, env)
    processor = _processor(_table(raw, "processor"))
    ai = _ai(_table(raw, "ai"), creds, env)
    if processor.lease_seconds <= ai.timeout:
        raise ConfigError(
            "processor.lease_seconds",
            f"must be longer than ai.timeout ({ai.timeout:g} s), or a slow answer loses its lease",
        )
    metrics = _metrics(_table(raw, "metrics"))
    digest = _digest(_table(raw, "digest"), accounts)
    return Settings(
        daemon, database, accounts, processor, ai, source, metrics=metrics, digest=digest
    )


def _read_toml(path: Path | None) -> tuple[dict[str, Any], Path | None]:
    explicit = path is not None
    path = path or DEFAULT_PATH
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh), path
    except FileNotFoundError:
        if explicit:
            raise ConfigError("", f"configuration file {path} does not exist") from None
        return {}, None
    except PermissionError:
        raise ConfigError("", f"configuration file {path} is not readable") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{path} is not valid TOML: {exc}") from None


def _table(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(name, "must be a table ([" + name + "])")
    return value


def _daemon(table: dict[str, Any]) -> DaemonSettings:
    r = TableReader(table, "daemon")
    d = DaemonSettings()
    out = DaemonSettings(
        state_dir=r.path("state_dir", d.state_dir),
        control_socket=r.path("control_socket", d.control_socket),
        socket_group=r.string("socket_group", d.socket_group),
        log_level=r.choice("log_level", d.log_level, LOG_LEVELS),
        drain_timeout=r.number("drain_timeout", d.drain_timeout, minimum=0.0),
        control_max_connections=r.integer(
            "control_max_connections", d.control_max_connections, minimum=1, maximum=4096
        ),
        control_idle_timeout=r.number("control_idle_timeout", d.control_idle_timeout, minimum=0.1),
        fetch_lease_seconds=r.number("fetch_lease_seconds", d.fetch_lease_seconds, minimum=1.0),
        heartbeat_seconds=r.number("heartbeat_seconds", d.heartbeat_seconds, minimum=0.1),
    )
    r.finish()
    return out


def _database(
    table: dict[str, Any], daemon: DaemonSettings, env: Mapping[str, str]
) -> DatabaseSettings:
    r = TableReader(table, "database")
    default_url = f"sqlite+aiosqlite:///{daemon.state_dir / 'muninmail.db'}"
    url = r.string("url", default_url)
    url = env.get("DATABASE_URL") or url
    retention = r.integer("retention_days", 0, minimum=0)
    r.finish()
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            "database.url", "must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    return DatabaseSettings(url=url, retention_days=retention)


def _accounts(
    raw: object, creds: Path | None, env: Mapping[str, str]
) -> tuple[AccountSettings, ...]:
    if not isinstance(raw, list):
        raise ConfigError("accounts", "must be an array of tables ([[accounts]])")
    accounts = [_account(item, i, creds) for i, item in enumerate(raw)]
    names = [a.name for a in accounts]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError("accounts.name", f"account name {name!r} is used twice")
    return tuple(_apply_imap_env(accounts, env))


def _account(item: object, index: int, creds: Path | None) -> AccountSettings:
    where = f"accounts[{index}]"
    if not isinstance(item, dict):
        raise ConfigError(where, "must be a table")
    r = TableReader(item, where)
    name = r.string("name", f"account{index + 1}", pattern=r"[A-Za-z0-9_.-]{1,64}")
    source = r.choice("source", "imap", ("imap", "maildir"))
    d = AccountSettings(name=name)
    account = AccountSettings(
        name=name,
        source=source,  # type: ignore[arg-type]
        path=r.optional_path("path"),
        server=r.string("server", ""),
        port=r.integer("port", 993, minimum=1, maximum=65535),
        security=r.choice("security", "tls", ("tls", "starttls", "none")),  # type: ignore[arg-type]
        ca_file=r.optional_path("ca_file"),
        username=r.string("username", ""),
        password=_secret(r, "password", creds, f"{name}.password"),
        mailboxes=tuple(r.string_list("mailboxes", list(d.mailboxes))),
        idle=r.boolean("idle", d.idle),
        poll_interval=r.number("poll_interval", d.poll_interval, minimum=1.0),
        max_message_size=r.integer("max_message_size", d.max_message_size, minimum=1024),
        write_keywords=r.boolean("write_keywords", d.write_keywords),
        send_body=r.boolean("send_body", d.send_body),
        backfill=r.string(
            "backfill",
            d.backfill,
            pattern=BACKFILL_PATTERN,
            wanted='"all", "none", or days or weeks such as "14d" or "2w"',
        ),
    )
    r.finish()
    if source == "maildir" and account.path is None:
        raise ConfigError(f"{where}.path", 'a maildir account needs path = "..."')
    if source == "maildir" and account.write_keywords:
        raise ConfigError(
            f"{where}.write_keywords", "keywords are written over IMAP: an imap account needs it"
        )
    return account


def _apply_imap_env(
    accounts: list[AccountSettings], env: Mapping[str, str]
) -> list[AccountSettings]:
    """IMAP_SERVER, IMAP_USERNAME and IMAP_PASSWORD steer the first IMAP account, or make one."""
    server, user = env.get("IMAP_SERVER"), env.get("IMAP_USERNAME")
    password = env.get("IMAP_PASSWORD")
    if not (server or user or password):
        return accounts
    index = next((i for i, a in enumerate(accounts) if a.source == "imap"), None)
    if index is None:
        if not server:
            raise ConfigError("IMAP_SERVER", "IMAP_USERNAME/IMAP_PASSWORD given but no server")
        accounts.append(AccountSettings(name="default"))
        index = len(accounts) - 1
    current = accounts[index]
    accounts[index] = replace(
        current,
        server=server or current.server,
        username=user or current.username,
        password=Secret(password) if password else current.password,
    )
    return accounts


def _processor(table: dict[str, Any]) -> ProcessorSettings:
    r = TableReader(table, "processor")
    d = ProcessorSettings()
    out = ProcessorSettings(
        concurrency=r.integer("concurrency", d.concurrency, minimum=1, maximum=256),
        max_attempts=r.integer("max_attempts", d.max_attempts, minimum=1, maximum=100),
        lease_seconds=r.number("lease_seconds", d.lease_seconds, minimum=1.0),
        retry_base_seconds=r.number("retry_base_seconds", d.retry_base_seconds, minimum=0.0),
        retry_max_seconds=r.number("retry_max_seconds", d.retry_max_seconds, minimum=0.0),
        poll_interval=r.number("poll_interval", d.poll_interval, minimum=0.05),
    )
    r.finish()
    return out


def _ai(table: dict[str, Any], creds: Path | None, env: Mapping[str, str]) -> AISettings:
    r = TableReader(table, "ai")
    d = AISettings()
    named = r.choice("backend", "", ("", "cerebras", "openai", "rules", "noop"))
    if named == "openai":
        # A local server rarely wants a key; CEREBRAS_API_KEY is never sent to another service.
        key = _secret(r, "api_key", creds, "openai.key")
    else:
        key = _secret(r, "api_key", creds, "cerebras.key")
        if env.get("CEREBRAS_API_KEY"):
            key = Secret(env["CEREBRAS_API_KEY"])
    backend = named or ("cerebras" if key else "rules")
    out = AISettings(
        backend=backend,  # type: ignore[arg-type]
        model=r.string("model", "" if backend == "openai" else d.model),
        base_url=r.string("base_url", "" if backend == "openai" else d.base_url),
        api_key=key,
        timeout=r.number("timeout", d.timeout, minimum=0.1),
        max_input_chars=r.integer("max_input_chars", d.max_input_chars, minimum=200),
        max_completion_tokens=r.integer(
            "max_completion_tokens", d.max_completion_tokens, minimum=64
        ),
        flags=_flags(r.table("flags")),
        reasoning_effort=_reasoning_effort(r),
        structured_output=r.choice(  # type: ignore[arg-type]
            "structured_output", d.structured_output, STRUCTURED_OUTPUTS
        ),
        language=r.string("language", d.language, pattern=r"[^\x00-\x1f\"]{1,40}").strip(),
        skip=_skip(r),
        cache=r.boolean("cache", d.cache),
        cache_days=r.integer("cache_days", d.cache_days, minimum=1, maximum=3650),
        cache_entries=r.integer("cache_entries", d.cache_entries, minimum=1),
        **_rate_limits(r, d if backend == "cerebras" else None),
    )
    r.finish()
    _check_backend(out)
    return out


RATE_KEYS = (
    "requests_per_minute",
    "requests_per_hour",
    "requests_per_day",
    "tokens_per_minute",
    "tokens_per_hour",
    "tokens_per_day",
)


def _rate_limits(r: TableReader, defaults: AISettings | None) -> dict[str, int]:
    """The six windows; 0 is no limit. Cerebras' free tier unless configured; other services
    have no limit unless configured."""
    return {
        key: r.integer(key, getattr(defaults, key) if defaults else 0, minimum=0)
        for key in RATE_KEYS
    }


def _skip(r: TableReader) -> tuple[str, ...]:
    """`ai.skip`: a list of SKIP_KINDS, each at most once; empty (the default) skips nothing."""
    kinds = r.string_list("skip", [], empty_ok=True)
    unknown = [kind for kind in kinds if kind not in SKIP_KINDS]
    if unknown:
        choices = ", ".join(f'"{kind}"' for kind in SKIP_KINDS)
        raise ConfigError(r.where("skip"), f"{unknown[0]!r} is not one of {choices}")
    return tuple(dict.fromkeys(kinds))


def _reasoning_effort(r: TableReader) -> str | None:
    value = r.string("reasoning_effort", "")
    if not value:
        return None
    if value not in REASONING_EFFORTS:
        choices = ", ".join(REASONING_EFFORTS)
        raise ConfigError(r.where("reasoning_effort"), f"must be one of {choices}, not {value!r}")
    return value


def _check_backend(ai: AISettings) -> None:
    if ai.base_url and not re.fullmatch(r"https?://\S+", ai.base_url):
        raise ConfigError("ai.base_url", f"{ai.base_url!r} is not an http:// or https:// URL")
    if ai.backend == "cerebras" and ai.api_key is None:
        raise ConfigError(
            "ai.api_key_file",
            'backend "cerebras" needs an API key: set api_key_file, the credential '
            'cerebras.key or CEREBRAS_API_KEY, or use backend = "rules"',
        )
    if ai.backend == "openai":
        for key in ("base_url", "model"):
            if not getattr(ai, key):
                example = "http://localhost:11434/v1" if key == "base_url" else "qwen3:4b"
                raise ConfigError(
                    f"ai.{key}",
                    f'backend "openai" needs the server\'s {key} (e.g. {key} = "{example}"; '
                    "docs/models.md)",
                )


def _metrics(table: dict[str, Any]) -> MetricsSettings:
    r = TableReader(table, "metrics")
    listen = r.string("listen", "").strip()
    r.finish()
    if listen:
        try:
            parse_listen(listen)
        except ValueError as exc:
            raise ConfigError("metrics.listen", str(exc)) from None
    return MetricsSettings(listen=listen)


def _flags(table: dict[str, Any]) -> tuple[FlagSpec, ...]:
    """Configured flags extend the default vocabulary; a default may be re-described, or given
    only the IMAP keyword it is written as."""
    flags = {f.name: f for f in DEFAULT_FLAGS}
    for name, spec in table.items():
        where = f"ai.flags.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(where, "must be a table with description (and keywords, keyword)")
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
            raise ConfigError(where, "a flag name is lower-case letters, digits and _")
        r = TableReader(spec, where)
        known = flags.get(name)
        flags[name] = FlagSpec(
            name,
            r.string("description", known.description if known else "", required=not known),
            tuple(r.string_list("keywords", list(known.keywords) if known else [])),
            _keyword(r),
        )
        r.finish()
    return tuple(flags.values())


def _keyword(r: TableReader) -> str | None:
    value = r.string("keyword", "")
    if not value:
        return None
    if not re.fullmatch(KEYWORD_PATTERN, value):
        raise ConfigError(
            r.where("keyword"),
            f"{value!r} is not an IMAP keyword: up to 64 ASCII letters, digits and $_.+:/@&!#~^|=-",
        )
    return value


def _digest(table: dict[str, Any], accounts: tuple[AccountSettings, ...]) -> DigestSettings:
    r = TableReader(table, "digest")
    d = DigestSettings()
    account = r.string("account", "") or None
    mailbox = r.string("mailbox", d.mailbox)
    r.finish()
    if account is not None:
        found = next((a for a in accounts if a.name == account), None)
        if found is None:
            names = ", ".join(a.name for a in accounts) or "none"
            raise ConfigError(
                "digest.account", f"there is no account {account!r}; accounts: {names}"
            )
        if found.source != "imap":
            raise ConfigError(
                "digest.account", "the digest is appended over IMAP: name an imap account"
            )
    if not mailbox:
        raise ConfigError("digest.mailbox", "must not be empty")
    return DigestSettings(account, mailbox)


def _secret(r: TableReader, key: str, creds: Path | None, cred_name: str) -> Secret | None:
    """An inline value, else the file `<key>_file` names, else the systemd credential."""
    inline = r.string(key, "")
    file_key = f"{key}_file"
    file_path = r.optional_path(file_key)
    if inline and file_path:
        raise ConfigError(r.where(key), f"set {key} or {file_key}, not both")
    if inline:
        return Secret(inline)
    if file_path:
        return Secret(_read_secret_file(file_path, r.where(file_key)))
    for name in (cred_name, f"{CREDENTIAL_PREFIX}{cred_name}"):
        if creds and _is_credential(creds / name):
            return Secret(_read_secret_file(creds / name, f"credential {name}"))
    return None


def _is_credential(path: Path) -> bool:
    # An unreadable credentials folder is a setup error to name, not a traceback.
    try:
        return path.is_file()
    except OSError as exc:
        where = f"credential {path.name}"
        raise ConfigError(where, f"cannot read {path}: {exc.strerror}") from None


def _read_secret_file(path: Path, key: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.__class__.__name__}") from None
    if not value:
        raise ConfigError(key, f"{path} is empty")
    return value


def _credentials_dir(env: Mapping[str, str]) -> Path | None:
    value = env.get("CREDENTIALS_DIRECTORY")
    return path_value(value) if value else None
