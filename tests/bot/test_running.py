"""The bot as it runs: webhooks, long answers, many chats at once, `khabar serve`."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from khabar.index import Index
from khabar.retrieval import Answer, AnswerSentence, Khabar, Query, Source

from khabar import Settings
from tests.bot.conftest import AR_HEADS, EN_HEADS, USER, cites_passage_first, run_bot
from tests.bot.fake_telegram import SECRET_HEADER, FakeTelegram, parse_html

TIMEOUT = 90
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_webhook_mode_answers_and_rejects_a_wrong_secret(
        telegram: FakeTelegram, tg_settings: Settings, seed_khabar: Khabar,
        seed_index: Index) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/khabar-hook"
    hook = {"listen": "127.0.0.1", "port": port, "url_path": "khabar-hook",
            "webhook_url": url, "secret_token": "right_secret-123"}
    async with run_bot(telegram, tg_settings, seed_khabar, seed_index,
                       webhook=hook) as running:
        (registered,) = telegram.calls_to("setWebhook")
        assert registered["url"] == url and registered["secret_token"] == "right_secret-123"
        assert "channel_post" in registered["allowed_updates"]

        telegram.private_text(USER, "/help")  # delivered by the fake, with the secret
        (helped,) = await telegram.wait_for_messages(USER, 1)
        assert "/digest" in helped["text"]

        forged = {"update_id": 9, "message": {
            "message_id": 1, "date": int(time.time()), "text": "/start",
            "chat": {"id": 666, "type": "private", "first_name": "M"},
            "from": {"id": 666, "is_bot": False, "first_name": "M"}}}
        async with ClientSession() as http:
            for headers in ({SECRET_HEADER: "wrong"}, {}):
                async with http.post(url, json=forged, headers=headers) as resp:
                    assert resp.status == 403
        await asyncio.sleep(0.5)
        assert telegram.sent_messages(666) == []
    assert not running.errors
    assert all(status == 200 for _, status in telegram.webhook_deliveries)


class _LongKhabar:
    """Answers every question with five long passages full of HTML-special characters."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def ask(self, text: str, **_: Any) -> Answer:
        sources = [
            Source(n=i, outlets=["Reuters", "الجزيرة"], title=f"Title <{i}> & \"more\"",
                   published=datetime(2015, 9, 30, tzinfo=UTC), url=f"https://e.com/{i}?a=1&b=2",
                   position=i, n_passages=9, article_id=i, passage_id=i,
                   text=_long_text(i), lang="ar" if i % 2 else "en", score=1.0)
            for i in range(1, 6)]
        query = Query(text=text, search_text=text, lang="en")
        return Answer(text, "en", query, [AnswerSentence(sources[0].text[:200], 1)], sources)


def _long_text(i: int) -> str:
    en = f"Sentence {i} says a < b && c > d. "
    ar = "قال مسؤول إن الضربات استهدفت مواقع قرب حلب. "
    return "".join((ar if k % 3 else en) for k in range(50))


async def test_a_10000_character_answer_is_split_validly(
        telegram: FakeTelegram, tg_settings: Settings, seed_index: Index) -> None:
    khabar = _LongKhabar(seed_index)
    expected = khabar.ask("q")
    async with run_bot(telegram, tg_settings, khabar, seed_index) as running:
        telegram.private_text(USER, "tell me everything")
        await telegram.wait_for_messages(USER, 3, timeout=10)
        await asyncio.sleep(0.5)
    assert not running.errors  # the fake would have refused invalid HTML or a long text
    parts = telegram.sent_messages(USER)
    assert len(parts) >= 3
    from khabar.bot._render import render_telegram

    full, _ = parse_html(render_telegram(expected, "en"))
    assert len(full) > 10_000
    for part in parts:
        assert len(part["text"]) <= 4096
        parse_html(part["raw_text"])  # each part is valid HTML on its own
    # Nothing lost but the whitespace Telegram trims at the cuts.
    joined = "".join(p["text"] for p in parts)
    assert "".join(joined.split()) == "".join(full.split())
    # The keyboard comes with the last part, under the sources it is about.
    assert [("reply_markup" in p) for p in parts] == [False] * (len(parts) - 1) + [True]


async def test_fifty_chats_asking_at_once_are_all_answered(
        telegram: FakeTelegram, tg_settings: Settings, seed_khabar: Khabar,
        seed_index: Index) -> None:
    # Fifty real questions on the real model (about 0.2 s each once warm): the
    # answers must all arrive, and no chat waits for the whole queue.
    questions = ["who struck Aleppo?", "من قصف حلب؟", "what did Russia strike?",
                 "ماذا قصفت روسيا؟"]
    async with run_bot(telegram, tg_settings, seed_khabar, seed_index) as running:
        started = time.monotonic()
        for chat in range(1, 51):
            telegram.private_text(5000 + chat, questions[chat % len(questions)])
        answers = await asyncio.gather(*(
            telegram.wait_for_messages(5000 + chat, 1, timeout=4 * TIMEOUT)
            for chat in range(1, 51)))
        elapsed = time.monotonic() - started
    assert not running.errors
    for chat, (answer,) in zip(range(1, 51), answers, strict=True):
        arabic = questions[chat % len(questions)][0] == "م"
        assert answer["text"].startswith(AR_HEADS if arabic else EN_HEADS)
        assert "[1]" in answer["text"]
    assert elapsed < 4 * TIMEOUT


