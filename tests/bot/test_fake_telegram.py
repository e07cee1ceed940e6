"""The fake Bot API server answers python-telegram-bot's real HTTP client like Telegram."""

import asyncio
import datetime as dtm
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession, web
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    MessageOriginChannel,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    RetryAfter,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.bot.fake_telegram import (
    BOT_ID,
    BOT_USERNAME,
    SECRET_HEADER,
    FakeTelegram,
    parse_html,
)

USER = 111
GROUP = -1001234567890


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(webhook_retry_delay=0.05) as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    # Depends on `fake`, so it shuts down before the server stops.
    async with Bot(fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url) as b:
        yield b


def _app(fake: FakeTelegram) -> Application:
    return (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .build()
    )


# --------------------------------------------------------------------------- identity


async def test_get_me_returns_the_test_bot(bot: Bot, fake: FakeTelegram) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.first_name, me.is_bot) == (
        BOT_ID,
        "khabar_test_bot",
        "Khabar",
        True,
    )
    assert me.can_join_groups and not me.can_read_all_group_messages
    assert not me.supports_inline_queries
    assert fake.calls[0][0] == "getMe"  # Bot.initialize() asked first


async def test_wrong_token_is_invalid_token(fake: FakeTelegram) -> None:
    other = Bot("1:wrong", base_url=fake.base_url)
    with pytest.raises(InvalidToken):
        await other.initialize()


# --------------------------------------------------------------------------- sendMessage


async def test_send_message_html_is_parsed_like_telegram(bot: Bot, fake: FakeTelegram) -> None:
    raw = '<b>Hi</b> &amp; <a href="https://e.com/?a=1&amp;b=2">link</a> &#x27;q&#39;'
    msg = await bot.send_message(USER, raw, parse_mode=ParseMode.HTML)

    assert msg.text == "Hi & link 'q'"
    assert msg.from_user is not None and msg.from_user.id == BOT_ID
    assert [(e.type, e.offset, e.length, e.url) for e in msg.entities] == [
        (MessageEntity.BOLD, 0, 2, None),
        (MessageEntity.TEXT_LINK, 5, 4, "https://e.com/?a=1&b=2"),
    ]
    (stored,) = fake.sent_messages(USER)
    assert stored["message_id"] == msg.message_id
    assert stored["raw_text"] == raw and stored["parse_mode"] == "HTML"
    method, params = fake.calls[-1]
    assert method == "sendMessage" and params["chat_id"] == USER and params["text"] == raw


async def test_message_ids_increment_per_chat(bot: Bot) -> None:
    first = await bot.send_message(USER, "one")
    second = await bot.send_message(USER, "two")
    elsewhere = await bot.send_message(222, "one")
    assert second.message_id == first.message_id + 1
    assert elsewhere.message_id == 1


