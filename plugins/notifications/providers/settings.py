"""The providers' own settings: the sub-tables ``[plugins.notifications.smtp]``,
``[plugins.notifications.http_sms]`` and ``[plugins.notifications.fcm]``.

Secrets (passwords, tokens, the FCM service account key) come from credential files or
``PROPMUBI_PLUGINS__NOTIFICATIONS__SMTP__PASSWORD``-style variables, never from the
repository.
"""

from __future__ import annotations

import attrs
from attrs import validators as v

__all__ = ["FcmSettings", "HttpSmsSettings", "SmtpSettings"]


@attrs.frozen
class SmtpSettings:
    """An SMTP relay (``smtp`` provider)."""

    host: str = ""
    port: int = attrs.field(default=587, validator=[v.ge(1), v.le(65535)])
    #: "starttls", "tls" (implicit, port 465) or "none" (a relay on loopback only).
    security: str = attrs.field(default="starttls",
                                validator=v.in_(("starttls", "tls", "none")))
    username: str = ""
    password: str = attrs.field(default="", metadata={"secret": True})
    #: The From address of every e-mail.
    sender: str = ""
    timeout: float = attrs.field(default=10.0, validator=v.gt(0))
    #: A PEM file of the CAs to trust instead of the system's (a relay with a private CA).
    ca_file: str = ""


@attrs.frozen
class HttpSmsSettings:
    """A Twilio-compatible SMS REST API (``http_sms`` provider)."""

    base_url: str = ""
    account_sid: str = ""
    auth_token: str = attrs.field(default="", metadata={"secret": True})
    #: The sender id (DLT header in India) or number.
    sender: str = ""
    timeout: float = attrs.field(default=5.0, validator=v.gt(0))
    #: The form field that carries ``Message.template_id`` (India's DLT template id) to a
    #: Twilio-compatible Indian gateway; Twilio itself ignores it. Empty: not sent.
    template_field: str = "DltTemplateId"


@attrs.frozen
class FcmSettings:
    """Firebase Cloud Messaging's HTTP v1 API (``fcm`` provider)."""

    #: ``https://fcm.googleapis.com`` in production; a loopback simulator in tests.
    base_url: str = "https://fcm.googleapis.com"
    project_id: str = ""
    #: The OAuth token endpoint the service account's signed JWT is exchanged at.
    token_url: str = "https://oauth2.googleapis.com/token"
    #: The service account's e-mail and private key (PEM).
    client_email: str = ""
    private_key: str = attrs.field(default="", metadata={"secret": True})
    timeout: float = attrs.field(default=5.0, validator=v.gt(0))
    #: The key's id (``private_key_id`` of the JSON file), sent as the JWT's ``kid``; optional.
    private_key_id: str = ""
