"""From sources (files, folders, archives, URLs, feeds, Telegram posts) to the store.

Every item is handled on its own: a bad file, record or URL becomes an error line
in the :class:`IngestReport` and the rest of the batch goes in. Each article is
embedded first and then written in one transaction, so nothing is half-stored.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args
from urllib.parse import urlparse

from khabar._errors import IngestError, SourceError
from khabar._settings import Settings
from khabar.model._batch import embed_for_store, sentence_methods
from khabar.model._encoders import (
    Encoder,
    SentenceTransformerEncoder,
    load_encoders,
    space_info,
)
from khabar.model._onnx import OnnxEncoder
from khabar.store import (
    ArchiveStore,
    Article,
    Chunk,
    NewArticle,
    PutResult,
    content_hash,
    open_store,
)
from khabar.store._origin import is_private
from khabar.text import strip_bidi, strip_controls

from ._site import own_url
from ._sources import iter_path
from ._worker import ParseWorker, _operations, failure

if TYPE_CHECKING:
    from ._fetch import Fetcher

# Chunking (langchain-text-splitters), fetching (httpx) and parsing (trafilatura,
# feedparser) are imported by the methods that use them: a process that only answers
# questions spares about a second of imports on a busy machine.

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

FEED_TYPES = {"application/rss+xml", "application/atom+xml", "application/rdf+xml"}
WEB_TYPES = {"text/html", "application/xhtml+xml", "application/xml", "text/xml",
             "application/json", "text/plain", "text/markdown", *FEED_TYPES}
MAX_PASSAGE_TOKENS = 300
EMBED_GROUP_PASSAGES = 64  # passages embedded in one call, across articles
PUT_GROUP_PASSAGES = 512
"""Embedded articles are stored together once they have this many passages (or at the
end): ``put_many``, on Milvus one writer's turn and one commit for all of them."""
FILES_PER_BATCH = 32  # files of a folder parsed before their articles are embedded
MAX_FEED_ENTRIES = 200  # a feed's entries read; real feeds list 10 to 100
FEED_FETCHES = 4  # a feed's linked pages fetched at once (one site: be polite)


# What happened to one item. The store's put statuses, and "error" for an item that
# could not be read, parsed, embedded or stored.
ItemStatus = Literal["added", "replaced", "unchanged", "duplicate", "error"]
ITEM_STATUSES: tuple[ItemStatus, ...] = get_args(ItemStatus)


@dataclass
class ItemResult:
    """What happened to one item (its :data:`ItemStatus`), and why for an error."""

    name: str
    status: ItemStatus
    message: str = ""
    article_id: int | None = None
    passages: int = 0
    title: str | None = None


@dataclass
class IngestReport:
    items: list[ItemResult] = field(default_factory=list)

    def count(self, status: ItemStatus) -> int:
        return sum(1 for i in self.items if i.status == status)

    @property
    def errors(self) -> list[ItemResult]:
        return [i for i in self.items if i.status == "error"]

    @property
    def passages(self) -> int:
        return sum(i.passages for i in self.items)

    def extend(self, other: IngestReport) -> None:
        self.items.extend(other.items)

    def summary(self) -> str:
        parts = [f"{self.count(s)} {s}" for s in ITEM_STATUSES if self.count(s)]
        return (", ".join(parts) or "nothing to ingest") + f" ({self.passages} passages)"

    def to_dict(self) -> dict[str, object]:
        return {"summary": self.summary(),
                "counts": {s: self.count(s) for s in ITEM_STATUSES},
                "passages": self.passages,
                "items": [vars(i) for i in self.items]}


