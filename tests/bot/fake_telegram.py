"""A fake Telegram Bot API server for end-to-end tests of the bot.

Telegram cannot be reached from the test machines, so the bot runs against this server with
python-telegram-bot's real HTTP client::

    async with FakeTelegram() as fake:
        app = (
            ApplicationBuilder()
            .token(fake.token)
            .base_url(fake.base_url)
            .base_file_url(fake.base_file_url)
            .build()
        )
        fake.private_text(111, "/start")
        ...

It answers like Telegram where tests are likely to trip (limits, HTML entity parsing, edits that
change nothing, replies to unknown messages, URL buttons it cannot open, messages to bots, flood
control) and records every request in `calls`.
Deliberately stricter than Telegram: a bare `&` in HTML is an error (Telegram keeps it), and a
reply to a message the fake never saw fails unless allow_sending_without_reply is set.
Modelled as Telegram does by default: group privacy mode (a bot that is not the group's
administrator gets only commands for it, replies to its messages and service messages; see
`set_privacy`), a group's upgrade to a supergroup (`migrate_group`), 403 Forbidden for a bot
removed from a chat or blocked, forum topics (`message_thread_id`) and edited channel posts.
Not modelled: Markdown parsing, inline mode.
Everything runs on the event loop that calls `start()`; the helpers are not thread safe.
"""

import asyncio
import contextlib
import inspect
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

from aiohttp import ClientError, ClientSession, ClientTimeout, web

BOT_ID = 4242
BOT_USERNAME = "khabar_test_bot"
BOT_USER: dict[str, Any] = {
    "id": BOT_ID,
    "is_bot": True,
    "first_name": "Khabar",
    "username": BOT_USERNAME,
}
# Who anonymous group administrators appear as (with the group in `sender_chat`).
ANONYMOUS_ADMIN: dict[str, Any] = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
# Who a linked channel's posts come from in its discussion group (`automatic_forward`).
TELEGRAM_SERVICE: dict[str, Any] = {"id": 777000, "is_bot": False, "first_name": "Telegram"}
# Service messages: privacy mode delivers them all.
_SERVICE_KEYS = frozenset(
    {
        "new_chat_members",
        "left_chat_member",
        "new_chat_title",
        "group_chat_created",
        "supergroup_chat_created",
        "migrate_to_chat_id",
        "migrate_from_chat_id",
        "pinned_message",
        "forum_topic_created",
    }
)
# Shaped like a real token (bot id, colon, 35 characters) so token parsers do not choke on it.
DEFAULT_TOKEN = f"{BOT_ID}:AAFakeTokenForKhabarEndToEndTests01"

MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_DROP = 0  # error_code of an injected failure that closes the connection (`drop_next`)

_T = TypeVar("_T")

# Update types Telegram sends when allowed_updates is unset or empty.
_DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# PTB sends strings as they are and everything else JSON-encoded, so a form value is JSON
# unless the parameter is a string one; these must never be JSON-decoded ("123" stays a str).
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "inline_message_id",
        "url",
        "secret_token",
        "ip_address",
        "action",
        "language_code",
        "file_id",
        "business_connection_id",
        "message_effect_id",
        "description",
        "short_description",
        "name",
        "title",
        "emoji",
        "first_name",
        "last_name",
        "phone_number",
        "vcard",
        "address",
        "question",
        "explanation",
        "custom_title",
        "invite_link",
        "payload",
        "currency",
        "start_parameter",
        "next_offset",
        "error_message",
        "game_short_name",
        "photo",
        "document",
        "audio",
        "video",
        "voice",
        "animation",
        "sticker",
        "video_note",
        "thumbnail",
    }
)
_CHAT_ID_PARAMS = frozenset({"chat_id", "from_chat_id", "sender_chat_id"})
_AUTO_ENTITY_RE = re.compile(
    r"(?P<bot_command>(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?)(?![\w/])"
    r"|(?P<mention>(?<!\w)@[A-Za-z0-9_]{5,32})(?!\w)"
    r"|(?P<url>https?://[^\s<>\"]+[^\s<>\".,;:!?)\]'])"
)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def auto_entities(text: str) -> list[dict[str, Any]]:
    """Entities Telegram detects by itself in plain text: /commands, @mentions and URLs."""
    entities = []
    for m in _AUTO_ENTITY_RE.finditer(text):
        kind = m.lastgroup
        assert kind is not None
        start, end = m.span(kind)
        entities.append(
            {
                "type": kind,
                "offset": utf16_len(text[:start]),
                "length": utf16_len(text[start:end]),
            }
        )
    return entities


class ApiError(Exception):
    """A Bot API error answer: HTTP status = error_code, as Telegram does."""

    def __init__(
        self, error_code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters


def _bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


# --------------------------------------------------------------------------- HTML entities

_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    }
)
_TAG_ENTITY = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_CHAR_ENTITY_RE = re.compile(r"&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8})|([a-zA-Z]+));")


@dataclass
class _OpenTag:
    name: str
    attrs: dict[str, str]
    offset: int  # UTF-16 offset in the visible text
    language: str | None = None  # set on <pre> by a nested <code class="language-...">


