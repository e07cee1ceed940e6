"""Enumerating files, folders and archives, and refusing what should not be read."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from khabar.index._sources import BUDGET_FACTOR, RATIO_MIN_BYTES, SourceItem, iter_path

from khabar import SourceError

LIMIT = 100_000  # above tar's 10 KB minimum record, so plain .tar files fit


def collect(path: Path, limit: int = LIMIT) -> tuple[dict[str, bytes], dict[str, str]]:
    items: dict[str, bytes] = {}
    errors: dict[str, str] = {}
    for got in iter_path(path, max_file_bytes=limit):
        if isinstance(got, SourceItem):
            assert got.name not in items
            items[got.name] = got.data
        else:
            assert isinstance(got, SourceError)
            errors[got.name] = got.message
    return items, errors


def names(path: Path, limit: int = LIMIT) -> list[str]:
    return [got.name for got in iter_path(path, max_file_bytes=limit)]


def make_zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_tar(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# -- files and folders --------------------------------------------------------------------


def test_folder_tree_sorted_recursive_hidden_skipped(tmp_path: Path) -> None:
    root = tmp_path / "news"
    write(root / "b.html", "<p>b</p>")
    write(root / "a.txt", "a")
    write(root / "sub" / "deeper" / "c.json", "{}")
    write(root / "sub" / "d.MD", "# d")  # extensions are case-insensitive
    write(root / "sub" / "image.png", b"\x89PNG")  # not parseable: skipped silently
    write(root / "notes.docx", b"PK")
    write(root / ".hidden.txt", "secret")
    write(root / ".git" / "config.txt", "x")
    write(root / "sub" / ".cache" / "e.html", "x")
    for suffix in (".markdown", ".htm", ".jsonl", ".xml", ".rss", ".atom"):
        write(root / "kinds" / f"f{suffix}", "x")
    base = root.as_posix()
    assert names(root) == [
        f"{base}/a.txt",
        f"{base}/b.html",
        *[f"{base}/kinds/f{s}" for s in (".atom", ".htm", ".jsonl", ".markdown", ".rss", ".xml")],
        f"{base}/sub/d.MD",
        f"{base}/sub/deeper/c.json",
    ]
    items, errors = collect(root)
    assert items[f"{base}/b.html"] == b"<p>b</p>"
    assert errors == {}


def test_relative_display_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "dir" / "a.html", "x")
    monkeypatch.chdir(tmp_path)
    assert names(Path("dir")) == ["dir/a.html"]
    assert names(Path("dir/a.html")) == ["dir/a.html"]


def test_explicit_file_yielded_whatever_its_extension(tmp_path: Path) -> None:
    doc = write(tmp_path / "report.pdf", b"%PDF-1.4")
    hidden = write(tmp_path / ".notes", "x")
    assert collect(doc) == ({doc.as_posix(): b"%PDF-1.4"}, {})
    assert collect(hidden)[0] == {hidden.as_posix(): b"x"}


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.html"
    assert collect(missing) == ({}, {missing.as_posix(): "no such file or directory"})


def test_oversized_file(tmp_path: Path) -> None:
    big = write(tmp_path / "big.html", b"x" * (LIMIT + 1))
    fits = write(tmp_path / "fits.html", b"x" * LIMIT)
    items, errors = collect(tmp_path)
    assert list(items) == [fits.as_posix()]
    assert errors[big.as_posix()].startswith(f"too large ({LIMIT + 1:,} bytes; limit {LIMIT:,})")
    assert collect(big)[1][big.as_posix()].startswith("too large")  # named explicitly too


def test_symlink_loop_and_broken_link(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "a" / "x.txt", "x")
    os.symlink(root, root / "a" / "loop")  # a → loop → root → a …
    os.symlink(root / "a", root / "b")  # the same folder under a second name
    os.symlink(tmp_path / "gone.html", root / "dangling.html")
    os.symlink(tmp_path / "gone.png", root / "dangling.png")  # not parseable: skipped
    items, errors = collect(root)
    assert list(items) == [f"{root.as_posix()}/a/x.txt"]  # once, and the walk ends
    assert errors == {f"{root.as_posix()}/dangling.html": "broken symbolic link"}


def test_fifo_is_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    assert collect(tmp_path) == ({}, {})  # reading it would block forever
    assert collect(fifo) == ({}, {fifo.as_posix(): "not a regular file"})


def test_unreadable_file_is_an_error_not_an_exception(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    locked = write(tmp_path / "locked.html", "x")
    locked.chmod(0)
    write(tmp_path / "ok.html", "ok")
    items, errors = collect(tmp_path)
    assert list(items) == [(tmp_path / "ok.html").as_posix()]
    assert errors[locked.as_posix()].startswith("cannot read")


# -- archives -----------------------------------------------------------------------------


def test_zip_and_tar_gz_in_folder(tmp_path: Path) -> None:
    zip_data = make_zip(
        {
            "b.json": b'{"title": "b"}',
            "inner/c.html": b"<p>c</p>",
            "inner/": b"",
            "picture.jpg": b"\xff\xd8",
            ".DS_Store": b"x",
            "__MACOSX/._c.html": b"x",
        }
    )
    write(tmp_path / "archive.zip", zip_data)
    write(tmp_path / "feeds.tar.gz", make_tar({"feeds/one.rss": b"<rss/>", "two.atom": b"<feed/>"}))
    write(tmp_path / "plain.tgz", make_tar({"x.txt": b"x"}))
    write(tmp_path / "more.tar.bz2", make_tar({"y.txt": b"y"}, "w:bz2"))
    write(tmp_path / "more.tar.xz", make_tar({"z.txt": b"z"}, "w:xz"))
    write(tmp_path / "raw.tar", make_tar({"w.md": b"w"}, "w"))
    items, errors = collect(tmp_path)
    base = tmp_path.as_posix()
    assert items == {
        f"{base}/archive.zip!b.json": b'{"title": "b"}',
        f"{base}/archive.zip!inner/c.html": b"<p>c</p>",
        f"{base}/feeds.tar.gz!feeds/one.rss": b"<rss/>",
        f"{base}/feeds.tar.gz!two.atom": b"<feed/>",
        f"{base}/more.tar.bz2!y.txt": b"y",
        f"{base}/more.tar.xz!z.txt": b"z",
        f"{base}/plain.tgz!x.txt": b"x",
        f"{base}/raw.tar!w.md": b"w",
    }
    assert errors == {}


def test_explicit_archive(tmp_path: Path) -> None:
    archive = write(tmp_path / "Batch.ZIP", make_zip({"a.txt": b"a"}))
    assert names(archive) == [f"{archive.as_posix()}!a.txt"]


def test_member_names_cannot_traverse(tmp_path: Path) -> None:
    archive = write(
        tmp_path / "evil.tar",
        make_tar({"../../etc/x.txt": b"1", "/abs/y.txt": b"2", "a/./../z.txt": b"3"}, "w"),
    )
    zipped = write(tmp_path / "evil.zip", make_zip({"..\\..\\w.txt": b"4"}))
    items, errors = collect(tmp_path)
    assert sorted(items) == [
        f"{archive.as_posix()}!a/z.txt",
        f"{archive.as_posix()}!abs/y.txt",
        f"{archive.as_posix()}!etc/x.txt",
        f"{zipped.as_posix()}!w.txt",
    ]
    assert errors == {}
    assert not (tmp_path.parent / "etc").exists() and not (tmp_path / "w.txt").exists()


def test_tar_links_and_devices_skipped(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind in (("link.txt", tarfile.SYMTYPE), ("hard.txt", tarfile.LNKTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "/etc/passwd"
            tf.addfile(info)
        dev = tarfile.TarInfo("dev.txt")
        dev.type = tarfile.CHRTYPE
        tf.addfile(dev)
        real = tarfile.TarInfo("real.txt")
        real.size = 4
        tf.addfile(real, io.BytesIO(b"real"))
    archive = write(tmp_path / "links.tar", buf.getvalue())
    assert collect(archive) == ({f"{archive.as_posix()}!real.txt": b"real"}, {})


def test_corrupt_archives(tmp_path: Path) -> None:
    good = make_zip({"a.txt": b"a" * 500, "b.txt": b"b" * 500}, zipfile.ZIP_STORED)
    write(tmp_path / "garbage.zip", b"this is not a zip file at all")
    write(tmp_path / "truncated.zip", good[: len(good) // 2])
    write(tmp_path / "garbage.tar.gz", b"\x1f\x8b\x08\x00 not really gzip")
    tar = make_tar({"a.txt": b"a" * 5000, "b.txt": b"b" * 5000})
    write(tmp_path / "truncated.tgz", tar[: len(tar) // 2])
    write(tmp_path / "ok.txt", "still read")
    items, errors = collect(tmp_path)
    base = tmp_path.as_posix()
    assert list(items) == [f"{base}/ok.txt"]  # the batch goes on
    assert "corrupt" in errors[f"{base}/garbage.zip"]
    assert "corrupt" in errors[f"{base}/truncated.zip"]
    assert "corrupt" in errors[f"{base}/garbage.tar.gz"]
    assert "corrupt" in errors[f"{base}/truncated.tgz"]


def test_corrupt_member_does_not_stop_the_others(tmp_path: Path) -> None:
    data = bytearray(make_zip({"a.txt": b"A" * 200, "b.txt": b"B" * 200}, zipfile.ZIP_STORED))
    at = data.index(b"A" * 200)
    data[at : at + 10] = b"X" * 10  # CRC no longer matches
    archive = write(tmp_path / "crc.zip", bytes(data))
    items, errors = collect(archive)
    assert list(items) == [f"{archive.as_posix()}!b.txt"]
    assert "cannot read from archive" in errors[f"{archive.as_posix()}!a.txt"]


def test_oversized_member(tmp_path: Path) -> None:
    archive = write(
        tmp_path / "mixed.zip", make_zip({"big.html": b"x" * (LIMIT + 1), "ok.html": b"ok"})
    )
    items, errors = collect(archive)
    assert list(items) == [f"{archive.as_posix()}!ok.html"]
    assert errors[f"{archive.as_posix()}!big.html"].startswith("too large")
    tar = write(tmp_path / "mixed.tgz", make_tar({"big.txt": b"x" * (LIMIT + 1), "ok.txt": b"k"}))
    items, errors = collect(tar)
    assert list(items) == [f"{tar.as_posix()}!ok.txt"]
    assert errors[f"{tar.as_posix()}!big.txt"].startswith("too large")


def test_zip_bomb_member_refused_unread(tmp_path: Path) -> None:
    # 8 MB of zeros deflate to ~8 KB: within the file limit, far beyond any news ratio.
    limit = 10 * RATIO_MIN_BYTES
    bomb = write(
        tmp_path / "bomb.zip",
        make_zip({"zeros.html": b"\0" * (8 * RATIO_MIN_BYTES), "a.txt": b"a"}),
    )
    assert bomb.stat().st_size < 20_000
    items, errors = collect(bomb, limit)
    assert list(items) == [f"{bomb.as_posix()}!a.txt"]
    assert "suspicious compression ratio" in errors[f"{bomb.as_posix()}!zeros.html"]


def test_zip_bomb_member_over_the_budget(tmp_path: Path) -> None:
    # Highly compressible and larger than the whole archive budget: refused unread.
    huge = b"\0" * (BUDGET_FACTOR * LIMIT + 1)
    bomb = write(tmp_path / "bomb.zip", make_zip({"zeros.json": huge}))
    items, errors = collect(bomb)
    assert items == {}
    assert errors[f"{bomb.as_posix()}!zeros.json"].startswith("too large")


def test_tar_gz_bomb_stops_the_archive(tmp_path: Path) -> None:
    limit = 10 * RATIO_MIN_BYTES
    members = {f"z{i}.txt": b"\0" * (limit - 1) for i in range(3)}
    bomb = write(tmp_path / "bomb.tar.gz", make_tar(members))
    items, errors = collect(bomb, limit)
    assert items == {}
    assert "suspicious compression ratio" in errors[bomb.as_posix()]


def test_total_budget_shared_across_members(tmp_path: Path) -> None:
    # Every member fits on its own, together they pass BUDGET_FACTOR × the limit; a
    # random head keeps the compression ratio ordinary, so only the budget can stop them.
    member = os.urandom(1000) + b"a" * (LIMIT // 2 - 1000)
    members = {f"m{i:02}.txt": member for i in range(2 * BUDGET_FACTOR + 5)}
    for name, data in (("many.zip", make_zip(members)), ("many.tgz", make_tar(members))):
        assert len(data) < LIMIT
        archive = write(tmp_path / name, data)
        items, errors = collect(archive, LIMIT)
        assert 2 * BUDGET_FACTOR - 5 <= len(items) <= 2 * BUDGET_FACTOR
        assert "expands beyond" in errors[archive.as_posix()], name


def test_nested_archives_one_level_deep(tmp_path: Path) -> None:
    innermost = make_zip({"deep.txt": b"too deep"})
    inner = make_tar({"c.html": b"<p>c</p>", "third.zip": innermost})
    outer = write(tmp_path / "outer.zip", make_zip({"a.txt": b"a", "inner.tar.gz": inner}))
    items, errors = collect(outer)
    base = outer.as_posix()
    assert items == {f"{base}!a.txt": b"a", f"{base}!inner.tar.gz!c.html": b"<p>c</p>"}
    assert errors == {f"{base}!inner.tar.gz!third.zip": "archive nested too deep; not opened"}


def test_archive_without_readable_files(tmp_path: Path) -> None:
    archive = write(tmp_path / "pics.zip", make_zip({"a.png": b"x", "b.jpg": b"y"}))
    items, errors = collect(archive)
    assert items == {}
    assert errors[archive.as_posix()].startswith("archive holds no file khabar can read")


def test_encrypted_zip_member(tmp_path: Path) -> None:
    data = bytearray(make_zip({"secret.txt": b"s", "open.txt": b"o"}, zipfile.ZIP_STORED))
    # Set the "encrypted" flag bit of the first member, in its local and central headers.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature)
        data[at + offset] |= 0x1
    archive = write(tmp_path / "locked.zip", bytes(data))
    items, errors = collect(archive)
    assert list(items) == [f"{archive.as_posix()}!open.txt"]
    assert errors == {f"{archive.as_posix()}!secret.txt": "encrypted; not read"}


def test_source_error_str() -> None:
    assert str(SourceError("a.zip!b.txt", "too large")) == "a.zip!b.txt: too large"


# -- every member charged, headers capped, links kept inside ----------------------------


def test_a_tar_member_of_unknown_type_is_charged_its_real_size(tmp_path: Path) -> None:
    # tarfile reads over the data of a member of unknown type (inflating it): it must
    # count against the budget like any other, not as one 512-byte header.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        first = tarfile.TarInfo("first.txt")
        first.size = 5
        tf.addfile(first, io.BytesIO(b"first"))
        junk = tarfile.TarInfo("junk")
        junk.type = b"Z"  # no such type
        junk.size = 50 * BUDGET_FACTOR * LIMIT
        tf.addfile(junk, io.BytesIO(b"\0" * junk.size))
        last = tarfile.TarInfo("last.txt")
        last.size = 4
        tf.addfile(last, io.BytesIO(b"last"))
    archive = write(tmp_path / "junk.tgz", buf.getvalue())
    assert archive.stat().st_size < LIMIT
    items, errors = collect(archive)
    assert list(items) == [f"{archive.as_posix()}!first.txt"]
    assert ("expands beyond" in errors[archive.as_posix()]
            or "compression ratio" in errors[archive.as_posix()])


@pytest.mark.parametrize("tar_format", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_name_headers_are_capped(tmp_path: Path, tar_format: int) -> None:
    # A 20 MB member name is a 20 MB header (GNU long name, or a pax record) that
    # tarfile would read whole into memory, outside any member's size.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tar_format) as tf:
        info = tarfile.TarInfo("a" * (20 << 20) + ".txt")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"text"))
    archive = write(tmp_path / "long.tgz", buf.getvalue())
    tracemalloc.start()
    try:
        items, errors = collect(archive, limit=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert items == {}
    assert "header" in errors[archive.as_posix()]
    assert peak < 4 << 20


@pytest.mark.parametrize("kind", ["folder", "archive"])
def test_items_are_streamed_not_all_held(tmp_path: Path, kind: str) -> None:
    # 120 files of 1 MB: what is held at once is a batch, not the whole.
    from khabar.index import Index

    from khabar import Settings
    from tests.fakes import HashEncoder

    # Binary, so refused quickly; a random head keeps the archive's ratio ordinary.
    files = {f"f{i:03}.txt": os.urandom(12_000) + b"\0" * (1 << 20) for i in range(120)}
    if kind == "folder":
        target = tmp_path / "in"
        for name, data in files.items():
            write(target / name, data)
    else:
        target = write(tmp_path / "in.tgz", make_tar(files))
    ix = Index.open(Settings(home=tmp_path / "home", max_file_bytes=8 << 20),
                    encoders=[HashEncoder()])
    tracemalloc.start()
    try:
        report = ix.add_path(target)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.count("error") == 120, report.errors[-1]
    assert peak < 60 << 20, f"{peak:,} bytes held"


def test_symlinks_are_not_followed_out_of_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "inside.txt", "inside")
    write(tmp_path / "outside" / "secret.txt", "secret")
    os.symlink(tmp_path / "outside" / "secret.txt", root / "secret.txt")
    os.symlink(tmp_path / "outside", root / "elsewhere")
    os.symlink(root / "inside.txt", root / "alias.txt")  # inside: fine
    items, errors = collect(root)
    assert set(items) == {f"{root.as_posix()}/alias.txt", f"{root.as_posix()}/inside.txt"}
    assert b"secret" not in b"".join(items.values())
    assert set(errors) == {f"{root.as_posix()}/secret.txt", f"{root.as_posix()}/elsewhere"}
    assert all("outside" in message for message in errors.values())


def test_zip_symlink_members_are_skipped(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        link = zipfile.ZipInfo("link.txt")
        link.external_attr = (0o120777 << 16)  # a symbolic link to /etc/passwd
        zf.writestr(link, "/etc/passwd")
        zf.writestr("real.txt", "real")
    archive = write(tmp_path / "links.zip", buf.getvalue())
    items, _ = collect(archive)
    assert list(items) == [f"{archive.as_posix()}!real.txt"]


# -- whatever a member raises, the rest of the batch is read ----------------------------


def _lzma_zip_asking_for_4_gib() -> bytes:
    """A zip whose LZMA member's properties ask for a 4 GiB dictionary."""
    data = bytearray(make_zip({"inner.txt": b"inner text " * 50}, zipfile.ZIP_LZMA))
    header = 30 + len("inner.txt")  # the local header and name (no extra field)
    # zip's LZMA data: version (2), properties size (2), then lc/lp/pb and the
    # dictionary size (4, little-endian).
    assert data[header + 2 : header + 4] == b"\x05\x00"
    data[header + 5 : header + 9] = b"\xff\xff\xff\xff"
    return bytes(data)


