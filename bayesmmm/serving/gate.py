"""The outermost layer of the service: what every request passes before any route (and how it is logged).

:class:`Gate` is ASGI middleware: request ids, security headers (:data:`SECURITY_HEADERS`,
:data:`API_CSP`), the ``Host`` check (DNS rebinding: :func:`host_allowed`), the bearer token
(:data:`TOKEN_ENV`; :data:`PUBLIC_PATHS` need none), the body-size limit, metrics, JSON
access logs, and the 500 answer of any unhandled error. :func:`check_token` and
:func:`check_hosts` check the settings at start-up.
"""

from __future__ import annotations

import hmac
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import HTTPException

from bayesmmm.serving.logs import access_log, service_log
from bayesmmm.serving.metrics import Metrics
from bayesmmm.serving.schemas import MAX_ROWS

__all__ = [
    "API_CSP",
    "DEFAULT_ALLOWED_HOSTS",
    "HOSTS_ENV",
    "MAX_BODY_BYTES",
    "PAGE_CSP",
    "PUBLIC_PATHS",
    "SECURITY_HEADERS",
    "TOKEN_ENV",
    "Gate",
    "check_hosts",
    "check_token",
    "host_allowed",
    "tokens_match",
]

TOKEN_ENV = "BAYESMMM_API_TOKEN"
HOSTS_ENV = "BAYESMMM_ALLOWED_HOSTS"  # comma-separated Host names the server answers to (default: localhost)
MAX_BODY_BYTES = 256 * 1024  # 520 weeks of a ten-channel plan take ~120 KB of JSON

# no token needed: liveness, and the docs (the page, its assets and the spec it loads) so that /docs can
# "Authorize" with the token; the spec has the request schema (channel names), never data or results
PUBLIC_PATHS = frozenset({"/health", "/docs", "/openapi.json"})
PUBLIC_PREFIXES = ("/static/", "/docs/")

DEFAULT_ALLOWED_HOSTS = ("localhost", "127.0.0.1", "::1")

# JSON answers and errors: nothing may load, nothing may frame them
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# the dashboard and /docs: scripts and styles only from this server (no inline script), figures as data: URIs
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


TOKEN_RE = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: what a client can send in an HTTP header, unchanged
HOST_RE = re.compile(
    r"^(\*|(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|[0-9a-f:.]*:[0-9a-f:.]*)$"
)


def check_token(token: str | None, source: str = TOKEN_ENV) -> str | None:
    """None/empty: no token. Otherwise the token, or ValueError when no client could ever send it."""
    if token is None or token == "":
        return None
    if not TOKEN_RE.fullmatch(token):
        raise ValueError(
            f"{source}: the bearer token must be printable ASCII without spaces (characters ! to ~); a blank, "
            "padded or non-ASCII token cannot be sent in an Authorization header and would lock every client out"
        )
    return token


def check_hosts(hosts: Iterable[str] | None, source: str = "--allowed-host") -> tuple[str, ...]:
    """Normalized allowed ``Host`` names (default: localhost only); ValueError for a malformed one."""
    if hosts is None:
        return DEFAULT_ALLOWED_HOSTS
    out = []
    for host in hosts:
        h = host.strip().lower()
        if h.startswith("[") and h.endswith("]"):
            h = h[1:-1]
        if not h or not HOST_RE.fullmatch(h):
            raise ValueError(
                f"{source}: {host!r} is not a host name (use a name like api.example.com, *.example.com, an IP "
                "address, or * for any host)"
            )
        out.append(h)
    if not out:
        raise ValueError(f"{source}: give at least one host (or * for any)")
    return tuple(out)


def host_allowed(header: bytes | None, allowed: tuple[str, ...]) -> bool:
    """Whether a ``Host`` header names one of ``allowed`` (port ignored; ``*.example.com`` wildcards)."""
    if "*" in allowed:
        return True
    if not header:
        return False
    try:
        text = header.decode("ascii").strip().lower()
    except UnicodeDecodeError:
        return False
    if text.startswith("["):
        host = text[1 : text.find("]")] if "]" in text else ""
    else:
        host = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    host = host.rstrip(".")
    for pattern in allowed:
        if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:]) and host != pattern[2:]):
            return True
    return False


