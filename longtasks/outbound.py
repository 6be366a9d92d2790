"""Requests to addresses a business chose (its webhook URL): never into our own network.

A business's URL could name, or come to resolve to, a loopback, private, link-local (the cloud
metadata service at 169.254.169.254), multicast or reserved address, and steer the worker at
services behind the firewall (SSRF, OWASP API7). The check sits where it cannot be raced: in the
socket factory of the HTTP connector, on the exact address each connection attempt is about to
connect to, after name resolution, every time (no DNS cache). A name that answers a public
address when the URL is saved and 127.0.0.1 at delivery time (DNS rebinding) is refused at
delivery; IPv6 forms of IPv4 addresses (::ffff:10.0.0.1, NAT64, 6to4) are judged by the IPv4
address inside them. No redirects are followed, no proxy from the environment is used, and an
answer's body is read up to a cap.

`OUTBOUND_ALLOWED_NETWORKS` exempts networks (a receiver on the same host in development).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aiohttp.abc

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Answers longer than this are cut: a receiver cannot make a worker read without end.
MAX_ANSWER_BYTES = 64 * 1024

# IANA's special-purpose registries, spelled out: what `ipaddress` calls global has changed
# between Python releases (192.0.0.0/24 among others), this list does not.
_SPECIAL_PURPOSE: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
        "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class OutboundRefused(OSError):
    """A connection attempt to an address the policy does not allow (an OSError, so a name with
    several addresses goes on to the next one)."""


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, where it stands for one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_internal(address: IPAddress) -> bool:
    """True for anything that is not a plain public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.teredo is not None or address in _NAT64_LOCAL or address.is_site_local:
            return True
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_internal(inner)
    if any(address in network for network in _SPECIAL_PURPOSE):
        return True
    return (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


@dataclass
class OutboundPolicy:
    allowed_networks: tuple[IPNetwork, ...] = ()
    # Addresses this policy refused to connect to (one policy per delivery: its evidence).
    refused: list[str] = field(default_factory=list)
    # The system's resolver unless given (tests answer names with addresses of their choosing).
    resolver: aiohttp.abc.AbstractResolver | None = None

    @classmethod
    def of(
        cls, networks: Iterable[str], resolver: aiohttp.abc.AbstractResolver | None = None
    ) -> OutboundPolicy:
        allowed = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        return cls(allowed_networks=allowed, resolver=resolver)

    def permits(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])  # fe80::1%eth0
        except ValueError:
            return False
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and (inner := embedded_ipv4(address)):
            candidates.append(inner)
        if any(a in n for a in candidates for n in self.allowed_networks):
            return True
        return not is_internal(address)

    def socket_factory(self, addr_info: Any) -> socket.socket:
        """aiohttp's (aiohappyeyeballs') hook, called with the address about to be connected."""
        family, kind, proto, _, sockaddr = addr_info
        host = str(sockaddr[0])
        if not self.permits(host):
            self.refused.append(host)
            raise OutboundRefused(f"refused to connect to {host}: not a public address")
        return socket.socket(family, kind, proto)

    def session(self, timeout_s: float) -> aiohttp.ClientSession:
        """A session whose every connection goes through this policy."""
        connector = aiohttp.TCPConnector(
            socket_factory=self.socket_factory,
            resolver=self.resolver,
            use_dns_cache=False,  # resolve at connect time, every time
            limit=4,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            trust_env=False,  # no proxy from the environment: it would connect instead of us
        )


def literal_address_refused(host: str, policy: OutboundPolicy) -> bool:
    """For validating a URL when it is saved: a literal address (or localhost) the policy
    refuses. Names are judged at connect time, where it counts."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return not policy.permits("127.0.0.1")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return not policy.permits(host)


async def read_capped(response: aiohttp.ClientResponse, limit: int = MAX_ANSWER_BYTES) -> bytes:
    """At most `limit` bytes of an answer's body; the rest is never read."""
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        chunk = await response.content.read(limit - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)