class Index:
    """The store with the encoders that fill it: what ``index`` offers the rest.

    Open it once per process (loading the model takes seconds) and share it.
    """

    def __init__(self, settings: Settings, store: ArchiveStore, encoders: Sequence[Encoder]):
        self.settings = settings
        self.store = store
        self.encoders = list(encoders)
        # A store keeps the way its sentence vectors were made (khabar/model/_late.py,
        # _int8.py).
        self.sentence_methods = sentence_methods(self.encoders, self.store.spaces(),
                                                 settings.sentence_method)
        self.store.bind_spaces([space_info(e, self.sentence_methods[e.space])
                                for e in self.encoders])
        # Parsing within a budget per item, in a worker process (started at first use).
        self.parser = (ParseWorker(settings.item_cpu_seconds, settings.item_memory_mb)
                       if settings.item_cpu_seconds > 0 else None)

    @classmethod
    def open(cls, settings: Settings, *, progress: Callable[[str], None] | None = None,
             encoders: Sequence[Encoder] | None = None) -> Index:
        store = open_store(settings)
        try:
            return cls(settings, store, encoders if encoders is not None
                       else load_encoders(settings, progress))
        except BaseException:
            store.close()
            raise

    @property
    def late_spaces(self) -> set[str]:
        """The spaces whose sentence vectors are pooled from the passage's run."""
        return {s for s, m in self.sentence_methods.items() if m == "late"}

    @property
    def model(self) -> Encoder:
        return self.encoders[0]

    def encoder(self, space: str) -> Encoder | None:
        return next((e for e in self.encoders if e.space == space), None)

    def close(self) -> None:
        if self.parser is not None:
            self.parser.close()
        self.store.close()

    def _parse(self, op: str, *args: Any) -> Any:
        """A parser of index._parse (``parse_document``, ``parse_html``, ``parse_feed``,
        ``entry_to_article``) on one item, within the item budget (index/_worker.py);
        here, unbounded, when the budget is off."""
        if self.parser is None:
            return _operations()[op](*args)
        return self.parser.call(op, *args)

    # -- articles ---------------------------------------------------------------
    def _count_tokens(self) -> Callable[[str], int] | None:
        model = self.model
        # The model's own token count: the same ids, so the same chunks, either runtime.
        if isinstance(model, SentenceTransformerEncoder | OnnxEncoder):
            return model.count_tokens
        return None

    def chunk(self, article: Article) -> list[Chunk]:
        """The article's passages, within the item budget (in the parse worker) when
        the worker can count tokens as the model does: with the ONNX export's tokenizer,
        or when the model counts none (an estimate)."""
        from ._chunk import chunk_paragraphs

        model = self.model
        if self.parser is not None and isinstance(model, OnnxEncoder):
            chunks = self.parser.call("chunk", article.paragraphs, MAX_PASSAGE_TOKENS,
                                      str(model.export))
        elif self.parser is not None and self._count_tokens() is None:
            chunks = self.parser.call("chunk", article.paragraphs, MAX_PASSAGE_TOKENS, None)
        else:  # torch's tokenizer: here, unbounded (linear; paragraphs capped)
            chunks = chunk_paragraphs(article.paragraphs, max_tokens=MAX_PASSAGE_TOKENS,
                                      count_tokens=self._count_tokens())
        if not chunks:
            raise IngestError(f"{article.title!r}: no text to index")
        return chunks

    def prepare(self, article: Article, origin: str | None = None) -> NewArticle:
        """Chunk and embed one article (the slow part, outside any transaction)."""
        return self._embed([(article, self.chunk(article))], origin)[0]

    def _embed(self, group: Sequence[tuple[Article, list[Chunk]]], origin: str | None
               ) -> list[NewArticle]:
        """Several articles embedded together: their passages and sentences in one
        piece of work, every encoder, distinct texts once, on every CPU
        (:func:`~khabar.model.embed_for_store`)."""
        texts = [c.text for _, chunks in group for c in chunks]
        embedded = embed_for_store(self.encoders, texts,
                                   sentences=self.settings.sentence_vectors,
                                   methods=self.sentence_methods)
        out, at = [], 0
        for art, chunks in group:
            span = slice(at, at + len(chunks))
            at += len(chunks)
            out.append(NewArticle(art, chunks, {s: v[span] for s, v in embedded.passages.items()},
                                  content_hash(art), origin,
                                  {s: m[span] for s, m in embedded.sentences.items()}))
        return out

    def _known(self, article: Article, origin: str | None = None,
               found: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None
               ) -> PutResult | None:
        """What storing would say without embedding: the same text at the same URL
        (a feed polled again) is unchanged; the same text elsewhere (a new version
        included), a duplicate. Either, brought to the shared archive while one chat
        alone had it, is shared from then on (``Store.share``). ``found``: the store's
        articles of a batch's URLs and text hashes, looked up at once
        (``find_articles``)."""
        digest = content_hash(article)
        if found is None:
            found = self.store.find_articles(urls=[article.url] if article.url else [],
                                             content_hashes=[digest])
        if article.url:
            row = found[0].get(article.url)
            if row is not None and row["content_hash"] == digest:
                self.store.share(row["id"], row["origin"], origin)
                return PutResult("unchanged", row["id"])
        row = found[1].get(digest)
        if row is None:
            return None
        self.store.share(row["id"], row["origin"], origin)
        return PutResult("duplicate", row["id"])

    def add_articles(self, articles: Iterable[Article], *, origin: str | None = None,
                     name: str | None = None, labels: Sequence[str] | None = None,
                     progress: bool = False) -> IngestReport:
        """Store articles; each is stored whole or not at all, and a bad one is an
        error line in the report while the others go in. Report items are named by
        ``labels`` (one per article), else ``name``, else the article's URL or title."""
        items = [_without_userinfo(_without_controls(art)) for art in articles]
        if labels is not None and len(labels) != len(items):
            raise ValueError(f"{len(labels)} labels for {len(items)} articles")
        names = list(labels) if labels is not None else [
            name or art.url or art.source or art.title for art in items]
        results: list[ItemResult | None] = [None] * len(items)
        todo: list[tuple[int, list[Chunk]]] = []
        try:  # every item's lookups at once (else each its own, its error its own)
            found: tuple[Mapping[str, Any], Mapping[str, Any]] | None = \
                self.store.find_articles(urls=[a.url for a in items if a.url],
                                         content_hashes=[content_hash(a) for a in items])
        except Exception:
            found = None
        for i, art in enumerate(items):
            label = names[i]
            try:
                known = self._known(art, origin, found)
                if known is not None:
                    results[i] = ItemResult(label, known.status, "", known.article_id, 0,
                                            art.title)
                else:
                    todo.append((i, self.chunk(art)))
            except Exception as exc:  # one item's fault, whatever it is: reported
                results[i] = ItemResult(label, "error", failure(exc, label), title=art.title)
        bar = _progress_bar(len(todo), "embedding", progress)
        embedded: list[tuple[int, NewArticle]] = []
        groups = list(_groups(todo, EMBED_GROUP_PASSAGES))
        for n, group in enumerate(groups):
            embedded += self._embed_each(group, items, names, origin, results)
            if n + 1 < len(groups) and \
                    sum(len(new.chunks) for _, new in embedded) < PUT_GROUP_PASSAGES:
                continue
            for (i, _), outcome in zip(embedded, self._put_many(embedded), strict=True):
                art, label = items[i], names[i]
                if isinstance(outcome, Exception):
                    results[i] = ItemResult(label, "error", failure(outcome, label),
                                            title=art.title)
                else:
                    said = (f"replaced article {outcome.replaced} (same URL, same source)"
                            if outcome.replaced is not None else "")
                    results[i] = ItemResult(label, outcome.status, said, outcome.article_id,
                                            outcome.passages, art.title)
                if bar is not None:
                    bar.update(1)
            embedded = []
        if bar is not None:
            bar.close()
        self.store.flush()
        return IngestReport([r for r in results if r is not None])

    def _put_many(self, embedded: list[tuple[int, NewArticle]]
                  ) -> list[PutResult | Exception]:
        """A group's articles stored together (on Milvus one writer's turn and one
        commit: ``put_many``; an article refused is its own error there). If the put
        fails as a whole, the articles found stored now are reported added (all were
        unknown before embedding: ``_known``; a failure after the commit), and the
        others are put one by one, so that one at fault is reported and the rest go
        in, until two in a row fail: a store-wide failure (unreachable, no writer's
        turn) is then reported for the rest rather than waited out once an article."""
        news = [new for _, new in embedded]
        try:
            return list(self.store.put_many(news))
        except Exception as exc:
            log.warning("storing %d articles together failed: %s", len(news), exc)
            try:
                stored = self.store.find_articles(
                    content_hashes=[new.content_hash for new in news])[1]
            except Exception:
                stored = {}
            out: list[PutResult | Exception] = []
            failed = 0  # lone puts failed in a row
            for new in news:
                row = stored.get(new.content_hash)
                if row is not None:
                    out.append(PutResult("added", int(row["id"]), len(new.chunks)))
                    continue
                if failed >= 2:
                    out.append(exc)
                    continue
                try:
                    out.append(self.store.put(new))
                    failed = 0
                except Exception as lone:
                    out.append(lone)
                    failed += 1
            return out

    def _embed_each(self, group: list[tuple[int, list[Chunk]]], items: list[Article],
                    names: list[str], origin: str | None, results: list[ItemResult | None]
                    ) -> list[tuple[int, NewArticle]]:
        """A group embedded together; if that fails, each article alone, so the one at
        fault is reported and the others go in."""
        try:
            prepared = self._embed([(items[i], chunks) for i, chunks in group], origin)
            return [(i, new) for (i, _), new in zip(group, prepared, strict=True)]
        except Exception:
            if len(group) == 1:
                i = group[0][0]
                try:
                    return [(i, self._embed([(items[i], group[0][1])], origin)[0])]
                except Exception as exc:
                    results[i] = ItemResult(names[i], "error", failure(exc, names[i]),
                                            title=items[i].title)
                    return []
            return [pair for one in group
                    for pair in self._embed_each([one], items, names, origin, results)]

    def add_telegram_post(self, text: str, *, channel_title: str, username: str | None,
                          message_id: int, date: datetime, chat_id: int | None = None,
                          origin: str | None = None) -> IngestReport:
        """A channel post; an edited post (same link) replaces the old text."""
        from ._parse import parse_telegram_post

        try:
            art = parse_telegram_post(text, channel_title=channel_title, username=username,
                                      message_id=message_id, date=date, chat_id=chat_id)
        except Exception as exc:
            name = f"post {message_id}"
            return IngestReport([ItemResult(name, "error", failure(exc, name))])
        return self.add_articles([art], origin=origin)

    # -- files ----------------------------------------------------------------------
    def add_bytes(self, data: bytes, name: str, content_type: str | None = None, *,
                  origin: str | None = None, url: str | None = None) -> IngestReport:
        articles, labels, errors = self._parse_bytes(data, name, content_type, url)
        if url is None and is_private(origin):
            # A document given in a chat: nothing to check the links it claims against
            # (a canonical link, a record's "url"), and the chat may not be an operator:
            # cited without a link, never as another site, nor holding that site's URL.
            for art in articles:
                art.url = None
        report = self.add_articles(articles, origin=origin, labels=labels)
        report.items.extend(errors)
        return report

    def _parse_bytes(self, data: bytes, name: str, content_type: str | None = None,
                     url: str | None = None
                     ) -> tuple[list[Article], list[str], list[ItemResult]]:
        """A file's articles with their report labels, and its errors."""
        try:
            articles, errors = self._parse("parse_document", data, name, content_type)
        except Exception as exc:  # one file's fault: reported, the batch goes on
            return [], [], [ItemResult(name, "error", failure(exc, name))]
        for art in articles:
            art.source = art.source or name
            if url and not art.url:
                art.url = url
        # Say which record of a file each item is.
        labels = [name] if len(articles) == 1 else [
            f"{name}#{i}" for i in range(1, len(articles) + 1)]
        return articles, labels, [ItemResult(name, "error", msg) for msg in errors]

    def add_path(self, path: Path, *, origin: str | None = None,
                 progress: bool = False) -> IngestReport:
        """A file, folder or archive. Files are parsed a batch at a time and their
        articles embedded together; the report lists each file's items in order."""
        report = IngestReport()
        if not path.exists():
            report.items.append(ItemResult(str(path), "error", "no such file or folder"))
            return report
        # Streamed: a batch of files is held at a time, never a whole folder or archive.
        files = iter_path(path, max_file_bytes=self.settings.max_file_bytes)
        bar = _progress_bar(None, f"ingesting {path.name}", progress)
        while batch := list(itertools.islice(files, FILES_PER_BATCH)):
            articles: list[Article] = []
            labels: list[str] = []
            slots: list[tuple[int, int, list[ItemResult]]] = []  # articles' span, errors
            for item in batch:
                if isinstance(item, SourceError):
                    slots.append((0, 0, [ItemResult(item.name, "error", item.message)]))
                    continue
                arts, labs, errors = self._parse_bytes(item.data, item.name)
                slots.append((len(articles), len(arts), errors))
                articles += arts
                labels += labs
            del batch  # the files' bytes, before the next batch is read
            done = self.add_articles(articles, origin=origin, labels=labels).items
            for first, count, errors in slots:
                report.items += done[first:first + count] + errors
            if bar is not None:
                bar.update(len(slots))
        if bar is not None:
            bar.close()
        return report

    # -- the web ------------------------------------------------------------------
    def add_url(self, url: str, *, origin: str | None = None, fetcher: Fetcher | None = None,
                follow_feed_links: bool = True, progress: bool = False) -> IngestReport:
        """A web page or a feed. Feed items' links are followed for the full text;
        when that fails the feed's own text for the item is used."""
        from ._fetch import Fetcher

        own = fetcher is None
        fetcher = fetcher or Fetcher(self.settings)
        shown = url_without_userinfo(url)  # fetched with its credentials, never named so
        try:
            try:
                got = fetcher.fetch(url, accept=WEB_TYPES)
            except Exception as exc:
                return IngestReport([ItemResult(shown, "error", failure(exc, shown))])
            if got.content_type in FEED_TYPES or _looks_like_feed(got.data, got.content_type):
                return self._add_feed(got.data, got.final_url, origin, fetcher,
                                      follow_feed_links, progress)
            if got.content_type in ("text/html", "application/xhtml+xml"):
                try:
                    art = self._parse("parse_html", got.data, got.final_url, got.charset)
                except Exception as exc:
                    return IngestReport([ItemResult(shown, "error", failure(exc, shown))])
                # Its canonical link only on the site it came from: no spoofed citations.
                art.url = own_url(art.url, got.final_url)
                art.source = shown
                return self.add_articles([art], origin=origin, name=shown)
            name = Path(urlparse(got.final_url).path).name or "document"
            ctype = f"{got.content_type}; charset={got.charset}" if got.charset \
                else got.content_type
            return self.add_bytes(got.data, name, ctype, origin=origin, url=got.final_url)
        finally:
            if own:
                fetcher.close()

    def _add_feed(self, data: bytes, feed_url: str, origin: str | None, fetcher: Fetcher,
                  follow: bool, progress: bool) -> IngestReport:
        """The feed's entries. ``feed_url`` is the fetched one's final URL, already
        without user information (Fetched.final_url)."""
        from ._parse import FeedEntry

        report = IngestReport()
        try:
            entries = self._parse("parse_feed", data, feed_url)
        except Exception as exc:
            return IngestReport([ItemResult(feed_url, "error", failure(exc, feed_url))])
        if len(entries) > MAX_FEED_ENTRIES:
            log.warning("%s: %d entries, only the first %d read", feed_url, len(entries),
                        MAX_FEED_ENTRIES)
            entries = entries[:MAX_FEED_ENTRIES]

        def linked(entry: FeedEntry) -> Article | None:
            """The entry's linked page as an article; None to use the feed's text."""
            if not (follow and entry.link):
                return None
            try:
                page = fetcher.fetch(entry.link, accept={"text/html", "application/xhtml+xml"})
                art = self._parse("parse_html", page.data, page.final_url, page.charset)
            except Exception as exc:
                log.info("feed item %s: using the feed's text (%s)", entry.link,
                         failure(exc, entry.link))
                return None
            art.url = own_url(entry.link, page.final_url)
            art.published = art.published or entry.published
            if entry.outlet and entry.outlet not in art.outlets:
                art.outlets = [*art.outlets, entry.outlet]
            return art

        pages = _in_order(linked, entries, FEED_FETCHES)
        for entry, art in zip(_progress(entries, "feed items", progress), pages, strict=True):
            if art is None:
                try:
                    art = self._parse("entry_to_article", entry)
                except Exception as exc:
                    name = url_without_userinfo(entry.link or feed_url)
                    report.items.append(ItemResult(name, "error", failure(exc, name)))
                    continue
                if art.url and own_url(art.url, feed_url) != art.url:
                    # The feed's own text under a link off the feed's site: cited as
                    # the feed, one anchor per entry so entries do not replace each other.
                    anchor = hashlib.sha256(art.url.encode()).hexdigest()[:16]
                    art.url = f"{feed_url.partition('#')[0]}#entry-{anchor}"
            art.source = feed_url
            report.extend(self.add_articles(
                [art], origin=origin,
                name=url_without_userinfo(entry.link) if entry.link else None))
        return report


