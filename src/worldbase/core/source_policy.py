"""The source policy: which network destinations a request made for a user may reach.

Every outbound request Worldbase makes on a user's behalf (raster reads, WMS GetMap and
GetCapabilities, OSM replication and Overpass polls) goes through this module:

- `SourcePolicy.check_url` decides on a URL before any request (and when a URL is saved):
  its scheme, then — unless an allow-list prefix names it — the addresses its host
  resolves to;
- `client` / `async_client` are httpx clients whose connect step resolves the host,
  checks every address and connects to a checked one (`_GuardedBackend`), so a DNS answer
  that changes between the check and the connection (rebinding) changes nothing; each
  redirect hop is a new request, checked again by URL and at connect;
- `requests_session` serves the same client to libraries built on `requests` (pyosmium).

Default (`WORLDBASE_SOURCE_POLICY=public`): public internet addresses are allowed; loopback,
private, link-local, shared (CGNAT), multicast, reserved and unspecified addresses are
refused, also inside IPv4-mapped, NAT64 and 6to4 IPv6 addresses. `WORLDBASE_SOURCE_ALLOWLIST`
additionally opens URL prefixes (`http://wms.internal:8080/`) and networks (`10.2.0.0/16`).
`WORLDBASE_SOURCE_POLICY=allowlist` allows only those. Cloud metadata addresses are refused
whatever the configuration.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal
from urllib.parse import urlsplit

import httpcore
import httpx
import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict

from worldbase.core.errors import BadInput, Forbidden

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
PolicyMode = Literal["public", "allowlist"]

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_REDIRECTS = 5
# Instance metadata services (AWS/GCP/Azure/OpenStack, ECS, Alibaba): never, even allow-listed.
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_REFUSAL = "Source not allowed"


class SourceNotAllowed(Forbidden):
    """The destination is outside the source policy (403: understood, and refused)."""


def _refuse(url: str, reason: str) -> SourceNotAllowed:
    return SourceNotAllowed(
        f"{_REFUSAL}: {reason}",
        detail={
            "source": url[:200],
            "reason": reason,
            "settings": ["WORLDBASE_SOURCE_POLICY", "WORLDBASE_SOURCE_ALLOWLIST"],
        },
    )


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def is_public(ip: IPAddress) -> bool:
    """A globally routable unicast address (and so is any IPv4 address it embeds)."""
    inner = embedded_ipv4(ip)
    if inner is not None and not is_public(inner):
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def _boundary_match(url: str, prefix: str) -> bool:
    # A prefix matches at a path boundary only: `https://a.org` does not admit `https://a.org.evil`.
    if not url.startswith(prefix):
        return False
    if prefix.endswith(("/", "?", "=", "&")) or len(url) == len(prefix):
        return True
    return url[len(prefix)] in "/?#"


def _host_port(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    return parts.hostname.lower().strip("[]"), port


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class SourcePolicy:
    """Built once from settings (`from_settings`); hashable, so clients are cached per policy."""

    mode: PolicyMode = "public"
    prefixes: tuple[str, ...] = ()  # allow-listed URL prefixes (http, https, s3, ...)
    networks: tuple[IPNetwork, ...] = ()  # allow-listed address ranges
    timeout: float = field(default=20.0, compare=False)

    @classmethod
    def from_entries(
        cls, entries: Iterable[str], *, mode: PolicyMode = "public", timeout: float = 20.0
    ) -> SourcePolicy:
        prefixes: list[str] = []
        networks: list[IPNetwork] = []
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                prefixes.append(entry)
        return cls(mode=mode, prefixes=tuple(prefixes), networks=tuple(networks), timeout=timeout)

    @classmethod
    def from_settings(cls, settings: Any) -> SourcePolicy:
        return cls.from_entries(
            settings.worldbase_source_allowlist, mode=settings.worldbase_source_policy
        )

    @cached_property
    def opened_hosts(self) -> frozenset[tuple[str, int]]:
        """(host, port) named by an allow-listed URL prefix: any address of theirs is allowed."""
        return frozenset(hp for p in self.prefixes if (hp := _host_port(p)) is not None)

    def prefix_allows(self, url: str) -> bool:
        return any(_boundary_match(url, prefix) for prefix in self.prefixes)

    def address_allowed(self, ip: IPAddress, *, opened: bool = False) -> bool:
        inner = embedded_ipv4(ip)
        if ip in METADATA or (inner is not None and inner in METADATA):
            return False
        if opened or any(
            ip in net or (inner is not None and inner in net) for net in self.networks
        ):
            return True
        return self.mode == "public" and is_public(ip)

    # --- URL level --------------------------------------------------------------------------

    def check_url(self, url: str, *, resolve: bool = True) -> None:
        """Raise `SourceNotAllowed` (403) for a URL this policy refuses, `BadInput` if malformed.

        With `resolve`, a host name is looked up and every address checked (a name that does
        not resolve passes here: the request itself will fail). The connect-time check in the
        clients is what makes it binding.
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise BadInput(
                f"Unsupported URL scheme {scheme or '(none)'!r}: use http:// or https://",
                detail={"source": url[:200]},
            )
        target = _host_port(url)
        if target is None:
            raise BadInput("The URL needs a host (and a valid port)", detail={"source": url[:200]})
        host, port = target
        if self.prefix_allows(url):
            opened = True
        elif self.mode == "allowlist" and not self.networks:
            raise _refuse(url, "the URL matches no WORLDBASE_SOURCE_ALLOWLIST entry")
        else:
            opened = False
        literal = _ip_literal(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        elif resolve or (self.mode == "allowlist" and not opened):
            try:
                addresses = _resolve(host, port)
            except OSError:
                if self.mode == "allowlist" and not opened:
                    # Strict: a name is allowed only when it is seen inside a listed network.
                    raise _refuse(url, "the host cannot be resolved to a listed network") from None
                return
        else:
            return
        self._check_addresses(url, addresses, opened=opened)

    def _check_addresses(self, url: str, addresses: list[IPAddress], *, opened: bool) -> None:
        for ip in addresses:
            if not self.address_allowed(ip, opened=opened):
                raise _refuse(url, f"the address {ip} is not a public one")

    # --- connect level ----------------------------------------------------------------------

    def connect_addresses(
        self, host: str, port: int, addresses: list[IPAddress]
    ) -> list[IPAddress]:
        """The addresses of `host` to connect to, all of them checked (else SourceNotAllowed)."""
        opened = (host.lower(), port) in self.opened_hosts
        if self.mode == "allowlist" and not opened and not self.networks:
            raise _refuse(f"{host}:{port}", "the host matches no WORLDBASE_SOURCE_ALLOWLIST entry")
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        self._check_addresses(f"{host}:{port}", addresses, opened=opened)
        return addresses


def _resolve(host: str, port: int) -> list[IPAddress]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return _unique(info[4][0] for info in infos)


async def _resolve_async(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return _unique(info[4][0] for info in infos)


def _unique(values: Iterable[Any]) -> list[IPAddress]:
    seen: dict[IPAddress, None] = {}
    for value in values:
        seen.setdefault(ipaddress.ip_address(str(value).split("%", 1)[0]), None)
    return list(seen)


# --- httpx clients ---------------------------------------------------------------------------


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves, checks every address, then connects to a checked address (never the name)."""

    def __init__(self, policy: SourcePolicy):
        self.policy = policy
        self.inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        literal = _ip_literal(host)
        try:
            found = [literal] if literal is not None else _resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} cannot be resolved: {exc}") from None
        error: Exception | None = None
        for ip in self.policy.connect_addresses(host, port, found):
            try:
                return self.inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("Unix sockets are not a source")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class _AsyncGuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, policy: SourcePolicy):
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        literal = _ip_literal(host)
        try:
            found = [literal] if literal is not None else await _resolve_async(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} cannot be resolved: {exc}") from None
        error: Exception | None = None
        for ip in self.policy.connect_addresses(host, port, found):
            try:
                return await self.inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("Unix sockets are not a source")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def _pool_options(limits: httpx.Limits) -> dict[str, Any]:
    # No proxy and no environment: a proxy would make the address check meaningless.
    return {
        "ssl_context": httpx.create_ssl_context(trust_env=False),
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
    }


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose connections go through the policy."""

    def __init__(self, policy: SourcePolicy, limits: httpx.Limits = httpx.Limits()):
        backend = _GuardedBackend(policy)
        self._pool = httpcore.ConnectionPool(**_pool_options(limits), network_backend=backend)


class AsyncGuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: SourcePolicy, limits: httpx.Limits = httpx.Limits()):
        backend = _AsyncGuardedBackend(policy)
        self._pool = httpcore.AsyncConnectionPool(**_pool_options(limits), network_backend=backend)


def _client_options(
    policy: SourcePolicy, timeout: float | httpx.Timeout | None, check: Any, kwargs: dict[str, Any]
) -> dict[str, Any]:
    return {
        "timeout": policy.timeout if timeout is None else timeout,
        "trust_env": False,
        "max_redirects": MAX_REDIRECTS,
        "event_hooks": {"request": [check]},
        **kwargs,
    }


def client(
    policy: SourcePolicy, *, timeout: float | httpx.Timeout | None = None, **kwargs: Any
) -> httpx.Client:
    """An httpx client under `policy`: every request (redirect hops included) is checked by
    URL before it is sent and by address when it connects."""

    def check(request: httpx.Request) -> None:
        policy.check_url(str(request.url), resolve=False)

    transport = GuardedTransport(policy, kwargs.pop("limits", httpx.Limits()))
    return httpx.Client(transport=transport, **_client_options(policy, timeout, check, kwargs))


def async_client(
    policy: SourcePolicy, *, timeout: float | httpx.Timeout | None = None, **kwargs: Any
) -> httpx.AsyncClient:
    """`client` for asyncio."""

    async def check(request: httpx.Request) -> None:
        policy.check_url(str(request.url), resolve=False)

    transport = AsyncGuardedTransport(policy, kwargs.pop("limits", httpx.Limits()))
    options = _client_options(policy, timeout, check, kwargs)
    return httpx.AsyncClient(transport=transport, **options)


# --- requests (pyosmium) -----------------------------------------------------------------------


class RefusedByPolicy(requests.ConnectionError):
    """A `requests` error carrying the policy's refusal (`.refusal`)."""

    def __init__(self, refusal: SourceNotAllowed, **kwargs: Any):
        super().__init__(refusal.message, **kwargs)
        self.refusal = refusal


class GuardedAdapter(requests.adapters.BaseAdapter):
    """A `requests` adapter that sends through `client(policy)` (redirects hop by hop)."""

    def __init__(self, policy: SourcePolicy, *, max_bytes: int = 256 * 1024 * 1024):
        super().__init__()
        self.http = client(policy, follow_redirects=True)
        self.max_bytes = max_bytes

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, timeout: Any = None, **kwargs: Any
    ) -> requests.Response:
        if isinstance(timeout, tuple):
            timeout = httpx.Timeout(timeout[1], connect=timeout[0])
        try:
            with self.http.stream(
                str(request.method),
                str(request.url),
                headers={k: str(v) for k, v in request.headers.items()},
                content=request.body,  # type: ignore[arg-type]
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            ) as answer:
                body = bytearray()
                for chunk in answer.iter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise requests.ConnectionError(
                            f"The answer is larger than {self.max_bytes} bytes", request=request
                        )
        except SourceNotAllowed as exc:
            raise RefusedByPolicy(exc, request=request) from None
        except httpx.TimeoutException as exc:
            raise requests.Timeout(str(exc) or "timed out", request=request) from None
        except httpx.HTTPError as exc:
            raise requests.ConnectionError(
                str(exc) or type(exc).__name__, request=request
            ) from None
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(answer.headers.items())
        response.raw = io.BytesIO(bytes(body))
        response.url = str(answer.url)
        response.reason = answer.reason_phrase
        response.request = request
        response.encoding = answer.encoding
        return response

    def close(self) -> None:
        self.http.close()


def requests_session(policy: SourcePolicy) -> requests.Session:
    """A `requests.Session` whose http(s) requests go through the policy's client."""
    session = requests.Session()
    session.trust_env = False
    adapter = GuardedAdapter(policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