async def test_too_long_message_is_rejected(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(USER, "a" * 4097)
    # The limit counts the visible text, not the markup around it.
    await bot.send_message(USER, "<b>" + "a" * 4096 + "</b>", parse_mode=ParseMode.HTML)


@pytest.mark.parametrize(
    "text",
    [
        "<b>unclosed",
        "<b>crossed <i>tags</b></i>",
        "stray </b>",
        "1 < 2",
        "AT&T",
        "&nbsp;",
        "<span>not a spoiler</span>",
        "<div>unsupported</div>",
        "<a href='x'>open",
    ],
)
async def test_malformed_html_is_rejected(bot: Bot, text: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(USER, text, parse_mode=ParseMode.HTML)


@pytest.mark.parametrize("text", ["", "   \n", "<b></b>"])
async def test_empty_text_is_rejected(bot: Bot, text: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(USER, text, parse_mode=ParseMode.HTML)


def test_parse_html_entities_use_utf16_offsets() -> None:
    text, entities = parse_html(
        '😀 <pre><code class="language-python">x = 1</code></pre>'
        '<blockquote expandable>خبر</blockquote><span class="tg-spoiler">s</span>'
    )
    assert text == "😀 x = 1خبرs"
    assert entities == [
        {"type": "pre", "offset": 3, "length": 5, "language": "python"},
        {"type": "expandable_blockquote", "offset": 8, "length": 3},
        {"type": "spoiler", "offset": 11, "length": 1},
    ]


async def test_reply_parameters_are_recorded_and_checked(bot: Bot, fake: FakeTelegram) -> None:
    incoming = fake.private_text(USER, "question")["message"]
    answer = await bot.send_message(USER, "answer", reply_to_message_id=incoming["message_id"])

    assert answer.reply_to_message is not None
    assert answer.reply_to_message.text == "question"
    # PTB 22 turns reply_to_message_id into reply_parameters on the wire.
    params = fake.calls_to("sendMessage")[-1]
    assert "reply_to_message_id" not in params
    assert params["reply_parameters"] == {"message_id": incoming["message_id"]}
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(USER, "answer", reply_to_message_id=999)


async def test_flood_control_raises_retry_after(bot: Bot, fake: FakeTelegram) -> None:
    fake.flood(USER, times=1, retry_after=3)
    await bot.send_message(222, "other chats are not limited")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB 22 deprecates the int form of retry_after
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(USER, "too fast")
        assert caught.value.retry_after in (3, dtm.timedelta(seconds=3))
    await bot.send_message(USER, "later")
    assert [m["text"] for m in fake.sent_messages(USER)] == ["later"]


async def test_blocked_user_is_forbidden(bot: Bot, fake: FakeTelegram) -> None:
    fake.block(USER)
    with pytest.raises(Forbidden, match=r"(?i)blocked"):
        await bot.send_message(USER, "hello")


async def test_raw_wire_formats(fake: FakeTelegram) -> None:
    api = f"{fake.base_url}{fake.token}"
    async with ClientSession() as http:
        # Form values: strings stay strings ("123"), the rest is JSON (numbers may be strings).
        form = {"chat_id": "111", "text": "123", "reply_markup": '{"inline_keyboard": []}'}
        async with http.post(f"{api}/sendMessage", data=form) as resp:
            body = await resp.json()
        assert body["ok"] and body["result"]["text"] == "123"
        async with http.post(f"{api}/sendMessage", json={"chat_id": "111", "text": "json"}) as resp:
            assert (await resp.json())["result"]["chat"]["id"] == USER
        async with http.get(f"{api}/getme") as resp:  # method names are case-insensitive
            assert (await resp.json())["result"]["id"] == BOT_ID
        async with http.post(f"{fake.base_url}1:bad/getMe") as resp:
            assert resp.status == 401
            assert await resp.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
    assert [m for m, _ in fake.calls] == ["sendMessage", "sendMessage", "getMe"]


# --------------------------------------------------------------------------- edits, buttons


async def test_edit_message_text_and_markup(bot: Bot, fake: FakeTelegram) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("More", callback_data="more:1")]])
    sent = await bot.send_message(USER, "draft", reply_markup=keyboard)
    assert sent.reply_markup == keyboard

    edited = await bot.edit_message_text("<i>final</i>", USER, sent.message_id, parse_mode="HTML")
    assert edited.text == "final" and edited.edit_date is not None
    # Without reply_markup the edit drops the keyboard, as Telegram does.
    assert edited.reply_markup is None
    (stored,) = fake.sent_messages(USER)
    assert stored["text"] == "final" and stored["raw_text"] == "<i>final</i>"

    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("<i>final</i>", USER, sent.message_id, parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", USER, 999)

    with_keys = await bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=keyboard)
    assert with_keys.reply_markup == keyboard
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(
            USER,
            "x",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("b", callback_data="x" * 65)]]
            ),
        )


async def test_url_buttons_telegram_cannot_open_and_messages_to_bots_are_refused(
    bot: Bot, fake: FakeTelegram
) -> None:
    def button(url: str) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup([[InlineKeyboardButton("Open", url=url)]])

    for url in ("https://t.me/libya_news/42", "http://news.example.org/a?b=1#c",
                "example.com/story", "tg://user?id=7"):
        sent = await bot.send_message(USER, "x", reply_markup=button(url))
        assert sent.reply_markup == button(url)
    # An empty or undotted host, whitespace or a control character: the whole message is
    # refused, as Telegram does.
    for url in ("https://", "http://intranet/story/1", "http://localhost:8080/a",
                "https://exa mple.com/story", "https://example.com/\x00x",
                "ftp://example.com/a"):
        with pytest.raises(BadRequest, match=r"(?i)BUTTON_URL_INVALID"):
            await bot.send_message(USER, "x", reply_markup=button(url))
    assert len(fake.sent_messages(USER)) == 4
    # GroupAnonymousBot, say: a bot cannot write to a bot.
    with pytest.raises(Forbidden, match=r"(?i)bot can.t send messages to bots"):
        await bot.send_message(1087968824, "x")


