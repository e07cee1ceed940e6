"""The safe fetcher against a real HTTP server on 127.0.0.1 (no other traffic)."""

from __future__ import annotations

import gzip
import socket
import struct
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import zstandard
from khabar.index import _fetch
from khabar.index._fetch import Fetcher, blocked_reason
from khabar.index._ingest import WEB_TYPES

from khabar._errors import BlockedURLError, FetchError
from khabar._settings import Settings

PAGE = "<html><head><title>خبر</title></head><body><p>Hello</p></body></html>".encode()
FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
LIMIT = 50_000  # max_bytes in these tests
_stop = threading.Event()
BOMB = 64 << 20  # decoded size of the bombs: 1,300 times the limit


def _bombs() -> dict[str, tuple[str, bytes]]:
    zero = b"\0" * BOMB
    deflate = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS)
    # zstd's frame tells its size: the decoder is asked to inflate it all at once.
    return {"/zstd-bomb": ("zstd", zstandard.ZstdCompressor(level=19).compress(zero)),
            "/gzip-bomb-64m": ("gzip", gzip.compress(zero, 9)),
            "/deflate-bomb": ("deflate", deflate.compress(zero) + deflate.flush())}


BOMBS = _bombs()

# Bodies that go on for ever and decode to nothing: (Content-Encoding, start, one
# piece sent fast, one piece sent slowly).
ENDLESS = {
    # gzip header with FCOMMENT, a comment never ended by its NUL
    "gzip-comment": ("gzip", b"\x1f\x8b\x08\x10\0\0\0\0\x00\x03", b"A" * 65536, b"A" * 100),
    # zlib header, then non-final empty stored blocks
    "deflate-empty": ("deflate", b"\x78\x9c", b"\0\0\0\xff\xff" * 13000, b"\0\0\0\xff\xff" * 20),
    # skippable frames
    "zstd-skip": ("zstd", b"", struct.pack("<II", 0x184D2A50, 65536) + b"\0" * 65536,
                  struct.pack("<II", 0x184D2A50, 100) + b"\0" * 100),
}
HOSTILE = 5.0  # seconds a hostile endpoint keeps going, should a fetch not stop it


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # close-delimited bodies when no Content-Length is sent

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, ctype: str, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _hostile(self, head: bytes, piece: bytes, pause: float) -> None:
        """Raw bytes: ``head``, then ``piece`` after ``piece`` until the client hangs up."""
        end = time.monotonic() + HOSTILE
        try:
            self.wfile.write(head)
            while time.monotonic() < end and not _stop.wait(pause):
                self.wfile.write(piece)
        except OSError:  # the client gave up, as it should
            pass

    def _stream(self, total: int) -> None:
        try:
            for _ in range(total // 8192):
                self.wfile.write(b"x" * 8192)
        except OSError:  # the client hung up at its limit, as it should
            pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/page.html":
            self._send(200, "text/html; charset=UTF-8", PAGE, X_Seen_Host=self.headers["Host"])
        elif path == "/feed.xml":
            self._send(200, 'application/rss+xml; charset="utf-8"', FEED)
        elif path.startswith("/r/"):  # /r/N redirects N times, then lands on the page
            n = int(path[3:])
            self._redirect(f"/r/{n - 1}" if n > 1 else "/page.html")
        elif path == "/abs-redirect":
            self._redirect(f"http://127.0.0.1:{self.server.server_address[1]}/feed.xml")
        elif path == "/to-private":
            self._redirect("http://10.0.0.1/secret")
        elif path == "/to-mapped":
            self._redirect("http://[::ffff:10.0.0.1]/secret")
        elif path == "/to-metadata":
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif path == "/to-ftp":
            self._redirect("ftp://127.0.0.1/file")
        elif path == "/no-location":
            self.send_response(301)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/huge-cl":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(20 * LIMIT))
            self.end_headers()
            self._stream(20 * LIMIT)
        elif path == "/huge":  # no Content-Length: only counting can stop it
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self._stream(20 * LIMIT)
        elif path == "/gzip-bomb":  # small on the wire, 100× the limit once decoded
            body = gzip.compress(b"\0" * (100 * LIMIT))
            self._send(200, "text/html", body, Content_Encoding="gzip")
        elif path in BOMBS:  # a few KiB on the wire, BOMB bytes once decoded
            encoding, body = BOMBS[path]
            self._send(200, "text/html", body, Content_Encoding=encoding)
        elif path == "/gzip-page":  # a real compressed page must still come through
            self._send(200, "text/html", gzip.compress(PAGE), Content_Encoding="gzip")
        elif path == "/deflate-page":
            self._send(200, "text/html", zlib.compress(PAGE), Content_Encoding="deflate")
        elif path == "/raw-deflate-page":
            raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
            body = raw.compress(PAGE) + raw.flush()
            self._send(200, "text/html", body, Content_Encoding="deflate")
        elif path == "/zstd-page":
            self._send(200, "text/html", zstandard.compress(PAGE), Content_Encoding="zstd")
        elif path == "/br-page":
            self._send(200, "text/html", b"\x0b\x02\x80hello\x03", Content_Encoding="br")
        elif path == "/slow":
            _stop.wait(3)
            self._send(200, "text/html", PAGE)
        elif path == "/drip":  # every byte in time, the whole far too slowly
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            try:
                for _ in range(30):
                    if _stop.wait(0.1):
                        break
                    self.wfile.write(b"x")
                    self.wfile.flush()
            except OSError:
                pass
        elif path.startswith("/endless/"):  # ?slow: a small piece every 50 ms
            encoding, start, fast, slow = ENDLESS[path[9:]]
            head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                    f"Content-Encoding: {encoding}\r\nConnection: close\r\n\r\n").encode()
            if "?slow" in self.path:
                self._hostile(head + start, slow, 0.05)
            else:
                self._hostile(head + start, fast, 0)
        elif path == "/drip-headers":  # each byte well within the read timeout
            self._hostile(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Pad: ", b"a", 0.05)
        elif path == "/continue-forever":  # interim responses, never the response
            self._hostile(b"", b"HTTP/1.1 100 Continue\r\n\r\n", 0.05)
        elif path in ("/gzip-then-junk", "/deflate-then-junk"):
            # A complete compressed page, then junk, then silence with the socket open:
            # a reader that goes past the end finds too much, or waits.
            gz = path == "/gzip-then-junk"
            head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: "
                    f"{'gzip' if gz else 'deflate'}\r\nConnection: close\r\n\r\n").encode()
            body = gzip.compress(PAGE) if gz else zlib.compress(PAGE)
            self._hostile(head + body + b"junk" * (5 * LIMIT), b"", HOSTILE)
        elif path == "/image.png":
            self._send(200, "image/png", b"\x89PNG\r\n\x1a\n")
        elif path == "/no-type":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
        elif path == "/server-error":
            self._send(503, "text/plain", b"down")
        else:
            self._send(404, "text/plain", b"not found")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # hang-ups are the point of some tests
            super().handle_error(request, client_address)


