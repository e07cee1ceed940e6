"""Enumerate the items to ingest from a local path: a file, a folder or an archive.

Archives are read in memory and never extracted, so member names cannot escape
anywhere; they are only cleaned for display. Every member is charged against the
archive's budget for the bytes it really makes tarfile inflate (headers, data, types
tarfile does not know), long-name and pax headers are capped before they are read,
and symbolic links are followed only inside the folder given. Problems come back as
:class:`~khabar.SourceError` values in the stream rather than raised, so one bad
file never stops a batch: whatever reading a member raises is that member's error.
Names are for display and are stored as an article's source: bytes that are not
UTF-8 show as U+FFFD and terminal controls are dropped (:func:`_shown`).
"""

from __future__ import annotations

import io
import logging
import lzma
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from khabar._errors import SourceError
from khabar.text import one_line

__all__ = [
    "ARCHIVE_SUFFIXES",
    "PARSEABLE_SUFFIXES",
    "SourceItem",
    "iter_path",
]

log = logging.getLogger(__name__)

PARSEABLE_SUFFIXES = frozenset(
    {".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl", ".xml", ".rss", ".atom"}
)
# Longest first, so ".tar.gz" wins over a plain suffix check.
ARCHIVE_SUFFIXES = (".tar.bz2", ".tar.gz", ".tar.xz", ".tgz", ".tar", ".zip")

BUDGET_FACTOR = 20  # an archive may expand to at most this many times max_file_bytes
MAX_RATIO = 100  # text compresses 3–10×; far beyond that is a bomb, not news
RATIO_MIN_BYTES = 1 << 20  # small members may be as repetitive as they like
MAX_TAR_HEADER = 64 * 1024  # a GNU long name or pax record set; real ones are < 4 KiB
# Reading past these is a corrupt archive, not a bug of ours.
_ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,  # unsupported zip compression method
)


@dataclass
class SourceItem:
    """One file's bytes. ``name`` is for display: "dir/a.html", "news.zip!b/c.json"."""

    name: str
    data: bytes


def iter_path(path: Path, *, max_file_bytes: int) -> Iterator[SourceItem | SourceError]:
    """Yield the ingestable items under ``path``, and an error for each unreadable one.

    A file named here is yielded whatever its extension (the parser then says what is
    wrong); inside folders and archives only :data:`PARSEABLE_SUFFIXES` are, the rest
    skipped silently. Folders are walked recursively in name order, skipping hidden
    entries and visiting each directory once (so symlink loops end). Archives are
    opened, and archives inside them one level deep.
    """
    path = Path(path)
    name = _shown(path.as_posix())
    try:
        is_dir = path.is_dir()
    except OSError as exc:
        yield SourceError(name, f"cannot read: {exc.strerror or exc}")
        return
    if is_dir:
        yield from _walk(path, name, max_file_bytes)
    elif not path.exists():
        yield SourceError(name, "no such file or directory")
    else:
        yield from _file(path, name, max_file_bytes, explicit=True)


def _shown(raw: str) -> str:
    """``raw`` as a name to show and store. Python keeps a file name's bytes that are
    not UTF-8 as lone surrogates (from the disk, or a tar header), which SQLite cannot
    store: they become U+FFFD. Controls and bidi overrides are dropped (a name is
    printed to terminals) and line breaks and tabs become spaces (a name is one line
    of a report): khabar.text.one_line."""
    try:
        raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate no decoder made
        raw = raw.encode("utf-8", "replace").decode("utf-8")
    return one_line(raw).replace("\t", " ")


def _kind(name: str) -> Literal["archive", "parseable"] | None:
    """What the file name says the file is: "archive", "parseable" or None (skip)."""
    lower = name.lower()
    if lower.endswith(ARCHIVE_SUFFIXES):
        return "archive"
    if os.path.splitext(lower)[1] in PARSEABLE_SUFFIXES:
        return "parseable"
    return None


def _too_large(size: int, limit: int) -> str:
    return f"too large ({size:,} bytes; limit {limit:,})"


def _outside(path: str, root: Path) -> bool:
    """Whether ``path`` (a symbolic link) leads out of ``root`` (a resolved folder)."""
    return not Path(os.path.realpath(path)).is_relative_to(root)


