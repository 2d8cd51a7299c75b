"""Remote definitions in the repository config, and keeping their secrets out of sight.

    remotes:
      origin:
        url: s3://ml-artifacts/team-a
        endpoint_url: http://127.0.0.1:9000     # any other key is an fsspec storage option
    core:
      remote: origin                             # the default remote

The committed ``.cas/config.yaml`` and the git-ignored ``.cas/config.local.yaml`` are merged
key by key, so a remote can be declared in the shared file and get its machine-specific or
secret options locally. Secrets are refused in the committed file and in URLs, and every
string shown to a user passes through ``redact``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from ..config import Config, deep_merge
from ..errors import ConfigError, UsageError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
# Storage options that carry credentials (s3fs, gcsfs, adlfs, sshfs, webdav, ...): allowed only
# in config.local.yaml, and never printed.
SECRET_OPTIONS = frozenset({
    "key", "secret", "token", "password", "passphrase", "session_token", "access_key",
    "secret_key", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
    "account_key", "sas_token", "client_secret", "connection_string", "credentials",
    "private_key", "client_key",
})
REDACTED = "***"


@dataclass(frozen=True)
class RemoteSpec:
    """One configured remote: its name, URL and fsspec storage options."""

    name: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)

    def shown(self) -> str:
        """The URL as it may be printed."""
        return redact_url(self.url)

    def public_options(self) -> dict[str, Any]:
        """Options with secret values replaced, for display."""
        return {k: (REDACTED if is_secret(k) else v) for k, v in sorted(self.options.items())}

    def secrets(self) -> list[str]:
        return [str(v) for k, v in self.options.items() if is_secret(k) and v]


def is_secret(option: str) -> bool:
    low = option.lower()
    return low in SECRET_OPTIONS or low.endswith(("_secret", "_password", "_token", "_key")) \
        and low not in ("endpoint_key",)


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise UsageError(f"remote name {name!r} is invalid: use letters, digits, '.', '_' "
                         "or '-' (up to 63 characters)")
    return name


def check_url(url: str) -> str:
    """Refuse URLs that embed a password: they would end up in Git."""
    if not url or url != url.strip():
        raise UsageError("the remote URL is empty or has surrounding spaces")
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        if ":" in userinfo or parts.scheme in ("s3", "s3a", "gs", "gcs", "az", "abfs"):
            raise UsageError(
                f"the remote URL {redact_url(url)} embeds credentials; remove them from the "
                "URL and use the usual credential chain (AWS_* environment, a profile), or "
                "'cas remote modify NAME OPTION VALUE --local' for a git-ignored setting")
    return url


# Object stores have no user names: anything before '@' is an access key (id and secret).
KEY_USERINFO_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oss", "r2"})


def redact_url(url: str) -> str:
    """``url`` with any password in its user part replaced by *** (on object stores, the
    whole user part: it is an access key)."""
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        userinfo, host = parts.netloc.rsplit("@", 1)
        if parts.scheme.lower() in KEY_USERINFO_SCHEMES:
            return url.replace(parts.netloc, f"{REDACTED}@{host}", 1)
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            return url.replace(parts.netloc, f"{user}:{REDACTED}@{host}", 1)
    return url


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret value (and URL password) replaced by ***."""
    for s in sorted(set(secrets), key=len, reverse=True):
        if len(s) >= 4:
            text = text.replace(s, REDACTED)
    return re.sub(r"(://[^/\s:@]+):[^/\s@]+@", rf"\1:{REDACTED}@", text)


def parse_value(raw: str) -> Any:
    """A storage option value typed on the command line: YAML scalars (true, 3, 1.5) or text."""
    try:
        v = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if v is None or isinstance(v, (bool, int, float, str)):
        return raw if v is None else v
    return raw


def _section(cfg: Config, local: bool) -> dict[str, Any]:
    sec = cfg.file_data(local).get("remotes")
    if sec is None:
        return {}
    if not isinstance(sec, dict):
        raise ConfigError("'remotes' in the config must be a mapping of name -> settings")
    return sec


def remotes(cfg: Config) -> dict[str, RemoteSpec]:
    """Every configured remote (shared and local files merged), by name."""
    merged = cfg.get("remotes") or {}
    if not isinstance(merged, dict):
        raise ConfigError("'remotes' in the config must be a mapping of name -> settings")
    out = {}
    for name, body in merged.items():
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            raise ConfigError(f"remote {name!r} has no url in the config; set it with "
                              f"'cas remote modify {name} url URL'")
        opts = {k: v for k, v in body.items() if k != "url"}
        out[str(name)] = RemoteSpec(str(name), body["url"], opts)
    return out


