"""Loopback simulators of the notification providers' services, for any test to start.

Each is a real server on 127.0.0.1 (a random port) speaking the provider's documented wire
format, recording what it received and scriptable to fail:

* :class:`SmtpSimulator`: an SMTP server (aiosmtpd) with optional STARTTLS or implicit TLS
  and AUTH; it can answer 4xx/5xx to RCPT or DATA, or hang after DATA;
* :func:`silent_server`: accepts TCP connections and never says anything (an SMTP greeting
  timeout, a connect that never completes from the client's point of view);
* :class:`TwilioSimulator`: Twilio's ``Messages.json`` (basic auth, form body, the documented
  JSON answers and error bodies); it can fail N times with a status and Twilio error code,
  or hang; and its Message list (``GET Messages.json`` with the documented ``To``, ``From``,
  ``DateSent``/``DateSent>=``/``DateSent<=`` and ``PageSize`` filters, newest ``date_sent``
  first, paged through ``next_page_uri``, RFC 2822 dates), which ``http_sms``'s lookup reads;
* :class:`FcmSimulator`: Google's OAuth token endpoint (it verifies the service account's
  RS256 JWT with the public key) and FCM HTTP v1 ``messages:send`` (it verifies the bearer
  token and the message's JSON shape; documented error bodies).

For crash tests each can also hold a call until the test calls ``release()``:
``accept_then_hold()`` (all three) accepts the message, records it in ``accepted`` (SMTP:
``received``) and withholds the answer, the service has it and the caller does not know;
:meth:`TwilioSimulator.hold` holds requests *before* anything is accepted, and a held request
whose caller has gone away by the time it is released (a killed worker) is dropped, never
accepted. ``holding`` lists the calls held now.

Start one with ``async with XSimulator.running(...) as sim:``; its ``settings(...)`` gives the
provider's settings pointing at it. ``tests/plugins/notifications/providers/conftest.py`` has
fixtures for them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import email
import email.policy
import email.utils
import ipaddress
import itertools
import secrets
import ssl
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import attrs
import jwt
from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from propmubi_plugins.notifications.providers.fcm import FCM_SCOPE, JWT_BEARER
from propmubi_plugins.notifications.providers.settings import (
    FcmSettings,
    HttpSmsSettings,
    SmtpSettings,
)

__all__ = ["FcmSimulator", "Gate", "Held", "ServiceAccount", "SmtpSimulator",
           "TwilioSimulator", "make_certificate", "silent_server"]

HOST = "127.0.0.1"
#: How long a "hanging" simulator waits before answering (longer than any test's timeout).
HANG = 30.0


# --- TLS -------------------------------------------------------------------------------------

def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem) in
    ``folder``; the cert is also the CA file a client trusts."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "propmubi-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_tls(cert: tuple[Path, Path]) -> ssl.SSLContext:
    """The server side's TLS context of :func:`make_certificate`'s pair."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


# --- holding calls ---------------------------------------------------------------------------

@attrs.define(eq=False)
class Held:
    """A call a simulator holds: what it carried, whether it was accepted before being held,
    and its connection."""

    what: Any
    accepted: bool
    transport: asyncio.BaseTransport | None
    #: The caller's (host, port).
    peer: Any = None

    @property
    def connected(self) -> bool:
        """Whether the caller is still there (a killed process's connection is closed)."""
        return self.transport is not None and not self.transport.is_closing()


@attrs.define(eq=False)
class Gate:
    """Calls held until :meth:`release` (a simulator's ``hold`` and ``accept_then_hold``)."""

    holding: list[Held] = attrs.Factory(list)
    _released: asyncio.Event = attrs.Factory(asyncio.Event)

    async def hold(self, what: Any, transport: asyncio.BaseTransport | None, *,
                   accepted: bool) -> bool:
        """Hold a call until :meth:`release`; whether its caller is still connected then."""
        held = Held(what, accepted, transport,
                    transport.get_extra_info("peername") if transport is not None else None)
        self.holding.append(held)
        released = self._released
        try:
            await released.wait()
        finally:
            self.holding.remove(held)
        return held.connected

    def release(self) -> None:
        """Let every held call go on; later holds wait for the next release."""
        self._released.set()
        self._released = asyncio.Event()


