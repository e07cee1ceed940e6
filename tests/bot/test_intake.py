"""Sources through Telegram: channel posts, forwarded posts, documents; admin commands."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiohttp import web
from khabar.index import Index
from khabar.retrieval import Khabar

from tests.bot.conftest import ADMIN, GROUP, USER, RunningBot, run_bot, until
from tests.bot.fake_telegram import BOT_ID

TIMEOUT = 90
CHANNEL = -1001500
POST = (
    "Floods hit Benghazi\n"
    "Heavy floods hit the Libyan city of Benghazi on Monday, the city's mayor said, "
    "cutting power to thousands of homes and closing the port."
)
EDITED = (
    "Floods hit Benghazi\n"
    "Heavy floods hit the Libyan city of Benghazi on Monday, the mayor said; three people "
    "died and the port was closed."
)
DOC = (
    b"# Drought in Morocco\n\n"
    b"Morocco's farmers are facing the worst drought in forty years, the agriculture "
    b"ministry said on Tuesday, with wheat harvests expected to fall by half.\n"
)


async def test_channel_post_is_indexed_then_cited(fresh_bot: RunningBot,
                                                  fresh_index: Index) -> None:
    fake = fresh_bot.fake
    fake.channel_post(CHANNEL, "libya_news", 42, POST, title="Libya News")
    await until(lambda: fresh_index.store.count_articles() == 1)
    assert fresh_index.store.article_ids(origin=f"chat:{CHANNEL}")

    # The channel's own post: a reader elsewhere is not answered from it.
    fake.private_text(USER, "What hit Benghazi?")
    (answer,) = await fake.wait_for_messages(USER, 1, timeout=TIMEOUT)
    assert "https://t.me/libya_news/42" not in answer["raw_text"]
    assert "Heavy floods hit" not in answer["text"]
    assert fake.sent_messages(CHANNEL) == []  # the bot never posts into the channel

    # An edit replaces the old text: still one article, with the new wording.
    fake.channel_post(CHANNEL, "libya_news", 42, EDITED, edited=True)
    await until(lambda: any("three people died" in r["text"]
                             for r in fresh_index.store.iter_passages()))
    assert fresh_index.store.count_articles() == 1
    assert not any("thousands of homes" in r["text"] for r in fresh_index.store.iter_passages())


async def test_forwarded_channel_post_from_an_admin_is_indexed(fresh_bot: RunningBot,
                                                               fresh_index: Index) -> None:
    fake = fresh_bot.fake
    fake.forwarded_channel_post(USER, CHANNEL, "libya_news", 7, POST)
    (question,) = await fake.wait_for_messages(USER, 1, timeout=TIMEOUT)
    assert question["text"] == "Nothing is indexed yet."  # a reader's forward only asks
    assert fresh_index.store.count_articles() == 0

    fake.forwarded_channel_post(ADMIN, CHANNEL, "libya_news", 7, POST)
    (report,) = await fake.wait_for_messages(ADMIN, 1, timeout=TIMEOUT)
    assert report["text"].startswith("Indexed @libya_news/7: 1 added")
    # An operator's, added in private: the shared archive.
    assert fresh_index.store.article_ids(url="https://t.me/libya_news/7",
                                         origin=f"operator:{ADMIN}")


async def test_admin_document_indexed_and_non_admin_refused(fresh_bot: RunningBot,
                                                            fresh_index: Index) -> None:
    fake = fresh_bot.fake
    fake.document(USER, USER, "drought.md", DOC, "text/markdown")
    (refused,) = await fake.wait_for_messages(USER, 1)
    assert refused["text"] == "Sorry, only administrators can do that."
    assert fresh_index.store.count_articles() == 0
    assert not fake.calls_to("getFile")  # never even downloaded

    fake.document(ADMIN, ADMIN, "drought.md", DOC, "text/markdown")
    (report,) = await fake.wait_for_messages(ADMIN, 1, timeout=TIMEOUT)
    assert report["text"].startswith("Indexed drought.md: 1 added")
    assert "✓ Drought in Morocco — added" in report["text"]
    assert fresh_index.store.count_articles() == 1
    assert fresh_index.store.article_ids(origin=f"operator:{ADMIN}")

    records = [{"title": "Good", "text": "A long enough paragraph about the Moroccan wheat "
                "harvest and the drought that hit it this year."}, {"title": "No text"}]
    data = "\n".join(json.dumps(r) for r in records).encode()
    fake.document(ADMIN, ADMIN, "batch.jsonl", data, "application/octet-stream")
    fake.document(ADMIN, ADMIN, "scan.pdf", b"%PDF-1.4", "application/pdf")
    replies = await fake.wait_for_messages(ADMIN, 3, timeout=TIMEOUT)
    texts = [m["text"] for m in replies[1:]]
    pdf = next(t for t in texts if "scan.pdf" in t)
    assert "I can index .txt, .md, .html, .json and .jsonl files" in pdf
    batch = next(t for t in texts if t.startswith("Indexed batch.jsonl"))
    # What went in and what was refused, and why.
    assert "1 added" in batch and "1 refused" in batch and "✗" in batch


async def test_group_admins_configure_their_group(fresh_bot: RunningBot,
                                                  fresh_index: Index) -> None:
    fake = fresh_bot.fake
    fake.set_admins(GROUP, [7, BOT_ID], creator=5)
    fake.document(GROUP, 8, "drought.md", DOC, "text/markdown", chat_type="supergroup")
    fake.group_text(GROUP, 8, "/stats")
    (refusal,) = await fake.wait_for_messages(GROUP, 1)
    assert refusal["text"] == "Sorry, only administrators can do that."
    assert fresh_index.store.count_articles() == 0  # a member's file is not for the bot

    fake.document(GROUP, 7, "drought.md", DOC, "text/markdown", chat_type="supergroup")
    _, report = await fake.wait_for_messages(GROUP, 2, timeout=TIMEOUT)
    assert "1 added" in report["text"]
    fake.group_text(GROUP, 5, "/stats")
    *_, stats = await fake.wait_for_messages(GROUP, 3)
    assert "articles: 1" in stats["text"] and "from this chat: 1 article(s)" in stats["text"]
    fake.group_text(GROUP, 7, "/forget chat")
    *_, forgot = await fake.wait_for_messages(GROUP, 4, timeout=TIMEOUT)
    assert forgot["text"] == "Forgot 1 article(s)."
    assert fresh_index.store.count_articles() == 0


async def test_add_is_for_admins_only(fresh_bot: RunningBot) -> None:
    fake = fresh_bot.fake
    fake.private_text(USER, "/add https://example.com/feed.xml")
    fake.private_text(ADMIN, "/add")
    (refused,) = await fake.wait_for_messages(USER, 1)
    (usage,) = await fake.wait_for_messages(ADMIN, 1)
    assert refused["text"] == "Sorry, only administrators can do that."
    assert usage["text"].startswith("Give a web page or feed address")


async def test_admin_adds_a_web_page(telegram, tg_settings, encoders) -> None:  # type: ignore[no-untyped-def]
    page = (Path(__file__).parents[1] / "index" / "fixtures" / "article_en.html").read_bytes()

    async def serve_page(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8")

    site = web.Application()
    site.router.add_get("/news/article.html", serve_page)
    runner = web.AppRunner(site)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/news/article.html"
    # The fetcher refuses loopback addresses unless told otherwise (SSRF guard).
    settings = tg_settings.with_(allow_private_urls=True)
    index = Index.open(settings, encoders=encoders)
    try:
        async with run_bot(telegram, settings, Khabar(index), index) as running:
            telegram.private_text(ADMIN, f"/add {url}")
            (report,) = await telegram.wait_for_messages(ADMIN, 1, timeout=TIMEOUT)
        assert not running.errors
        assert report["text"].startswith(f"Indexed {url}: 1 added")
        assert "Central bank holds rates steady" in report["text"]
        # Its canonical link (reuters.com) is not the site it was served from: cited by
        # the URL fetched, tagged with who added it.
        assert not index.store.article_ids(
            url="https://www.reuters.com/markets/central-bank-holds-rates-2024-03-20/")
        assert index.store.article_ids(url=url, origin=f"operator:{ADMIN}")
    finally:
        index.close()
        await runner.cleanup()


async def test_a_failed_download_is_told_without_the_raw_error(fresh_bot: RunningBot) -> None:
    fake = fresh_bot.fake
    fake.fail_next("getFile", error_code=502,
                   description=f"Bad Gateway: upstream {fake.token} at /file/bot{fake.token}")
    fake.document(ADMIN, ADMIN, "drought.md", DOC, "text/markdown")
    (reply,) = await fake.wait_for_messages(ADMIN, 1, timeout=TIMEOUT)
    assert "could not download" in reply["text"]
    assert fake.token not in reply["text"] and fake.token.split(":")[1] not in reply["text"]


async def test_stats_for_a_groups_admins_cover_what_the_group_sees(
        fresh_bot: RunningBot, fresh_index: Index) -> None:
    """Another chat's own additions are that chat's alone, in /stats too: not counted, not
    among the outlets, not the ends of the publication range, even when an operator
    asks in the group (everyone there reads the reply). Operators see everything in
    private."""
    other = -1009876543210

    async def add(title: str, outlet: str, published: str, text: str,
                  origin: str | None) -> None:
        doc = {"title": title, "source": outlet, "published": published, "text": text}
        report = await asyncio.to_thread(fresh_index.add_bytes, json.dumps(doc).encode(),
                                         f"{title}.json", "application/json", origin=origin)
        assert report.count("added") == 1, report.summary()

    await add("Secret merger talks", "Private Desk", "1999-03-04",
              "Two firms held secret merger talks in Cairo on Monday, people said.",
              f"chat:{other}")
    await add("Port strike", "Private Desk", "2024-07-01",
              "Dock workers in Alexandria went on strike over pay on Sunday, a union said.",
              f"chat:{other}")
    await add("Drought in Morocco", "Wire", "2024-05-01",
              "Morocco's farmers face the worst drought in forty years, the ministry said.",
              None)
    await add("Floods hit Benghazi", "Libya News", "2024-06-01",
              "Heavy floods hit Benghazi on Monday, cutting power to thousands of homes.",
              f"chat:{GROUP}")
    store = fresh_index.store
    hidden = store.article_passages(store.article_ids(origin=f"chat:{other}"))
    seen = store.count_passages() - len(hidden)
    fake = fresh_bot.fake
    fake.set_admins(GROUP, [7])
    fake.group_text(GROUP, 7, "/stats")
    (own,) = await fake.wait_for_messages(GROUP, 1, timeout=TIMEOUT)
    assert (f"articles: 2\npassages: {seen}\noutlets: 2\nlanguages: en: {seen}\n"
            "published: 2024-05-01 … 2024-06-01\nfrom this chat: 1 article(s)") in own["text"]
    fake.group_text(GROUP, ADMIN, "/stats")
    *_, operator = await fake.wait_for_messages(GROUP, 2, timeout=TIMEOUT)
    assert (f"articles: 2\npassages: {seen}\noutlets: 2\nlanguages: en: {seen}\n"
            "published: 2024-05-01 … 2024-06-01\nfrom this chat: 1 article(s)"
            ) in operator["text"]
    assert "1999" not in operator["text"] and "2024-07-01" not in operator["text"]
    fake.private_text(ADMIN, "/stats")
    (everything,) = await fake.wait_for_messages(ADMIN, 1, timeout=TIMEOUT)
    assert (f"articles: 4\npassages: {store.count_passages()}\noutlets: 3\n"
            f"languages: en: {store.count_passages()}\npublished: 1999-03-04 … 2024-07-01"
            ) in everything["text"]
