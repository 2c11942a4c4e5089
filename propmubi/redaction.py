"""Showing configuration safely: secrets masked, the rest (hosts, ports) kept for operators."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import attrs

from propmubi.config import Config, _converter

__all__ = ["redacted"]


def redacted(config: Config, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The configuration as plain data, secrets masked (empty ones stay empty).

    :param config: the configuration.
    :param settings: the enabled plugins' structured settings by plugin name
        (``LoadedPlugin.settings``): shown with their defaults, fields marked
        ``metadata={"secret": True}`` masked. Other ``[plugins.<name>]`` tables are shown with
        every value masked, since nothing says which of their keys are secret.
    :returns: plain data for JSON.
    """
    out = {section.name: _masked(getattr(config, section.name))
           for section in attrs.fields(Config)
           if section.type is not None and attrs.has(section.type)}
    tables = {name: {key: _mask_url(str(v)) if v not in ("", None) else v
                     for key, v in table.items()}
              for name, table in config.plugins.settings.items()}
    for name, value in (settings or {}).items():
        if value is not None and attrs.has(type(value)):
            tables[name] = _masked(value)
    out["plugins"]["settings"] = tables
    return out


def _masked(value: Any) -> dict[str, Any]:
    """The settings as plain data, secrets hidden, also in nested tables (a plugin's
    ``[plugins.payments.razorpay]``, say) and in tuples of secrets (keys under rotation)."""
    data: dict[str, Any] = _converter.unstructure(value)
    for f in attrs.fields(type(value)):
        field_value = getattr(value, f.name)
        if attrs.has(type(field_value)):
            data[f.name] = _masked(field_value)
        elif f.metadata.get("secret") and data.get(f.name):
            secret = data[f.name]
            data[f.name] = ([_mask_url(str(s)) for s in secret]
                            if isinstance(secret, (list, tuple)) else _mask_url(str(secret)))
    return data


_SECRET_PARAMS = {"password", "pass", "passwd", "secret", "token", "key", "api_key", "access_key",
                  "sslpassword"}


def _mask_url(value: str) -> str:
    """Hide the password inside a URL (in its user part or its query) but keep the rest, which
    operators need to see; anything that is not a URL is hidden whole."""
    if "://" not in value:
        return "***"
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return "***"
    netloc = parts.netloc
    if password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:***@{host}"
    # Spliced back by hand: urlunsplit would turn unix:///path into unix:/path.
    start = value.index("://") + 3
    rest = value[start + len(parts.netloc):]
    path, question, tail = rest.partition("?")
    query, hash_, fragment = tail.partition("#")
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs],
                          safe="/:*")
    return f"{value[:start]}{netloc}{path}{question}{query}{hash_}{fragment}"
