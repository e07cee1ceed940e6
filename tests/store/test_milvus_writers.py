"""Many processes on one Milvus server (issue #16): two writer processes putting
overlapping articles (the same URLs and texts, one text under two URLs), a third that
dies in the middle of a put holding the writer lease, and two reader processes asking
questions all along. Nothing lost, nothing stored twice, no citation of an article
that was not committed, and every reader sees each article on its next question.

Milvus Lite lets one process open its file, so this needs a server: the ``milvus``
package (``pip install milvus==2.3.5``: a 57 MB wheel bundling Milvus 2.3 standalone,
Linux x86_64, not in the test extra), started here in the test's temp folder. The
processes and the articles are bench/milvus_writers.py's (the hash encoder: no model).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from khabar.store import MilvusStore

pytest.importorskip("milvus", reason="a Milvus server for several processes: "
                    "pip install milvus==2.3.5 (not in the test extra: 57 MB, Linux x86_64)")

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import milvus_writers as W  # noqa: E402

N = 24

pytestmark = pytest.mark.milvus_server


def test_two_writers_and_two_readers_lose_nothing_and_store_nothing_twice(
        tmp_path: Path) -> None:
    work = tmp_path / "work"
    with W.serve(tmp_path / "milvus") as uri:
        W.run(uri, N, real=False, crash=True, work=work, batch=3)  # put_many, 3 a turn
        store = MilvusStore("http://" + uri.removeprefix("milvus://"), cache=tmp_path / "c")
        stored = store.articles_in()
        # The dead put's rows may still be there (when it died after the others were
        # done), never seen; the next writer's turn (here, a delete) drops them.
        assert all("uncommitted" in fault for fault in store.check())
        store.delete_articles([-1])
        assert store.check() == [] and store.articles_in() == stored
        crash_url = f"https://writers.test/{N}"
        assert store.article_ids(url=crash_url) == [] and store.find_article(url=crash_url) is None
        store.close()

    # Every article once, by its own word and by URL (the text both writers put under
    # two URLs is there under one of them).
    assert sorted(a.title for a in stored) == sorted(f"The {W.word(i)} plan" for i in range(N))
    urls = [a.url for a in stored]
    assert len(set(urls)) == N
    for a in stored:
        i = int((a.url or "").removeprefix("https://writers.test/").removesuffix("?amp"))
        assert a.title == f"The {W.word(i)} plan"

    # Each writer's reports: one "added" per article in all; the others found it.
    progress = [json.loads(line) for name in "ABC" if (work / f"progress-{name}.jsonl").exists()
                for line in (work / f"progress-{name}.jsonl").read_text().splitlines()]
    assert not [p for p in progress if p["status"] == "error"]
    added = sorted(p["i"] for p in progress if p["status"] == "added")
    assert added == list(range(N))
    ids = {a.id: a.url for a in stored}
    for p in progress:
        assert ids[p["id"]] in (p["url"], p["url"].removesuffix("?amp"), p["url"] + "?amp")
    statuses = {p["status"] for p in progress}
    assert {"unchanged", "duplicate"} <= statuses  # the writers met on the shared ones
    assert not [p for p in progress if p["i"] == N]  # the crashed put returned nothing

    # The readers asked while the writers wrote: each question about the article put
    # last cited it, and cited only committed articles (there at the end, same URL).
    for name in ("R1", "R2"):
        asked = json.loads((work / f"result-{name}.json").read_text())["asked"]
        assert len(asked) >= 3
        for q in asked:
            assert q["seen"], q
            assert all(ids.get(a) == url for a, url in q["cited"]), q
