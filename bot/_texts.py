"""Every word khabar's front ends say, in English and Arabic: one table, one key each.

The bot's own messages are Telegram HTML: anything interpolated from users or
articles must be escaped by the caller with ``_render.esc``. The labels of answers,
summaries and timelines, and the command menu (after the bot's messages), hold no
markup: the renderers escape them for Telegram and print them as they are in a
terminal. Every key exists in both languages (a test checks it).
"""

from __future__ import annotations

from typing import Any, Literal

# The languages of the table: of the bot's words, a user's /lang choice, a digest.
UiLang = Literal["en", "ar"]

TEXTS: dict[UiLang, dict[str, str]] = {
    "en": {
        "start": (
            "<b>khabar</b> answers questions about the news it has indexed, in Arabic or "
            "English, with numbered sources you can check.\n\nJust ask, e.g. "
            "<i>who struck Aleppo?</i>\nIn groups: <code>/ask your question</code>, or reply "
            "to one of my messages. /help lists everything I do."
        ),
        "help": (
            "<b>Ask</b>: write a question in a private chat; in groups use "
            "<code>/ask …</code> or reply to me (mentions reach me only where I am an "
            "administrator, or with privacy mode off). Follow-ups such as "
            "<i>and Homs?</i> continue your previous question.\n\n"
            "/ask — ask about the news\n"
            "/sources — outlets in the index\n"
            "/summary — what was covered (24h, 7d or a topic)\n"
            "/timeline — a story's articles in date order (7d or a topic)\n"
            "/lang — answer language: ar, en or auto\n\n"
            "<b>Administrators</b>\n"
            "/add — index a web page or a feed: <code>/add https://…</code>\n"
            "/forget — forget an article (<code>/forget https://…</code>) or, in a group, "
            "what the group added (<code>/forget chat</code>)\n"
            "/stats — what the index holds\n"
            "/digest — daily digest: <code>/digest daily 08:00 Asia/Beirut</code> or "
            "<code>/digest off</code>\n"
            "Send me documents (.txt .md .html .json .jsonl) or forward channel posts to "
            "index them; add me to a channel as an administrator to index its posts."
        ),
        "ask_usage": "Ask a question after the command, e.g. <code>/ask who struck Aleppo?</code>",
        "rate_limited": "You are asking faster than I can answer well. Please try again in "
                        "{seconds} seconds.",
        "error": "Sorry, something went wrong on my side. Please try again in a moment.",
        "not_admin": "Sorry, only administrators can do that.",
        "leaving": (
            "Sorry, I only serve groups and channels my operators have approved, so I am "
            "leaving this one. An operator can approve it by sending me "
            "<code>/allow {chat_id}</code> in a private chat; then add me again."
        ),
        "allow_usage": (
            "Approve a group or channel: <code>/allow CHAT_ID</code> (its id is negative, "
            "e.g. -1001234567890; I tell it when I leave a chat). Withdraw it: "
            "<code>/revoke CHAT_ID</code>.\nServed now: {chats}"
        ),
        "allowed": "Chat {chat_id} is approved: add me to it (again).",
        "revoked": "Chat {chat_id} is no longer approved.",
        "revoked_configured": (
            "Chat {chat_id} is approved by KHABAR_ALLOWED_CHATS: remove it there to stop "
            "serving it."
        ),
        "lang_set": "I will use English for my own words.",
        "lang_auto": "I will follow the language of each question.",
        "lang_usage": "Choose <code>/lang ar</code>, <code>/lang en</code> or "
                      "<code>/lang auto</code> (follow each question). Now: {current}.",
        "lang_anonymous": "Anonymous administrators all share one Telegram identity, so I "
                          "cannot keep a language for you alone: send <code>/lang</code> "
                          "as yourself to choose one.",
        "doc_unsupported": "I can index .txt, .md, .html, .json and .jsonl files; "
                           "<i>{name}</i> is not one of them.",
        "doc_too_big": "<i>{name}</i> is too large to download ({size} MB; the limit is "
                       "{limit} MB).",
        "doc_download_failed": "I could not download <i>{name}</i> from Telegram: {reason}",
        "report_head": "<b>Indexed {name}</b>: {summary}",
        "report_more": "… and {n} more",
        "add_usage": "Give a web page or feed address: <code>/add https://…</code>",
        "forget_usage": "Say what to forget: <code>/forget https://…</code> (an article) or, "
                        "in a group, <code>/forget chat</code> (everything this group added).",
        "forgot": "Forgot {n} article(s).",
        "sources_head": "<b>Outlets in the index</b> ({n})",
        "sources_more": "… and {n} more",
        "empty": "Nothing is indexed yet.",
        "stats": ("<b>Index</b>\narticles: {articles}\npassages: {passages}\noutlets: {outlets}"
                  "\nlanguages: {languages}\npublished: {first} … {last}"),
        "stats_chat": "from this chat: {n} article(s)",
        "stats_bot": "questions answered since start: {answered}; up {uptime}",
        "expired": "This answer is no longer available; please ask again.",
        "more_head": "<b>More sources</b> ({first}–{last} of {total})",
        "digest_usage": "Use <code>/digest daily HH:MM [time zone] [ar|en]</code>, e.g. "
                        "<code>/digest daily 08:00 Asia/Beirut ar</code> or "
                        "<code>/digest daily 08:00 +03:00</code> (UTC if none), or "
                        "<code>/digest off</code>. For a channel, from a private chat: "
                        "<code>/digest @channel daily 08:00</code>.{current}",
        "digest_current": "\nNow: daily at {time}.",
        "digest_on": "Daily digest scheduled at {time}.",
        "digest_off": "Daily digest stopped.",
        "digest_none": "There is no daily digest here.",
        "digest_no_channel": "I cannot set up a digest for {channel}: it must be a channel "
                             "where I am an administrator, and you one of its "
                             "administrators.",
        "digest_stopped": "The daily digest of chat <code>{chat}</code> was stopped: Telegram "
                          "refused my post ({reason}). Add me back and use /digest again.",
        "digest_head": "<b>Daily digest</b> — {start} … {end} {zone}",
        "group_hello": "Hello! I answer questions about the news, with sources.\n\n{access}"
                       "\n\n/help lists everything I do.",
        "group_limited": "In this group I see only commands and replies to my messages "
                         "(Telegram's privacy mode): ask with <code>/ask@{bot} …</code> or "
                         "reply to one of my messages. Mentions, forwarded channel posts and "
                         "documents do not reach me. To enable them, make me an administrator "
                         "of the group, or turn privacy mode off with @BotFather "
                         "(<code>/setprivacy</code>) and add me to the group again.",
        "group_full": "I see every message in this group: ask with <code>/ask@{bot} …</code>, "
                      "mention me or reply to my messages; administrators can forward channel "
                      "posts and send documents to index them.",
        "add_to_group": "Add me to a group",
        "forward_intro": "What else was reported about this post:",
        "index_it": "Index it (administrators)",
        "ask_fresh": "Ask it fresh",
        "unknown_command": "I do not know that command. /help lists what I do.",
        "status_added": "added", "status_replaced": "replaced",
        "status_unchanged": "unchanged", "status_duplicate": "duplicate",
        "status_error": "refused",
        "nothing": "nothing to index",
        # Answers (plain text, escaped where they go into HTML).
        "answer": "Answer", "sources": "Sources", "related": "Related passages",
        "abstain": "The indexed news does not cover this.",
        "probably": "Probably (the evidence is not certain; check the passages)",
        "paragraph": "paragraph {i} of {n}", "no_date": "undated",
        "more": "More sources", "open": "Open article", "no_more": "No more sources.",
        "filters": "Filters", "follow_up": "Read as a follow-up to",
        "generated": "Summary (generated from the sources)",
        "relaxed_time": "Nothing indexed was published in the period the question names; "
                        "these come from any date.",
        # Summaries and story timelines (plain text, escaped likewise).
        "summary_title": "What was covered",
        "summary_topic": "topic",
        "summary_outlets": "outlets",
        "summary_counts": "stories: {stories} · articles: {articles} · outlets: {outlets}",
        "summary_shown": "showing the top {n}",
        "summary_undated": "{n} article(s) state no publication date; they are placed by when "
                           "khabar indexed them.",
        "summary_omitted": "The {n} oldest articles of the period were left out; choose a "
                           "shorter period to include them.",
        "summary_empty": "Nothing was covered in this period.",
        "summary_empty_topic": "Nothing about {topic} was covered in this period.",
        "story_articles": "articles: {n}",
        "story_outlets": "outlets: {n}",
        "story_single_outlet": "single outlet",
        "timeline": "Timeline",
        "timeline_indexed": "indexed",
        "story_more_outlets": "+{n}",
        "story_only_lang_ar": "only in Arabic",
        "story_only_lang_en": "only in English",
        "story_versions": "versions",
        "story_copies": "wire copies: {n}",
        # The command menu.
        "command_ask": "Ask about the news",
        "command_summary": "What was covered: 24h, 7d or a topic",
        "command_timeline": "A story's articles in date order: 7d or a topic",
        "command_sources": "Outlets in the index",
        "command_lang": "Answer language: ar, en or auto",
        "command_help": "What I can do",
        "command_start": "Start",
        "command_add": "Admins: index a page or feed",
        "command_forget": "Admins: forget an article",
        "command_stats": "Admins: what the index holds",
        "command_digest": "Admins: daily digest (daily HH:MM or off)",
    },
    "ar": {
        "start": (
            "<b>خبر</b> يجيب عن أسئلتك حول الأخبار المفهرسة، بالعربية أو الإنجليزية، مع مصادر "
            "مرقّمة يمكنك التحقق منها.\n\nاسأل مباشرة، مثلًا: <i>من قصف حلب؟</i>\n"
            "في المجموعات: <code>/ask سؤالك</code> أو الرد على إحدى رسائلي. "
            "اكتب /help لمعرفة كل ما أقوم به."
        ),
        "help": (
            "<b>السؤال</b>: اكتب سؤالك في محادثة خاصة؛ وفي المجموعات استخدم "
            "<code>/ask …</code> أو رد على رسائلي (لا تصلني الإشارات إلا حيث أكون مشرفًا أو "
            "إذا أُوقف وضع الخصوصية). أسئلة المتابعة مثل "
            "<i>وماذا عن حمص؟</i> تكمل سؤالك السابق.\n\n"
            "/ask — اسأل عن الأخبار\n"
            "/sources — وسائل الإعلام في الفهرس\n"
            "/summary — ملخص التغطية (24h أو 7d أو موضوع)\n"
            "/timeline — مقالات قصة بترتيب تاريخها (7d أو موضوع)\n"
            "/lang — لغة الردود: ar أو en أو auto\n\n"
            "<b>للمشرفين</b>\n"
            "/add — فهرسة صفحة ويب أو خلاصة: <code>/add https://…</code>\n"
            "/forget — حذف مقال (<code>/forget https://…</code>) أو، في مجموعة، كل ما "
            "أضافته المجموعة (<code>/forget chat</code>)\n"
            "/stats — محتوى الفهرس\n"
            "/digest — موجز يومي: <code>/digest daily 08:00 Asia/Beirut</code> أو "
            "<code>/digest off</code>\n"
            "أرسل لي ملفات (.txt .md .html .json .jsonl) أو أعد توجيه منشورات القنوات "
            "لفهرستها؛ وأضفني مشرفًا في قناة لفهرسة منشوراتها."
        ),
        "ask_usage": "اكتب سؤالك بعد الأمر، مثلًا: <code>/ask من قصف حلب؟</code>",
        "rate_limited": "أسئلتك أسرع مما أستطيع الإجابة عنه جيدًا. حاول مجددًا بعد {seconds} ثانية.",
        "error": "عذرًا، حدث خطأ من جهتي. حاول مرة أخرى بعد قليل.",
        "not_admin": "عذرًا، هذا الأمر متاح للمشرفين فقط.",
        "leaving": (
            "عذرًا، أخدم فقط المجموعات والقنوات التي وافق عليها مشغّلو البوت، لذا سأغادر "
            "هذه المحادثة. يمكن لأحد المشغّلين الموافقة عليها بإرسال "
            "<code>/allow {chat_id}</code> إليّ في محادثة خاصة، ثم أضيفوني مجددًا."
        ),
        "allow_usage": (
            "للموافقة على مجموعة أو قناة: <code>/allow CHAT_ID</code> (معرّفها سالب، مثل "
            "-1001234567890؛ أذكره عند مغادرتي). لسحب الموافقة: "
            "<code>/revoke CHAT_ID</code>.\nالمحادثات المخدومة الآن: {chats}"
        ),
        "allowed": "تمت الموافقة على المحادثة {chat_id}: أضيفوني إليها (مجددًا).",
        "revoked": "سُحبت الموافقة على المحادثة {chat_id}.",
        "revoked_configured": (
            "المحادثة {chat_id} مسموح بها في KHABAR_ALLOWED_CHATS: احذفها من هناك لإيقاف "
            "خدمتها."
        ),
        "lang_set": "سأستخدم العربية في ردودي.",
        "lang_auto": "سأتبع لغة كل سؤال.",
        "lang_usage": "اختر <code>/lang ar</code> أو <code>/lang en</code> أو "
                      "<code>/lang auto</code> (لغة كل سؤال). الحالي: {current}.",
        "lang_anonymous": "يظهر كل المشرفين المجهولين بهوية واحدة على تيليجرام، فلا "
                          "أستطيع حفظ لغة لك وحدك: أرسل <code>/lang</code> باسمك لتختار "
                          "لغة.",
        "doc_unsupported": "أستطيع فهرسة ملفات .txt و.md و.html و.json و.jsonl فقط؛ "
                           "والملف <i>{name}</i> ليس منها.",
        "doc_too_big": "الملف <i>{name}</i> أكبر من أن يُنزَّل ({size} ميغابايت؛ الحد {limit} "
                       "ميغابايت).",
        "doc_download_failed": "تعذر تنزيل <i>{name}</i> من تيليغرام: {reason}",
        "report_head": "<b>فهرسة {name}</b>: {summary}",
        "report_more": "… و{n} غيرها",
        "add_usage": "أعطني عنوان صفحة أو خلاصة: <code>/add https://…</code>",
        "forget_usage": "حدد ما يجب حذفه: <code>/forget https://…</code> (مقال) أو، في مجموعة، "
                        "<code>/forget chat</code> (كل ما أضافته المجموعة).",
        "forgot": "حُذف {n} مقال.",
        "sources_head": "<b>وسائل الإعلام في الفهرس</b> ({n})",
        "sources_more": "… و{n} غيرها",
        "empty": "لم تتم فهرسة أي شيء بعد.",
        "stats": ("<b>الفهرس</b>\nالمقالات: {articles}\nالمقاطع: {passages}\nوسائل الإعلام: "
                  "{outlets}\nاللغات: {languages}\nالنشر: {first} … {last}"),
        "stats_chat": "من هذه المحادثة: {n} مقال",
        "stats_bot": "أسئلة أُجيب عنها منذ التشغيل: {answered}؛ مدة التشغيل {uptime}",
        "expired": "هذه الإجابة لم تعد متاحة؛ اسأل مجددًا من فضلك.",
        "more_head": "<b>مصادر أخرى</b> ({first}–{last} من {total})",
        "digest_usage": "استخدم <code>/digest daily HH:MM [المنطقة الزمنية] [ar|en]</code>، "
                        "مثلًا <code>/digest daily 08:00 Asia/Beirut ar</code> أو "
                        "<code>/digest daily 08:00 +03:00</code> (UTC إن لم تُذكر)، أو "
                        "<code>/digest off</code>. ولقناة، من محادثة خاصة: "
                        "<code>/digest @channel daily 08:00</code>.{current}",
        "digest_current": "\nالحالي: يوميًا في {time}.",
        "digest_on": "جُدول موجز يومي في {time}.",
        "digest_off": "أُوقف الموجز اليومي.",
        "digest_none": "لا يوجد موجز يومي هنا.",
        "digest_no_channel": "لا أستطيع إعداد موجز لـ {channel}: يجب أن تكون قناة أنا مشرف "
                             "فيها، وأنت أحد مشرفيها.",
        "digest_stopped": "أُوقف الموجز اليومي للمحادثة <code>{chat}</code>: رفض تيليغرام "
                          "منشوري ({reason}). أضفني مجددًا واستخدم /digest.",
        "digest_head": "<b>الموجز اليومي</b> — {start} … {end} بتوقيت {zone}",
        "group_hello": "مرحبًا! أجيب عن الأسئلة حول الأخبار مع ذكر المصادر.\n\n{access}"
                       "\n\nاكتب /help لمعرفة كل ما أقوم به.",
        "group_limited": "في هذه المجموعة لا أرى إلا الأوامر والردود على رسائلي (وضع الخصوصية "
                         "في تيليغرام): اسأل بالأمر <code>/ask@{bot} …</code> أو بالرد على إحدى "
                         "رسائلي. لا تصلني الإشارات ولا منشورات القنوات المعاد توجيهها ولا "
                         "الملفات. لتفعيلها اجعلني مشرفًا في المجموعة، أو أوقف وضع الخصوصية "
                         "عبر @BotFather (<code>/setprivacy</code>) ثم أضفني إلى المجموعة مجددًا.",
        "group_full": "أرى كل رسائل هذه المجموعة: اسأل بالأمر <code>/ask@{bot} …</code> أو "
                      "اذكرني أو رد على رسائلي؛ ويمكن للمشرفين إعادة توجيه منشورات القنوات "
                      "وإرسال الملفات لفهرستها.",
        "add_to_group": "أضفني إلى مجموعة",
        "forward_intro": "ما الذي نُشر أيضًا عن هذا المنشور:",
        "index_it": "فهرسته (للمشرفين)",
        "ask_fresh": "اسأله من جديد",
        "unknown_command": "لا أعرف هذا الأمر. اكتب /help لمعرفة ما أقوم به.",
        "status_added": "أضيف", "status_replaced": "استُبدل",
        "status_unchanged": "بلا تغيير", "status_duplicate": "مكرر",
        "status_error": "مرفوض",
        "nothing": "لا شيء للفهرسة",
        # Answers (plain text, escaped where they go into HTML).
        "answer": "الإجابة", "sources": "المصادر", "related": "مقاطع ذات صلة",
        "abstain": "الأخبار المفهرسة لا تغطي هذا السؤال.",
        "probably": "على الأرجح (الأدلة غير مؤكدة؛ راجع المقاطع)",
        "paragraph": "الفقرة {i} من {n}", "no_date": "بلا تاريخ",
        "more": "مصادر أخرى", "open": "فتح المقال", "no_more": "لا مزيد من المصادر.",
        "filters": "المرشحات", "follow_up": "فُهم كمتابعة لـ",
        "generated": "ملخص (مولد من المصادر)",
        "relaxed_time": "لم يُفهرس شيء منشور في الفترة التي يذكرها السؤال؛ "
                        "هذه النتائج من أي تاريخ.",
        # Summaries and story timelines (plain text, escaped likewise).
        "summary_title": "ما غطّته الأخبار",
        "summary_topic": "الموضوع",
        "summary_outlets": "وسائل الإعلام",
        "summary_counts": "القصص: {stories} · المقالات: {articles} · وسائل الإعلام: {outlets}",
        "summary_shown": "تُعرض أهم {n}",
        "summary_undated": "مقالات بلا تاريخ نشر: {n}، وُضعت حسب تاريخ فهرستها في خبر.",
        "summary_omitted": "استُبعدت أقدم {n} مقالات في الفترة؛ اختر فترة أقصر لتشملها.",
        "summary_empty": "لم تُغطَّ أي أخبار في هذه الفترة.",
        "summary_empty_topic": "لم يُغطَّ شيء عن {topic} في هذه الفترة.",
        "story_articles": "المقالات: {n}",
        "story_outlets": "وسائل الإعلام: {n}",
        "story_single_outlet": "مصدر واحد فقط",
        "story_only_lang_ar": "بالعربية فقط",
        "story_only_lang_en": "بالإنجليزية فقط",
        "story_versions": "النسخ",
        "story_copies": "نسخ وكالات: {n}",

        "timeline": "التسلسل الزمني",
        "timeline_indexed": "تاريخ الفهرسة",
        "story_more_outlets": "+{n}",
        # The command menu.
        "command_ask": "اسأل عن الأخبار",
        "command_summary": "ملخص التغطية: 24h أو 7d أو موضوع",
        "command_timeline": "مقالات قصة بترتيب تاريخها: 7d أو موضوع",
        "command_sources": "وسائل الإعلام في الفهرس",
        "command_lang": "لغة الردود: ar أو en أو auto",
        "command_help": "ما الذي أستطيع فعله",
        "command_start": "البدء",
        "command_add": "للمشرفين: فهرسة صفحة أو خلاصة",
        "command_forget": "للمشرفين: حذف مقال",
        "command_stats": "للمشرفين: محتوى الفهرس",
        "command_digest": "للمشرفين: موجز يومي (daily HH:MM أو off)",
    },
}

# The bot's command menu (setMyCommands), in this order; each described by "command_<name>".
# Administrators see all of them; everyone else only USER_COMMANDS.
COMMANDS: tuple[str, ...] = (
    "ask",
    "summary",
    "timeline",
    "sources",
    "lang",
    "help",
    "start",
    "add",
    "forget",
    "stats",
    "digest",
)
ADMIN_COMMANDS = frozenset({"add", "forget", "stats", "digest"})
USER_COMMANDS: tuple[str, ...] = tuple(c for c in COMMANDS if c not in ADMIN_COMMANDS)


def t(lang: str, key: str, **values: Any) -> str:
    """The text ``key`` in ``lang`` (English for anything but Arabic)."""
    text = TEXTS["ar" if lang == "ar" else "en"][key]
    return text.format(**values) if values else text