class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1, connections kept open: gzip pages with a Content-Length or chunked."""

    protocol_version = "HTTP/1.1"
    connections = 0

    def log_message(self, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        KeepAliveHandler.connections += 1

    def do_GET(self) -> None:
        body = gzip.compress(PAGE)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Encoding", "gzip")
        if self.path == "/chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    _stop.clear()
    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    _stop.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if anything tries to connect anywhere but 127.0.0.1."""
    real = socket.socket.connect

    def connect(sock: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::ffff:127.0.0.1"):
            raise AssertionError(f"test tried to connect to {address!r}")
        return real(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    # asyncio connects non-blocking sockets through connect_ex / sock_connect.
    real_ex = socket.socket.connect_ex

    def connect_ex(sock: socket.socket, address: object) -> int:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::ffff:127.0.0.1"):
            raise AssertionError(f"test tried to connect to {address!r}")
        return real_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


def allowed(port: int, **kwargs: object) -> Fetcher:
    """A fetcher that may reach the test server, and only it."""
    options: dict = {"max_bytes": LIMIT, "timeout": 1.0, "allowed_hosts": {f"127.0.0.1:{port}"}}
    options.update(kwargs)
    return Fetcher(**options)


# -- address classifier (pure) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.255", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "private"),  # reserved class E; Python files it under private
        ("255.255.255.255", "private"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fc00::1", "unique-local"),
        ("fd12:3456::1", "unique-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
        ("::ffff:10.0.0.1", "IPv4-mapped private"),
        ("64:ff9b::a00:1", "IPv4-mapped private"),  # NAT64 of 10.0.0.1
        ("2002:7f00:1::", "6to4 of loopback"),
        ("2001:db8::1", "private"),  # documentation range
        ("not-an-ip", "not an IP address"),
    ],
)
def test_refused_addresses(address: str, reason: str) -> None:
    assert blocked_reason(address) == reason


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "100.63.255.255",  # just below CGNAT
        "172.32.0.1",  # just above 172.16/12
        "2001:4860::8888",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",  # Python calls ::ffff:0:0/96 reserved; judged by its IPv4
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    ],
)
def test_public_addresses(address: str) -> None:
    assert blocked_reason(address) is None