async def test_callback_query_can_be_answered_once(bot: Bot, fake: FakeTelegram) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("More", callback_data="more")]])
    await bot.send_message(USER, "answer", reply_markup=keyboard)
    (shown,) = fake.sent_messages(USER)
    update = Update.de_json(fake.callback_query(USER, USER, shown, "more"), bot)

    assert update.callback_query is not None and update.callback_query.data == "more"
    assert update.callback_query.message is not None
    assert update.callback_query.message.reply_markup == keyboard
    assert await bot.answer_callback_query(update.callback_query.id, text="ok")
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(update.callback_query.id)


# --------------------------------------------------------------------------- getUpdates


async def test_get_updates_returns_updates_and_honours_offset(bot: Bot, fake: FakeTelegram) -> None:
    fake.private_text(USER, "/start", first_name="Salma", language_code="ar")
    fake.private_text(USER, "hello")

    updates = await bot.get_updates()
    assert [u.message.text for u in updates if u.message] == ["/start", "hello"]
    first = updates[0].message
    assert first is not None and first.from_user is not None
    assert first.from_user.language_code == "ar" and first.chat.type == "private"
    assert first.entities == (MessageEntity(MessageEntity.BOT_COMMAND, 0, 6),)

    limited = await bot.get_updates(limit=1)
    assert [u.update_id for u in limited] == [updates[0].update_id]
    # An offset confirms every earlier update; Telegram never returns them again.
    assert [u.update_id for u in await bot.get_updates(offset=updates[1].update_id)] == [
        updates[1].update_id
    ]
    assert await bot.get_updates(offset=updates[1].update_id + 1) == ()
    assert fake.pending_updates == []


async def test_long_poll_returns_as_soon_as_an_update_arrives(bot: Bot, fake: FakeTelegram) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.2)
    assert not poll.done()
    fake.private_text(USER, "wake up")
    updates = await asyncio.wait_for(poll, 3)
    assert [u.message.text for u in updates if u.message] == ["wake up"]
    assert loop.time() - started < 3


async def test_long_poll_times_out_empty(bot: Bot) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 < loop.time() - started < 3


async def test_builders_make_updates_ptb_understands(bot: Bot, fake: FakeTelegram) -> None:
    fake.set_admins(GROUP, [7])
    fake.set_privacy(False)  # the plain mention below reaches the bot
    to_bot = await bot.send_message(GROUP, "earlier answer")
    fake.group_text(GROUP, 7, "/ask@khabar_test_bot what happened?")
    fake.group_text(GROUP, 7, "and then?", reply_to_bot_message=to_bot.to_dict())
    fake.group_text(GROUP, 8, "hey @khabar_test_bot 😀 https://example.com/a.")
    fake.channel_post(-1005, "@news", 42, "Breaking")
    fake.channel_post(-1005, "news", 42, "Breaking (corrected)", edited=True)
    fake.forwarded_channel_post(USER, -1005, "news", 42, "Breaking")

    command, reply, mention, post, edit, forward = await bot.get_updates()

    assert command.message is not None and command.message.chat.type == "supergroup"
    assert command.message.entities[0].type == MessageEntity.BOT_COMMAND
    assert command.message.parse_entity(command.message.entities[0]) == "/ask@khabar_test_bot"
    assert reply.message is not None and reply.message.reply_to_message is not None
    assert reply.message.reply_to_message.from_user is not None
    assert reply.message.reply_to_message.from_user.id == BOT_ID
    assert mention.message is not None
    assert mention.message.parse_entities() == {
        MessageEntity(MessageEntity.MENTION, 4, 16): "@khabar_test_bot",
        MessageEntity(MessageEntity.URL, 24, 21): "https://example.com/a",
    }
    assert post.channel_post is not None and post.channel_post.chat.username == "news"
    assert post.channel_post.message_id == 42
    assert edit.edited_channel_post is not None and edit.edited_channel_post.edit_date
    assert forward.message is not None
    origin = forward.message.forward_origin
    assert isinstance(origin, MessageOriginChannel)
    assert (origin.chat.id, origin.chat.username, origin.message_id) == (-1005, "news", 42)


async def test_document_can_be_downloaded(bot: Bot, fake: FakeTelegram) -> None:
    fake.document(USER, USER, "feeds.opml", b"<opml/>", "text/x-opml", caption="my feeds")
    (update,) = await bot.get_updates()
    assert update.message is not None and update.message.document is not None
    assert update.message.document.file_name == "feeds.opml"
    assert update.message.caption == "my feeds"

    file = await bot.get_file(update.message.document.file_id)
    assert file.file_size == 7
    assert bytes(await file.download_as_bytearray()) == b"<opml/>"
    with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
        await bot.get_file("nope")


