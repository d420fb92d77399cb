"""Which network addresses a fetch may reach: never loopback, private or link-local ranges
unless the root URL itself is in that range.

A hostile page can redirect (or link, or list in a sitemap) to ``http://169.254.169.254/``,
a router's admin page or a service on the user's own machine. The rule: an address class
other than "public" is reachable only when a root URL's own address is of that class (so a
crawl of ``http://127.0.0.1:8000/`` or of an intranet site still works within its range).

Checked twice: before every request and redirect hop on the host's addresses (a literal, or
the resolved names, cached for the run), and again when a connection is opened
(``GuardedBackend``), on the addresses resolved at that moment and the one connected to, so
a name that resolves to a public address first and a private one next (DNS rebinding) is
refused too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal
from urllib.parse import urlsplit

import httpcore
import httpx
import trio

AddressClass = Literal["public", "loopback", "private", "link-local", "reserved"]
DESCRIPTIONS: dict[AddressClass, str] = {
    "public": "a public address",
    "loopback": "a loopback address (this machine)",
    "private": "a private-network address",
    "link-local": "a link-local address (where cloud metadata services answer)",
    "reserved": "a reserved or multicast address",
}
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_THIS_HOST = ipaddress.IPv4Network("0.0.0.0/8")  # RFC 1122: "this host on this network"
MAX_CACHED_HOSTS = 4096


def address_class(text: str) -> AddressClass:
    """The class of an IP address (IPv4 inside IPv6 judged as the IPv4 address it carries)."""
    ip = ipaddress.ip_address(text.split("%", 1)[0])  # without an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.is_loopback or ip.is_unspecified or ip in _THIS_HOST:  # 0.0.0.0 reaches this machine
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast or ip.is_reserved:
        return "reserved"
    if ip.is_private or not ip.is_global:  # RFC 1918, ULA, shared (CGNAT) space ...
        return "private"
    return "public"


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


class AddressGuard:
    """The address classes one fetch may reach: public ones and those of its roots."""

    def __init__(self, allowed: Iterable[AddressClass] = ("public",)) -> None:
        self.allowed = frozenset({"public", *allowed})

    def refusal(self, host: str, addresses: Iterable[str]) -> str | None:
        """Why ``host`` (resolved to ``addresses``) may not be reached; None when it may."""
        for address in addresses:
            kind = address_class(address)
            if kind not in self.allowed:
                shown = host if host == address else f"{host} ({address})"
                return f"{shown} is {DESCRIPTIONS[kind]} and the root URL is not"
        return None


class Resolver:
    """Addresses of host names, looked up once per run (a bounded cache)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[str, ...]] = {}

    async def addresses(self, host: str) -> tuple[str, ...]:
        """The host's addresses; () when it does not resolve (the fetch reports that)."""
        if is_ip_literal(host):
            return (host,)
        if (found := self._cache.get(host)) is not None:
            return found
        found = await resolve(host, None)
        if len(self._cache) >= MAX_CACHED_HOSTS:
            self._cache.clear()
        self._cache[host] = found
        return found


async def resolve(host: str, port: int | None) -> tuple[str, ...]:
    if is_ip_literal(host):
        return (host,)
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return ()
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


async def guard_for(urls: Iterable[str], resolver: Resolver) -> AddressGuard:
    """The guard of a crawl from ``urls``: their own address classes are allowed."""
    allowed: set[AddressClass] = set()
    for url in urls:
        host = urlsplit(url).hostname or ""
        allowed.update(address_class(a) for a in await resolver.addresses(host))
    return AddressGuard(allowed)


class AddressRefused(Exception):
    """A connection was refused by the guard (raised through httpx untouched)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_active: ContextVar[AddressGuard | None] = ContextVar("address_guard", default=None)


@contextmanager
def guarding(guard: AddressGuard | None) -> Iterator[None]:
    """Connections opened inside are checked against ``guard`` (by ``GuardedBackend``)."""
    token = _active.set(guard)
    try:
        yield
    finally:
        _active.reset(token)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens connections only to addresses the active guard allows, resolved right here."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    # httpcore's interface: the timeout parameters are its, unused here (the caller's
    # trio.fail_after bounds each page).
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        guard = _active.get()
        addresses = await resolve(host, port) if guard is not None else ()
        if guard is None or not addresses:  # unguarded, or let the backend report the DNS error
            return await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        if (reason := guard.refusal(host, addresses)) is not None:
            raise AddressRefused(reason)
        failure: Exception | None = None
        for address in addresses:  # connect to what was checked, not to a new lookup
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, its connections opened through ``GuardedBackend``."""

    def __init__(self, *, verify: bool, limits: httpx.Limits) -> None:
        super().__init__(verify=verify, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(httpcore.TrioBackend()),
        )
