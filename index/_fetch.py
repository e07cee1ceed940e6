"""Fetch one URL safely: public addresses only, bounded size, time and redirects.

Server-side request forgery guard
---------------------------------
khabar fetches URLs that users (for instance Telegram users) hand it, so a URL must
not reach the machine's own services or the local network. Every TCP connection the
fetcher's httpx client opens goes through :class:`_GuardedBackend`, an httpcore
network backend that resolves the host itself, drops the addresses the policy
refuses and connects to one of the addresses it has just checked, by IP. There is
no second lookup between check and connect, so DNS rebinding (a name that answers
"public" to the check and "127.0.0.1" to the connect) cannot slip through. TLS is
untouched: the certificate is still verified against the host name of the URL, and
the Host header is the URL's.

Redirects are followed by hand, one hop at a time, so each hop's URL is checked
again (scheme, then addresses at connect time). IP-literal hosts are also checked
before a request is built, so a redirect to ``http://10.0.0.1/`` fails without
involving httpx at all.

The backend is plugged into httpcore's connection pool through its public
``network_backend`` argument, by :class:`_GuardedTransport`, a small httpx transport
over that pool. Proxies are disabled (``trust_env=False``), since a proxy would resolve
names itself. A keep-alive connection is reused for the same host and port without
a new lookup, which is safe because its peer was checked when it was opened.
Messages name the reason an address is refused, never the address a name resolved
to: that would map the operator's network for whoever sends URLs.

Bounds
------
One deadline (``total_timeout``) covers the whole fetch: the name lookup (run in a
worker thread, so it can be given up on), the connect, every read and every redirect.
Every connection is wrapped in :class:`_DeadlineStream`, which cuts each socket read
and write to what is left of the current fetch's deadline, so headers sent a byte at a
time or endless interim ``100 Continue`` responses are stopped too, not only bodies.
Bodies are read raw and decoded here, a bounded piece at a time (gzip, deflate, zstd),
so the size cap applies to decoded bytes as they are made: a few KiB of zstd that
would inflate to gigabytes are refused after ``max_bytes``. The raw bytes are capped
as well (a body can be endless on the wire and decode to nothing: a gzip comment,
empty deflate blocks, zstd skippable frames), and reading stops where the compressed
stream ends, whatever the server sends after it.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import ipaddress
import logging
import socket
import ssl
import time
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpcore
import httpx
import zstandard

from khabar._errors import BlockedURLError, FetchError
from khabar._settings import Settings

from ._parse_decode import split_content_type

__all__ = [
    "ACCEPT_ENCODING",
    "USER_AGENT",
    "Fetched",
    "Fetcher",
    "blocked_reason",
]

log = logging.getLogger(__name__)

USER_AGENT = "khabar/0.1 (+news indexing)"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# The encodings decoded here, each with a bound on what one step may produce.
ACCEPT_ENCODING = "gzip, deflate, zstd"
_DECODED_PIECE = 64 * 1024  # most bytes one decoding step may produce
_MAX_ENCODINGS = 2  # "gzip, gzip" at most; longer chains are not served by real sites
_ZSTD_WINDOW = 8 << 20  # RFC 8878's window for HTTP; a bigger one is refused
_DNS_THREADS = 8  # lookups that may hang at once; more wait, within their deadline

# The deadline (time.monotonic()) of the fetch running in this thread, for the
# connections it reads from: a pooled connection serves one fetch after another.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "khabar_fetch_deadline", default=None)


# -- address policy -------------------------------------------------------------------


def blocked_reason(address: str | _Address) -> str | None:
    """Why ``address`` must not be fetched from (e.g. "loopback"), or None if public.

    Pure function, no traffic. Anything that is not a valid IP address is refused.
    """
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address are judged by that address; checked
        # first because Python counts all of ::ffff:0:0/96 and 64:ff9b::/96 as reserved.
        if ip.ipv4_mapped is not None or ip in _NAT64:
            inner = blocked_reason(ip.ipv4_mapped or ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
            return f"IPv4-mapped {inner}" if inner else None
        if ip.sixtofour is not None and (inner := blocked_reason(ip.sixtofour)):
            return f"6to4 of {inner}"
        if ip in _UNIQUE_LOCAL:
            return "unique-local"
        if ip.is_site_local:
            return "site-local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "carrier-grade NAT"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "non-public"
    return None


class _Policy:
    """Which hosts and addresses may be connected to."""

    def __init__(self, allow_private: bool, allowed_hosts: Iterable[str]) -> None:
        self.allow_private = allow_private
        self.pairs: set[tuple[str, int]] = set()  # ("localhost", 8080), ("::1", 80)
        self.bare: set[str] = set()  # host names or IPs allowed on any port
        for entry in allowed_hosts:
            host, port = _split_host_port(entry.strip().lower())
            host = _normal_ip(host) or host
            if port is None:
                self.bare.add(host)
            else:
                self.pairs.add((host, port))

    def host_allowed(self, host: str, port: int) -> bool:
        host = _normal_ip(host) or host.lower()
        return self.allow_private or host in self.bare or (host, port) in self.pairs

    def check_literal(self, host: str, port: int, label: str) -> None:
        """Refuse an IP-literal host before any request; names are checked at connect."""
        ip = _normal_ip(host)
        if ip is not None and not self.host_allowed(host, port):
            reason = blocked_reason(ip)
            if reason:
                raise BlockedURLError(_blocked_message(label, [reason]))

    def filter(self, host: str, port: int, addresses: list[str]) -> list[str]:
        """The resolved addresses that may be connected to; BlockedURLError if none."""
        if self.host_allowed(host, port):
            return addresses
        allowed, refused = [], []
        for address in addresses:
            reason = blocked_reason(address)
            if reason is None or self.host_allowed(address, port):
                allowed.append(address)
            else:
                refused.append((address, reason))
        if not allowed:
            reasons = [reason for _, reason in refused]
            raise BlockedURLError(_blocked_message(f"{host}:{port}", reasons))
        if refused:
            log.debug("%s: ignoring non-public addresses %s", host, refused)
        return allowed


def _blocked_message(label: str, reasons: list[str]) -> str:
    """Why, without the addresses: a name's private addresses are nobody's business."""
    what = ", ".join(dict.fromkeys(reasons)) or "no"
    return (
        f"refusing to fetch {label}: its address is {what}, not public "
        "(set allow_private_urls to allow it)"
    )


def _normal_ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def _split_host_port(entry: str) -> tuple[str, int | None]:
    """Split an allowed-hosts entry ("host:port", "[v6]:port", "v6", "ip", "host")."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
        if port is not None and not port.isdigit():
            raise ValueError(f"invalid allowed host {entry!r}: port must be a number")
        return host, None if port is None else int(port)
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if not port.isdigit():
            raise ValueError(f"invalid allowed host {entry!r}: port must be a number")
        return host, int(port)
    return entry, None


