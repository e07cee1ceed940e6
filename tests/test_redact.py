"""One redaction for every message: registered secrets and secret-shaped text."""

from __future__ import annotations

import logging

from pydantic import SecretStr

from khabar import Settings
from khabar._redact import REDACTED, RedactingFormatter, redact, redact_html

TOKEN = "123456789:AAHiddenTelegramTokenValue_0123456789"


def test_the_settings_secrets_are_redacted_once_settings_are_made() -> None:
    key, hook = "sk-llm-key-0001-redact-me", "hook-secret-0001"
    assert key in redact(f"refused key {key}")
    Settings(llm_api_key=SecretStr(key), webhook_secret=SecretStr(hook))
    text = redact(f"refused key {key}; header {hook}")
    assert key not in text and hook not in text and text.count(REDACTED) == 2


def test_secret_shapes_are_redacted_unregistered() -> None:
    cases = {
        f"The token `{TOKEN}` was rejected by the server.": TOKEN,
        f"GET https://api.telegram.org/bot{TOKEN}/getMe": TOKEN,
        f"GET /file/bot{TOKEN.replace(':', '%3A')}/doc.txt": TOKEN.split(":")[1],
        "cannot fetch https://user:hunter22@example.com/feed": "hunter22",
        "GET https://example.com/x?q=1&api_key=abcdef123456&p=2": "abcdef123456",
        "GET https://example.com/x?token=tok-998877": "tok-998877",
    }
    for text, secret in cases.items():
        assert secret not in redact(text), text
    assert redact("ordinary words, key points: 12:30") == "ordinary words, key points: 12:30"



def test_a_urls_whole_user_information_is_redacted() -> None:
    """A token is often a URL's user name, with no password or a dummy one: it was
    printed as it was (``khabar ingest https://TOKEN@host/…``)."""
    cases = {
        "https://ghp_S3cretT0kenABCDEFGH@10.0.0.1/feed.xml: blocked": "ghp_S3cretT0ken",
        "GET https://ghp_S3cretT0ken:x-oauth-basic@github.com/a": "ghp_S3cretT0ken",
        "cannot fetch http://reader:hunter2pass@example.com/": "reader:hunter2pass",
        "http://tok@en@example.com/x": "tok@en",  # the host follows the last "@"
        '{"name": "https://ghp_S3cretT0ken@example.com"}': "ghp_S3cretT0ken",
        # httpx sends these as the password too (a quote or bracket ended it: unmasked).
        'http://user:p"w0rd@example.com/a': 'p"w0rd',
        "http://user:p<w0rd>@example.com/a": "p<w0rd>",
    }
    for text, secret in cases.items():
        shown = redact(text)
        assert secret not in shown and f"//{REDACTED}@" in shown, shown
        assert "example.com" in shown or "10.0.0.1" in shown or "github.com" in shown
    for text in ("see https://medium.com/@writer", "https://x.org/?q=a@b",
                 '{"u": "https://x.org", "e": "a@b.org"}', "mail a@b.org at 12:30"):
        assert redact(text) == text

def test_the_cli_log_formatter_redacts_tracebacks_too() -> None:
    formatter = RedactingFormatter("%(message)s")
    try:
        raise RuntimeError(f"boom {TOKEN}")
    except RuntimeError as exc:
        record = logging.LogRecord("x", logging.ERROR, "f", 1, "failed: %s", (exc,),
                                   (type(exc), exc, exc.__traceback__))
    assert TOKEN not in formatter.format(record)


def test_redacting_telegram_html_leaves_valid_html() -> None:
    """Found by tests/bot/test_fuzz_render.py: "<redacted>" put into a message is a tag
    Telegram refuses, so the whole answer was lost."""
    from tests.bot.fake_telegram import parse_html

    markup = ('<a href="https://x.org/a?token=abc123">Title</a> see https://u:pw@host.org/ '
              'and <b>https://">:@</b>')
    text, _ = parse_html(redact_html(markup))
    assert "pw" not in text and "abc123" not in text and REDACTED in text
    assert redact_html("a &lt;redacted&gt; b") == "a &lt;redacted&gt; b"


def test_redacting_html_masks_user_information_with_quotes_and_brackets() -> None:
    """Each attribute value and text run is redacted on its own: user information that
    holds a quote or bracket is masked, and the masking never runs on past the value's
    closing quote or into the next tag."""
    from tests.bot.fake_telegram import parse_html

    markup = ('<a href="https://u:p&quot;w0rd@x.org/a">https://u:p&lt;w0rd&gt;@x.org/a</a> '
              '<a href="https://x.org">mail a@b.org</a>')
    out = redact_html(markup)
    text, entities = parse_html(out)
    assert "w0rd" not in out and text.count(REDACTED) == 1, out
    assert [e.get("url") for e in entities] == [f"https://{REDACTED}@x.org/a", "https://x.org"]
    assert "mail a@b.org" in text