# --------------------------------------------------------------------------- chats, commands


async def test_chat_members_and_admins(bot: Bot, fake: FakeTelegram) -> None:
    fake.set_admins(GROUP, [7, 9], creator=5)
    fake.add_channel(-1005, "news", title="News")

    assert (await bot.get_chat_member(GROUP, 7)).status == "administrator"
    assert (await bot.get_chat_member(GROUP, 5)).status == "creator"
    assert (await bot.get_chat_member(GROUP, 8)).status == "member"
    admins = await bot.get_chat_administrators(GROUP)
    assert [a.user.id for a in admins] == [5, 7, 9]
    me_in_channel = await bot.get_chat_member("@news", BOT_ID)
    assert me_in_channel.status == "administrator"
    assert getattr(me_in_channel, "can_post_messages", False)
    chat = await bot.get_chat("@news")
    assert (chat.id, chat.type, chat.title) == (-1005, "channel", "News")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.get_chat("@nowhere")
    await bot.send_message("@news", "posted")
    assert fake.sent_messages(-1005)[0]["sender_chat"]["id"] == -1005


async def test_commands_round_trip(bot: Bot, fake: FakeTelegram) -> None:
    commands = [BotCommand("ask", "Ask about the news"), BotCommand("help", "Help")]
    assert await bot.set_my_commands(commands)
    assert await bot.set_my_commands([BotCommand("ask", "اسأل")], language_code="ar")
    assert await bot.get_my_commands() == tuple(commands)
    assert [c.command for c in await bot.get_my_commands(language_code="ar")] == ["ask"]
    assert fake.commands() == [c.to_dict() for c in commands]
    # PTB JSON-encodes the list into a form field; the fake decodes it.
    assert isinstance(fake.calls_to("setMyCommands")[0]["commands"], list)
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Ask", "upper case is not allowed")])
    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()


async def test_unknown_methods_are_recorded(bot: Bot, fake: FakeTelegram) -> None:
    assert await bot.send_chat_action(USER, "typing")
    with pytest.raises(BadRequest):
        await bot.send_chat_action(USER, "dancing")
    assert await bot.do_api_request("someFutureMethod", {"chat_id": USER, "message_id": 1})
    assert fake.unknown_calls == [("someFutureMethod", {"chat_id": USER, "message_id": 1})]
    params = await fake.wait_for_call("sendChatAction", timeout=1, count=2)
    assert params["action"] == "dancing"
    with pytest.raises(TimeoutError):
        await fake.wait_for_call("sendPhoto", timeout=0.1)


# --------------------------------------------------------------------------- Application


async def test_application_echoes_a_private_message(fake: FakeTelegram) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        await update.message.reply_text(update.message.text.upper())

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_html("<b>Welcome</b>")

    app = _app(fake)
    app.add_handler(CommandHandler("start", start))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        fake.private_text(USER, "/start")
        hello = fake.private_text(USER, "hello")["message"]
        welcome, echoed = await fake.wait_for_messages(USER, 2, timeout=5)
    finally:
        # PTB sends a last getUpdates on stop; the fake must still be up.
        await app.updater.stop()
        await app.stop()
        await app.shutdown()

    assert welcome["text"] == "Welcome" and welcome["entities"][0]["type"] == "bold"
    assert echoed["text"] == "HELLO"
    # reply_text quotes the message it answers only outside private chats (PTB's default).
    assert "reply_to_message" not in echoed and hello["chat"]["type"] == "private"
    assert fake.pending_updates == []  # the final getUpdates confirmed everything
    assert fake.calls_to("deleteWebhook")  # start_polling bootstraps by deleting the webhook


# --------------------------------------------------------------------------- webhook