def default_name(cfg: Config) -> str | None:
    name = cfg.get("core.remote")
    return str(name) if name else None


def resolve(cfg: Config, name: str | None) -> RemoteSpec:
    """The named remote, or the default one; a clear error when neither exists."""
    all_ = remotes(cfg)
    if name is None:
        name = default_name(cfg)
        if name is None:
            if len(all_) == 1:
                only = next(iter(all_.values()))
                check_url(only.url)
                return only
            raise ConfigError("no default remote; add one with 'cas remote add NAME URL "
                              "--default' or name it with -r NAME")
    spec = all_.get(name)
    if spec is None:
        known = ", ".join(sorted(all_)) or "none configured"
        raise ConfigError(f"unknown remote {name!r} (known: {known}); add it with "
                          f"'cas remote add {name} URL'")
    check_url(spec.url)
    return spec


def add_remote(cfg: Config, name: str, url: str, *, default: bool = False,
               local: bool = False, force: bool = False) -> RemoteSpec:
    check_name(name)
    check_url(url)
    if name in remotes(cfg) and not force:
        raise UsageError(f"remote {name!r} already exists; change it with 'cas remote modify "
                         f"{name} url URL' or use --force")
    sec = cfg.file_data(local).setdefault("remotes", {})
    sec[name] = {"url": url}
    if default:
        cfg.set("core.remote", name, local=local)
    cfg.save(local)
    return remotes(cfg)[name]


def modify_remote(cfg: Config, name: str, option: str, value: str | None, *,
                  local: bool = False) -> RemoteSpec:
    """Set (or with value None, unset) one option of a remote in one of the two files."""
    check_name(name)
    if name not in remotes(cfg):
        raise ConfigError(f"unknown remote {name!r}; add it first with 'cas remote add'")
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", option):
        raise UsageError(f"option name {option!r} is invalid")
    if value is not None and is_secret(option) and not local:
        raise UsageError(f"{option!r} is a secret: store it in the git-ignored "
                         "config.local.yaml with --local (or use the environment)")
    sec = _section(cfg, local)
    if value is None:
        body = sec.get(name)
        if not isinstance(body, dict) or option not in body:
            where = "config.local.yaml" if local else "config.yaml"
            raise UsageError(f"remote {name!r} has no option {option!r} in {where}")
        if option == "url" and not local:
            raise UsageError("a remote needs its url; remove the remote instead")
        del body[option]
        if not body:
            del sec[name]
    else:
        if option == "url":
            check_url(value)
            parsed: Any = value
        else:
            parsed = parse_value(value)
        cfg.file_data(local).setdefault("remotes", {}).setdefault(name, {})[option] = parsed
    cfg.save(local)
    return remotes(cfg)[name]


def remove_remote(cfg: Config, name: str) -> None:
    """Delete a remote from both files (and clear it as default)."""
    if name not in remotes(cfg):
        raise ConfigError(f"unknown remote {name!r}")
    for local in (False, True):
        sec = _section(cfg, local)
        changed = sec.pop(name, None) is not None
        if changed and not sec:
            cfg.file_data(local).pop("remotes", None)
        if cfg.file_data(local).get("core", {}).get("remote") == name:
            cfg.unset("core.remote", local=local)
            changed = True
        if changed:
            cfg.save(local)


def set_default(cfg: Config, name: str | None, *, local: bool = False) -> None:
    """Make ``name`` the default remote (None clears it)."""
    if name is None:
        cfg.unset("core.remote", local=local)
    else:
        if name not in remotes(cfg):
            raise ConfigError(f"unknown remote {name!r}; add it first with 'cas remote add'")
        cfg.set("core.remote", name, local=local)
    cfg.save(local)


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` words from the command line as storage options (values typed as in
    'cas remote modify')."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--remote-config takes KEY=VALUE (e.g. endpoint_url=http://"
                             f"127.0.0.1:9000), not {pair!r}")
        if key == "url":
            raise UsageError("--remote-config cannot replace the url: the other "
                             "repository's pointers name data at its own remote")
        out[key] = parse_value(raw)
    return out


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> str | None:
    """Set ``overrides`` on the default remote of ``cfg`` in memory only (no file of the
    other repository is written); returns that remote's name."""
    if not overrides:
        return None
    all_ = remotes(cfg)
    name = default_name(cfg) or (next(iter(all_)) if len(all_) == 1 else None)
    if name is None or name not in all_:
        raise ConfigError("--remote-config: the other repository has no default remote to "
                          "apply it to")
    cfg.data = deep_merge(cfg.data, {"remotes": {name: overrides}})
    return name
