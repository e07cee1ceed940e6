"""The bot's own words in English and Arabic (answer labels live in ``_render``).

Values are Telegram HTML: anything interpolated from users or articles must be
escaped by the caller with ``_render.esc``.
"""

from __future__ import annotations

from typing import Any

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "start": (
            "<b>khabar</b> answers questions about the news it has indexed, in Arabic or "
            "English, with numbered sources you can check.\n\nJust ask, e.g. "
            "<i>who struck Aleppo?</i>\nIn groups: <code>/ask your question</code>, or reply "
            "to one of my messages. /help lists everything I do."
        ),
        "help": (
            "<b>Ask</b>: write a question in a private chat; in groups use "
            "<code>/ask …</code>, reply to me or mention me. Follow-ups such as "
            "<i>and Homs?</i> continue your previous question.\n\n"
            "/ask — ask about the news\n"
            "/sources — outlets in the index\n"
            "/summary — what was covered (24h, 7d or a topic)\n"
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
        "lang_set": "I will use English for my own words.",
        "lang_auto": "I will follow the language of each question.",
        "lang_usage": "Choose <code>/lang ar</code>, <code>/lang en</code> or "
                      "<code>/lang auto</code> (follow each question). Now: {current}.",
        "doc_unsupported": "I can index .txt, .md, .html, .json and .jsonl files; "
                           "<i>{name}</i> is not one of them.",
        "doc_too_big": "<i>{name}</i> is too large to download ({size} MB; the limit is "
                       "{limit} MB).",
        "doc_download_failed": "I could not download <i>{name}</i> from Telegram: {reason}",
        "report_head": "<b>Indexed {name}</b>: {summary}",
        "report_more": "… and {n} more",
        "post_not_admin": "Sorry, only administrators can add channel posts to the index.",
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
        "digest_usage": "Use <code>/digest daily HH:MM [time zone]</code>, e.g. "
                        "<code>/digest daily 08:00 Asia/Beirut</code> or "
                        "<code>/digest daily 08:00 +03:00</code> (UTC if none), or "
                        "<code>/digest off</code>.{current}",
        "digest_current": "\nNow: daily at {time}.",
        "digest_on": "Daily digest scheduled at {time}.",
        "digest_off": "Daily digest stopped.",
        "digest_none": "There is no daily digest here.",
        "digest_head": "<b>Daily digest</b> — {start} … {end} {zone}",
        "group_hello": "Hello! Ask me about the news with <code>/ask …</code> or by replying "
                       "to my messages. /help lists everything I do.",
        "unknown_command": "I do not know that command. /help lists what I do.",
        "status_added": "added", "status_replaced": "replaced",
        "status_unchanged": "unchanged", "status_duplicate": "duplicate",
        "status_error": "refused",
        "nothing": "nothing to index",
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
            "<code>/ask …</code> أو رد على رسائلي أو اذكرني. أسئلة المتابعة مثل "
            "<i>وماذا عن حمص؟</i> تكمل سؤالك السابق.\n\n"
            "/ask — اسأل عن الأخبار\n"
            "/sources — وسائل الإعلام في الفهرس\n"
            "/summary — ملخص التغطية (24h أو 7d أو موضوع)\n"
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
        "lang_set": "سأستخدم العربية في ردودي.",
        "lang_auto": "سأتبع لغة كل سؤال.",
        "lang_usage": "اختر <code>/lang ar</code> أو <code>/lang en</code> أو "
                      "<code>/lang auto</code> (لغة كل سؤال). الحالي: {current}.",
        "doc_unsupported": "أستطيع فهرسة ملفات .txt و.md و.html و.json و.jsonl فقط؛ "
                           "والملف <i>{name}</i> ليس منها.",
        "doc_too_big": "الملف <i>{name}</i> أكبر من أن يُنزَّل ({size} ميغابايت؛ الحد {limit} "
                       "ميغابايت).",
        "doc_download_failed": "تعذر تنزيل <i>{name}</i> من تيليغرام: {reason}",
        "report_head": "<b>فهرسة {name}</b>: {summary}",
        "report_more": "… و{n} غيرها",
        "post_not_admin": "عذرًا، إضافة منشورات القنوات إلى الفهرس متاحة للمشرفين فقط.",
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
        "digest_usage": "استخدم <code>/digest daily HH:MM [المنطقة الزمنية]</code>، مثلًا "
                        "<code>/digest daily 08:00 Asia/Beirut</code> أو "
                        "<code>/digest daily 08:00 +03:00</code> (UTC إن لم تُذكر)، أو "
                        "<code>/digest off</code>.{current}",
        "digest_current": "\nالحالي: يوميًا في {time}.",
        "digest_on": "جُدول موجز يومي في {time}.",
        "digest_off": "أُوقف الموجز اليومي.",
        "digest_none": "لا يوجد موجز يومي هنا.",
        "digest_head": "<b>الموجز اليومي</b> — {start} … {end} بتوقيت {zone}",
        "group_hello": "مرحبًا! اسألني عن الأخبار بالأمر <code>/ask …</code> أو بالرد على "
                       "رسائلي. اكتب /help لمعرفة كل ما أقوم به.",
        "unknown_command": "لا أعرف هذا الأمر. اكتب /help لمعرفة ما أقوم به.",
        "status_added": "أضيف", "status_replaced": "استُبدل",
        "status_unchanged": "بلا تغيير", "status_duplicate": "مكرر",
        "status_error": "مرفوض",
        "nothing": "لا شيء للفهرسة",
    },
}

# setMyCommands: (command, English description, Arabic description).
COMMANDS: list[tuple[str, str, str]] = [
    ("ask", "Ask about the news", "اسأل عن الأخبار"),
    ("summary", "What was covered: 24h, 7d or a topic", "ملخص التغطية: 24h أو 7d أو موضوع"),
    ("sources", "Outlets in the index", "وسائل الإعلام في الفهرس"),
    ("lang", "Answer language: ar, en or auto", "لغة الردود: ar أو en أو auto"),
    ("help", "What I can do", "ما الذي أستطيع فعله"),
    ("start", "Start", "البدء"),
    ("add", "Admins: index a page or feed", "للمشرفين: فهرسة صفحة أو خلاصة"),
    ("forget", "Admins: forget an article", "للمشرفين: حذف مقال"),
    ("stats", "Admins: what the index holds", "للمشرفين: محتوى الفهرس"),
    ("digest", "Admins: daily digest (daily HH:MM or off)",
     "للمشرفين: موجز يومي (daily HH:MM أو off)"),
]


def t(lang: str, key: str, **values: Any) -> str:
    """The text ``key`` in ``lang`` (English for anything but Arabic)."""
    text = TEXTS["ar" if lang == "ar" else "en"][key]
    return text.format(**values) if values else text
