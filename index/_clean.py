"""Removing page furniture from article paragraphs, keeping the words as published."""

from __future__ import annotations

import re

from khabar.text._analysis import normalize_for_search

# Invisible characters that only get in the way; ZWJ/ZWNJ are handled separately.
_JUNK_RE = re.compile(
    "[\u00ad\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
# ZWJ/ZWNJ shape letters and emoji; outside a word they are junk too.
_LOOSE_JOINER_RE = re.compile(r"(?:(?<=\s)|^)[\u200c\u200d]+|[\u200c\u200d]+(?=\s|$)")
# Stray separators left at the start of a paragraph: ",ونقلت" -> "ونقلت".
_LEADING_PUNCT_RE = re.compile(r"^(?:[,،;؛:.…!?؟\-–—_•·|/\\*~]+\s*)+(?=\D|$)")
_HAS_WORD_RE = re.compile(r"\w")

# Whole-line boilerplate, compared in normalised form.
_BOILERPLATE = [
    "مقالات ذات صلة", "أخبار ذات صلة", "مواضيع ذات صلة", "مقالات مشابهة", "اقرأ أيضا",
    "اقرأ أيضاً", "إقرأ أيضا", "اقرأ المزيد", "إقرأ المزيد", "زر الذهاب إلى الأعلى",
    "العودة إلى الأعلى", "الأكثر قراءة", "الأكثر مشاهدة", "شارك", "شارك هذا", "شارك المقال",
    "شارك الخبر", "تابعونا", "تابعنا", "إعلان", "اعلانات", "طباعة", "تعليقات", "أضف تعليق",
    "المزيد", "Related", "Related articles", "Related stories", "Related news",
    "Related content", "Read more", "Read also", "Read next", "See also", "More on this story",
    "More from", "You may also like", "Most read", "Most popular", "Back to top",
    "Skip to content", "Share", "Share this", "Share this article", "Share this story",
    "Advertisement", "Sponsored", "Sponsored content", "Print", "Email", "Comments",
    "Subscribe", "Sign up", "Sign up for our newsletter", "Follow us", "Top stories",
]
_BOILERPLATE_KEYS = frozenset(normalize_for_search(b) for b in _BOILERPLATE)

# Headings after which a page lists other stories; the rest of the page is dropped.
_RELATED_HEADINGS = frozenset(
    normalize_for_search(h)
    for h in (
        "مقالات ذات صلة", "أخبار ذات صلة", "مواضيع ذات صلة", "مقالات مشابهة", "اقرأ أيضا",
        "اقرأ أيضاً", "الأكثر قراءة", "Related", "Related articles", "Related stories",
        "Related news", "Related content", "Read more", "Read also", "More on this story",
        "You may also like", "Most read", "Most popular", "Top stories",
    )
)
_LINK_PREFIX_RE = re.compile(
    r"^(?:اقرأ|إقرأ|اقرا)\s+(?:أيضا|أيضاً|ايضا|المزيد)|^شاهد\s+(?:أيضا|أيضاً|ايضا)"
    r"|^(?:read|see)\s+(?:more|also)\b|^(?:tags|الوسوم|كلمات مفتاحية|الكلمات المفتاحية)\s*[:：]",
    re.IGNORECASE,
)
_SOCIAL_WORDS = (
    "facebook twitter x whatsapp telegram linkedin email e-mail print pinterest reddit "
    "messenger instagram youtube tiktok copy link url share on via us follow "
    "فيسبوك فيس بوك تويتر واتساب واتس اب تلغرام تيليغرام تيلجرام لينكدإن انستغرام يوتيوب "
    "البريد الإلكتروني طباعة نسخ الرابط شارك شاركها مشاركة على عبر تابعونا تابعنا"
)
_SOCIAL = frozenset(normalize_for_search(_SOCIAL_WORDS).split())
_COOKIE_RE = re.compile(r"cookie|ملفات تعريف الارتباط|الكوكيز|كوكيز", re.IGNORECASE)
_COOKIE_CONTEXT_RE = re.compile(
    r"\bwe use\b|\b(?:site|website) uses\b|\baccept|\bconsent\b|cookies? (?:policy|settings)"
    r"|manage cookies|privacy (?:policy|notice)|نستخدم|يستخدم (?:هذا )?الموقع|موافق|قبول"
    r"|سياسة الخصوصية",
    re.IGNORECASE,
)
_COPYRIGHT_RE = re.compile(
    r"^(?:©|\(c\)|copyright\b)|all rights reserved|جميع الحقوق محفوظة|حقوق النشر محفوظة", re.I
)
# Wire desk credits: "Reporting by ...; Editing by ...", "(إعداد ... للنشرة العربية)".
_DESK_CREDIT_RE = re.compile(
    r"^\(?(?:(?:additional\s+)?reporting|writing|editing|compiled)\s+by\b"
    r"|^\(?(?:إعداد|تحرير|ترجمة)\b.*(?:للنشرة العربية|تحرير)",
    re.IGNORECASE,
)
_PHOTO_PREFIX_RE = re.compile(
    r"^(?:الصورة|صورة|صور|تصوير|مصدر الصورة|حقوق الصورة|photo(?:graph)?s?|pictures?|images?"
    r"|photo credit|image source|image caption|credit)\b\s*[:：\-–—]?\s*",
    re.IGNORECASE,
)
_PHOTO_AGENCY_RE = re.compile(
    r"getty|shutterstock|\bepa\b|afp|reuters|\bap\b|ap photo|anadolu|xinhua|alamy|pa media|"
    r"رويترز|فرانس برس|أ ف ب|الأناضول|أرشيفية|أرشيف|مواقع التواصل|مواقع تواصل",
    re.IGNORECASE,
)
_BRACKETED_RE = re.compile(r"^[(\[].*[)\]]$")


def _tidy(paragraph: str) -> str:
    text = _JUNK_RE.sub("", paragraph)
    text = _LOOSE_JOINER_RE.sub("", text)
    text = " ".join(text.split())  # also folds NBSP and other Unicode spaces
    return _LEADING_PUNCT_RE.sub("", text).strip()


def _is_photo_credit(text: str) -> bool:
    words = text.split()
    if len(words) > 10 or len(text) > 90:
        return False
    m = _PHOTO_PREFIX_RE.match(text)
    if m and (len(words) <= 6 or _PHOTO_AGENCY_RE.search(text[m.end() :])):
        return True
    if _BRACKETED_RE.match(text) and len(words) <= 6 and _PHOTO_AGENCY_RE.search(text):
        return True
    return bool(re.fullmatch(r"(?:\w+\s*/\s*)?(?:getty images|shutterstock|afp via getty images)",
                             text, re.IGNORECASE))


def _is_social_line(key: str) -> bool:
    words = key.split()
    return len(words) >= 2 and all(w in _SOCIAL for w in words)


def _is_boilerplate(text: str, key: str) -> bool:
    if key in _BOILERPLATE_KEYS or _is_social_line(key):
        return True
    short = len(text.split()) <= 25
    if short and _LINK_PREFIX_RE.match(text):
        return True
    if (_COPYRIGHT_RE.search(text) or _DESK_CREDIT_RE.match(text)) and len(text.split()) <= 30:
        return True
    cookie = _COOKIE_RE.search(text) and _COOKIE_CONTEXT_RE.search(text)
    return bool(cookie) and len(text.split()) <= 80


def _is_related_cut(index: int, keys: list[str], texts: list[str]) -> bool:
    """A related-stories heading ends the article if it is late or only links follow."""
    if keys[index] not in _RELATED_HEADINGS:
        return False
    rest = texts[index + 1 :]
    return index >= len(texts) / 2 or all(len(t.split()) <= 20 for t in rest)


def clean_paragraphs(paragraphs: list[str], title: str | None) -> list[str]:
    """Paragraphs without the repeated title, photo credits and boilerplate.

    Words are kept exactly as published; only whitespace, invisible characters
    and stray leading separators change.
    """
    title_key = normalize_for_search(title) if title else None
    texts = [_tidy(p) for p in paragraphs]
    keys = [normalize_for_search(t) for t in texts]
    out: list[str] = []
    for i, (text, key) in enumerate(zip(texts, keys, strict=True)):
        if not text or not _HAS_WORD_RE.search(text) or not key:
            continue
        if _is_related_cut(i, keys, texts):
            break
        if key == title_key or _is_photo_credit(text) or _is_boilerplate(text, key):
            continue
        out.append(text)
    return out