def tokens_match(sent: str, token: str) -> bool:
    """Whether the token a client sent is ``token`` (compared in constant time)."""
    return hmac.compare_digest(sent.encode("latin-1"), token.encode())


def _token_ok(header: bytes | None, token: str) -> bool:
    if not header:
        return False
    scheme, _, value = header.decode("latin-1").partition(" ")
    return scheme.lower() == "bearer" and tokens_match(value.strip(), token)


def _public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


_API_CSP = API_CSP.encode()


class Gate:
    """ASGI middleware, outermost: request ids, security headers, Host check, bearer token, body-size limit,
    metrics, JSON access logs, and the 500 answer of any unhandled error (with its request id)."""

    def __init__(
        self, app: Any, *, token: str | None, max_body_bytes: int, metrics: Metrics, allowed_hosts: tuple[str, ...]
    ) -> None:
        self.app = app
        self.token = token or None
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.allowed_hosts = allowed_hosts

    async def _reply(self, send: Callable, status: int, message: str, headers: list | None = None) -> None:
        body = json.dumps({"detail": message, "message": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                + (headers or []),
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        state: dict[str, Any] = {"status": 500, "started": False}
        extra_headers = [(b"x-request-id", request_id.encode()), *SECURITY_HEADERS]

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                headers = [*message.get("headers", []), *extra_headers]
                if not any(k.lower() == b"content-security-policy" for k, _ in headers):
                    headers.append((b"content-security-policy", _API_CSP))  # pages set their own
                message = {**message, "headers": headers}
            await send(message)

        headers = dict(scope.get("headers") or [])
        path = scope["path"]
        self.metrics.in_flight.inc()
        try:
            # /health is exempt: a probe may name the pod's IP; it tells nothing but the model version
            if path != "/health" and not host_allowed(headers.get(b"host"), self.allowed_hosts):
                state["rejected"] = "bad_host"
                shown = headers.get(b"host", b"").decode("latin-1")[:100]
                await self._reply(
                    send_wrapper,
                    400,
                    f"the Host header {shown!r} is not a name this server answers to; add it with --allowed-host "
                    f"(or {HOSTS_ENV}) if this server is meant to be reached by that name",
                )
                return
            if self.token and not _public(path) and not _token_ok(headers.get(b"authorization"), self.token):
                state["rejected"] = "unauthorized"
                await self._reply(
                    send_wrapper,
                    401,
                    "missing or wrong bearer token: send 'Authorization: Bearer <token>' "
                    f"(the token the server was started with in {TOKEN_ENV})",
                    [(b"www-authenticate", b'Bearer realm="bayesmmm"')],
                )
                return
            length = headers.get(b"content-length")
            if length is not None:
                try:
                    declared = int(length)
                except ValueError:
                    state["rejected"] = "bad_request"
                    await self._reply(send_wrapper, 400, "the Content-Length header is not a number")
                    return
                if declared > self.max_body_bytes:
                    state["rejected"] = "too_large"
                    await self._reply(send_wrapper, 413, self._too_large(declared))
                    return
            received = 0

            async def limited_receive() -> dict:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:  # a chunked or lying body
                        raise HTTPException(413, self._too_large(received))
                return message

            await self.app(scope, limited_receive, send_wrapper)
        except Exception:
            service_log.exception("unhandled error", extra={"request_id": request_id, "path": path})
            if state["started"]:
                raise
            # never the exception's text: it may name files, arrays or internals
            await self._reply(
                send_wrapper, 500, f"internal error (request id {request_id}); the server log has the details"
            )
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            route_path = state.get("rejected") or getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], route_path, state["status"], elapsed)
            client = scope.get("client")
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"][:16],
                    "path": path[:200],
                    "route": route_path,
                    "status": state["status"],
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": client[0] if client else None,
                },
            )

    def _too_large(self, size: int) -> str:
        return (
            f"request body too large: {size} bytes > the limit of {self.max_body_bytes} bytes; "
            f"send fewer rows (at most {MAX_ROWS} periods per request)"
        )