def _without_controls(art: Article) -> Article:
    """The article with no terminal control in any text it shows: decoding strips them
    from raw bytes, this from what entities and JSON escapes ("&#27;", "\\u001b")
    made of them after (see khabar.text.strip_controls)."""
    def clean(value: str | None) -> str | None:
        return None if value is None else strip_controls(value)

    # A title and an outlet are shown inside a citation line, each isolated: they lose
    # the bidi embeddings and isolates too, as paragraphs do in cleaning (index/_clean).
    art.title = strip_bidi(strip_controls(art.title))
    art.paragraphs = [strip_controls(p) for p in art.paragraphs]
    art.outlets = [strip_bidi(strip_controls(o)) for o in art.outlets]
    art.tags = [strip_controls(t) for t in art.tags]
    art.author, art.section = clean(art.author), clean(art.section)
    art.site_name = clean(art.site_name)
    return art


# A URL's user information: from the scheme's "//" to the last "@" before the authority
# ends at "/", "?" or "#", as httpx reads it and sends it. Not at a backslash (a path
# separator to browsers in web URLs): httpx sends ``user:p\w@`` with the password p\w.
_USERINFO_RE = re.compile(r"^(\s*[A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def url_without_userinfo(url: str) -> str:
    """``url`` without ``user:password@`` (or ``TOKEN@``): what khabar stores and names
    for an article is shown in citations, never a credential."""
    return _USERINFO_RE.sub(r"\1", url, count=1)


def _without_userinfo(art: Article) -> Article:
    """The article with no credentials in its URL or source, whatever gave them: a URL
    to ingest, a page fetched with them, a file's "url" field."""
    if art.url:
        art.url = url_without_userinfo(art.url)
    if art.source:
        art.source = url_without_userinfo(art.source)
    return art


def _in_order(fn: Callable[[T], R], items: Sequence[T], workers: int) -> Iterator[R]:
    """``map(fn, items)`` run by ``workers`` threads, in order, with at most twice that
    many results waiting: a slow site costs its time once, not once per link."""
    if workers <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="khabar-fetch") as pool:
        ahead = 2 * workers
        pending = deque(pool.submit(fn, item) for item in items[:ahead])
        for item in items[ahead:]:
            yield pending.popleft().result()
            pending.append(pool.submit(fn, item))
        while pending:
            yield pending.popleft().result()


def _looks_like_feed(data: bytes, content_type: str) -> bool:
    if content_type not in ("application/xml", "text/xml"):
        return False
    head = data[:2048].lower()
    return b"<rss" in head or b"<feed" in head or b"<rdf:rdf" in head


def _groups(todo: list[tuple[int, list[Chunk]]], passages: int
            ) -> Iterator[list[tuple[int, list[Chunk]]]]:
    """Consecutive articles with about ``passages`` passages in all (at least one)."""
    group: list[tuple[int, list[Chunk]]] = []
    size = 0
    for item in todo:
        if group and size + len(item[1]) > passages:
            yield group
            group, size = [], 0
        group.append(item)
        size += len(item[1])
    if group:
        yield group


def _progress_bar(total: int | None, desc: str, show: bool) -> Any:  # a tqdm bar, or None
    """A bar of ``total`` items (None: counted as they come), or None."""
    if not show or (total is not None and total < 2):
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="item", leave=False)


def _progress(items: list[Any], desc: str, show: bool) -> Iterable[Any]:
    if not show or len(items) < 2:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="item", leave=False)