# -- fetching ---------------------------------------------------------------------------


def test_html_page(port: int) -> None:
    url = f"http://127.0.0.1:{port}/page.html?token=s3cret"
    with allowed(port) as fetcher:
        got = fetcher.fetch(url, accept=WEB_TYPES)
    assert got.url == got.final_url == url
    assert got.status == 200
    assert (got.content_type, got.charset) == ("text/html", "utf-8")
    assert got.data == PAGE
    assert got.headers["x-seen-host"] == f"127.0.0.1:{port}"


def test_feed_without_context_manager(port: int) -> None:
    got = allowed(port).fetch(
        f"http://127.0.0.1:{port}/feed.xml", accept={"text/xml", "application/rss+xml"}
    )
    assert (got.content_type, got.charset, got.data) == ("application/rss+xml", "utf-8", FEED)


def test_client_reused_inside_with_block(port: int) -> None:
    with allowed(port) as fetcher:
        got = fetcher.fetch(f"http://127.0.0.1:{port}/feed.xml")
        again = fetcher.fetch(f"http://127.0.0.1:{port}/r/2")
    assert got.data == FEED
    assert again.data == PAGE


async def test_fetch_inside_running_loop(port: int) -> None:
    # Must not try to start an event loop of its own.
    got = allowed(port).fetch(f"http://127.0.0.1:{port}/page.html")
    assert got.data == PAGE


def test_default_settings_refuse_loopback(port: int) -> None:
    with pytest.raises(BlockedURLError, match=r"127\.0\.0\.1:\d+/page.html: its address is loopback"
                       ):
        Fetcher(Settings()).fetch(f"http://127.0.0.1:{port}/page.html")


def test_host_name_resolving_to_loopback_is_refused(port: int) -> None:
    with pytest.raises(BlockedURLError, match="loopback"):
        Fetcher().fetch(f"http://localhost:{port}/page.html")


def test_allow_private_and_allowed_hosts(port: int) -> None:
    url = f"http://127.0.0.1:{port}/page.html"
    assert Fetcher(Settings(allow_private_urls=True)).fetch(url).data == PAGE
    assert Fetcher(allow_private=True).fetch(url).data == PAGE
    assert Fetcher(allowed_hosts={f"127.0.0.1:{port}"}).fetch(url).data == PAGE
    assert Fetcher(allowed_hosts={"127.0.0.1"}).fetch(url).data == PAGE  # any port
    with pytest.raises(BlockedURLError):  # another port is not allowed
        Fetcher(allowed_hosts={f"127.0.0.1:{port + 1}"}).fetch(url)


def test_redirect_chain_followed(port: int) -> None:
    with allowed(port) as fetcher:
        got = fetcher.fetch(f"http://127.0.0.1:{port}/r/2")
        absolute = fetcher.fetch(f"http://127.0.0.1:{port}/abs-redirect")
    assert got.data == PAGE
    assert got.url == f"http://127.0.0.1:{port}/r/2"
    assert got.final_url == f"http://127.0.0.1:{port}/page.html"
    assert absolute.data == FEED


def test_too_many_redirects(port: int) -> None:
    with pytest.raises(FetchError, match="too many redirects"):
        allowed(port).fetch(f"http://127.0.0.1:{port}/r/10")
    with pytest.raises(FetchError, match="too many redirects"):
        allowed(port, max_redirects=1).fetch(f"http://127.0.0.1:{port}/r/2")
    assert allowed(port, max_redirects=2).fetch(f"http://127.0.0.1:{port}/r/2").data


