"""The model's configuration: rate windows, reasoning effort, the openai backend, language,
what leaves the host, and the schema limits checked when the configuration is loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from muninmaild.ai.factory import check_settings
from muninmaild.ai.schema import SCHEMA_MAX_CHARS, answer_schema
from muninmaild.cli import EX_CONFIG
from muninmaild.config import loader, show
from muninmaild.config.settings import Settings
from muninmaild.errors import ConfigError
from tests.daemon_proc import clean_env
from tests.test_config import load

WINDOWS = (
    "requests_per_minute",
    "requests_per_hour",
    "requests_per_day",
    "tokens_per_minute",
    "tokens_per_hour",
    "tokens_per_day",
)
FREE_TIER = (30, 900, 14_400, 64_000, 1_000_000, 1_000_000)
LOCAL = '[ai]\nbackend = "openai"\nbase_url = "http://localhost:11434/v1"\nmodel = "qwen3:4b"\n'


def windows(settings: Settings) -> tuple[int, ...]:
    return tuple(getattr(settings.ai, key) for key in WINDOWS)


def test_cerebras_defaults_to_the_free_tier_of_its_default_model(tmp_path: Path) -> None:
    settings = load(tmp_path, "[ai]\napi_key = 'csk-x'\n")
    assert settings.ai.backend == "cerebras" and settings.ai.model == "gpt-oss-120b"
    assert windows(settings) == FREE_TIER
    assert settings.ai.max_completion_tokens == 1024
    assert settings.ai.effort_for_model() == "low"


def test_every_window_can_be_set_and_zero_is_none(tmp_path: Path) -> None:
    lines = "\n".join(f"{key} = {n}" for n, key in enumerate(WINDOWS))
    settings = load(tmp_path, f"[ai]\napi_key = 'csk-x'\n{lines}\n")
    assert windows(settings) == (0, 1, 2, 3, 4, 5)


def test_a_negative_window_names_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^ai\.tokens_per_day: must be at least 0"):
        load(tmp_path, "[ai]\napi_key = 'csk-x'\ntokens_per_day = -5\n")


def test_openai_has_no_limits_unless_configured(tmp_path: Path) -> None:
    settings = load(tmp_path, LOCAL)
    assert settings.ai.backend == "openai"
    assert windows(settings) == (0,) * 6
    assert settings.ai.structured_output == "json_schema"
    assert settings.ai.api_key is None  # a local server needs none
    assert windows(load(tmp_path, LOCAL + "requests_per_minute = 5\n"))[0] == 5


@pytest.mark.parametrize("missing", ["base_url", "model"])
def test_openai_needs_the_servers_address_and_model(tmp_path: Path, missing: str) -> None:
    text = "\n".join(line for line in LOCAL.splitlines() if not line.startswith(missing))
    with pytest.raises(ConfigError, match=rf"^ai\.{missing}: backend \"openai\" needs"):
        load(tmp_path, text + "\n")


def test_openai_takes_a_key_from_a_file_or_credential_never_the_cerebras_variable(
    tmp_path: Path,
) -> None:
    assert load(tmp_path, LOCAL, CEREBRAS_API_KEY="csk-not-for-you").ai.api_key is None
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "openai.key").write_text("sk-local\n")
    settings = load(tmp_path, LOCAL, CREDENTIALS_DIRECTORY=str(creds))
    assert settings.ai.api_key is not None and settings.ai.api_key.reveal() == "sk-local"
    (tmp_path / "key").write_text("sk-file\n")
    settings = load(tmp_path, LOCAL + f'api_key_file = "{tmp_path}/key"\n')
    assert settings.ai.api_key is not None and settings.ai.api_key.reveal() == "sk-file"


@pytest.mark.parametrize("mode", ["json_schema", "json_object", "prompt"])
def test_structured_output_modes(tmp_path: Path, mode: str) -> None:
    assert load(tmp_path, LOCAL + f'structured_output = "{mode}"\n').ai.structured_output == mode


def test_an_unknown_structured_output_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^ai\.structured_output: must be one of"):
        load(tmp_path, LOCAL + 'structured_output = "xml"\n')


@pytest.mark.parametrize(
    ("model", "effort", "sent"),
    [
        ("gpt-oss-120b", None, "low"),
        ("gpt-oss-120b", "medium", "medium"),
        ("gpt-oss-120b", "omit", None),
        ("llama-4-scout", None, None),
        ("llama-4-scout", "high", "high"),
    ],
)
def test_reasoning_effort(tmp_path: Path, model: str, effort: str | None, sent: str | None) -> None:
    text = f"[ai]\napi_key = 'csk-x'\nmodel = '{model}'\n"
    if effort:
        text += f"reasoning_effort = '{effort}'\n"
    assert load(tmp_path, text).ai.effort_for_model() == sent


def test_an_unknown_reasoning_effort_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^ai\.reasoning_effort: must be one of none, low"):
        load(tmp_path, "[ai]\napi_key = 'csk-x'\nreasoning_effort = 'max'\n")


def test_language(tmp_path: Path) -> None:
    assert load(tmp_path, "").ai.language == "English"
    assert load(tmp_path, "[ai]\nlanguage = 'auto'\n").ai.language == "auto"
    assert load(tmp_path, "[ai]\nlanguage = 'German'\n").ai.language == "German"
    with pytest.raises(ConfigError, match=r"^ai\.language"):
        load(tmp_path, '[ai]\nlanguage = "a\\nb"\n')


def test_send_body_is_per_account(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        '[[accounts]]\nname = "private"\nsource = "maildir"\npath = "/m"\nsend_body = false\n'
        '[[accounts]]\nname = "work"\nsource = "maildir"\npath = "/w"\n',
    )
    assert [a.send_body for a in settings.accounts] == [False, True]


def test_check_config_shows_the_new_keys(tmp_path: Path) -> None:
    text = show.render(load(tmp_path, LOCAL + "language = 'French'\n"))
    for line in ('structured_output = "json_schema"', 'language = "French"', "tokens_per_day = 0"):
        assert line in text


def many_flags(count: int, width: int = 30) -> str:
    return "".join(
        f'[ai.flags.{"f" * (width - 4)}{n:04d}]\ndescription = "Flag {n}."\n' for n in range(count)
    )


def test_flags_within_the_documented_schema_limits_are_accepted(tmp_path: Path) -> None:
    settings = load(tmp_path, "[ai]\napi_key = 'csk-x'\n" + many_flags(20))
    check_settings(settings.ai)
    names = [flag.name for flag in settings.ai.flags]
    assert len(str(answer_schema(names))) < SCHEMA_MAX_CHARS


def test_too_many_flags_are_a_configuration_error_naming_the_key(tmp_path: Path) -> None:
    settings = load(tmp_path, "[ai]\napi_key = 'csk-x'\n" + many_flags(200))
    with pytest.raises(ConfigError, match=r"^ai\.flags: 203 flags make the answer's schema"):
        check_settings(settings.ai)
    # The offline backend sends no schema: any number of flags is fine there.
    check_settings(load(tmp_path, "[ai]\nbackend = 'rules'\n" + many_flags(200)).ai)


def test_the_binary_exits_78_on_too_many_flags(tmp_path: Path) -> None:
    config = tmp_path / "muninmaild.toml"
    config.write_text(LOCAL + many_flags(200))
    done = subprocess.run(
        [sys.executable, "-m", "muninmaild", "--config", str(config), "--check-config"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == EX_CONFIG
    assert "configuration error: ai.flags: 203 flags" in done.stderr


def test_loader_alone_does_not_check_the_schema(tmp_path: Path) -> None:
    # The check belongs to the model's side (ai.schema); the loader cannot import it.
    path = tmp_path / "c.toml"
    path.write_text(LOCAL + many_flags(200))
    assert len(loader.load(path, {}).ai.flags) == 203