def _decode_char_entity(text: str, i: int) -> tuple[str, int] | None:
    m = _CHAR_ENTITY_RE.match(text, i)
    if m is None:
        return None
    dec, hexa, name = m.groups()
    if name is not None:
        ch = _NAMED_ENTITIES.get(name)
        return None if ch is None else (ch, m.end())
    code = int(dec) if dec is not None else int(hexa, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), m.end()


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Visible text and entities of an HTML-formatted message, the way Telegram parses it.

    Stricter than Telegram on one point: a `&` that does not start a known entity is an
    error (Telegram keeps it literally), so unescaped text from the bot is caught.
    Raises ApiError with Telegram's "can't parse entities" wording.
    """
    out: list[str] = []
    pos = 0  # UTF-16 length of `out`
    stack: list[_OpenTag] = []
    entities: list[dict[str, Any]] = []
    n = len(text)

    def byte_offset(i: int) -> int:
        return len(text[:i].encode())

    def fail(detail: str) -> ApiError:
        return _bad_request(f"can't parse entities: {detail}")

    def emit(ch: str) -> None:
        nonlocal pos
        out.append(ch)
        pos += utf16_len(ch)

    def read_entity(i: int) -> tuple[str, int]:
        decoded = _decode_char_entity(text, i)
        if decoded is None:
            raise fail(f'Character "&" at byte offset {byte_offset(i)} must be escaped as "&amp;"')
        return decoded

    i = 0
    while i < n:
        c = text[i]
        if c == "&":
            ch, i = read_entity(i)
            emit(ch)
            continue
        if c != "<":
            emit(c)
            i += 1
            continue
        begin = i
        i += 1
        if i < n and text[i] == "/":
            if not stack:
                raise fail(f"Unexpected end tag at byte offset {byte_offset(begin)}")
            j = i + 1
            while j < n and not text[j].isspace() and text[j] != ">":
                j += 1
            end_name = text[i + 1 : j].lower()
            while j < n and text[j].isspace():
                j += 1
            if j >= n or text[j] != ">":
                raise fail(f"Unclosed end tag at byte offset {byte_offset(begin)}")
            tag = stack.pop()
            if end_name and end_name != tag.name:
                raise fail(
                    f"Unmatched end tag at byte offset {byte_offset(begin)}, "
                    f'expected "</{tag.name}>", found "</{end_name}>"'
                )
            _close_tag(tag, pos, stack, entities)
            i = j + 1
            continue

        j = i
        while j < n and not text[j].isspace() and text[j] != ">":
            j += 1
        if j >= n:
            raise fail(f"Unclosed start tag at byte offset {byte_offset(begin)}")
        name = text[i:j].lower()
        if name not in _HTML_TAGS:
            raise fail(f'Unsupported start tag "{name}" at byte offset {byte_offset(begin)}')
        attrs: dict[str, str] = {}
        while True:
            while j < n and text[j].isspace():
                j += 1
            if j >= n:
                raise fail(f'Unclosed start tag "{name}" at byte offset {byte_offset(begin)}')
            if text[j] == ">":
                j += 1
                break
            a0 = j
            while j < n and not text[j].isspace() and text[j] not in "=>":
                j += 1
            attr = text[a0:j].lower()
            if not attr:
                raise fail(
                    f'Empty attribute name in the tag "{name}" at byte offset {byte_offset(begin)}'
                )
            while j < n and text[j].isspace():
                j += 1
            if j >= n or text[j] != "=":
                attrs[attr] = ""  # a bare attribute such as <blockquote expandable>
                continue
            j += 1
            while j < n and text[j].isspace():
                j += 1
            if j >= n:
                raise fail(f'Unclosed start tag "{name}" at byte offset {byte_offset(begin)}')
            value: list[str] = []
            if text[j] in "'\"":
                quote = text[j]
                j += 1
                while j < n and text[j] != quote:
                    if text[j] == "&":
                        ch, j = read_entity(j)
                        value.append(ch)
                    else:
                        value.append(text[j])
                        j += 1
                if j >= n:
                    raise fail(f"Unclosed start tag at byte offset {byte_offset(begin)}")
                j += 1
            else:
                while j < n and not text[j].isspace() and text[j] != ">":
                    value.append(text[j])
                    j += 1
            attrs[attr] = "".join(value)
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise fail(
                f'Tag "span" must have class "tg-spoiler" at byte offset {byte_offset(begin)}'
            )
        if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
            raise fail(
                f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {byte_offset(begin)}'
            )
        stack.append(_OpenTag(name, attrs, pos))
        i = j

    if stack:
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _close_tag(
    tag: _OpenTag, end: int, stack: list[_OpenTag], entities: list[dict[str, Any]]
) -> None:
    length = end - tag.offset
    parent = stack[-1] if stack else None
    if tag.name == "code" and parent is not None and parent.name == "pre":
        # <pre><code class="language-x"> is one pre entity with a language, as in Telegram.
        cls = tag.attrs.get("class", "")
        if cls.startswith("language-"):
            parent.language = cls.removeprefix("language-")
        return
    if length <= 0:
        return  # Telegram drops empty entities
    entity: dict[str, Any] = {"offset": tag.offset, "length": length}
    if tag.name == "a":
        href = tag.attrs.get("href")
        if not href:
            return
        entity.update(type="text_link", url=href)
    elif tag.name == "blockquote":
        entity["type"] = "expandable_blockquote" if "expandable" in tag.attrs else "blockquote"
    elif tag.name == "tg-emoji":
        entity.update(type="custom_emoji", custom_emoji_id=tag.attrs["emoji-id"])
    else:
        entity["type"] = _TAG_ENTITY[tag.name]
        if tag.name == "pre" and tag.language:
            entity["language"] = tag.language
    entities.append(entity)


def _strip_text(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram trims surrounding whitespace of a message and shifts entities with it."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    cut = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    kept = []
    for e in entities:
        start = max(0, e["offset"] - cut)
        end = min(e["offset"] + e["length"] - cut, total)
        if end > start:
            kept.append({**e, "offset": start, "length": end - start})
    return stripped, kept


# --------------------------------------------------------------------------- parameters


def _decode_form_value(name: str, value: str) -> Any:
    if name in _STRING_PARAMS:
        return value
    if name in _CHAT_ID_PARAMS:
        # "@channelusername" or a number; never JSON-decode a username.
        try:
            return int(value)
        except ValueError:
            return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _as_int(params: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise _bad_request(f"invalid {name} specified")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _bad_request(f"invalid {name} specified") from None


def _as_float(params: dict[str, Any], name: str, default: float) -> float:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _bad_request(f"invalid {name} specified") from None


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


def _as_json(params: dict[str, Any], name: str) -> Any:
    """JSON-typed parameter; JSON bodies carry objects, form bodies may carry strings."""
    value = params.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise _bad_request(f"can't parse {name} JSON object") from None
    return value


# --------------------------------------------------------------------------- the server


@dataclass
class FakeFile:
    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes
    file_name: str
    mime_type: str


@dataclass
class _Failure:
    method: str
    chat_id: int | str | None
    remaining: int
    error_code: int
    description: str
    parameters: dict[str, Any] | None


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    allowed_updates: list[str] | None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class _SentInfo:
    """What the bot actually sent, before Telegram turned it into text + entities."""

    raw_text: str | None
    parse_mode: str | None


@dataclass
class _State:
    """Mutable server state, kept apart so `reset()` is one assignment."""

    updates: list[dict[str, Any]] = field(default_factory=list)
    chats: dict[int, dict[str, Any]] = field(default_factory=dict)
    usernames: dict[str, int] = field(default_factory=dict)  # lowercased, without "@"
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    messages: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)
    next_message_id: dict[int, int] = field(default_factory=dict)
    sent_order: list[tuple[int, int]] = field(default_factory=list)
    sent_info: dict[tuple[int, int], _SentInfo] = field(default_factory=dict)
    admins: dict[int, list[int]] = field(default_factory=dict)
    creators: dict[int, int] = field(default_factory=dict)
    bot_admin_chats: set[int] = field(default_factory=set)
    blocked: set[int] = field(default_factory=set)
    files: dict[str, FakeFile] = field(default_factory=dict)
    callback_ids: set[str] = field(default_factory=set)
    answered_callbacks: set[str] = field(default_factory=set)
    commands: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    webhook: _Webhook | None = None
    allowed_updates: list[str] | None = None
    failures: list[_Failure] = field(default_factory=list)
    privacy: bool = True  # BotFather's /setprivacy: on for every new bot
    migrated: dict[int, int] = field(default_factory=dict)  # old group id -> supergroup id
    removed: set[int] = field(default_factory=set)  # chats the bot was removed from
    topics: dict[int, set[int]] = field(default_factory=dict)  # forum chat -> thread ids


class FakeTelegram:
    """An in-process Bot API server on 127.0.0.1 speaking enough of Telegram for the bot."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, webhook_retry_delay: float = 0.2) -> None:
        self.token = token
        self.webhook_retry_delay = webhook_retry_delay
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.unknown_calls: list[tuple[str, dict[str, Any]]] = []
        self.webhook_deliveries: list[tuple[int, int | None]] = []  # (update_id, status)
        self.filtered_updates: list[dict[str, Any]] = []  # dropped by allowed_updates
        self.privacy_dropped: list[dict[str, Any]] = []  # group messages privacy mode hid
        self.left: list[int] = []  # chats the bot left (leaveChat), in order
        self._s = _State()
        self._update_ids = itertools.count(100_001)
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._poll_generation = 0
        self._closing = False
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._methods: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
            name.lower(): (name, fn)
            for name, fn in {
                "getMe": self._get_me,
                "logOut": self._true,
                "close": self._true,
                "getUpdates": self._get_updates,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "sendMessage": self._send_message,
                "editMessageText": self._edit_message_text,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "deleteMessage": self._delete_message,
                "sendChatAction": self._send_chat_action,
                "answerCallbackQuery": self._answer_callback_query,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "getChat": self._get_chat,
                "getChatMember": self._get_chat_member,
                "getChatAdministrators": self._get_chat_administrators,
                "getFile": self._get_file,
                "leaveChat": self._leave_chat,
            }.items()
        }

    # ----------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeTelegram is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """For ApplicationBuilder.base_url: PTB appends the token itself."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_not_found)
        # A short shutdown timeout: a client that vanished mid long poll must not hold stop().
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        self._closing = False
        self._session = ClientSession(timeout=ClientTimeout(total=10))
        self._webhook_task = asyncio.create_task(self._webhook_loop())

    async def stop(self) -> None:
        self._closing = True
        self._notify()  # wakes pending long polls so they answer [] right away
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def reset(self) -> None:
        """Forget chats, messages, queued updates and the request log (token and port stay)."""
        self.calls.clear()
        self.unknown_calls.clear()
        self.webhook_deliveries.clear()
        self.filtered_updates.clear()
        self.privacy_dropped.clear()
        self.left.clear()
        self._s = _State()
        self._notify()

    # ----------------------------------------------------------------- configuration

    def set_admins(self, chat_id: int, user_ids: list[int], *, creator: int | None = None) -> None:
        """Administrators of a chat for getChatMember/getChatAdministrators.

        `creator` (optional) is reported with status "creator"; include BOT_ID in `user_ids`
        to make the bot an administrator.
        """
        self._s.admins[chat_id] = [u for u in user_ids if u != BOT_ID]
        if BOT_ID in user_ids:
            self._s.bot_admin_chats.add(chat_id)
        else:
            self._s.bot_admin_chats.discard(chat_id)
        if creator is not None:
            self._s.creators[chat_id] = creator

    def add_channel(self, chat_id: int, username: str, title: str | None = None) -> dict[str, Any]:
        """A channel the bot administers (so it may post there); returns the Chat object."""
        chat = self._channel_chat(chat_id, username, title)
        self._s.bot_admin_chats.add(chat_id)
        return chat

    def set_privacy(self, on: bool) -> None:
        """BotFather's /setprivacy. Privacy mode is on by default: in groups where the bot
        is no administrator it is then sent only commands (unaddressed or /cmd@this_bot),
        replies to its own messages and service messages."""
        self._s.privacy = on

    def sees_all(self, chat_id: int) -> bool:
        """Whether the bot is sent every message of this group."""
        return not self._s.privacy or chat_id in self._s.bot_admin_chats

    def added_to_group(
        self, chat_id: int, by_user: int, *, admin: bool = False, chat_type: str = "supergroup",
        title: str | None = None, is_forum: bool = False,
    ) -> dict[str, Any]:
        """`by_user` adds the bot to a group (as an administrator if `admin`): the
        my_chat_member update Telegram sends."""
        user = self._s.users.get(by_user) or self._user(by_user, "Tester", "en", None)
        chat = self._group_chat(chat_id, chat_type, title)
        if is_forum:
            chat["is_forum"] = True
            self._s.topics.setdefault(chat_id, set())
        self._s.removed.discard(chat_id)
        if admin:
            self._s.bot_admin_chats.add(chat_id)
        new = (_administrator(BOT_USER, False) if admin
               else {"status": "member", "user": BOT_USER})
        return self.enqueue({"my_chat_member": {
            "chat": chat, "from": user, "date": int(time.time()),
            "old_chat_member": {"status": "left", "user": BOT_USER},
            "new_chat_member": new}})

    def removed_from(self, chat_id: int, by_user: int, *, announce: bool = True) -> None:
        """The bot is removed from a group or channel: later sends get 403 Forbidden.
        `announce=False`: the my_chat_member update was lost (e.g. dropped at start-up)."""
        user = self._s.users.get(by_user) or self._user(by_user, "Tester", "en", None)
        chat = self._chat(chat_id)
        self._s.removed.add(chat_id)
        self._s.bot_admin_chats.discard(chat_id)
        if announce:
            self.enqueue({"my_chat_member": {
                "chat": chat, "from": user, "date": int(time.time()),
                "old_chat_member": {"status": "member", "user": BOT_USER},
                "new_chat_member": {"status": "left", "user": BOT_USER}}})

    def migrate_group(self, old_id: int, new_id: int, by_user: int, *,
                      announce: bool = True) -> None:
        """A basic group is upgraded to a supergroup, as Telegram does it: a service message
        with `migrate_to_chat_id` in the old chat, one with `migrate_from_chat_id` in the new,
        and from then on every send to the old id fails with 400 and `migrate_to_chat_id`."""
        user = self._s.users.get(by_user) or self._user(by_user, "Tester", "en", None)
        old = self._group_chat(old_id, "group", None)
        new = {"id": new_id, "type": "supergroup", "title": old.get("title", "Test group")}
        self._s.chats[new_id] = new
        self._s.migrated[old_id] = new_id
        if old_id in self._s.bot_admin_chats:
            self._s.bot_admin_chats.add(new_id)
        if old_id in self._s.admins:
            self._s.admins[new_id] = list(self._s.admins[old_id])
        if not announce:  # the service messages were lost (dropped while the bot was down)
            return
        self.enqueue({"message": self._incoming(old, user, migrate_to_chat_id=new_id)})
        self.enqueue({"message": {
            "message_id": self._new_message_id(new_id), "date": int(time.time()),
            "chat": new, "sender_chat": old, "migrate_from_chat_id": old_id}})

    def add_topic(self, chat_id: int, thread_id: int) -> None:
        """A forum topic (the group becomes a forum)."""
        chat = self._chat(chat_id)
        chat["is_forum"] = True
        self._s.topics.setdefault(chat_id, set()).add(thread_id)

    def block(self, user_id: int) -> None:
        """The user blocked the bot: sending to them fails with 403 like Telegram."""
        self._s.blocked.add(user_id)

    def fail_next(
        self,
        method: str,
        *,
        error_code: int = 400,
        description: str = "Bad Request: injected failure",
        times: int = 1,
        chat_id: int | str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        """The next `times` calls of `method` (for `chat_id` if given) answer this error."""
        self._s.failures.append(
            _Failure(method.lower(), chat_id, times, error_code, description, parameters)
        )

    def drop_next(self, method: str, *, chat_id: int | str | None = None, times: int = 1) -> None:
        """A network failure: the next `times` `method` calls (for `chat_id` if given) have
        their connection closed without an answer."""
        self.fail_next(method, error_code=_DROP, description="connection dropped", times=times,
                       chat_id=chat_id)

    def flood(
        self, chat_id: int, *, times: int = 1, retry_after: int = 1, method: str = "sendMessage"
    ) -> None:
        """Flood control: the next `times` `method` calls for the chat answer 429 retry_after."""
        self.fail_next(
            method,
            error_code=429,
            description=f"Too Many Requests: retry after {retry_after}",
            times=times,
            chat_id=chat_id,
            parameters={"retry_after": retry_after},
        )

    def add_file(self, content: bytes, file_name: str, mime_type: str) -> FakeFile:
        """Registers a file so getFile and the download URL serve it."""
        n = next(self._ids)
        folder = "photos" if mime_type.startswith("image/") else "documents"
        suffix = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        f = FakeFile(
            file_id=f"BQACAgQAAxkBAAI{n:06d}fake",
            file_unique_id=f"AgAD{n:06d}",
            file_path=f"{folder}/file_{n}.{suffix}",
            content=content,
            file_name=file_name,
            mime_type=mime_type,
        )
        self._s.files[f.file_id] = f
        return f

    # ----------------------------------------------------------------- inspection

    def sent_messages(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Messages the bot sent (current state, after edits), oldest first.

        Each is the Message object Telegram returned plus two keys that are not Bot API:
        `raw_text` (the text exactly as sent, e.g. with HTML tags) and `parse_mode`.
        """
        result = []
        for chat, mid in self._s.sent_order:
            if chat_id is not None and chat != chat_id:
                continue
            msg = self._s.messages.get(chat, {}).get(mid)
            if msg is None:
                continue  # deleted
            info = self._s.sent_info.get((chat, mid), _SentInfo(None, None))
            result.append({**msg, "raw_text": info.raw_text, "parse_mode": info.parse_mode})
        return result

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """The stored Message (sent by anyone) or None."""
        return self._s.messages.get(chat_id, {}).get(message_id)

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        """Parameters of every call of `method` (case-insensitive), oldest first."""
        return [p for m, p in self.calls if m.lower() == method.lower()]

    def commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]]:
        return list(self._s.commands.get((_scope_key(scope), language_code), []))

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by a getUpdates offset (or not yet delivered by webhook)."""
        return list(self._s.updates)

    async def wait_for_messages(
        self, chat_id: int, n: int, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Waits until the bot has sent at least `n` messages to the chat; returns them all."""

        def ready() -> list[dict[str, Any]] | None:
            msgs = self.sent_messages(chat_id)
            return msgs if len(msgs) >= n else None

        return await self._wait_until(
            ready,
            timeout,
            lambda: f"{n} message(s) to chat {chat_id}; got {self.sent_messages(chat_id)!r}",
        )

    async def wait_for_call(
        self, method: str, timeout: float = 5.0, *, count: int = 1
    ) -> dict[str, Any]:
        """Waits until `method` was called `count` times (earlier calls count); returns the
        parameters of the count-th call."""

        def ready() -> dict[str, Any] | None:
            found = self.calls_to(method)
            return found[count - 1] if len(found) >= count else None

        return await self._wait_until(
            ready,
            timeout,
            lambda: f"{count} call(s) of {method}; calls so far: {[m for m, _ in self.calls]}",
        )

    async def wait_for_webhook_deliveries(
        self, n: int, timeout: float = 5.0
    ) -> list[tuple[int, int | None]]:
        def ready() -> list[tuple[int, int | None]] | None:
            return list(self.webhook_deliveries) if len(self.webhook_deliveries) >= n else None

        return await self._wait_until(
            ready, timeout, lambda: f"{n} webhook deliveries; got {self.webhook_deliveries}"
        )

    # ----------------------------------------------------------------- update builders

    def enqueue(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queues a raw update (an update_id is assigned if missing) and returns it."""
        update.setdefault("update_id", next(self._update_ids))
        self._s.updates.append(update)
        self._notify()
        return update

    def private_text(
        self,
        user_id: int,
        text: str,
        first_name: str = "Tester",
        language_code: str = "en",
        *,
        username: str | None = None,
        reply_to_message: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        user = self._user(user_id, first_name, language_code, username)
        chat = self._private_chat(user)
        msg = self._incoming(chat, user, text=text, reply_to_message=reply_to_message)
        return self.enqueue({"message": msg})

    def group_text(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        reply_to_bot_message: dict[str, Any] | None = None,
        *,
        first_name: str = "Tester",
        language_code: str = "en",
        username: str | None = None,
        title: str | None = None,
        chat_type: str = "supergroup",
        thread_id: int | None = None,
        anonymous: bool = False,
    ) -> dict[str, Any]:
        """A group message; privacy mode may keep it from the bot (`privacy_dropped`).
        `thread_id`: sent in that forum topic. `anonymous`: sent by an anonymous
        administrator, as Telegram shows one: from GroupAnonymousBot, with `sender_chat`."""
        chat = self._group_chat(chat_id, chat_type, title)
        if anonymous:
            user = dict(ANONYMOUS_ADMIN)
            extra: dict[str, Any] = {"sender_chat": chat}
        else:
            user = self._user(user_id, first_name, language_code, username)
            extra = {}
        if thread_id is not None:
            self.add_topic(chat_id, thread_id)
            extra |= {"message_thread_id": thread_id, "is_topic_message": True}
        msg = self._incoming(chat, user, text=text, reply_to_message=reply_to_bot_message,
                             **extra)
        return self.deliver(msg)

    def deliver(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Queues a message update unless group privacy mode keeps it from the bot."""
        update: dict[str, Any] = {"message": msg}
        if self._bot_sees(msg):
            return self.enqueue(update)
        self.privacy_dropped.append(update)
        return update

    def _bot_sees(self, msg: dict[str, Any]) -> bool:
        chat = msg["chat"]
        if chat["type"] not in ("group", "supergroup") or self.sees_all(chat["id"]):
            return True
        if any(key in msg for key in _SERVICE_KEYS):
            return True
        replied = msg.get("reply_to_message") or {}
        if (replied.get("from") or {}).get("id") == BOT_ID:
            return True
        text = msg.get("text") or msg.get("caption") or ""
        m = re.match(r"/[A-Za-z0-9_]{1,32}(?:@([A-Za-z0-9_]{3,32}))?(?![\w/])", text)
        # Unaddressed commands reach every bot of the group; /cmd@other_bot only that bot.
        return m is not None and (m.group(1) is None or m.group(1).lower() == BOT_USERNAME.lower())

    def channel_post(
        self,
        chat_id: int,
        username: str,
        message_id: int,
        text: str,
        edited: bool = False,
        *,
        title: str | None = None,
    ) -> dict[str, Any]:
        chat = self._channel_chat(chat_id, username, title)
        now = int(time.time())
        old = self.message(chat_id, message_id)
        msg: dict[str, Any] = {
            "message_id": message_id,
            "date": old["date"] if old and edited else now,
            "chat": chat,
            "sender_chat": chat,
            "text": text,
        }
        if entities := auto_entities(text):
            msg["entities"] = entities
        if edited:
            msg["edit_date"] = now
        self._store(msg)
        return self.enqueue({"edited_channel_post" if edited else "channel_post": msg})

    def callback_query(
        self,
        user_id: int,
        chat_id: int,
        message: dict[str, Any],
        data: str,
        *,
        first_name: str = "Tester",
        language_code: str = "en",
    ) -> dict[str, Any]:
        """A button press on `message` (e.g. one of `sent_messages()`); its stored current
        version is used when the fake knows it."""
        user = self._user(user_id, first_name, language_code, None)
        query_id = str(4_000_000_000_000_000 + next(self._ids))
        self._s.callback_ids.add(query_id)
        current = self.message(chat_id, message["message_id"]) or _clean_message(message)
        return self.enqueue(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user,
                    "message": current,
                    # Stable per chat, as in Telegram.
                    "chat_instance": str(abs(hash(("khabar", chat_id))) % 10**18),
                    "data": data,
                }
            }
        )

    def document(
        self,
        chat_id: int,
        user_id: int,
        filename: str,
        content: bytes,
        mime_type: str,
        chat_type: str = "private",
        *,
        caption: str | None = None,
        first_name: str = "Tester",
        language_code: str = "en",
    ) -> dict[str, Any]:
        user = self._user(user_id, first_name, language_code, None)
        if chat_type == "private":
            chat = self._private_chat(user, chat_id)
        else:
            chat = self._group_chat(chat_id, chat_type, None)
        f = self.add_file(content, filename, mime_type)
        doc = {
            "file_name": filename,
            "mime_type": mime_type,
            "file_id": f.file_id,
            "file_unique_id": f.file_unique_id,
            "file_size": len(content),
        }
        msg = self._incoming(chat, user, document=doc, caption=caption)
        return self.deliver(msg)

    def automatic_forward(
        self, group: int, channel_id: int, username: str, message_id: int, text: str
    ) -> dict[str, Any]:
        """A post of the channel linked to `group` (its discussion group), as Telegram copies
        it there by itself: from "Telegram" (777000), the channel as `sender_chat`,
        `is_automatic_forward` set (privacy mode may keep it from the bot)."""
        channel = self._channel_chat(channel_id, username, None)
        chat = self._group_chat(group, "supergroup", None)
        origin = {"type": "channel", "chat": channel, "message_id": message_id,
                  "date": int(time.time())}
        msg = self._incoming(chat, dict(TELEGRAM_SERVICE), text=text, sender_chat=channel,
                             is_automatic_forward=True, forward_origin=origin)
        return self.deliver(msg)

    def forwarded_channel_post(
        self,
        user_id: int,
        from_chat_id: int,
        from_username: str,
        from_message_id: int,
        text: str,
        *,
        first_name: str = "Tester",
        language_code: str = "en",
        original_date: int | None = None,
        group: int | None = None,
    ) -> dict[str, Any]:
        """A user forwards a channel post to the bot (Bot API 7+: `forward_origin`), in
        private or into `group` (where privacy mode may keep it from the bot)."""
        user = self._user(user_id, first_name, language_code, None)
        channel = self._channel_chat(from_chat_id, from_username, None)
        origin = {
            "type": "channel",
            "chat": channel,
            "message_id": from_message_id,
            "date": original_date if original_date is not None else int(time.time()) - 3600,
        }
        chat = (self._private_chat(user) if group is None
                else self._group_chat(group, "supergroup", None))
        msg = self._incoming(chat, user, text=text, forward_origin=origin)
        return self.deliver(msg)

    # ----------------------------------------------------------------- internals: state

    def _notify(self) -> None:
        # Swap the event so each waiter sees exactly the changes after it started waiting.
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_until(
        self, ready: Callable[[], _T | None], timeout: float | None, what: Callable[[], str]
    ) -> _T:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            result = ready()
            if result is not None:
                return result
            event = self._changed
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"FakeTelegram: timed out waiting for {what()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def _user(
        self, user_id: int, first_name: str, language_code: str, username: str | None
    ) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username.lstrip("@")
        if language_code:
            user["language_code"] = language_code
        self._s.users[user_id] = user
        return user

    def _private_chat(self, user: dict[str, Any], chat_id: int | None = None) -> dict[str, Any]:
        chat = {"id": user["id"] if chat_id is None else chat_id, "type": "private"}
        chat.update({k: user[k] for k in ("first_name", "username") if k in user})
        self._s.chats[chat["id"]] = chat
        return chat

    def _group_chat(self, chat_id: int, chat_type: str, title: str | None) -> dict[str, Any]:
        chat = self._s.chats.get(chat_id)
        if chat is None or chat["type"] != chat_type or title is not None:
            chat = {"id": chat_id, "type": chat_type, "title": title or "Test group"}
            self._s.chats[chat_id] = chat
        return chat

    def _channel_chat(self, chat_id: int, username: str, title: str | None) -> dict[str, Any]:
        name = username.lstrip("@")
        chat = {"id": chat_id, "type": "channel", "title": title or name, "username": name}
        old = self._s.chats.get(chat_id)
        if old is not None and title is None and old.get("title"):
            chat["title"] = old["title"]
        self._s.chats[chat_id] = chat
        self._s.usernames[name.lower()] = chat_id
        return chat

    def _chat(self, chat_id: int) -> dict[str, Any]:
        """The Chat object for an id, inventing one for chats no update mentioned yet."""
        chat = self._s.chats.get(chat_id)
        if chat is None:
            if chat_id > 0:
                chat = {"id": chat_id, "type": "private", "first_name": "User"}
            else:
                chat = {"id": chat_id, "type": "supergroup", "title": "Test group"}
            self._s.chats[chat_id] = chat
        return chat

    def _new_message_id(self, chat_id: int) -> int:
        mid = self._s.next_message_id.get(chat_id, 1)
        self._s.next_message_id[chat_id] = mid + 1
        return mid

    def _store(self, msg: dict[str, Any]) -> None:
        chat_id = msg["chat"]["id"]
        self._s.messages.setdefault(chat_id, {})[msg["message_id"]] = msg
        nxt = self._s.next_message_id.get(chat_id, 1)
        self._s.next_message_id[chat_id] = max(nxt, msg["message_id"] + 1)

    def _incoming(
        self, chat: dict[str, Any], user: dict[str, Any], **fields: Any
    ) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "message_id": self._new_message_id(chat["id"]),
            "from": user,
            "chat": chat,
            "date": int(time.time()),
        }
        reply_to = fields.pop("reply_to_message", None)
        if reply_to is not None:
            msg["reply_to_message"] = self._reply_copy(chat["id"], reply_to)
        for key, value in fields.items():
            if value is not None:
                msg[key] = value
        for key, entity_key in (("text", "entities"), ("caption", "caption_entities")):
            if key in msg and (entities := auto_entities(msg[key])):
                msg[entity_key] = entities
        self._store(msg)
        return msg

    def _reply_copy(self, chat_id: int, message: dict[str, Any]) -> dict[str, Any]:
        current = self.message(chat_id, message["message_id"]) or _clean_message(message)
        # Telegram does not nest reply_to_message more than one level.
        return {k: v for k, v in current.items() if k != "reply_to_message"}

    def _deliverable(self) -> list[dict[str, Any]]:
        """Queued updates the current allowed_updates lets through; drops the rest."""
        allowed = self._s.allowed_updates
        kept = []
        for upd in self._s.updates:
            kind = next((k for k in upd if k != "update_id"), "")
            ok = kind in allowed if allowed else kind not in _DEFAULT_EXCLUDED_UPDATES
            if ok:
                kept.append(upd)
            else:
                self.filtered_updates.append(upd)
        self._s.updates = kept
        return kept

    # ----------------------------------------------------------------- internals: HTTP

    async def _handle_not_found(self, request: web.Request) -> web.Response:
        return _error_response(ApiError(404, "Not Found"))

    async def _handle_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error_response(ApiError(401, "Unauthorized"))
        sent_name = request.match_info["method"]
        try:
            params = await _read_params(request)
        except ApiError as err:
            return _error_response(err)
        # Bot API method names are case-insensitive.
        name, handler = self._methods.get(sent_name.lower(), (sent_name, None))
        self.calls.append((name, params))
        self._notify()
        try:
            self._check_injected_failure(name, params)
            if handler is None:
                self.unknown_calls.append((name, params))
                result: Any = True
            else:
                result = handler(params)
                if inspect.isawaitable(result):
                    result = await result
        except ApiError as err:
            if err.error_code == _DROP:
                assert request.transport is not None
                request.transport.abort()  # the client sees the connection reset
            return _error_response(err)
        return web.json_response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error_response(ApiError(401, "Unauthorized"))
        path = request.match_info["path"]
        for f in self._s.files.values():
            if f.file_path == path:
                return web.Response(body=f.content, content_type="application/octet-stream")
        return _error_response(ApiError(404, "Not Found"))

    def _check_injected_failure(self, method: str, params: dict[str, Any]) -> None:
        for failure in self._s.failures:
            if failure.method != method.lower() or failure.remaining <= 0:
                continue
            if failure.chat_id is not None and not self._same_chat(
                failure.chat_id, params.get("chat_id")
            ):
                continue
            failure.remaining -= 1
            raise ApiError(failure.error_code, failure.description, failure.parameters)

    def _same_chat(self, want: int | str, got: Any) -> bool:
        try:
            return self._resolve_chat_id(want) == self._resolve_chat_id(got)
        except ApiError:
            return False

    def _resolve_chat_id(self, value: Any) -> int:
        if value is None or value == "":
            raise _bad_request("chat_id is empty")
        if isinstance(value, str) and value.startswith("@"):
            chat_id = self._s.usernames.get(value[1:].lower())
            if chat_id is None:
                raise _bad_request("chat not found")
            return chat_id
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _bad_request("chat not found") from None

    def _is_bot(self, user_id: int) -> bool:
        known = self._s.users.get(user_id) or {}
        return user_id in (BOT_ID, ANONYMOUS_ADMIN["id"]) or bool(known.get("is_bot"))

    def _writable_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(self._resolve_chat_id(params.get("chat_id")))
        if (new_id := self._s.migrated.get(chat["id"])) is not None:
            raise ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                           {"migrate_to_chat_id": new_id})
        if chat["type"] == "private" and self._is_bot(chat["id"]):
            raise ApiError(403, "Forbidden: bot can't send messages to bots")
        if chat["type"] == "private" and chat["id"] in self._s.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat["id"] in self._s.removed:
            kind = "channel" if chat["type"] == "channel" else f"{chat['type']} chat"
            raise ApiError(403, f"Forbidden: bot was kicked from the {kind}")
        thread = _as_int(params, "message_thread_id")
        if thread is not None and thread != 1 and (
            not chat.get("is_forum") or thread not in self._s.topics.get(chat["id"], set())
        ):
            raise _bad_request("message thread not found")
        if chat["type"] == "channel" and chat["id"] not in self._s.bot_admin_chats:
            raise _bad_request("need administrator rights in the channel chat")
        return chat

    # ----------------------------------------------------------------- internals: methods

    def _true(self, params: dict[str, Any]) -> bool:
        return True

    def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **BOT_USER,
            "can_join_groups": True,
            "can_read_all_group_messages": not self._s.privacy,
            "supports_inline_queries": False,
        }

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self._s.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _as_int(params, "offset")
        limit = min(max(_as_int(params, "limit", 100) or 100, 1), 100)
        timeout = max(_as_float(params, "timeout", 0.0), 0.0)
        if "allowed_updates" in params:
            self._s.allowed_updates = _as_json(params, "allowed_updates") or None
        if offset is not None:
            if offset > 0:
                # An offset confirms every update below it: Telegram forgets them for good.
                self._s.updates = [u for u in self._s.updates if u["update_id"] >= offset]
            elif offset < 0:
                self._s.updates = self._s.updates[offset:]
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()  # an older long poll still waiting is now superseded

        def ready() -> list[dict[str, Any]] | None:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            batch = self._deliverable()[:limit]
            return batch if batch or self._closing else None

        try:
            return await self._wait_until(ready, timeout, lambda: "updates")
        except TimeoutError:
            return []

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = params.get("url") or ""
        if not url:
            self._s.webhook = None  # Telegram: an empty URL removes the webhook
            self._notify()
            return True
        secret = params.get("secret_token") or None
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise _bad_request("secret token contains unallowed characters")
        if _as_bool(params.get("drop_pending_updates")):
            self._s.updates.clear()
        allowed = _as_json(params, "allowed_updates") if "allowed_updates" in params else None
        if allowed is not None:
            self._s.allowed_updates = allowed or None
        self._s.webhook = _Webhook(
            url=url,
            secret_token=secret,
            max_connections=_as_int(params, "max_connections", 40) or 40,
            allowed_updates=self._s.allowed_updates,
        )
        self._notify()
        return True

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self._s.webhook = None
        if _as_bool(params.get("drop_pending_updates")):
            self._s.updates.clear()
        self._notify()
        return True

    def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        hook = self._s.webhook
        info: dict[str, Any] = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._s.updates),
        }
        if hook is not None:
            info["max_connections"] = hook.max_connections
            if hook.allowed_updates:
                info["allowed_updates"] = hook.allowed_updates
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        return info

    async def _webhook_loop(self) -> None:
        """Delivers queued updates one at a time while a webhook is set, like Telegram does:
        an update leaves the queue only when the receiver answers 2xx."""

        def ready() -> tuple[_Webhook, dict[str, Any]] | None:
            if self._s.webhook is None:
                return None
            pending = self._deliverable()
            return (self._s.webhook, pending[0]) if pending else None

        while not self._closing:
            hook, update = await self._wait_until(ready, None, lambda: "webhook work")
            headers = {SECRET_HEADER: hook.secret_token} if hook.secret_token else {}
            status: int | None = None
            error = ""
            assert self._session is not None
            try:
                async with self._session.post(hook.url, json=update, headers=headers) as resp:
                    status = resp.status
                    error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
                    await resp.read()
            except (ClientError, TimeoutError) as exc:
                error = f"Connection failed: {exc!r}"
            self.webhook_deliveries.append((update["update_id"], status))
            if status is not None and 200 <= status < 300:
                with contextlib.suppress(ValueError):
                    self._s.updates.remove(update)
                self._notify()
                continue
            hook.last_error_date = int(time.time())
            hook.last_error_message = error
            self._notify()
            await asyncio.sleep(self.webhook_retry_delay)

    def _message_text(self, params: dict[str, Any]) -> tuple[str, list[dict[str, Any]], str]:
        """(visible text, entities, raw text) with Telegram's checks on message text."""
        raw = params.get("text")
        if raw is None or raw == "":
            raise _bad_request("message text is empty")
        raw = str(raw)
        parse_mode = str(params.get("parse_mode") or "")
        entities = _as_json(params, "entities")
        if entities:
            text = raw
        elif parse_mode.lower() == "html":
            text, entities = parse_html(raw)
        elif parse_mode:
            # Markdown is not parsed here; the raw length is an upper bound.
            text, entities = raw, []
        else:
            text, entities = raw, auto_entities(raw)
        text, entities = _strip_text(text, entities or [])
        if not text:
            raise _bad_request("message text is empty")
        # Telegram counts the limit in code points (entity offsets use UTF-16 units).
        if len(text) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        return text, entities, raw

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._writable_chat(params)
        text, entities, raw = self._message_text(params)
        reply_markup = _inline_markup(_as_json(params, "reply_markup"))
        msg: dict[str, Any] = {
            "message_id": 0,
            "date": int(time.time()),
            "chat": chat,
        }
        if chat["type"] == "channel":
            msg["sender_chat"] = chat
        else:
            msg["from"] = BOT_USER
        reply_to = self._find_reply_target(chat["id"], params)
        if reply_to is not None:
            msg["reply_to_message"] = {k: v for k, v in reply_to.items() if k != "reply_to_message"}
        msg["text"] = text
        if entities:
            msg["entities"] = entities
        if (thread := _as_int(params, "message_thread_id")) is not None and chat.get("is_forum"):
            msg["message_thread_id"] = thread
            msg["is_topic_message"] = True
        if reply_markup is not None:
            msg["reply_markup"] = reply_markup
        msg["message_id"] = self._new_message_id(chat["id"])
        self._store(msg)
        self._s.sent_order.append((chat["id"], msg["message_id"]))
        self._s.sent_info[(chat["id"], msg["message_id"])] = _SentInfo(
            raw, params.get("parse_mode")
        )
        self._notify()
        return msg

    def _find_reply_target(self, chat_id: int, params: dict[str, Any]) -> dict[str, Any] | None:
        reply = _as_json(params, "reply_parameters")
        if reply is None and params.get("reply_to_message_id") is not None:
            reply = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply"),
            }
        if not reply:
            return None
        if not isinstance(reply, dict):
            raise _bad_request("can't parse reply parameters JSON object")
        target_chat = chat_id
        if reply.get("chat_id") is not None:
            target_chat = self._resolve_chat_id(reply["chat_id"])
        mid = _as_int(reply, "message_id")
        target = self.message(target_chat, mid) if mid is not None else None
        if target is None and not _as_bool(reply.get("allow_sending_without_reply")):
            raise _bad_request("message to be replied not found")
        return target

    def _editable(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("inline_message_id"):
            raise _bad_request("inline messages are not supported by FakeTelegram")
        chat_id = self._resolve_chat_id(params.get("chat_id"))
        mid = _as_int(params, "message_id")
        if mid is None:
            raise _bad_request("message identifier is not specified")
        msg = self.message(chat_id, mid)
        if msg is None:
            raise _bad_request("message to edit not found")
        if (chat_id, mid) not in self._s.sent_info:
            raise _bad_request("message can't be edited")
        return msg

    def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        msg = self._editable(params)
        text, entities, raw = self._message_text(params)
        # Omitting reply_markup on an edit removes the inline keyboard in Telegram.
        markup = _inline_markup(_as_json(params, "reply_markup"))
        if (
            text == msg.get("text")
            and entities == msg.get("entities", [])
            and markup == msg.get("reply_markup")
        ):
            raise _not_modified()
        return self._apply_edit(
            msg,
            {"text": text, "entities": entities or None, "reply_markup": markup},
            _SentInfo(raw, params.get("parse_mode")),
        )

    def _edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        msg = self._editable(params)
        markup = _inline_markup(_as_json(params, "reply_markup"))
        if markup == msg.get("reply_markup"):
            raise _not_modified()
        return self._apply_edit(msg, {"reply_markup": markup}, None)

    def _apply_edit(
        self, msg: dict[str, Any], changes: dict[str, Any], info: _SentInfo | None
    ) -> dict[str, Any]:
        edited = dict(msg)
        for key, value in changes.items():
            if value is None:
                edited.pop(key, None)
            else:
                edited[key] = value
        edited["edit_date"] = int(time.time())
        self._store(edited)
        if info is not None:
            self._s.sent_info[(msg["chat"]["id"], msg["message_id"])] = info
        self._notify()
        return edited

    def _delete_message(self, params: dict[str, Any]) -> bool:
        chat_id = self._resolve_chat_id(params.get("chat_id"))
        mid = _as_int(params, "message_id")
        if mid is None or self._s.messages.get(chat_id, {}).pop(mid, None) is None:
            raise _bad_request("message to delete not found")
        self._notify()
        return True

    def _send_chat_action(self, params: dict[str, Any]) -> bool:
        self._writable_chat(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        return True

    def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._s.callback_ids or query_id in self._s.answered_callbacks:
            raise _bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        if len(str(params.get("text") or "")) > 200:
            raise _bad_request("MESSAGE_TOO_LONG")
        self._s.answered_callbacks.add(query_id)
        return True

    def _set_my_commands(self, params: dict[str, Any]) -> bool:
        commands = _as_json(params, "commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad_request("can't parse commands JSON object")
        for cmd in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(cmd.get("command", ""))):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(cmd.get("description", ""))) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = (_scope_key(_as_json(params, "scope")), str(params.get("language_code") or ""))
        self._s.commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    def _get_my_commands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        key = (_scope_key(_as_json(params, "scope")), str(params.get("language_code") or ""))
        return list(self._s.commands.get(key, []))

    def _delete_my_commands(self, params: dict[str, Any]) -> bool:
        key = (_scope_key(_as_json(params, "scope")), str(params.get("language_code") or ""))
        self._s.commands.pop(key, None)
        return True

    def _known_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._resolve_chat_id(params.get("chat_id"))
        chat = self._s.chats.get(chat_id)
        if chat is None:
            raise _bad_request("chat not found")
        return chat

    def _get_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._known_chat(params)
        # Fields PTB 22's ChatFullInfo requires.
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _member(self, chat: dict[str, Any], user_id: int) -> dict[str, Any]:
        chat_id = chat["id"]
        if user_id == BOT_ID:
            user = BOT_USER
        else:
            user = self._s.users.get(user_id) or {
                "id": user_id,
                "is_bot": False,
                "first_name": "User",
            }
        if self._s.creators.get(chat_id) == user_id:
            return {"status": "creator", "user": user, "is_anonymous": False}
        is_bot_admin = user_id == BOT_ID and chat_id in self._s.bot_admin_chats
        if is_bot_admin or user_id in self._s.admins.get(chat_id, []):
            return _administrator(user, chat["type"] == "channel")
        return {"status": "member", "user": user}

    def _get_chat_member(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(self._resolve_chat_id(params.get("chat_id")))
        user_id = _as_int(params, "user_id")
        if user_id is None:
            raise _bad_request("invalid user_id specified")
        return self._member(chat, user_id)

    def _get_chat_administrators(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        chat = self._chat(self._resolve_chat_id(params.get("chat_id")))
        if chat["type"] == "private":
            raise _bad_request("there are no administrators in the private chat")
        ids: list[int] = []
        if (creator := self._s.creators.get(chat["id"])) is not None:
            ids.append(creator)
        ids += [u for u in self._s.admins.get(chat["id"], []) if u not in ids]
        if chat["id"] in self._s.bot_admin_chats:
            ids.append(BOT_ID)
        return [self._member(chat, u) for u in ids]

    def _leave_chat(self, params: dict[str, Any]) -> bool:
        """As Telegram: 400 in a private chat or for an unknown chat, 403 where the bot
        is no member; otherwise the bot is out (later sends get 403) and Telegram tells
        it so with a my_chat_member update from the bot itself."""
        chat_id = self._resolve_chat_id(params.get("chat_id"))
        if (new_id := self._s.migrated.get(chat_id)) is not None:
            raise ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                           {"migrate_to_chat_id": new_id})
        chat = self._s.chats.get(chat_id)
        if chat is None:
            raise _bad_request("chat not found")
        if chat["type"] == "private":
            raise _bad_request("chat member status can't be changed in private chats")
        if chat_id in self._s.removed:
            kind = "channel" if chat["type"] == "channel" else f"{chat['type']} chat"
            raise ApiError(403, f"Forbidden: bot is not a member of the {kind}")
        was = self._member(chat, BOT_ID)
        self._s.removed.add(chat_id)
        self._s.bot_admin_chats.discard(chat_id)
        self.left.append(chat_id)
        self.enqueue({"my_chat_member": {
            "chat": chat, "from": BOT_USER, "date": int(time.time()),
            "old_chat_member": was, "new_chat_member": {"status": "left", "user": BOT_USER}}})
        return True

    def _get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        f = self._s.files.get(str(params.get("file_id") or ""))
        if f is None:
            raise _bad_request("invalid file_id")
        if len(f.content) > MAX_DOWNLOAD_BYTES:
            raise _bad_request("file is too big")
        return {
            "file_id": f.file_id,
            "file_unique_id": f.file_unique_id,
            "file_size": len(f.content),
            "file_path": f.file_path,
        }


# --------------------------------------------------------------------------- helpers


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Parameters from the query string and a JSON, urlencoded or multipart body."""
    params: dict[str, Any] = {k: _decode_form_value(k, v) for k, v in request.query.items()}
    if not request.can_read_body:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise _bad_request("can't parse JSON body") from None
        if not isinstance(body, dict):
            raise _bad_request("JSON body must be an object")
        params.update(body)
        return params
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            params[key] = {
                "filename": value.filename,
                "content_type": value.content_type,
                "content": value.file.read(),
            }
        else:
            params[key] = _decode_form_value(key, str(value))
    return params


def _error_response(err: ApiError) -> web.Response:
    body: dict[str, Any] = {
        "ok": False,
        "error_code": err.error_code,
        "description": err.description,
    }
    if err.parameters:
        body["parameters"] = err.parameters
    return web.json_response(body, status=err.error_code)


def _not_modified() -> ApiError:
    return _bad_request(
        "message is not modified: specified new message content and reply markup are "
        "exactly the same as a current content and reply markup of the message"
    )


def _scope_key(scope: Any) -> str:
    return json.dumps(scope or {"type": "default"}, sort_keys=True)


def _clean_message(message: dict[str, Any]) -> dict[str, Any]:
    """A message dict from sent_messages() without the fake's own keys."""
    return {k: v for k, v in message.items() if k not in ("raw_text", "parse_mode")}


def _inline_markup(markup: Any) -> dict[str, Any] | None:
    """The reply_markup Telegram echoes in the Message: inline keyboards only. Rejects
    callback_data over 64 bytes and URLs it cannot open (`_button_url_ok`) as Telegram
    does."""
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        return None
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise _bad_request(
            "can't parse inline keyboard button: InlineKeyboardButton must be an array"
        )
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise _bad_request("can't parse inline keyboard button: Text buttons are unallowed")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
                raise _bad_request("BUTTON_DATA_INVALID")
            url = button.get("url")
            if url is not None and not _button_url_ok(str(url)):
                raise _bad_request("BUTTON_URL_INVALID")
    return {"inline_keyboard": rows} if rows else None


def _button_url_ok(url: str) -> bool:
    """Whether Telegram opens `url` from a button: tg://, or http(s) (the scheme may be
    left out) with a host that has a dot (not `localhost` or an intranet name), and no
    whitespace or control character anywhere."""
    if any(ch.isspace() or ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in url):
        return False
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, url = "http", "http://" + url
    if scheme.lower() == "tg":
        return bool(rest)
    if scheme.lower() not in ("http", "https"):
        return False
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    return "." in host.strip(".")


def _administrator(user: dict[str, Any], channel: bool) -> dict[str, Any]:
    member: dict[str, Any] = {
        "status": "administrator",
        "user": user,
        "can_be_edited": False,
        "is_anonymous": False,
        "can_manage_chat": True,
        "can_delete_messages": True,
        "can_manage_video_chats": True,
        "can_restrict_members": True,
        "can_promote_members": False,
        "can_change_info": True,
        "can_invite_users": True,
        "can_post_stories": True,
        "can_edit_stories": True,
        "can_delete_stories": True,
    }
    if channel:
        member.update(can_post_messages=True, can_edit_messages=True)
    else:
        member["can_pin_messages"] = True
    return member


__all__ = [
    "BOT_ID",
    "BOT_USER",
    "BOT_USERNAME",
    "DEFAULT_TOKEN",
    "SECRET_HEADER",
    "ApiError",
    "FakeFile",
    "FakeTelegram",
    "auto_entities",
    "parse_html",
    "utf16_len",
]