def _walk(top: Path, top_name: str, limit: int) -> Iterator[SourceItem | SourceError]:
    """The folder's files depth first, in name order. The folders being walked are a
    stack of their remaining entries, not nested calls: a tree as deep as paths go
    (thousands of levels) needs no Python recursion."""
    root = Path(os.path.realpath(top))
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[str, Iterator[os.DirEntry[str]]]] = []
    folder: Path | None = top
    name = top_name
    while True:
        if folder is not None:
            try:
                entries = _listing(folder, name, seen)
            except OSError as exc:
                yield SourceError(name, f"cannot list folder: {exc.strerror or exc}")
            else:
                stack.append((name, iter(entries)))
            folder = None
        if not stack:
            return
        parent, entries_left = stack[-1]
        entry = next(entries_left, None)
        if entry is None:
            stack.pop()
            continue
        if entry.name.startswith("."):
            continue
        child = f"{parent}/{_shown(entry.name)}"
        try:
            is_dir, is_file = entry.is_dir(), entry.is_file()  # both follow symlinks
        except OSError as exc:
            yield SourceError(child, f"cannot read: {exc.strerror or exc}")
            continue
        wanted = is_dir or (is_file and _kind(entry.name) is not None)
        if wanted and entry.is_symlink() and _outside(entry.path, root):
            # A link must not make "ingest this folder" read the rest of the disk.
            yield SourceError(child, "symbolic link to outside the folder; not followed")
            continue
        if is_dir:
            folder, name = Path(entry.path), child  # listed at the top of the loop
        elif _kind(entry.name) is None:
            continue
        elif is_file:
            yield from _file(Path(entry.path), child, limit, explicit=False)
        elif entry.is_symlink():
            yield SourceError(child, "broken symbolic link")
        # Sockets, FIFOs and devices are skipped: reading a FIFO would block.


def _listing(folder: Path, name: str, seen: set[tuple[int, int]]) -> list[os.DirEntry[str]]:
    """The folder's entries in name order; none if it was walked already (a symlink
    loop, or a folder linked twice: once is enough)."""
    st = folder.stat()
    key = (st.st_dev, st.st_ino)
    if key in seen:
        log.debug("skipping %s: already visited", name)
        return []
    seen.add(key)
    with os.scandir(folder) as it:
        return sorted(it, key=lambda e: e.name)


def _file(
    path: Path, name: str, limit: int, *, explicit: bool
) -> Iterator[SourceItem | SourceError]:
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            yield SourceError(name, "not a regular file")
            return
        if st.st_size > limit:
            yield SourceError(name, _too_large(st.st_size, limit))
            return
        with path.open("rb") as f:
            data = f.read(limit + 1)  # the file may have grown since stat
    except OSError as exc:
        yield SourceError(name, f"cannot read: {exc.strerror or exc}")
        return
    kind = _kind(path.name)  # the name on disk, not the one cleaned for display
    if len(data) > limit:
        yield SourceError(name, _too_large(len(data), limit))
    elif kind == "archive":
        yield from _archive(name, data, limit, depth=0, budget=_Budget(BUDGET_FACTOR * limit))
    elif explicit or kind == "parseable":
        yield SourceItem(name, data)


class _Budget:
    """Uncompressed bytes an archive (and those nested in it) may still expand to."""

    def __init__(self, total: int) -> None:
        self.total = self.left = total

    def spend(self, n: int) -> bool:
        """Take ``n`` bytes; False (and nothing taken) if that would pass the total."""
        if n > self.left:
            return False
        self.left -= n
        return True

    def message(self) -> str:
        return (
            f"archive expands beyond {self.total:,} bytes "
            f"({BUDGET_FACTOR}× the file size limit); remaining members skipped"
        )


def _member_name(raw: str) -> str | None:
    """A clean relative display name, or None for hidden members (and their folders).

    Nothing is written to disk, so "../" or "/etc" could do no harm; they are dropped
    only so that names read as the relative paths they claim to be.
    """
    parts = [p for p in _shown(raw).replace("\\", "/").split("/") if p not in ("", ".", "..")]
    if not parts or any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return None
    return "/".join(parts)


def _archive(
    name: str, data: bytes, limit: int, *, depth: int, budget: _Budget
) -> Iterator[SourceItem | SourceError]:
    members = _zip_members if name.lower().endswith(".zip") else _tar_members
    found = False
    for member_name, blob in _guarded(members(name, data, limit, budget), name):
        found = True
        if isinstance(blob, SourceError):
            yield blob
        elif _kind(member_name) != "archive":
            yield SourceItem(member_name, blob)
        elif depth >= 1:
            yield SourceError(member_name, "archive nested too deep; not opened")
        else:
            yield from _archive(member_name, blob, limit, depth=depth + 1, budget=budget)
    if not found:
        kinds = " ".join(sorted(PARSEABLE_SUFFIXES))
        yield SourceError(name, f"archive holds no file khabar can read ({kinds})")


_Member = tuple[str, bytes | SourceError]


def _reason(exc: BaseException) -> str:
    """What went wrong reading an archive, for its error line. Past the errors a corrupt
    archive is expected to raise, the standard library raises others on hostile input
    (an empty zip member name: IndexError; an LZMA member asking for a 4 GiB
    dictionary: MemoryError); those are still the archive's fault, said as such."""
    if isinstance(exc, MemoryError):
        return "unpacking it needs more memory than is available"
    if isinstance(exc, _ARCHIVE_ERRORS):
        return str(exc) or type(exc).__name__
    log.debug("unexpected %s reading an archive", type(exc).__name__, exc_info=exc)
    return f"{type(exc).__name__}: {exc}"