def _getaddrinfo(host: str, port: int) -> list[str]:
    """The addresses of ``host``, in resolver order (a seam for the tests)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


_dns_pool: ThreadPoolExecutor | None = None


def _resolve(host: str, port: int, timeout: float | None) -> list[str]:
    """``_getaddrinfo`` given up on after ``timeout``: the C resolver cannot be
    interrupted, so it runs in a small pool of its own and is left to finish there."""
    global _dns_pool
    if _dns_pool is None:
        _dns_pool = ThreadPoolExecutor(_DNS_THREADS, thread_name_prefix="khabar-dns")
    future = _dns_pool.submit(_getaddrinfo, host, port)
    try:
        return future.result(timeout)
    except FutureTimeout:
        future.cancel()
        raise httpcore.ConnectTimeout(f"looking up {host} timed out") from None


# -- guarded network backends ---------------------------------------------------------


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves, checks, then connects to a checked IP: no window for rebinding."""

    def __init__(self, policy: _Policy) -> None:
        self._policy = policy
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        start = time.monotonic()
        try:
            addresses = _resolve(host, port, timeout)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        last: Exception | None = None
        for address in self._policy.filter(host, port, addresses):
            # The lookup spent part of the connect timeout (the fetch's deadline).
            left = None if timeout is None else timeout - (time.monotonic() - start)
            if left is not None and left <= 0:
                raise httpcore.ConnectTimeout(f"connecting to {host} timed out")
            try:
                return _DeadlineStream(self._inner.connect_tcp(
                    address, port, left, local_address, socket_options
                ))
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise httpcore.ConnectError("unix sockets are not fetched")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the current fetch's deadline.

    httpcore times each socket operation on its own, so a server that sends its
    headers a byte at a time, or "100 Continue" forever, is never stopped by that;
    here each operation gets what is left of the whole fetch at most, and none is
    started once it has passed.
    """

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    @staticmethod
    def _left(timeout: float | None, error: type[httpcore.TimeoutException]) -> float | None:
        deadline = _deadline.get()
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise error("the fetch's total time limit passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = self._left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    """httpcore's errors as httpx's of the same name (the two libraries share them)."""
    try:
        yield
    except httpcore.TimeoutException as exc:
        kind = getattr(httpx, type(exc).__name__, httpx.TimeoutException)
        raise kind(str(exc)) from exc
    except httpcore.UnsupportedProtocol as exc:
        raise httpx.UnsupportedProtocol(str(exc)) from exc
    except (httpcore.ConnectError, httpcore.ReadError, httpcore.WriteError,
            httpcore.RemoteProtocolError, httpcore.LocalProtocolError) as exc:
        raise getattr(httpx, type(exc).__name__)(str(exc)) from exc
    except httpcore.NetworkError as exc:
        raise httpx.NetworkError(str(exc)) from exc
    except httpcore.ProtocolError as exc:
        raise httpx.ProtocolError(str(exc)) from exc


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class _GuardedTransport(httpx.BaseTransport):
    """httpx over an httpcore pool whose every connection goes through the guard."""

    def __init__(self, policy: _Policy) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=20,
            network_backend=_GuardedBackend(policy),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host,
                             port=request.url.port, target=request.url.raw_path),
            headers=request.headers.raw,
            content=request.stream,  # type: ignore[arg-type]  # a SyncByteStream
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = self._pool.handle_request(core)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_ResponseStream(response.stream),
                              extensions=response.extensions)

    def close(self) -> None:
        self._pool.close()


# -- bounded decoding ---------------------------------------------------------------------


def _inflate(raw: Iterable[bytes], wbits: int) -> Iterator[bytes]:
    """zlib/gzip/raw deflate, never more than ``_DECODED_PIECE`` bytes per step.

    A "deflate" body is meant to be zlib-wrapped but often is raw deflate: as httpx
    does, the raw form is tried when the first bytes are not zlib. Reading stops at
    the end of the compressed stream: what follows is ignored, as httpx does, and
    not read (zlib would pile it up in ``unused_data``, copying it all each time).
    """
    z = zlib.decompressobj(wbits)
    started = False
    for data in raw:
        while True:
            try:
                out = z.decompress(data, _DECODED_PIECE)
            except zlib.error:
                if started or wbits != zlib.MAX_WBITS:
                    raise
                wbits = -zlib.MAX_WBITS
                z = zlib.decompressobj(wbits)
                continue
            started = True
            if out:
                yield out
            if z.eof:  # all of the output has been given by then
                return
            data = z.unconsumed_tail
            if not data and len(out) < _DECODED_PIECE:  # else zlib may hold more back
                break
    if tail := z.flush():
        yield tail


class _IterReader(io.RawIOBase):
    """A read-only file over an iterator of byte strings (for zstandard's reader)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, into: Any) -> int:
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buffer = chunk
        n = min(len(into), len(self._buffer))
        into[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def _unzstd(raw: Iterable[bytes]) -> Iterator[bytes]:
    decompressor = zstandard.ZstdDecompressor(max_window_size=_ZSTD_WINDOW)
    with decompressor.stream_reader(_IterReader(raw), read_across_frames=True) as reader:
        while piece := reader.read(_DECODED_PIECE):
            yield piece


def _decoded(raw: Iterable[bytes], content_encoding: str, label: str) -> Iterator[bytes]:
    """The body of a response, decoded in bounded pieces; FetchError if it cannot be."""
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if len(codings) > _MAX_ENCODINGS:
        raise FetchError(f"too many content encodings from {label}: {content_encoding!r}")
    body: Iterable[bytes] = raw
    for coding in reversed(codings):  # the last one applied is undone first
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, 16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            body = _inflate(body, zlib.MAX_WBITS)
        elif coding == "zstd":
            body = _unzstd(body)
        else:
            raise FetchError(f"unsupported content encoding {coding!r} from {label}")
    try:
        yield from body
    except (zlib.error, zstandard.ZstdError) as exc:
        raise FetchError(f"cannot decode the {content_encoding} body from {label}: {exc}"
                         ) from exc


# -- the fetcher ----------------------------------------------------------------------


@dataclass
class Fetched:
    """A fetched body. ``url`` is what was asked for (as given), ``final_url`` the URL
    after redirects, without any user:password@ part."""

    url: str
    final_url: str
    status: int
    content_type: str  # lowercased mime type without parameters, "" if not sent
    charset: str | None
    data: bytes
    headers: httpx.Headers


class Fetcher:
    """Fetches http(s) URLs from public addresses, within size, time and redirect limits.

    Use as ``with Fetcher(settings) as f: f.fetch(url)`` to reuse connections; outside
    a ``with`` block each call opens and closes its own client. Explicit keyword
    arguments override ``settings``. ``allowed_hosts`` holds "host:port" entries, or
    hosts/IPs allowed on any port, exempt from the public-address rule.
    ``total_timeout`` bounds a whole fetch (default 3 × ``timeout``, which bounds each
    connect/read).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        timeout: float | None = None,
        max_bytes: int | None = None,
        max_redirects: int | None = None,
        allow_private: bool | None = None,
        allowed_hosts: Iterable[str] = (),
        user_agent: str = USER_AGENT,
        total_timeout: float | None = None,
    ) -> None:
        s = settings or Settings()
        self.timeout = s.fetch_timeout if timeout is None else timeout
        self.max_bytes = s.fetch_max_bytes if max_bytes is None else max_bytes
        self.max_redirects = s.fetch_max_redirects if max_redirects is None else max_redirects
        self.total_timeout = 3 * self.timeout if total_timeout is None else total_timeout
        self.user_agent = user_agent
        self._policy = _Policy(
            s.allow_private_urls if allow_private is None else allow_private, allowed_hosts
        )
        self._shared: httpx.Client | None = None

    # The client: shared inside a with-block, one per call outside it.

    def _new_client(self) -> httpx.Client:
        return httpx.Client(
            transport=_GuardedTransport(self._policy),
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": self.user_agent},
        )

    def __enter__(self) -> Self:
        self._shared = self._new_client()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        client, self._shared = self._shared, None
        if client is not None:
            client.close()

    @contextlib.contextmanager
    def _client(self) -> Iterator[httpx.Client]:
        if self._shared is not None:
            yield self._shared
            return
        with self._new_client() as client:
            yield client

    # Fetching.

    def fetch(self, url: str, *, accept: Iterable[str] | None = None) -> Fetched:
        """GET ``url``; raises BlockedURLError, FetchError (status, size, type, time).

        Blocking (the bot calls it from a worker thread); safe inside a running loop.
        """
        accepted = _accepted(accept)
        current = self._checked_url(url)
        label = _label(current)
        deadline = time.monotonic() + self.total_timeout
        token = _deadline.set(deadline)  # for every socket read and write on the way
        try:
            with self._client() as client:
                for _ in range(self.max_redirects + 1):
                    label = _label(current)
                    log.debug("GET %s", label)
                    # Each connect and read gets what is left of the deadline at most.
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError
                    request = client.build_request(
                        "GET", current, headers=_headers(accepted),
                        timeout=httpx.Timeout(min(self.timeout, left)))
                    response = client.send(request, stream=True)
                    try:
                        target = self._redirect_target(current, response)
                        if target is None:
                            self._check_response(response, label, accepted)
                            body = _Body(self.max_bytes, label)
                            encoding = response.headers.get("content-encoding", "")
                            raw = _Raw(response.iter_raw(), self.max_bytes, deadline, label)
                            for chunk in _decoded(raw, encoding, label):
                                body.add(chunk)
                            raw.end(response.headers)
                            return _fetched(url, current, response, body.data())
                    finally:
                        response.close()
                    current = target
                    if time.monotonic() > deadline:
                        raise TimeoutError
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise FetchError(f"timed out fetching {label}") from exc
        except httpx.HTTPError as exc:
            raise FetchError(f"cannot fetch {label}: {str(exc) or type(exc).__name__}") from exc
        finally:
            _deadline.reset(token)
        raise FetchError(f"too many redirects fetching {_label(url)} (> {self.max_redirects})")

    def _checked_url(self, url: str | httpx.URL) -> httpx.URL:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise FetchError(f"invalid URL {str(url)[:200]!r}: {exc}") from exc
        if parsed.scheme not in ("http", "https"):
            raise FetchError(f"unsupported URL scheme {parsed.scheme!r}: only http and https")
        if not parsed.host:
            raise FetchError(f"URL has no host: {_label(parsed)}")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self._policy.check_literal(parsed.host, port, _label(parsed))
        return parsed

    def _redirect_target(self, current: httpx.URL, response: httpx.Response) -> httpx.URL | None:
        if response.status_code not in _REDIRECTS:
            return None
        location = response.headers.get("location")
        if not location:
            raise FetchError(f"HTTP {response.status_code} without Location from {_label(current)}")
        return self._checked_url(current.join(location))

    def _check_response(
        self, response: httpx.Response, label: str, accepted: frozenset[str] | None
    ) -> None:
        if not 200 <= response.status_code < 300:
            raise FetchError(f"HTTP {response.status_code} fetching {label}")
        mime, _ = _content_type(response.headers)
        if accepted is not None and mime not in accepted:
            raise FetchError(f"unsupported content type {mime or '(none)'!r} from {label}")
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            raise FetchError(_too_large(label, self.max_bytes, int(length)))


class _Raw:
    """The body as sent, cut at the deadline or once more than ``limit`` bytes are wanted.

    Counting decoded bytes alone lets a body run forever that decodes to nothing (an
    endless gzip comment, empty deflate blocks, zstd skippable frames). The bound is
    ``max_bytes`` itself: an honest compressed body is smaller than what it decodes to
    (incompressible data grows only by a few bytes of framing per 64 KiB), and a
    Content-Length above ``max_bytes`` is refused already; this holds bodies without one
    to the same rule. It is checked when the decoder asks for more, before the next
    read: the read that brings the end of a compressed stream may bring junk after it,
    which the decoder ignores and which must not count.
    """

    def __init__(self, chunks: Iterable[bytes], limit: int, deadline: float, label: str
                 ) -> None:
        self._chunks = iter(chunks)
        self._limit, self._deadline, self._label = limit, deadline, label

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        while True:
            if size > self._limit:
                raise FetchError(f"response from {self._label} is too large (over "
                                 f"{self._limit:,} bytes as sent, before decoding)")
            # Reads are bounded too (_DeadlineStream); this covers chunks already buffered.
            if time.monotonic() > self._deadline:
                raise TimeoutError
            chunk = next(self._chunks, None)
            if chunk is None:
                return
            size += len(chunk)
            yield chunk

    def end(self, headers: httpx.Headers) -> None:
        """After the decoder's end: one more look, so that a message of known length
        is seen to end and its connection kept for the next fetch (no read is needed
        for that when the stream filled the message). Anything else there is junk:
        at most one chunk is dropped, with the connection. A message that ends when
        the connection closes cannot be kept, so nothing is waited for there."""
        framed = ("content-length" in headers
                  or "chunked" in headers.get("transfer-encoding", "").lower())
        if framed:
            with contextlib.suppress(httpx.HTTPError):  # the body is whole already
                next(self._chunks, None)


class _Body:
    """Collects chunks, refusing as soon as the total passes the limit."""

    def __init__(self, limit: int, label: str) -> None:
        self._limit, self._label = limit, label
        self._chunks: list[bytes] = []
        self._size = 0

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._limit:
            raise FetchError(_too_large(self._label, self._limit))
        self._chunks.append(chunk)

    def data(self) -> bytes:
        return b"".join(self._chunks)


def _too_large(label: str, limit: int, size: int | None = None) -> str:
    got = f"{size:,} bytes" if size is not None else "more"
    return f"response from {label} is too large ({got}; limit {limit:,} bytes)"


def _fetched(url: str, final: httpx.URL, response: httpx.Response, data: bytes) -> Fetched:
    mime, charset = _content_type(response.headers)
    return Fetched(
        url=url,
        # Without user:password@: the final URL is stored and cited; the request had them.
        final_url=str(final.copy_with(username=None, password=None)),
        status=response.status_code,
        content_type=mime,
        charset=charset,
        data=data,
        headers=response.headers,
    )


def _content_type(headers: httpx.Headers) -> tuple[str, str | None]:
    return split_content_type(headers.get("content-type", ""))


def _accepted(accept: Iterable[str] | None) -> frozenset[str] | None:
    return None if accept is None else frozenset(a.strip().lower() for a in accept)


def _headers(accepted: frozenset[str] | None) -> dict[str, str]:
    wanted = "*/*" if not accepted else ", ".join(sorted(accepted)) + ", */*;q=0.1"
    return {"Accept": wanted, "Accept-Encoding": ACCEPT_ENCODING}


def _label(url: str | httpx.URL) -> str:
    """Host and path, for logs and messages: query strings may carry secrets."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "(invalid URL)"
    netloc = parsed.netloc.decode("ascii", "replace")
    if "@" in netloc:  # drop user:password
        netloc = netloc.rpartition("@")[2]
    return f"{parsed.scheme}://{netloc}{parsed.path}"
