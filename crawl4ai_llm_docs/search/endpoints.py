"""Where ``serve --http`` may listen: ``HOST:PORT`` parsed, and loopback told apart from
addresses other machines reach (those need a bearer token)."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_bind(value: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[::1]:8765`` for IPv6) as (host, port); None when it is not one."""
    host, sep, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        return None
    return host, int(port)
