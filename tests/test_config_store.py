"""The ``[store]`` table is validated like the breakers (SPEC §8): unknown keys, wrong
types and placeholders are errors naming the dotted path; nothing is read loosely."""

from __future__ import annotations

from pathlib import Path

import pytest

from haltgate import ConfigError, hash_key
from haltgate.config import load_config, store_settings
from haltgate.errors import InvalidTypeError
from haltgate.store import redact_url
from haltgate.store.sqlite import SQLiteStore


def _write(folder: Path, text: str) -> Path:
    path = folder / "haltgate.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("store", "path", "shown"),
    [
        # A typo of url must not silently use the default haltgate.db.
        ('ulr = "sqlite:///prod.db"', "store.ulr", "'sqlite:///prod.db'"),
        ("store_timout = 1", "store.store_timout", "1"),
        # A string is never a boolean: "false" must not run fail-open.
        ('fail_open = "false"', "store.fail_open", "'false'"),
        ("fail_open = 0", "store.fail_open", "0"),
        ("store_timeout = -1", "store.store_timeout", "-1"),
        ('store_timeout = "soon"', "store.store_timeout", "'soon'"),
        ("poll_interval = 0", "store.poll_interval", "0"),
        ('namespace = "other"', "store.namespace", "'other'"),  # not an SQLite option
        ('calendar = "utc"', "store.calendar", "'utc'"),  # the old starter's mistake
        ('url = "redis://..."', "store.url", "'redis://...'"),
        ('url = "redis://h/0"\nnamespace = "a:b"', "store.namespace", "'a:b'"),
        ('url = "redis://h/0"\nnamespace = "..."', "store.namespace", "'...'"),
        ('url = "redis://h/0"\npoll_interval = 1', "store.poll_interval", "1"),
        ('url = "memory://"\nfail_open = true', "store.fail_open", "True"),
        ('url = "sqlite:///x.db"\naudit_key = "k"', "store.audit_key", "'k'"),
    ],
)
def test_bad_store_options_are_errors_naming_the_dotted_path(
    tmp_path: Path, store: str, path: str, shown: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, f"[store]\n{store}\n"))
    assert info.value.path == path
    assert shown in str(info.value)
    assert not (tmp_path / "haltgate.db").exists()  # refused before anything was opened


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('[kill_switch]\nkey_hash = "scrypt$16384$8$1$..."\n', "kill_switch.key_hash"),
        (
            '[[operators]]\nname = "alice"\ntoken_hash = "scrypt$16384$8$1$..."\n',
            "operators[0].token_hash",
        ),
        ('[kill_switch]\nkey_hash = "..."\n', "kill_switch.key_hash"),
    ],
)
def test_placeholders_left_from_the_starter_are_errors(
    tmp_path: Path, text: str, path: str
) -> None:
    with pytest.raises(ConfigError, match="placeholder") as info:
        load_config(_write(tmp_path, text))
    assert info.value.path == path


def test_store_options_reach_the_store_typed(tmp_path: Path) -> None:
    config = load_config(
        _write(
            tmp_path,
            '[store]\nurl = "sqlite:///hg.db"\nfail_open = true\nstore_timeout = "0.5"\n',
        )
    )
    assert config.store_options == {"fail_open": True, "store_timeout": 0.5}
    assert store_settings(config) == {
        "fail_open": True,
        "poll_interval": 0.02,
        "store_timeout": 0.5,
    }
    store = config.open_store()
    try:
        assert store.fail_open is True
    finally:
        store.close()
    closed = load_config(_write(tmp_path, '[store]\nurl = "sqlite:///hg.db"\nfail_open = false\n'))
    store = closed.open_store()
    try:
        assert store.fail_open is False
    finally:
        store.close()
    keyed = hash_key("a-real-key")
    assert load_config(_write(tmp_path, f'[kill_switch]\nkey_hash = "{keyed}"\n'))


def test_a_store_refuses_a_string_for_fail_open(tmp_path: Path) -> None:
    with pytest.raises(InvalidTypeError) as info:
        SQLiteStore(tmp_path / "hg.db", fail_open="false")  # type: ignore[arg-type]
    assert info.value.parameter == "fail_open" and "'false'" in str(info.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
        ("rediss://user:s3cret@host/1", "rediss://user:***@host/1"),
        ("redis://host/0?password=s3cret&db=1", "redis://host/0?password=***&db=1"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("sqlite:////var/lib/hg.db", "sqlite:////var/lib/hg.db"),
        ("memory://", "memory://"),
    ],
)
def test_store_urls_are_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cret" not in redact_url(url)