@pytest.mark.parametrize(
    ("path", "address"),
    [("/to-private", "10.0.0.1"), ("/to-mapped", "10.0.0.1"), ("/to-metadata", "169.254.169.254")],
)
def test_redirect_to_private_address_refused(port: int, path: str, address: str) -> None:
    # The first hop is allowed; the second is refused before any connection (the
    # only_loopback fixture would fail the test on an attempt).
    url = f"http://127.0.0.1:{port}{path}"
    with pytest.raises(BlockedURLError, match=address.replace(".", r"\.")):
        allowed(port).fetch(url)


def test_bad_redirects(port: int) -> None:
    with pytest.raises(FetchError, match="scheme 'ftp'"):
        allowed(port).fetch(f"http://127.0.0.1:{port}/to-ftp")
    with pytest.raises(FetchError, match="without Location"):
        allowed(port).fetch(f"http://127.0.0.1:{port}/no-location")


@pytest.mark.parametrize("path", ["/huge-cl", "/huge", "/gzip-bomb"])
def test_huge_body_refused(port: int, path: str) -> None:
    with pytest.raises(FetchError, match="too large"):
        allowed(port).fetch(f"http://127.0.0.1:{port}{path}")


@pytest.mark.parametrize("path", sorted(BOMBS))
def test_decompression_bombs_are_refused_within_bounded_memory(port: int, path: str) -> None:
    # The cap applies while inflating: at no point is much more than the limit held
    # (httpx alone inflated a whole read, 64 MiB from a few KiB of zstd).
    assert len(BOMBS[path][1]) < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match="too large"):
            allowed(port).fetch(f"http://127.0.0.1:{port}{path}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * LIMIT, f"{peak:,} bytes held while refusing a {LIMIT:,} limit"


@pytest.mark.parametrize("path", ["/gzip-page", "/deflate-page", "/raw-deflate-page",
                                  "/zstd-page"])
def test_compressed_pages_are_decoded(port: int, path: str) -> None:
    got = allowed(port).fetch(f"http://127.0.0.1:{port}{path}")
    assert got.data == PAGE


def test_only_supported_encodings_are_asked_for_and_others_refused(port: int) -> None:
    with pytest.raises(FetchError, match="unsupported content encoding 'br'"):
        allowed(port).fetch(f"http://127.0.0.1:{port}/br-page")
    assert set(_fetch.ACCEPT_ENCODING.split(", ")) == {"gzip", "deflate", "zstd"}


def test_body_at_the_limit_is_fine(port: int) -> None:
    got = allowed(port, max_bytes=len(PAGE)).fetch(f"http://127.0.0.1:{port}/page.html")
    assert got.data == PAGE
    with pytest.raises(FetchError, match="too large"):
        allowed(port, max_bytes=len(PAGE) - 1).fetch(f"http://127.0.0.1:{port}/page.html")


def test_slow_endpoint_times_out(port: int) -> None:
    start = time.monotonic()
    with pytest.raises(FetchError, match=r"timed out fetching http://127\.0\.0\.1:\d+/slow"):
        allowed(port, timeout=0.3).fetch(f"http://127.0.0.1:{port}/slow")
    assert time.monotonic() - start < 2.5


def test_dripping_body_hits_total_timeout(port: int) -> None:
    start = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        allowed(port, timeout=1.0, total_timeout=0.5).fetch(f"http://127.0.0.1:{port}/drip")
    assert time.monotonic() - start < 2.5


@pytest.mark.parametrize("kind", sorted(ENDLESS))
def test_endless_body_decoding_to_nothing_is_cut_at_the_size_limit(port: int, kind: str) -> None:
    # Decoded it is empty, so only the bytes as sent can be counted against the limit
    # (it used to read gigabytes and return "OK, 0 bytes").
    with pytest.raises(FetchError, match=r"too large \(over 50,000 bytes as sent"):
        allowed(port, total_timeout=30).fetch(f"http://127.0.0.1:{port}/endless/{kind}")


@pytest.mark.parametrize("kind", sorted(ENDLESS))
def test_dripping_body_decoding_to_nothing_hits_total_timeout(port: int, kind: str) -> None:
    # Each piece comes well within the read timeout, all of it far under the size limit.
    start = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        allowed(port, total_timeout=0.5).fetch(f"http://127.0.0.1:{port}/endless/{kind}?slow")
    assert time.monotonic() - start < 2.5


@pytest.mark.parametrize("path", ["/drip-headers", "/continue-forever"])
def test_slow_headers_hit_total_timeout(port: int, path: str) -> None:
    start = time.monotonic()
    with pytest.raises(FetchError, match=rf"timed out fetching http://127\.0\.0\.1:\d+{path}"):
        allowed(port, total_timeout=0.5).fetch(f"http://127.0.0.1:{port}{path}")
    assert time.monotonic() - start < 2.5


@pytest.mark.parametrize("path", ["/gzip-then-junk", "/deflate-then-junk"])
def test_reading_stops_at_the_end_of_the_compressed_body(port: int, path: str) -> None:
    # What follows the end is neither read (it is over the size limit, then silent),
    # nor kept (zlib used to pile it up in memory).
    assert allowed(port).fetch(f"http://127.0.0.1:{port}{path}").data == PAGE


def test_compressed_pages_leave_their_connection_reusable() -> None:
    # Reading stops where the gzip stream ends, yet the message's end is still seen,
    # so the connection goes back to the pool for the next fetch.
    server = Server(("127.0.0.1", 0), KeepAliveHandler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    port = server.server_address[1]
    try:
        KeepAliveHandler.connections = 0
        with allowed(port) as fetcher:
            for path in ("/length", "/chunked", "/length", "/chunked"):
                assert fetcher.fetch(f"http://127.0.0.1:{port}{path}").data == PAGE
        assert KeepAliveHandler.connections == 1
    finally:
        server.shutdown()
        server.server_close()


def test_final_url_has_no_userinfo(port: int) -> None:
    # The final URL is stored with the article and shown as its citation.
    with allowed(port) as fetcher:
        got = fetcher.fetch(f"http://reader:s3cret@127.0.0.1:{port}/r/1")
        direct = fetcher.fetch(f"http://ghp_t0ken@127.0.0.1:{port}/page.html?q=1")
    assert got.final_url == f"http://127.0.0.1:{port}/page.html"
    assert direct.final_url == f"http://127.0.0.1:{port}/page.html?q=1"
    assert got.data == direct.data == PAGE


def test_http_errors(port: int) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        allowed(port).fetch(f"http://127.0.0.1:{port}/missing")
    with pytest.raises(FetchError, match="HTTP 503"):
        allowed(port).fetch(f"http://127.0.0.1:{port}/server-error")


def test_wrong_content_type(port: int) -> None:
    with pytest.raises(FetchError, match="unsupported content type 'image/png'"):
        allowed(port).fetch(f"http://127.0.0.1:{port}/image.png", accept=WEB_TYPES)
    with pytest.raises(FetchError, match=r"unsupported content type '\(none\)'"):
        allowed(port).fetch(f"http://127.0.0.1:{port}/no-type", accept={"application/json"})
    # Without accept, anything goes.
    assert allowed(port).fetch(f"http://127.0.0.1:{port}/image.png").content_type == "image/png"


def test_invalid_urls() -> None:
    fetcher = Fetcher()
    for url in ("file:///etc/passwd", "ftp://example.com/", "gopher://x/", "javascript:alert(1)"):
        with pytest.raises(FetchError, match="scheme"):
            fetcher.fetch(url)
    with pytest.raises(FetchError):
        fetcher.fetch("http:///no-host")
    with pytest.raises(BlockedURLError, match=r"0\.0\.0\.0"):
        fetcher.fetch("http://0.0.0.0:1/")
    with pytest.raises(BlockedURLError, match="::1"):
        fetcher.fetch("http://[::1]:1/")


def test_error_messages_hide_query_strings(port: int) -> None:
    with pytest.raises(FetchError) as info:
        allowed(port).fetch(f"http://127.0.0.1:{port}/missing?api_key=s3cret")
    assert "s3cret" not in str(info.value)
    with pytest.raises(BlockedURLError) as blocked:
        Fetcher().fetch("http://user:pw@10.0.0.1/x?key=s3cret")
    assert "s3cret" not in str(blocked.value) and "pw" not in str(blocked.value)


# -- DNS answers: checked at connect time, connected to as checked ----------------------


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names the fetcher resolves through a table instead of the resolver."""
    table: dict[str, list[str]] = {}
    real = _fetch._getaddrinfo

    def lookup(host: str, port: int) -> list[str]:
        return table[host] if host in table else real(host, port)

    monkeypatch.setattr(_fetch, "_getaddrinfo", lookup)
    return table


def test_name_resolving_to_private_refused(port: int, fake_dns: dict) -> None:
    # The message says why, never which internal address a name has: that would map
    # the operator's network for whoever sends URLs.
    fake_dns["intranet.example"] = ["10.0.0.7", "fd00::7"]
    with pytest.raises(BlockedURLError, match=r"intranet\.example.*private, unique-local") as info:
        allowed(port).fetch(f"http://intranet.example:{port}/page.html")
    assert "10.0.0.7" not in str(info.value) and "fd00" not in str(info.value)


def test_the_deadline_covers_the_name_lookup(port: int, fake_dns: dict,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def stuck(host: str, port: int) -> list[str]:
        _stop.wait(20)  # a resolver that does not answer
        return ["127.0.0.1"]

    monkeypatch.setattr(_fetch, "_getaddrinfo", stuck)
    start = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        allowed(port, timeout=5.0, total_timeout=0.5).fetch(f"http://slow-dns.example:{port}/")
    assert time.monotonic() - start < 4


def test_the_guard_is_installed_through_httpcores_public_backend() -> None:
    transport = _fetch._GuardedTransport(_fetch._Policy(False, ()))
    assert isinstance(transport, httpx.BaseTransport)
    assert not isinstance(transport, httpx.HTTPTransport)  # no private attribute swapped


def test_connects_only_to_checked_addresses(port: int, fake_dns: dict) -> None:
    # A name with a refused and an allowed address: only the allowed one is dialled
    # (only_loopback would fail on 10.0.0.9), and the Host header keeps the name.
    fake_dns["mixed.example"] = ["10.0.0.9", "127.0.0.1"]
    fetcher = allowed(port, allowed_hosts={"127.0.0.1"})
    got = fetcher.fetch(f"http://mixed.example:{port}/page.html")
    assert got.headers["x-seen-host"] == f"mixed.example:{port}"
    assert got.data == PAGE


def test_rebinding_between_lookups_is_caught(port: int, fake_dns: dict) -> None:
    # Each new connection resolves afresh and is checked again: a name that turns
    # private after a first, public answer is refused on the next connection.
    fake_dns["rebind.example"] = ["127.0.0.1"]
    fetcher = allowed(port, allowed_hosts={"127.0.0.1"})
    assert fetcher.fetch(f"http://rebind.example:{port}/page.html").data == PAGE
    fake_dns["rebind.example"] = ["10.0.0.1"]
    with pytest.raises(BlockedURLError, match=r"rebind\.example.*private"):
        fetcher.fetch(f"http://rebind.example:{port}/page.html")


def test_allowed_host_name_entry(port: int, fake_dns: dict) -> None:
    fake_dns["news.internal"] = ["127.0.0.1"]
    fetcher = Fetcher(allowed_hosts={f"NEWS.internal:{port}"})
    assert fetcher.fetch(f"http://news.internal:{port}/page.html").data == PAGE
    with pytest.raises(BlockedURLError):
        Fetcher(allowed_hosts={"news.internal:1"}).fetch(f"http://news.internal:{port}/")


def test_invalid_allowed_hosts_entry() -> None:
    with pytest.raises(ValueError, match="port"):
        Fetcher(allowed_hosts={"host:abc"})


def test_only_loopback_guard_is_effective() -> None:
    # The safety net of these tests: a fetcher allowed everywhere is stopped by the
    # fixture, not by the network, when it dials 10.0.0.1.
    with pytest.raises(AssertionError, match=r"10\.0\.0\.1"):
        Fetcher(allow_private=True, timeout=0.5).fetch("http://10.0.0.1/")