def _khabar_command() -> list[str]:
    """``khabar serve`` as installed, else the same entry point through the module."""
    script = Path(sys.executable).parent / "khabar"
    found = str(script) if script.exists() else shutil.which("khabar")
    return [found, "serve"] if found else [sys.executable, "-m", "khabar", "serve"]


async def test_khabar_serve_runs_against_the_fake_and_stops_on_sigterm(
        telegram: FakeTelegram, khabar_home: Path) -> None:
    env = {**os.environ, "KHABAR_HOME": str(khabar_home),
           "KHABAR_TELEGRAM_TOKEN": telegram.token,
           "KHABAR_TELEGRAM_BASE_URL": telegram.base_url,
           "KHABAR_TELEGRAM_FILE_URL": telegram.base_file_url,
           "KHABAR_ADMIN_IDS": "1000", "PYTHONUNBUFFERED": "1"}
    env.pop("KHABAR_CONFIG", None)
    proc = await asyncio.create_subprocess_exec(
        *_khabar_command(), cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        # Loading the model and indexing the seed article take a while.
        await telegram.wait_for_call("setMyCommands", timeout=240, count=2)
        await telegram.wait_for_call("getUpdates", timeout=30)
        telegram.private_text(USER, "/start")
        (hello,) = await telegram.wait_for_messages(USER, 1, timeout=30)
        assert "khabar" in hello["text"]
        # SIGTERM while a question is being answered: it is finished before the exit.
        telegram.private_text(USER, "who struck Aleppo?")
        await telegram.wait_for_call("sendChatAction", timeout=30)
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = err.decode()
    assert proc.returncode == 0, log[-3000:]
    assert telegram.token not in log and telegram.token.split(":")[1] not in log
    assert '"event": "started"' in log and '"event": "stopped"' in log
    assert telegram.pending_updates == []  # the last getUpdates confirmed both
    _, answer = telegram.sent_messages(USER)
    assert cites_passage_first(answer["text"])
    allowed = telegram.calls_to("getUpdates")[-1].get("allowed_updates") or []
    assert "channel_post" in allowed and "callback_query" in allowed


WRONG_TOKEN = "987654321:AAWrongTokenThatTelegramRefuses0123"
LLM_KEY = "sk-test-llm-key-that-must-never-show-0042"
WEBHOOK_SECRET = "webhook-secret-that-must-never-show"


@pytest.mark.parametrize("debug", [False, True])
async def test_a_refused_token_is_said_without_any_secret(
        telegram: FakeTelegram, khabar_home: Path, debug: bool) -> None:
    # PTB's InvalidToken carries the token itself; every byte the process writes (its
    # message, logs, a --debug traceback) is searched for every secret.
    env = {**os.environ, "KHABAR_HOME": str(khabar_home),
           "KHABAR_TELEGRAM_TOKEN": WRONG_TOKEN,
           "KHABAR_TELEGRAM_BASE_URL": telegram.base_url,
           "KHABAR_TELEGRAM_FILE_URL": telegram.base_file_url,
           "KHABAR_LLM_API_KEY": LLM_KEY, "KHABAR_WEBHOOK_SECRET": WEBHOOK_SECRET}
    env.pop("KHABAR_CONFIG", None)
    command = _khabar_command()
    if debug:
        command.insert(1, "--debug")
    proc = await asyncio.create_subprocess_exec(
        *command, cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=300)
    everything = (out + err).decode()
    assert "refused the bot token" in everything  # Telegram was asked, and said no
    for secret in (WRONG_TOKEN, WRONG_TOKEN.split(":")[1], LLM_KEY, WEBHOOK_SECRET):
        assert secret not in everything, everything[-3000:]
    if not debug:
        assert proc.returncode == 2, everything[-3000:]


def test_serve_can_drop_the_backlog(monkeypatch, tg_settings: Settings,  # type: ignore[no-untyped-def]
                                    fresh_index: Index) -> None:
    """KHABAR_TELEGRAM_DROP_PENDING: a backlog after downtime is not answered hours late."""
    from khabar.bot import _app, _telegram
    from telegram.ext import Application

    seen: dict[str, Any] = {}
    monkeypatch.setattr(_app, "open_index", lambda *_a, **_k: fresh_index)
    monkeypatch.setattr(fresh_index, "close", lambda: None)  # the fixture closes it
    monkeypatch.setattr(Application, "run_polling", lambda self, **kw: seen.update(kw))
    _telegram.serve(tg_settings)
    assert seen["drop_pending_updates"] is False
    _telegram.serve(Settings(**{**tg_settings.model_dump(), "telegram_drop_pending": True}))
    assert seen["drop_pending_updates"] is True
