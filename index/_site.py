"""Whose URL an article may claim: a page's canonical link or a feed entry's ``<link>``.

A page says where it lives (``<link rel="canonical">``, ``og:url``) and a feed says
where its entries live; both are the publisher's word, and a page served from
anywhere can claim ``https://www.reuters.com/...``. A claimed URL is kept only on the
registrable domain (the public suffix plus one label: ``bbc.co.uk``, ``user.github.io``)
of the URL actually fetched, read from the Public Suffix List that ``tld`` bundles
(offline: it is never updated from the network here). Hosts without one (an IP
address, ``localhost``) must match exactly.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from tld import get_fld


@functools.lru_cache(maxsize=4096)
def site_of(url: str) -> str | None:
    """The registrable domain of ``url``'s host, else the host itself; None if none."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    found = get_fld(f"http://{host}/", fail_silently=True, fix_protocol=False)
    return str(found).lower() if found else host


def own_url(claimed: str | None, fetched: str) -> str:
    """``claimed`` when it is on the fetched URL's site, else the fetched URL."""
    if claimed and claimed != fetched:
        site = site_of(claimed)
        if site is None or site != site_of(fetched):
            return fetched
    return claimed or fetched
