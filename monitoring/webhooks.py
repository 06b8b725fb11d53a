"""Outbound webhooks, below the models: signing, where a target may point (no loopback,
link-local, private or metadata addresses unless allow-listed), and one POST to the checked address
with no redirects followed. The channel model's ``clean()`` and the notification services use it."""

from __future__ import annotations

import errno
import hashlib
import hmac
import ipaddress
import logging
import socket
import ssl
import time
from http import HTTPStatus
from urllib.parse import urlsplit

import urllib3

from monitoring.conf import monitoring_setting

log = logging.getLogger(__name__)


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Usher-Signature`` value for a body sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_verify(*, secret: str, timestamp: str, body: bytes, signature: str, max_age_s: int = 300) -> bool:
    """What a receiver does: recompute the signature (constant time) and refuse stale messages."""
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        return False
    expected = webhook_signature(secret=secret, timestamp=timestamp, body=body)
    return age <= max_age_s and hmac.compare_digest(expected, signature)


# --- where a webhook may go ------------------------------------------------------------------------
# Addresses no webhook may reach unless allowed by name: the cloud instance-metadata services
# (AWS, GCP, Azure and OpenStack answer on 169.254.169.254; AWS's IPv6 one on fd00:ec2::254).
METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class WebhookRefused(Exception):
    """A webhook target that may not be called (not retried: it is a configuration problem)."""


def _address_refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``address`` is internal, or None for a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        inner = _address_refusal(address.ipv4_mapped)
        return f"an IPv4-mapped {inner}" if inner else None
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private", "site_local"):
        if getattr(address, f"is_{kind}", False):
            return f"a {kind.replace('_', '-')} address"
    if not address.is_global:
        return "not a globally routable address"
    return None


def _allowed(host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """``MONITORING['WEBHOOK_ALLOWED_HOSTS']``: host names, addresses or networks (CIDR)."""
    for entry in monitoring_setting("WEBHOOK_ALLOWED_HOSTS") or []:
        entry = str(entry).strip().lower()
        if not entry:
            continue
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            if entry == host.lower().rstrip("."):
                return True
            continue
        candidates = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        if any(c.version == network.version and c in network for c in candidates):
            return True
    return False


def webhook_target_resolve(url: str) -> tuple[str, str, int, list[str]]:
    """Check a webhook URL and resolve it: ``(scheme, host, port, addresses)``, every address
    checked. Raises ``WebhookRefused`` naming what is wrong (the same check at save and send time)."""
    try:
        parts = urlsplit(str(url).strip())
        port = parts.port
    except ValueError as exc:
        raise WebhookRefused(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookRefused(f"a webhook target must be an http(s) URL, not {str(url)[:100]!r}")
    host = parts.hostname or ""
    if not host:
        raise WebhookRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise WebhookRefused("the URL may not carry a user name or password")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookRefused(f"{host} does not resolve ({exc})") from None
    addresses: list[str] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]
        address = ipaddress.ip_address(text)
        reason = _address_refusal(address)
        if reason and not _allowed(host, address):
            raise WebhookRefused(
                f"{host} resolves to {address}, {reason}: webhooks may not reach internal addresses "
                "(list the host or network in NOTIFICATIONS_ALLOWED_HOSTS to allow it)"
            )
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise WebhookRefused(f"{host} does not resolve")
    return parts.scheme, host, port, addresses


def webhook_target_refusal(url: str) -> str | None:
    """Why a webhook may not go to ``url`` (None when it may): used by the channel's ``clean()``."""
    try:
        webhook_target_resolve(url)
    except WebhookRefused as exc:
        return str(exc)
    return None


def _failure_reason(exc: BaseException) -> str:
    """A short, fixed-vocabulary reason for a failed connection (never text the target wrote)."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = getattr(exc, "reason", None) if isinstance(getattr(exc, "reason", None), BaseException) else (
            exc.__cause__ or exc.__context__)
    # Most specific first: urllib3's NewConnectionError is also a ConnectTimeoutError.
    kinds = [
        ((ConnectionRefusedError,), "connection refused"),
        ((urllib3.exceptions.SSLError, ssl.SSLError), "TLS handshake or certificate failed"),
        ((ConnectionResetError, urllib3.exceptions.ProtocolError), "connection reset"),
        ((TimeoutError, socket.timeout, urllib3.exceptions.TimeoutError), "timed out"),
    ]
    for types, reason in kinds:
        if any(isinstance(e, types) for e in chain):
            return reason
    for e in chain:
        if isinstance(e, OSError) and e.errno is not None:
            return f"connection failed ({errno.errorcode.get(e.errno, e.errno)})"
    return "connection failed"


class WebhookFailed(Exception):
    """A webhook that did not answer 2xx: ``status`` (or None) and a reason, never the body."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


def webhook_post(*, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body`` to ``url`` after checking where it resolves, connected to the checked address
    (TLS still verifies the certificate for the host name); no redirect is followed."""
    scheme, host, port, addresses = webhook_target_resolve(url)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if scheme == "https" else 80
    host_header = (f"[{host}]" if ":" in host else host) + ("" if port == default_port else f":{port}")
    timeouts = urllib3.Timeout(connect=timeout, read=timeout)
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(addresses[0], port, timeout=timeouts, retries=False, maxsize=1,
                                           server_hostname=host, assert_hostname=host, cert_reqs="CERT_REQUIRED")
    else:
        pool = urllib3.HTTPConnectionPool(addresses[0], port, timeout=timeouts, retries=False, maxsize=1)
    try:
        response = pool.urlopen("POST", path, body=body, headers={**headers, "Host": host_header},
                                redirect=False, retries=False, preload_content=False, assert_same_host=False)
        status = response.status
        response.close()  # the body is never read: it is the target's text, not ours to keep
    except urllib3.exceptions.HTTPError as exc:
        raise WebhookFailed(_failure_reason(exc)) from None
    finally:
        pool.close()
    if 200 <= status < 300:
        return status
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    reason = f"HTTP {status} {phrase}".strip()
    if 300 <= status < 400:
        reason += " (redirects are not followed)"
    raise WebhookFailed(reason, status)