def _guarded(members: Iterator[_Member], name: str) -> Iterator[_Member]:
    """``members``, ending with an error for the archive ``name`` if reading it raises
    anything past what the member readers report themselves."""
    try:
        yield from members
    except Exception as exc:
        yield name, SourceError(name, f"cannot read the archive further: {_reason(exc)}")


class _OverBudget(Exception):
    """The archive's expansion budget is spent: no member after this one is read."""


def _zip_members(name: str, data: bytes, limit: int, budget: _Budget) -> Iterator[_Member]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except Exception as exc:
        yield name, SourceError(name, f"corrupt or unreadable zip archive: {_reason(exc)}")
        return
    with archive:
        for info in infos:
            # An empty name is None here, before is_dir() could fail on it.
            member = _member_name(info.filename)
            if member is None or _kind(member) is None:
                continue
            child = f"{name}!{member}"
            try:
                blob = _zip_member(archive, info, child, limit, budget)
            except _OverBudget:
                yield child, SourceError(name, budget.message())
                return
            except Exception as exc:  # whatever one member raises is its own error
                blob = SourceError(child, f"cannot read from archive: {_reason(exc)}")
            if blob is not None:
                yield child, blob


def _zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, child: str, limit: int,
                budget: _Budget) -> bytes | SourceError | None:
    """One member's bytes, its error, or None to skip it (a folder, a link)."""
    if info.is_dir() or stat.S_ISLNK(info.external_attr >> 16):  # a link's "data": its target
        return None
    # Sizes come from the archive's own headers; zipfile stops reading at the
    # declared size, so a member cannot lie its way past these checks.
    if info.file_size > limit:
        return SourceError(child, _too_large(info.file_size, limit))
    if info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(
        info.compress_size, 1
    ):
        ratio = info.file_size // max(info.compress_size, 1)
        return SourceError(child, f"suspicious compression ratio ({ratio}:1)")
    if not budget.spend(info.file_size):
        raise _OverBudget
    if info.flag_bits & 0x1:
        return SourceError(child, "encrypted; not read")
    with archive.open(info) as f:
        return f.read(limit + 1)


class _CappedTarInfo(tarfile.TarInfo):
    """A tar header whose extensions (GNU long names, pax records) are refused past
    MAX_TAR_HEADER before tarfile reads them whole into memory."""

    def _capped(self) -> None:
        if self.size > MAX_TAR_HEADER:
            raise tarfile.SubsequentHeaderError(  # becomes a ReadError, with this message
                f"extended header of {self.size:,} bytes (limit {MAX_TAR_HEADER:,})")

    def _proc_gnulong(self, tarfile: tarfile.TarFile) -> tarfile.TarInfo:
        self._capped()
        return super()._proc_gnulong(tarfile)  # type: ignore[misc, no-any-return]

    def _proc_pax(self, tarfile: tarfile.TarFile) -> tarfile.TarInfo:
        self._capped()
        return super()._proc_pax(tarfile)  # type: ignore[misc, no-any-return]


def _tar_members(name: str, data: bytes, limit: int, budget: _Budget) -> Iterator[_Member]:
    try:
        # Closed by the with-block below; only opening errors are reported here.
        archive = tarfile.open(  # noqa: SIM115
            fileobj=io.BytesIO(data), mode="r:*", tarinfo=_CappedTarInfo)
    except Exception as exc:
        yield name, SourceError(name, f"corrupt or unreadable tar archive: {_reason(exc)}")
        return
    expanded = 0
    with archive:
        while True:
            try:
                info = archive.next()
            except Exception as exc:  # the stream cannot go on past a bad header
                yield name, SourceError(name, f"corrupt tar archive: {_reason(exc)}")
                return
            if info is None:
                return
            # A compressed tar is one stream: even skipping a member means inflating
            # it. tarfile's offset is where the next header starts in that stream, so
            # its step is what this member really costs (headers, data, any type),
            # charged before the data is read or skipped.
            size = archive.offset - expanded
            expanded = archive.offset
            if not budget.spend(size):
                yield name, SourceError(name, budget.message())
                return
            if expanded > RATIO_MIN_BYTES and expanded > MAX_RATIO * len(data):
                ratio = expanded // len(data)
                yield name, SourceError(name, f"suspicious compression ratio ({ratio}:1)")
                return
            member = _member_name(info.name)
            # Links, devices and folders are skipped: only regular files hold text.
            if not info.isreg() or member is None or _kind(member) is None:
                continue
            child = f"{name}!{member}"
            if info.size > limit:
                yield child, SourceError(child, _too_large(info.size, limit))
                continue
            try:
                f = archive.extractfile(info)
                blob = f.read(limit + 1) if f is not None else b""
            except Exception as exc:  # whatever one member raises is its own error
                yield child, SourceError(child, f"cannot read from archive: {_reason(exc)}")
                continue
            yield child, blob
