"""Per-item error messages quote the input shortened: one line, whatever its length."""

from __future__ import annotations

import pytest
from khabar.index._parse import entry_to_article, parse_feed, parse_json

from khabar import ParseError

LONG = "The minister said on Monday that the talks would resume next week. " * 60


def test_a_feed_entry_without_text_is_named_by_its_link_shortened() -> None:
    # Found by the 1000-example fuzz run: the whole link (4 kB) was in the message.
    feed = (f'<feed xmlns="http://www.w3.org/2005/Atom"><title></title><entry><title></title>'
            f'<link href="{LONG}"/><content type="html"></content></entry></feed>').encode()
    (entry,) = parse_feed(feed, "feed.xml")
    with pytest.raises(ParseError) as raised:
        entry_to_article(entry)
    message = str(raised.value)
    assert message.startswith("feed entry 'The minister said") and message.endswith(
        "…' has no text") and len(message) < 120


def test_a_date_that_cannot_be_read_is_quoted_shortened() -> None:
    _, errors = parse_json('[{"title": "T", "text": "Some text of the story.", "date": "'
                           + LONG + '"}]', "a.json")
    assert len(errors) == 1 and "cannot read the date 'The minister" in errors[0]
    assert len(errors[0]) < 150
