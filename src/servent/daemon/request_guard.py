"""Refuse requests that only a DNS-rebinding or cross-site page would send.

The API listens on loopback and trusts its token, but a web page can point a
name it controls at 127.0.0.1 (DNS rebinding) and talk to the API as a
same-origin page of that name, or post forms to it from any origin.  Two
checks close that door before any handler runs:

* the ``Host`` header must name this API: the configured ``api_host``, a
  localhost name, or a loopback address (any port).  When the API listens on
  every interface, any IP literal is accepted too: rebinding needs a name.
* a write (POST, PUT, PATCH, DELETE) that carries an ``Origin`` must come
  from the API's own origin, ``http://`` plus the ``Host`` it was sent to.

Clients that send no ``Origin`` (the CLI, curl) and requests without a
``Host`` (HTTP/1.0 tools) pass; browsers always send both.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})


def host_name(host_header: str) -> str | None:
    """The name or address in a ``Host`` header, lower-case, without port or
    brackets (None when malformed)."""
    value = host_header.strip().lower()
    if value.startswith("["):
        address, sep, rest = value[1:].partition("]")
        if not sep or not (rest == "" or _is_port_suffix(rest)):
            return None
        return address or None
    name, sep, port = value.partition(":")
    if sep and not port.isdigit():
        return None
    return name.rstrip(".") or None


def _is_port_suffix(rest: str) -> bool:
    return rest.startswith(":") and rest[1:].isdigit()


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def host_allowed(name: str, api_host: str) -> bool:
    """Whether ``name`` (from :func:`host_name`) addresses this API."""
    configured = api_host.strip().lower().strip("[]").rstrip(".")
    if name in (configured, "localhost") or name.endswith(".localhost"):
        return True
    address = _ip(name)
    if address is None:
        return False
    if address.is_loopback:
        return True
    return configured in _WILDCARDS


def request_guard(api_host: str) -> Middleware:
    """The middleware for an API configured to listen on ``api_host``."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host_header = request.headers.get("Host")
        if host_header is not None:
            name = host_name(host_header)
            if name is None or not host_allowed(name, api_host):
                return _refuse(
                    f"Host {host_header[:100]!r} is not this node's API address "
                    "(refused against DNS rebinding)"
                )
        origin = request.headers.get("Origin")
        if request.method in WRITE_METHODS and origin is not None:
            own = f"http://{host_header}".lower() if host_header else None
            if origin.lower().rstrip("/") != own:
                return _refuse(f"cross-origin {request.method} from {origin[:100]!r} refused")
        return await handler(request)

    return guard


def _refuse(message: str) -> web.Response:
    return web.json_response({"error": message}, status=403)
