"""The head of one HTTP/1.x request, as far as a tracker needs it.

The built-in tracker answers GET /announce and /scrape only, so its listener
reads the request line and headers (bounded by the caller), never a body, and
needs from the headers only whether the connection stays open.
"""

from __future__ import annotations

from dataclasses import dataclass

from servent.errors import TrackerError

MAX_REQUEST_HEAD = 8192
"""Bytes a request line plus headers may take; longer heads are refused."""
MAX_HEADERS = 64


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str
    """Path and query, still percent-encoded (info-hashes are binary)."""
    keep_alive: bool
    has_body: bool

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


def parse_request_head(head: bytes) -> RequestHead:
    """Decode ``head`` (everything up to and including the blank line)."""
    if len(head) > MAX_REQUEST_HEAD:
        raise TrackerError("HTTP request head too large")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[1].startswith("/"):
        raise TrackerError("malformed HTTP request line")
    method, target, version = parts
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise TrackerError(f"unsupported HTTP version {version[:16]!r}")
    headers = _headers(lines[1:])
    connection = {t.strip() for t in headers.get("connection", "").lower().split(",")}
    keep_alive = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
    length = headers.get("content-length", "0").strip()
    has_body = "transfer-encoding" in headers or length not in ("", "0")
    return RequestHead(method, target, keep_alive, has_body)


def _headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    fields = [line for line in lines if line]
    if len(fields) > MAX_HEADERS:
        raise TrackerError("too many HTTP headers")
    for line in fields:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise TrackerError("malformed HTTP header")
        headers[name.lower()] = value.strip()
    return headers


def encode_response(status: int, reason: str, body: bytes, *, keep_alive: bool) -> bytes:
    """A complete HTTP/1.1 response with a plain-text body."""
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode("latin-1") + body
