"""Query understanding on its own: language, filters in both languages, statements,
follow-ups. No model needed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from khabar.retrieval import Filters, understand

NOW = datetime(2024, 3, 11, 9, 30, tzinfo=UTC)
OUTLETS = ["Reuters", "AFP"]


@pytest.mark.parametrize(("question", "since", "until"), [
    ("what happened in Aleppo yesterday?", datetime(2024, 3, 10, tzinfo=UTC),
     datetime(2024, 3, 11, tzinfo=UTC)),
    ("ماذا حدث في حلب أمس؟", datetime(2024, 3, 10, tzinfo=UTC), datetime(2024, 3, 11, tzinfo=UTC)),
    ("strikes near Homs last week", datetime(2024, 3, 4, tzinfo=UTC), None),
    ("الغارات على حمص الأسبوع الماضي", datetime(2024, 3, 4, tzinfo=UTC), None),
    ("Syria talks since January", datetime(2024, 1, 1, tzinfo=UTC), None),
    ("floods in the last 3 days", datetime(2024, 3, 8, tzinfo=UTC), None),
])
def test_time_words_of_a_question_filter_by_publication_date(
        question: str, since: datetime, until: datetime | None) -> None:
    q = understand(question, now=NOW)
    assert (q.filters.since, q.filters.until) == (since, until)
    assert q.time_from_text


def test_a_pasted_news_sentence_keeps_its_time_words() -> None:
    sentence = ("Earlier this month, the leaders of the two countries met in Pyongyang for "
                "talks that centred on the nuclear programme and economic ties.")
    q = understand(sentence, now=NOW)
    assert q.filters.since is None and not q.time_from_text
    arabic = ("وفي وقت سابق من هذا الشهر التقى زعيما البلدين في بيونغ يانغ لإجراء محادثات تركزت "
              "على البرنامج النووي والعلاقات الاقتصادية بين البلدين الجارين.")
    assert understand(arabic, now=NOW).filters.since is None
    # The same words asked as a question are a filter.
    assert understand("who met in Pyongyang this month?", now=NOW).filters.since is not None


def test_outlets_named_in_either_language_and_explicit_filters_win() -> None:
    q = understand("what happened at the port according to Reuters?", known_outlets=OUTLETS)
    assert q.filters.outlets == ["Reuters"] and "Reuters" not in q.search_text
    assert understand("ماذا حدث في الميناء حسب رويترز؟",
                      known_outlets=OUTLETS).filters.outlets == ["Reuters"]
    explicit = understand("port news yesterday", now=NOW,
                          filters=Filters(since=datetime(2024, 1, 1, tzinfo=UTC)))
    assert not explicit.time_from_text  # set by the asker: never dropped


def test_language_and_follow_ups() -> None:
    assert understand("من قصف حلب؟").lang == "ar"
    assert understand("who struck Aleppo?").lang == "en"
    follow = understand("and what about Homs?", previous="who struck Aleppo?")
    assert follow.follow_up_of == "who struck Aleppo?"
    assert follow.search_text.startswith("who struck Aleppo?")
    fresh = understand("who won the election in France?", previous="who struck Aleppo?")
    assert fresh.follow_up_of is None and fresh.search_text == "who won the election in France?"