def test_a_zip_member_with_an_empty_name_does_not_stop_the_batch(tmp_path: Path) -> None:
    """ZipInfo.is_dir() raises IndexError on an empty name: the whole ingest stopped
    (exit 4) and nothing of the folder was stored."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inner.txt", "inner")
        zf.writestr(zipfile.ZipInfo(""), "x")
        zf.writestr("later.txt", "later")
    write(tmp_path / "a.txt", "a")
    archive = write(tmp_path / "m.zip", buf.getvalue())
    write(tmp_path / "z.txt", "z")
    items, errors = collect(tmp_path)
    base = tmp_path.as_posix()
    assert list(items) == [f"{base}/a.txt", f"{archive.as_posix()}!inner.txt",
                           f"{archive.as_posix()}!later.txt", f"{base}/z.txt"]
    assert errors == {}


_LIMITED = """
import resource, sys
from pathlib import Path
from khabar.index._sources import iter_path
with open("/proc/self/statm") as f:  # what this process holds now, in pages
    held = int(f.read().split()[0]) * resource.getpagesize()
_, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (held + (1 << 30), hard))  # 1 GiB to spare
for got in iter_path(Path(sys.argv[1]), max_file_bytes=100_000):
    print(type(got).__name__, got.name, getattr(got, "message", ""), sep="\\t")