# --- SMTP ------------------------------------------------------------------------------------

@attrs.define
class ReceivedMail:
    """One message the SMTP simulator accepted."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    #: The AUTH login of the session, or None.
    login: str | None
    #: Whether the session was over TLS (STARTTLS or implicit).
    tls: bool

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@attrs.define(eq=False)
class SmtpSimulator:
    """An SMTP server on loopback (aiosmtpd in the test's event loop).

    Script it with :attr:`mail_replies`, :attr:`rcpt_replies` and :attr:`data_replies` (one
    reply per command, e.g.
    ``"550 5.1.1 No such user"``, used first-in first-out; ``None`` is a normal answer) and
    :attr:`hang_data` (DATA is read and never answered), and :meth:`accept_then_hold`.
    """

    security: str = "none"
    users: dict[str, str] = attrs.Factory(dict)
    port: int = 0
    ca_file: str = ""
    received: list[ReceivedMail] = attrs.Factory(list)
    mail_replies: list[str | None] = attrs.Factory(list)
    rcpt_replies: list[str | None] = attrs.Factory(list)
    data_replies: list[str | None] = attrs.Factory(list)
    hang_data: bool = False
    #: Messages whose DATA arrived (answered or not): a hang still records here.
    data_seen: int = 0
    #: Messages still to be accepted with their 250 withheld (:meth:`accept_then_hold`).
    hold_accepted: int = 0
    gate: Gate = attrs.Factory(Gate)

    @property
    def holding(self) -> list[Held]:
        """The sessions whose reply is held now."""
        return self.gate.holding

    def accept_then_hold(self, times: int = 1) -> None:
        """The next ``times`` messages are accepted (kept in :attr:`received` at the end of
        DATA, as a relay queues them) and their ``250`` is withheld until :meth:`release`."""
        self.hold_accepted += times

    def release(self) -> None:
        """Send the withheld replies (to whoever is still connected)."""
        self.gate.release()

    # aiosmtpd's handler hooks.
    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        reply = self.mail_replies.pop(0) if self.mail_replies else None
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        reply = self.rcpt_replies.pop(0) if self.rcpt_replies else None
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_seen += 1
        if self.hang_data:
            await asyncio.sleep(HANG)
        reply = self.data_replies.pop(0) if self.data_replies else None
        if reply:
            return reply
        content = envelope.original_content or b""
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        self.received.append(ReceivedMail(
            mail_from=str(envelope.mail_from), rcpt_tos=list(envelope.rcpt_tos), raw=content,
            login=login, tls=server.transport.get_extra_info("ssl_object") is not None))
        if self.hold_accepted > 0:
            self.hold_accepted -= 1
            await self.gate.hold(self.received[-1], server.transport, accepted=True)
        return "250 2.0.0 OK queued"

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(user) == password and password:
                return AuthResult(success=True, auth_data=auth_data.login)
        return AuthResult(success=False, handled=False)

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, *, security: str = "none", users: dict[str, str] | None = None,
                      cert: tuple[Path, Path] | None = None) -> AsyncIterator[SmtpSimulator]:
        """Serve until the block ends. ``security`` is ``none``, ``starttls`` or ``tls``
        (those need ``cert``, from :func:`make_certificate`); ``users`` enables AUTH."""
        sim = cls(security=security, users=dict(users or {}))
        tls = server_tls(cert) if cert else None
        if security != "none":
            assert cert is not None, "TLS needs a certificate (make_certificate)"
            sim.ca_file = str(cert[0])

        def protocol() -> SMTP:
            return SMTP(sim, hostname="smtp.test", ident="propmubi-sim",
                        tls_context=tls if security == "starttls" else None,
                        require_starttls=security == "starttls",
                        authenticator=sim._authenticate if sim.users else None,
                        # Over implicit TLS aiosmtpd does not know the session is encrypted
                        # (and warns about AUTH required without TLS): AUTH is offered there
                        # without being required.
                        auth_require_tls=security == "starttls",
                        auth_required=bool(sim.users) and security == "starttls")

        loop = asyncio.get_running_loop()
        server = await loop.create_server(protocol, HOST, 0,
                                          ssl=tls if security == "tls" else None)
        sim.port = server.sockets[0].getsockname()[1]
        try:
            yield sim
        finally:
            server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await server.wait_closed()

    def settings(self, **changes: Any) -> SmtpSettings:
        """The ``smtp`` provider's settings pointing here."""
        values: dict[str, Any] = {"host": HOST, "port": self.port, "security": self.security,
                                  "sender": "Propmubi <noreply@propmubi.test>",
                                  "timeout": 1.0, "ca_file": self.ca_file}
        if self.users:
            user, password = next(iter(self.users.items()))
            values.update(username=user, password=password)
        return SmtpSettings(**{**values, **changes})


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP server on loopback that accepts and never writes; yields its port."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(hold, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in writers:
            writer.close()
        server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await server.wait_closed()


# --- aiohttp servers -------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1 (a random port); yields its base URL."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://{HOST}:{port}"
    finally:
        await runner.cleanup()


@attrs.define
class Failure:
    """A scripted error answer: ``times`` requests get ``status`` (and a provider error
    code); ``hang`` waits instead of answering; ``hold`` (``"before"`` or ``"after"``
    accepting) holds the request until the simulator's ``release()`` instead."""

    times: int
    status: int = 500
    code: Any = None
    message: str = ""
    retry_after: str | None = None
    hang: bool = False
    hold: str | None = None


def _next_failure(script: list[Failure]) -> Failure | None:
    if not script:
        return None
    failure = script[0]
    failure.times -= 1
    if failure.times <= 0:
        script.pop(0)
    return failure


# --- Twilio ----------------------------------------------------------------------------------

@attrs.define(eq=False)
class TwilioSimulator:
    """Twilio's ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` on loopback, and
    the Message list (``GET`` on the same path) over what it created and what a test added
    with :meth:`add_message`."""

    account_sid: str = "AC" + "0" * 30 + "01"
    auth_token: str = "sim-auth-token-0123456789"
    base_url: str = ""
    #: What each request carried: ``path``, ``form``, ``headers``.
    received: list[dict[str, Any]] = attrs.Factory(list)
    script: list[Failure] = attrs.Factory(list)
    _sids: Any = attrs.Factory(lambda: itertools.count(1))
    #: The messages it created (answered 201, or with the answer held): each request's
    #: ``form`` and the message's ``sid``, in order.
    accepted: list[dict[str, Any]] = attrs.Factory(list)
    #: The forms of held requests dropped because their caller had gone (nothing created).
    dropped: list[dict[str, str]] = attrs.Factory(list)
    #: Seconds each request waits before it is handled (a slow service).
    delay: float = 0.0
    gate: Gate = attrs.Factory(Gate)
    #: Hold every request (True), those of the callers a predicate picks, or none (False).
    _hold_all: Any = False
    #: The messages the list shows, oldest first: each a dict of the documented fields
    #: (``sid``, ``to``, ``from``, ``body``, ``status``, ``date_created`` and ``date_sent`` as
    #: aware datetimes, ``date_sent`` None while queued).
    history: list[dict[str, Any]] = attrs.Factory(list)
    #: What each list request carried: ``path``, ``query``, ``headers``.
    lookups: list[dict[str, Any]] = attrs.Factory(list)
    #: Scripted failures of list requests (:meth:`fail_lookups`).
    lookup_script: list[Failure] = attrs.Factory(list)
    #: At most this many messages a page, whatever ``PageSize`` asks (None: 1000, Twilio's
    #: maximum): a test of paging with few messages.
    page_limit: int | None = None

    @property
    def holding(self) -> list[Held]:
        """The requests held now (``what`` is the request's form)."""
        return self.gate.holding

    def hold(self, times: int | None = 1,
             caller: Callable[[tuple[str, int]], bool] | None = None) -> None:
        """The next ``times`` requests (with None: every request until :meth:`release`, or
        each whose caller's (host, port) ``caller`` picks) are read and held before anything
        is accepted. Released, a request whose caller is still connected is handled as
        usual; one whose caller went away is dropped: no message."""
        if times is None:
            self._hold_all = caller or True
        else:
            assert caller is None, "pick callers with times=None"
            self.script.append(Failure(times, hold="before"))

    def accept_then_hold(self, times: int = 1) -> None:
        """The next ``times`` requests create their message (in :attr:`accepted`) and their
        answer is withheld until :meth:`release`."""
        self.script.append(Failure(times, hold="after"))

    def release(self) -> None:
        """Let every held request go on (and stop holding every request)."""
        self._hold_all = False
        self.gate.release()

    def _holds(self, request: web.Request) -> bool:
        if callable(self._hold_all):
            peer = request.transport.get_extra_info("peername") if request.transport else None
            return peer is not None and bool(self._hold_all(peer))
        return bool(self._hold_all)

    async def _held(self, request: web.Request, form: dict[str, str]) -> bool:
        """Hold a request before accepting it; False (after recording the drop) when its
        caller has gone by the release."""
        if await self.gate.hold(form, request.transport, accepted=False):
            return True
        self.dropped.append(form)
        return False

    def fail(self, times: int = 1, status: int = 500, code: int | None = None,
             message: str = "", retry_after: str | None = None) -> None:
        """The next ``times`` requests get ``status`` with Twilio's error body."""
        self.script.append(Failure(times, status, code, message, retry_after))

    def hang(self, times: int = 1) -> None:
        """The next ``times`` requests are read and never answered."""
        self.script.append(Failure(times, hang=True))

    def fail_lookups(self, times: int = 1, status: int = 500, code: int | None = None,
                     hang: bool = False) -> None:
        """The next ``times`` list requests get ``status`` with Twilio's error body (or,
        ``hang``, no answer)."""
        self.lookup_script.append(Failure(times, status, code, hang=hang))

    def add_message(self, to: str, body: str, *, sender: str = "PRPMBI",
                    created: dt.datetime | None = None, sent: dt.datetime | bool | None = True,
                    status: str = "delivered") -> str:
        """A message the list shows (sent by someone else, or earlier): its sid. ``sent``
        True: sent when created; None: still queued (no ``date_sent``)."""
        created = created or dt.datetime.now(dt.UTC)
        sid = f"SM{next(self._sids):032x}"
        self.history.append({"sid": sid, "to": to, "from": sender, "body": body,
                              "status": status, "date_created": created,
                              "date_sent": created if sent is True else sent or None})
        return sid

    @staticmethod
    def error(status: int, code: int, message: str,
              headers: dict[str, str] | None = None) -> web.Response:
        """Twilio's documented error body."""
        return web.json_response(
            {"code": code, "message": message, "status": status,
             "more_info": f"https://www.twilio.com/docs/errors/{code}"},
            status=status, headers=headers)

    async def messages(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.received.append({"path": request.path, "form": form,
                              "headers": dict(request.headers)})
        expected = "Basic " + base64.b64encode(
            f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("Authorization") != expected \
                or request.match_info["sid"] != self.account_sid:
            return self.error(401, 20003, "Authenticate")
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._holds(request) and not await self._held(request, form):
            return web.Response(status=499)  # nobody is there to read it
        failure = _next_failure(self.script)
        if failure is not None and failure.hold == "before":
            if not await self._held(request, form):
                return web.Response(status=499)
        elif failure is not None and failure.hang:
            await asyncio.sleep(HANG)
        elif failure is not None and failure.hold is None:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
            return self.error(failure.status, failure.code or failure.status * 100,
                              failure.message or "Scripted failure", headers)
        for field, code in (("To", 21604), ("From", 21603), ("Body", 21602)):
            if not form.get(field):
                return self.error(400, code, f"A '{field}' parameter is required.")
        sid = self.add_message(form["To"], form["Body"], sender=form["From"], status="sent")
        self.accepted.append({"form": form, "sid": sid,
                              "date_created": self.history[-1]["date_created"]})
        if failure is not None and failure.hold == "after":
            await self.gate.hold(form, request.transport, accepted=True)
        return web.json_response(
            {"sid": sid, "account_sid": self.account_sid, "to": form["To"],
             "from": form["From"], "body": form["Body"], "status": "queued",
             "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01",
             "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
             "error_code": None, "error_message": None}, status=201)

    def _authorised(self, request: web.Request) -> bool:
        expected = "Basic " + base64.b64encode(
            f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == expected \
            and request.match_info["sid"] == self.account_sid

    async def list_messages(self, request: web.Request) -> web.Response:
        """``GET Messages.json``: the documented filters, newest ``date_sent`` first (queued
        messages, without one, before them), a page of ``PageSize`` (50 by default, at most
        1000) and its ``next_page_uri``. A ``DateSent`` filter leaves out queued messages."""
        query = dict(request.query)
        self.lookups.append({"path": request.path, "query": query,
                             "headers": dict(request.headers)})
        if not self._authorised(request):
            return self.error(401, 20003, "Authenticate")
        failure = _next_failure(self.lookup_script)
        if failure is not None and failure.hang:
            await asyncio.sleep(HANG)
        elif failure is not None:
            return self.error(failure.status, failure.code or failure.status * 100,
                              "Scripted failure")
        try:
            size = min(int(query.get("PageSize", "50")), 1000, self.page_limit or 1000)
            page = int(query.get("Page", "0"))
            days = {op: dt.date.fromisoformat(query[name][:10])
                    for op, name in (("=", "DateSent"), (">", "DateSent>"), ("<", "DateSent<"))
                    if name in query}
        except ValueError:
            return self.error(400, 20001, "Invalid parameter")
        if size < 1:
            return self.error(400, 20001, "Invalid PageSize")

        def shown(m: dict[str, Any]) -> bool:
            if query.get("To") and m["to"] != query["To"]:
                return False
            if query.get("From") and m["from"] != query["From"]:
                return False
            if days and m["date_sent"] is None:
                return False
            day = m["date_sent"].astimezone(dt.UTC).date() if m["date_sent"] else None
            return all(day is not None and (day == on if op == "=" else day >= on if op == ">"
                                            else day <= on) for op, on in days.items())

        far = dt.datetime.max.replace(tzinfo=dt.UTC)
        found = sorted((m for m in self.history if shown(m)),
                       key=lambda m: m["date_sent"] or far, reverse=True)
        chunk = found[page * size:(page + 1) * size]
        filters = {k: v for k, v in query.items() if k not in ("Page", "PageToken")}

        def uri(number: int) -> str:
            return f"{request.path}?" + urlencode(
                {**filters, "PageSize": size, "Page": number,
                 **({"PageToken": f"PASM{number:032x}"} if number else {})})

        more = (page + 1) * size < len(found)
        return web.json_response({
            "messages": [self._resource(m) for m in chunk],
            "uri": uri(page), "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1) if more else None,
            "previous_page_uri": uri(page - 1) if page else None,
            "page": page, "page_size": size, "start": page * size,
            "end": page * size + max(0, len(chunk) - 1)})

    def _resource(self, m: dict[str, Any]) -> dict[str, Any]:
        """A message as the API shows it (RFC 2822 dates)."""
        def rfc2822(when: dt.datetime | None) -> str | None:
            return email.utils.format_datetime(when.astimezone(dt.UTC)) if when else None

        return {"sid": m["sid"], "account_sid": self.account_sid, "to": m["to"],
                "from": m["from"], "body": m["body"], "status": m["status"],
                "date_created": rfc2822(m["date_created"]),
                "date_updated": rfc2822(m["date_sent"] or m["date_created"]),
                "date_sent": rfc2822(m["date_sent"]), "direction": "outbound-api",
                "num_segments": "1", "api_version": "2010-04-01", "error_code": None,
                "error_message": None,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{m['sid']}.json"}

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls) -> AsyncIterator[TwilioSimulator]:
        sim = cls()
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", sim.messages)
        app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", sim.list_messages)
        async with serve(app) as base_url:
            sim.base_url = base_url
            yield sim

    def settings(self, **changes: Any) -> HttpSmsSettings:
        """The ``http_sms`` provider's settings pointing here."""
        return HttpSmsSettings(**{"base_url": self.base_url, "account_sid": self.account_sid,
                                  "auth_token": self.auth_token, "sender": "PRPMBI",
                                  "timeout": 1.0, **changes})


# --- FCM -------------------------------------------------------------------------------------

@attrs.frozen
class ServiceAccount:
    """A service account made up for a test: its e-mail and RSA key pair (PEM)."""

    client_email: str
    private_key: str
    public_key: str

    @classmethod
    def generate(cls, client_email: str = "push@propmubi-test.iam.gserviceaccount.com"
                 ) -> ServiceAccount:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(client_email, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode(), key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo).decode())


def _fcm_error(status: int, rpc_status: str, message: str, fcm_code: str | None = None,
               headers: dict[str, str] | None = None) -> web.Response:
    """FCM's documented error body (google.rpc.Status with an FcmError detail)."""
    error: dict[str, Any] = {"code": status, "message": message, "status": rpc_status}
    if fcm_code:
        error["details"] = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                             "errorCode": fcm_code}]
    return web.json_response({"error": error}, status=status, headers=headers)


#: FCM error code -> (HTTP status, google.rpc status), as FCM documents them.
FCM_ERRORS = {
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT"),
    "UNREGISTERED": (404, "NOT_FOUND"),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED"),
    "UNAVAILABLE": (503, "UNAVAILABLE"),
    "INTERNAL": (500, "INTERNAL"),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED"),
}


@attrs.define(eq=False)
class FcmSimulator:
    """Google's token endpoint (``/token``) and FCM HTTP v1 (``/v1/projects/{p}/messages:send``)
    on loopback, for one service account and project."""

    account: ServiceAccount
    project_id: str = "propmubi-test"
    base_url: str = ""
    #: The ``expires_in`` of issued tokens.
    token_lifetime: int = 3600
    #: Access token -> when it stops working (a wall-clock datetime).
    tokens: dict[str, dt.datetime] = attrs.Factory(dict)
    token_requests: int = 0
    #: The verified claims of each accepted JWT.
    assertions: list[dict[str, Any]] = attrs.Factory(list)
    #: The JSON body and headers of each messages:send request.
    received: list[dict[str, Any]] = attrs.Factory(list)
    script: list[Failure] = attrs.Factory(list)
    token_script: list[Failure] = attrs.Factory(list)
    unregistered: set[str] = attrs.Factory(set)
    #: The JSON body and headers of each message it accepted (answered 200, or with the
    #: answer held), in order.
    accepted: list[dict[str, Any]] = attrs.Factory(list)
    gate: Gate = attrs.Factory(Gate)

    @property
    def holding(self) -> list[Held]:
        """The sends held now."""
        return self.gate.holding

    def accept_then_hold(self, times: int = 1) -> None:
        """The next ``times`` sends are accepted (in :attr:`accepted`) and their answer is
        withheld until :meth:`release`."""
        self.script.append(Failure(times, hold="after"))

    def release(self) -> None:
        """Send the withheld answers (to whoever is still connected)."""
        self.gate.release()

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    def fail(self, times: int = 1, code: str = "UNAVAILABLE", message: str = "",
             retry_after: str | None = None) -> None:
        """The next ``times`` sends get FCM's error ``code`` (``UNAVAILABLE``, ...)."""
        status, _ = FCM_ERRORS[code]
        self.script.append(Failure(times, status, code, message, retry_after))

    def hang(self, times: int = 1) -> None:
        """The next ``times`` sends are read and never answered."""
        self.script.append(Failure(times, hang=True))

    def revoke_tokens(self) -> None:
        """Every issued access token stops working (FCM answers 401)."""
        self.tokens.clear()

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        failure = _next_failure(self.token_script)
        if failure is not None:
            return web.json_response({"error": failure.code or "server_error"},
                                     status=failure.status)
        if form.get("grant_type") != JWT_BEARER:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            claims = jwt.decode(str(form.get("assertion", "")), self.account.public_key,
                                algorithms=["RS256"], audience=self.token_url,
                                issuer=self.account.client_email,
                                options={"require": ["iss", "aud", "iat", "exp", "scope"]})
        except jwt.PyJWTError as exc:
            return web.json_response({"error": "invalid_grant",
                                      "error_description": f"Invalid JWT: {exc}"}, status=400)
        if claims["scope"] != FCM_SCOPE or claims["exp"] - claims["iat"] > 3600:
            return web.json_response({"error": "invalid_scope"}, status=400)
        self.assertions.append(claims)
        token = "ya29.sim-" + secrets.token_urlsafe(16)
        self.tokens[token] = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.token_lifetime)
        return web.json_response({"access_token": token, "expires_in": self.token_lifetime,
                                  "token_type": "Bearer"})

    async def send(self, request: web.Request) -> web.Response:
        body = await request.json()
        record = {"body": body, "headers": dict(request.headers)}
        self.received.append(record)
        auth = request.headers.get("Authorization", "")
        expires = self.tokens.get(auth.removeprefix("Bearer "))
        if not auth.startswith("Bearer ") or expires is None \
                or expires <= dt.datetime.now(dt.UTC):
            return _fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication "
                              "credentials. Expected OAuth 2 access token.")
        if request.match_info["project"] != self.project_id:
            return _fcm_error(403, "PERMISSION_DENIED", "Permission denied on the project.")
        failure = _next_failure(self.script)
        if failure is not None and failure.hang:
            await asyncio.sleep(HANG)
        elif failure is not None and failure.hold is None:
            status, rpc = FCM_ERRORS[failure.code]
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
            return _fcm_error(status, rpc, failure.message or "Scripted failure",
                              failure.code, headers)
        problem = _shape_problem(body)
        if problem:
            return _fcm_error(400, "INVALID_ARGUMENT", problem, "INVALID_ARGUMENT")
        message = body["message"]
        if message["token"] in self.unregistered:
            return _fcm_error(404, "NOT_FOUND", "Requested entity was not found.",
                              "UNREGISTERED")
        self.accepted.append(record)
        answer = web.json_response(
            {"name": f"projects/{self.project_id}/messages/0:{len(self.received)}%sim"})
        if failure is not None and failure.hold == "after":
            await self.gate.hold(body, request.transport, accepted=True)
        return answer

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, account: ServiceAccount) -> AsyncIterator[FcmSimulator]:
        sim = cls(account=account)
        app = web.Application()
        app.router.add_post("/token", sim.token)
        app.router.add_post("/v1/projects/{project}/messages:send", sim.send)
        async with serve(app) as base_url:
            sim.base_url = base_url
            yield sim

    def settings(self, **changes: Any) -> FcmSettings:
        """The ``fcm`` provider's settings pointing here."""
        return FcmSettings(**{"base_url": self.base_url, "project_id": self.project_id,
                              "token_url": self.token_url,
                              "client_email": self.account.client_email,
                              "private_key": self.account.private_key, "timeout": 1.0,
                              **changes})


def _shape_problem(body: Any) -> str:
    """What is wrong with a messages:send body, or "" (the fields our provider sends)."""
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict):
        return "Invalid JSON payload: 'message' is required."
    if not isinstance(message.get("token"), str) or not message["token"]:
        return "Invalid value at 'message.token'."
    notification = message.get("notification", {})
    if not isinstance(notification, dict) or not all(
            isinstance(notification.get(k, ""), str) for k in ("title", "body")):
        return "Invalid value at 'message.notification'."
    data = message.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return "Invalid value at 'message.data' (TYPE_STRING)."
    android = message.get("android", {})
    if not isinstance(android, dict) or not isinstance(android.get("collapse_key", ""), str):
        return "Invalid value at 'message.android.collapse_key'."
    apns = message.get("apns", {})
    headers = apns.get("headers", {}) if isinstance(apns, dict) else None
    if not isinstance(headers, dict) or len(headers.get("apns-collapse-id", "")) > 64:
        return "Invalid value at 'message.apns.headers'."
    return ""
