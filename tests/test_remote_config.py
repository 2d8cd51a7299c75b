"""cas remote add|modify|remove|list|default, and secrets kept out of Git and output."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from casstore.config import Config
from casstore.errors import ConfigError, UsageError
from casstore.remote import config as rc


def _cfg(repo: Path) -> Config:
    return Config(repo / ".cas")


def test_add_list_default_remove(repo: Path, cas) -> None:
    cas("remote", "add", "origin", "s3://bucket/team-a", "--default")
    cas("remote", "add", "backup", "/mnt/backup")
    shared = yaml.safe_load((repo / ".cas/config.yaml").read_text())
    assert shared["remotes"]["origin"] == {"url": "s3://bucket/team-a"}
    assert shared["core"]["remote"] == "origin"
    out = sorted(cas("remote", "list").stdout.splitlines())
    assert out == ["  backup\t/mnt/backup", "* origin\ts3://bucket/team-a"]
    assert cas("remote", "default").stdout.strip() == "origin"
    cas("remote", "default", "backup")
    assert rc.default_name(_cfg(repo)) == "backup"
    cas("remote", "remove", "backup")
    cfg = _cfg(repo)
    assert set(rc.remotes(cfg)) == {"origin"} and rc.default_name(cfg) is None
    assert rc.resolve(cfg, None).name == "origin"  # the only remote is the default


def test_modify_local_and_typed_values(repo: Path, cas) -> None:
    cas("remote", "add", "origin", "s3://bucket/x")
    cas("remote", "modify", "origin", "endpoint_url", "http://127.0.0.1:9000", "--local")
    cas("remote", "modify", "origin", "anon", "true")
    local = yaml.safe_load((repo / ".cas/config.local.yaml").read_text())
    assert local["remotes"]["origin"] == {"endpoint_url": "http://127.0.0.1:9000"}
    spec = rc.resolve(_cfg(repo), "origin")
    assert spec.options == {"endpoint_url": "http://127.0.0.1:9000", "anon": True}
    cas("remote", "modify", "origin", "anon", "--unset")
    assert "anon" not in rc.resolve(_cfg(repo), "origin").options


def test_credentials_refused_in_urls_and_committed_file(repo: Path, cas) -> None:
    r = cas("remote", "add", "origin", "s3://AKIAEXAMPLE:s3cr3tvalue@bucket/x", check=False)
    assert r.returncode == 2
    assert "embeds credentials" in r.stderr and "s3cr3tvalue" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = cas("remote", "add", "web", "https://bob:hunter22@example.com/store", check=False)
    assert r.returncode == 2 and "hunter22" not in r.stderr
    cas("remote", "add", "origin", "s3://bucket/x")
    r = cas("remote", "modify", "origin", "secret", "topsecretvalue", check=False)
    assert r.returncode == 2 and "--local" in r.stderr
    assert "topsecretvalue" not in (repo / ".cas/config.yaml").read_text()
    cas("remote", "modify", "origin", "secret", "topsecretvalue", "--local")
    cas("remote", "modify", "origin", "key", "AKIAKEYVALUE", "--local")
    listed = cas("remote", "list").stdout + cas("remote", "list", "--json").stdout
    assert "topsecretvalue" not in listed and "AKIAKEYVALUE" not in listed
    assert "***" in listed
    ignored = (repo / ".cas/.gitignore").read_text()
    assert "/config.local.yaml" in ignored


def test_redaction_helpers() -> None:
    assert rc.redact_url("https://u:pw@h/x") == "https://u:***@h/x"
    assert rc.redact_url("s3://bucket/x") == "s3://bucket/x"
    text = "failed for key AKIA123456 at s3://a:b@c/d"
    assert rc.redact(text, ["AKIA123456"]) == "failed for key *** at s3://a:***@c/d"
    assert rc.is_secret("secret") and rc.is_secret("aws_session_token")
    assert not rc.is_secret("endpoint_url") and not rc.is_secret("profile")


def test_unknown_and_invalid_names(repo: Path) -> None:
    cfg = _cfg(repo)
    with pytest.raises(ConfigError, match="no default remote"):
        rc.resolve(cfg, None)
    with pytest.raises(ConfigError, match="unknown remote 'nope'"):
        rc.resolve(cfg, "nope")
    with pytest.raises(UsageError):
        rc.add_remote(cfg, "bad name", "/x")
    rc.add_remote(cfg, "origin", "/x")
    with pytest.raises(UsageError, match="already exists"):
        rc.add_remote(cfg, "origin", "/y")