"""


def test_a_zip_member_needing_more_memory_than_allowed_is_its_own_error(
        tmp_path: Path) -> None:
    """Under an address-space limit (a container's, ulimit -v) an LZMA member asking for
    a 4 GiB dictionary raised MemoryError out of the walk: the whole ingest stopped."""
    write(tmp_path / "a.txt", "a")
    archive = write(tmp_path / "m.zip", _lzma_zip_asking_for_4_gib())
    write(tmp_path / "z.txt", "z")
    run = subprocess.run([sys.executable, "-c", _LIMITED, str(tmp_path)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    lines = [line.split("\t") for line in run.stdout.splitlines()]
    base = tmp_path.as_posix()
    assert lines == [["SourceItem", f"{base}/a.txt", ""],
                     ["SourceError", f"{archive.as_posix()}!inner.txt",
                      "cannot read from archive: "
                      "unpacking it needs more memory than is available"],
                     ["SourceItem", f"{base}/z.txt", ""]]


def test_names_are_valid_text_without_terminal_controls(tmp_path: Path) -> None:
    """A name that is not UTF-8 (kept by Python as surrogates) could not be stored as
    the article's source; controls and bidi overrides in names reached terminals."""
    root = tmp_path / "in"
    root.mkdir()
    with open(os.path.join(os.fsencode(root), b"caf\xe9-news.txt"), "wb") as f:
        f.write(b"latin-1 name on disk")
    evil = "\x1b]0;owned\x07\x1b[2K\rfake: all good\x1b[8m\x9b31m.txt"
    tar = write(root / "names.tar", make_tar(
        {"caf\udce9-tar.txt": b"1", evil: b"2", "rlo-\u202etxt.exe.txt": b"3"}, "w"))
    zipped = write(root / "names.zip", make_zip({"\x1b[31mred\u202e.txt": b"4"}))
    items, errors = collect(root)
    base, t = root.as_posix(), tar.as_posix()
    assert errors == {}
    assert list(items) == [f"{base}/caf\ufffd-news.txt", f"{t}!caf\ufffd-tar.txt",
                           f"{t}!]0;owned[2K fake: all good[8m31m.txt", f"{t}!rlo-txt.exe.txt",
                           f"{zipped.as_posix()}![31mred.txt"]
    for name in items:
        name.encode("utf-8")  # no surrogate left


def test_a_folder_deeper_than_the_recursion_limit_is_walked(tmp_path: Path) -> None:
    """Each level was a nested generator: ~1,000 levels raised RecursionError and the
    ingest stopped before storing the article at the top."""
    root = tmp_path / "deep"
    write(root / "a-top.txt", "top")
    levels = sys.getrecursionlimit() + 100
    folders = [root / ("d/" * n) for n in range(1, levels + 1)]
    for folder in folders:  # not os.makedirs: it recurses too
        folder.mkdir()
    write(folders[-1] / "bottom.txt", "bottom")
    try:
        items, errors = collect(root)
    finally:
        (folders[-1] / "bottom.txt").unlink()
        for folder in reversed(folders):  # nor shutil.rmtree
            folder.rmdir()
    assert errors == {}
    assert list(items) == [f"{root.as_posix()}/a-top.txt",
                           f"{folders[-1].as_posix()}/bottom.txt"]
