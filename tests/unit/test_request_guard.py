"""Which Host headers address the API (DNS rebinding defence)."""

from __future__ import annotations

import pytest

from servent.daemon.request_guard import host_allowed, host_name


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8765", "127.0.0.1"),
        ("LOCALHOST", "localhost"),
        ("localhost.:80", "localhost"),
        ("[::1]:8765", "::1"),
        ("[::1]", "::1"),
        ("::1", None),
        ("host:port", None),
        ("[::1]x", None),
        (":8765", None),
        ("", None),
    ],
)
def test_host_name_strips_port_and_brackets(header: str, name: str | None) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    "name", ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "localhost", "ui.localhost"]
)
def test_loopback_and_localhost_names_are_allowed(name: str) -> None:
    assert host_allowed(name, "127.0.0.1")


@pytest.mark.parametrize("name", ["evil.example", "192.168.1.5", "localhost.evil.example", "::2"])
def test_other_names_and_addresses_are_refused(name: str) -> None:
    assert not host_allowed(name, "127.0.0.1")


def test_the_configured_host_and_wildcard_binds() -> None:
    assert host_allowed("mybox.lan", "MyBox.lan")
    assert host_allowed("192.168.1.5", "192.168.1.5")
    assert not host_allowed("192.168.1.6", "192.168.1.5")
    assert host_allowed("192.168.1.6", "0.0.0.0")  # listening everywhere: any IP literal
    assert host_allowed("fe80::1", "::")
    assert not host_allowed("rebound.example", "0.0.0.0")  # but never a foreign name