@pytest.fixture
async def receiver() -> AsyncIterator[
    tuple[str, list[tuple[str | None, dict[str, Any]]], list[int]]
]:
    """A tiny webhook endpoint: answers the statuses in `plan` (then 200) and records what
    arrived as (secret header, update)."""
    received: list[tuple[str | None, dict[str, Any]]] = []
    plan: list[int] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get(SECRET_HEADER), await request.json()))
        return web.Response(status=plan.pop(0) if plan else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/hook", received, plan
    await runner.cleanup()


async def test_webhook_delivers_with_secret(
    bot: Bot,
    fake: FakeTelegram,
    receiver: tuple[str, list[tuple[str | None, dict[str, Any]]], list[int]],
) -> None:
    url, received, plan = receiver
    plan.append(500)  # the first attempt fails; Telegram retries the same update
    assert await bot.set_webhook(url, secret_token="s3cret-token_1")
    update = fake.private_text(USER, "via webhook")

    deliveries = await fake.wait_for_webhook_deliveries(2)
    assert deliveries == [(update["update_id"], 500), (update["update_id"], 200)]
    assert received == [("s3cret-token_1", update), ("s3cret-token_1", update)]
    info = await bot.get_webhook_info()
    assert info.url == url and info.pending_update_count == 0
    assert info.last_error_message is not None and "500" in info.last_error_message
    with pytest.raises(Conflict):
        await bot.get_updates()

    assert await bot.delete_webhook()
    fake.private_text(USER, "via polling")
    assert [u.message.text for u in await bot.get_updates() if u.message] == ["via polling"]


async def test_a_second_poller_terminates_the_first(bot: Bot, fake: FakeTelegram) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await fake.wait_for_call("getUpdates")
    # A second Bot: one Bot's getUpdates connection pool holds a single connection.
    async with Bot(fake.token, base_url=fake.base_url) as other:
        second = asyncio.create_task(other.get_updates(timeout=10))
        with pytest.raises(Conflict, match=r"(?i)terminated by other getUpdates"):
            await asyncio.wait_for(first, 3)
        fake.private_text(USER, "for the survivor")
        assert len(await asyncio.wait_for(second, 3)) == 1


async def test_stop_does_not_wait_for_pending_long_polls() -> None:
    fake = FakeTelegram()
    await fake.start()
    async with Bot(fake.token, base_url=fake.base_url) as bot:
        poll = asyncio.create_task(bot.get_updates(timeout=30))
        await fake.wait_for_call("getUpdates")
        loop = asyncio.get_running_loop()
        started = loop.time()
        await fake.stop()
        assert loop.time() - started < 2
        assert await asyncio.wait_for(poll, 2) == ()


async def test_privacy_mode_delivers_what_telegram_does(bot: Bot, fake: FakeTelegram) -> None:
    me = await bot.get_me()
    assert me.can_read_all_group_messages is False  # Telegram's default for a new bot
    to_bot = await bot.send_message(GROUP, "an answer")
    fake.group_text(GROUP, 7, "plain talk")
    fake.group_text(GROUP, 7, f"@{BOT_USERNAME} a mention")
    fake.group_text(GROUP, 7, "/weather@other_bot")
    fake.group_text(GROUP, 7, "/ask unaddressed")
    fake.group_text(GROUP, 7, f"/ask@{BOT_USERNAME} addressed")
    fake.group_text(GROUP, 7, "a reply", reply_to_bot_message=to_bot.to_dict())
    got = [u.effective_message.text for u in await bot.get_updates()]
    assert got == ["/ask unaddressed", f"/ask@{BOT_USERNAME} addressed", "a reply"]
    assert len(fake.privacy_dropped) == 3
    fake.set_admins(GROUP, [BOT_ID])  # an administrator sees everything
    fake.group_text(GROUP, 7, "plain talk")
    (seen,) = [u for u in await bot.get_updates(offset=-1)]
    assert seen.effective_message.text == "plain talk"


async def test_migration_removal_and_topics_answer_as_telegram(bot: Bot,
                                                               fake: FakeTelegram) -> None:
    fake.group_text(-55, 7, "/start", chat_type="group")
    fake.migrate_group(-55, -1009955, 7)
    updates = await bot.get_updates()
    service = [u.effective_message for u in updates][-2:]
    assert service[0].migrate_to_chat_id == -1009955
    assert service[1].migrate_from_chat_id == -55 and service[1].chat.type == "supergroup"
    with pytest.raises(ChatMigrated) as migrated:
        await bot.send_message(-55, "hello")
    assert migrated.value.new_chat_id == -1009955
    await bot.send_message(-1009955, "hello")

    fake.removed_from(-1009955, 7)
    with pytest.raises(Forbidden, match="kicked"):
        await bot.send_message(-1009955, "still there?")

    fake.add_topic(GROUP, 77)
    sent = await bot.send_message(GROUP, "in the topic", message_thread_id=77)
    assert sent.message_thread_id == 77
    with pytest.raises(BadRequest, match="thread not found"):
        await bot.send_message(GROUP, "nowhere", message_thread_id=78)
