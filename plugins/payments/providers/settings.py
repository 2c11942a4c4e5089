"""Settings of each payment provider: small attrs classes, every field with a default.

They are meant to be nested in the payments plugin's settings class (one field per
provider), so a TOML table such as ``[plugins.payments.razorpay]`` structures into one.
Secret fields carry ``metadata={"secret": True}``. Webhook secrets are tuples: during a
rotation list the new secret and the old one; a webhook signed with either is accepted.
"""

from __future__ import annotations

from typing import Any

import attrs
from attrs import validators as v

__all__ = ["RazorpaySettings", "SandboxSettings", "StripeSettings"]

_SECRET = {"secret": True}


def _http_url(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{attribute.name} must be an http(s) URL, not {value!r}")


def _secrets(value: Any) -> tuple[str, ...]:
    """A list from TOML, or one string (a variable or a credential file) holding one secret
    or several separated by commas or line breaks (during a rotation), as a tuple of
    non-empty secrets."""
    items = value.replace(",", "\n").splitlines() if isinstance(value, str) else tuple(value)
    return tuple(item.strip() for item in items if item.strip())


@attrs.frozen
class RazorpaySettings:
    """A Razorpay account: API keys (basic auth) and the webhook secrets."""

    key_id: str = ""
    key_secret: str = attrs.field(default="", metadata=_SECRET, repr=False)
    webhook_secrets: tuple[str, ...] = attrs.field(default=(), converter=_secrets,
                                                   metadata=_SECRET, repr=False)
    base_url: str = attrs.field(default="https://api.razorpay.com", validator=_http_url)
    #: Total seconds for one API request.
    timeout: float = attrs.field(default=10.0, validator=v.gt(0))


@attrs.frozen
class StripeSettings:
    """A Stripe account: the secret key (bearer), the publishable key the checkout uses, and
    the webhook endpoint's signing secrets."""

    secret_key: str = attrs.field(default="", metadata=_SECRET, repr=False)
    publishable_key: str = ""
    webhook_secrets: tuple[str, ...] = attrs.field(default=(), converter=_secrets,
                                                   metadata=_SECRET, repr=False)
    #: Seconds a webhook's signed timestamp may differ from now (Stripe's libraries: 300).
    tolerance: int = attrs.field(default=300, validator=v.gt(0))
    base_url: str = attrs.field(default="https://api.stripe.com", validator=_http_url)
    timeout: float = attrs.field(default=10.0, validator=v.gt(0))
    #: ``automatic``: the intent is captured when paid; ``manual``: it stops at authorized
    #: (``requires_capture``) until :meth:`capture`.
    capture_method: str = attrs.field(default="automatic",
                                      validator=v.in_(("automatic", "manual")))


@attrs.frozen
class SandboxSettings:
    """The development provider: only the secret its webhooks are signed with."""

    webhook_secret: str = attrs.field(default="", metadata=_SECRET, repr=False)
