"""The address guard (fetch/guard.py): which addresses a crawl may reach, decided and never
sent. Private, link-local and other hosts are refused on the decision function, through
the redirect loop with a mock transport, or at connect time before a connection exists;
the only real traffic goes to a server on 127.0.0.1."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawl4ai_llm_docs.config_schema import CrawlConfig
from crawl4ai_llm_docs.fetch.guard import (
    AddressClass,
    AddressGuard,
    Resolver,
    address_class,
    guard_for,
)
from crawl4ai_llm_docs.fetch.http import FetchFailure, fetch, open_client
from crawl4ai_llm_docs.fetch.redirects import HopRefused, Route, follow
from crawl4ai_llm_docs.testing.hostile.payloads import Answer
from crawl4ai_llm_docs.testing.hostile.server import HostileServer

# The ranges as the RFCs define them: an oracle independent of the ipaddress flags.
RANGES: dict[AddressClass, list[str]] = {
    "loopback": ["127.0.0.0/8", "::1/128", "0.0.0.0/8"],
    "private": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "100.64.0.0/10"],
    "link-local": ["169.254.0.0/16", "fe80::/10"],
    "reserved": ["224.0.0.0/4", "240.0.0.0/5", "ff00::/8"],
}
CLASSES: list[AddressClass] = ["public", "loopback", "private", "link-local", "reserved"]


def _in(network: str) -> st.SearchStrategy[str]:
    net = ipaddress.ip_network(network)
    first = int(net.network_address)
    return st.integers(first, first + net.num_addresses - 1).map(
        lambda n: str(ipaddress.ip_address(n) if net.version == 4 else ipaddress.IPv6Address(n))
    )


ADDRESSES = st.one_of(
    *(st.tuples(st.just(kind), _in(net)) for kind, nets in RANGES.items() for net in nets),
    st.tuples(st.just("public"), st.sampled_from(["8.8.8.8", "93.184.216.34", "2606:4700::1111"])),
)


@given(ADDRESSES)
def test_every_address_of_a_range_is_of_its_class(case: tuple[AddressClass, str]) -> None:
    kind, address = case
    assert address_class(address) == kind


@given(ADDRESSES)
def test_ipv4_inside_ipv6_is_judged_as_the_ipv4_address(case: tuple[AddressClass, str]) -> None:
    kind, address = case
    ip = ipaddress.ip_address(address)
    if ip.version != 4:
        return
    embedded = {
        f"::ffff:{address}",  # IPv4-mapped
        str(ipaddress.IPv6Address((0x2002 << 112) | (int(ip) << 80))),  # 6to4
        str(ipaddress.IPv6Address((0x64FF9B << 96) | int(ip))),  # NAT64
    }
    assert {address_class(form) for form in embedded} == {kind}


def test_zones_and_the_unspecified_address() -> None:
    assert address_class("fe80::1%eth0") == "link-local"
    assert address_class("0.0.0.0") == "loopback"  # connects to this machine
    assert address_class("::") == "loopback"


@given(root=st.sampled_from(CLASSES), target=ADDRESSES)
def test_a_target_is_allowed_only_if_public_or_in_the_roots_own_range(
    root: AddressClass, target: tuple[AddressClass, str]
) -> None:
    kind, address = target
    refusal = AddressGuard([root]).refusal("host", [address])
    assert (refusal is None) == (kind in ("public", root))
    if refusal is not None:
        assert address in refusal
        assert "the root URL is not" in refusal


async def test_the_guard_of_a_loopback_root_allows_loopback_only() -> None:
    guard = await guard_for(["http://127.0.0.1:8000/docs/"], Resolver())
    assert guard.allowed == {"public", "loopback"}
    for address in ("10.0.0.1", "169.254.169.254", "192.168.1.1", "fd00::1", "fe80::1"):
        assert guard.refusal(address, [address]) is not None, address
    assert guard.refusal("127.0.0.2", ["127.0.0.2"]) is None
    assert guard.refusal("mixed.example", ["8.8.8.8", "10.1.2.3"]) is not None  # any one


class StubResolver(Resolver):
    """Host names resolved from a table: names that would resolve to private ranges."""

    def __init__(self, table: dict[str, tuple[str, ...]]) -> None:
        super().__init__()
        self.table = table

    async def addresses(self, host: str) -> tuple[str, ...]:
        return self.table.get(host, (host,))


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/admin",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd12::1]:8080/",
        "http://metadata.internal/computeMetadata/v1/",  # a name resolving to link-local
        "http://router.lan/",  # a name resolving to a private address
    ],
)
async def test_a_loopback_root_cannot_redirect_to_a_private_or_link_local_address(
    location: str,
) -> None:
    """Decided in the redirect loop; the mock transport shows the hop was never sent."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(302, headers={"location": location})

    resolver = StubResolver(
        {"metadata.internal": ("169.254.169.254",), "router.lan": ("192.168.0.1",)}
    )
    root = "http://127.0.0.1:8000/docs/"
    route = Route(await guard_for([root], resolver), resolver)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(HopRefused) as refused:
            async with follow(client, root, route=route):
                pass
    assert asked == [root]
    assert refused.value.reason.startswith(f"redirect to {location.rstrip('/')}")
    assert "the root URL is not" in refused.value.reason
    assert refused.value.status == 302


async def test_a_name_that_turns_private_at_connect_time_is_refused_before_connecting() -> None:
    """DNS rebinding: the check before the hop sees a public address, the connection would
    go to 127.0.0.1; the guarded transport resolves again, refuses, and sends nothing."""
    pretend_public = StubResolver({"localhost": ("93.184.216.34",)})
    routes = {"/docs/": Answer.html("<p>secret</p>")}
    with HostileServer(routes).running() as site:
        url = site.url("/docs/").replace("127.0.0.1", "localhost")
        async with open_client(CrawlConfig()) as client:
            route = Route(AddressGuard(), pretend_public)  # a public root's guard
            with pytest.raises(FetchFailure, match=r"localhost \(127\.0\.0\.1\) is a loopback"):
                await fetch(client, url, max_bytes=10_000, route=route)
            assert site.hits["/docs/"] == 0
            allowed = Route(AddressGuard(["loopback"]), pretend_public)
            page = await fetch(client, url, max_bytes=10_000, route=allowed)
    assert "secret" in page.html
    assert site.hits["/docs/"] == 1
