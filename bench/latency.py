"""End-to-end speed on this machine: ingest throughput and time to answer.

Indexes NTREX news articles (English and Arabic, real encoders, no cache) into a
fresh store, then asks questions in both languages through ``Khabar.ask`` (question
embedding, search, sentence choice — everything a user waits for).

    python bench/latency.py --articles 20 --questions 40
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from khabar.index import Article, Index  # noqa: E402
from khabar.retrieval import Khabar  # noqa: E402

from khabar import Settings  # noqa: E402
from khabar.model import load_encoders  # noqa: E402

NTREX = REPO.parent / "shared" / "data" / "raw" / "ntrex"


def ntrex_articles(n: int) -> tuple[list[Article], list[str]]:
    """The first ``n`` NTREX documents in English and in Arabic, and sample sentences."""
    ids = [line.split("\t") for line in (NTREX / "DOCUMENT_IDS.tsv").read_text().splitlines()]
    files = {"en": next(NTREX.glob("*eng*")), "ar": next(NTREX.glob("*arb*"))}
    lines = {k: f.read_text(encoding="utf-8").splitlines() for k, f in files.items()}
    docs: dict[str, list[int]] = {}
    for i, row in enumerate(ids):
        docs.setdefault(row[-1], []).append(i)
    out, questions = [], []
    for doc, rows in list(docs.items())[:n]:
        for lang in ("en", "ar"):
            text = [lines[lang][i] for i in rows]
            out.append(Article(title=text[0], paragraphs=[" ".join(text[j:j + 4])
                                                          for j in range(1, len(text), 4)],
                               url=f"https://ntrex.test/{lang}/{doc}", lang=lang))
            questions.append(random.Random(doc).choice(text[1:]))
    return out, questions


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--articles", type=int, default=20, help="NTREX documents (×2 languages)")
    p.add_argument("--questions", type=int, default=40)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        t0 = time.perf_counter()
        encoders = load_encoders(Settings(home=REPO / "bench" / ".cache" / "home"))
        t_load = time.perf_counter() - t0
        index = Index.open(settings, encoders=encoders)
        articles, questions = ntrex_articles(args.articles)
        t0 = time.perf_counter()
        report = index.add_articles(articles)
        t_ingest = time.perf_counter() - t0
        khabar = Khabar(index)
        khabar.ask("warm-up question")
        times = []
        for q in (questions * 3)[: args.questions]:
            t0 = time.perf_counter()
            khabar.ask(q)
            times.append(time.perf_counter() - t0)
    times.sort()
    print(f"{'measure':34} {'value':>10}")
    print(f"{'model load (e5 + USE), s':34} {t_load:10.1f}")
    print(f"{'ingest, passages':34} {report.passages:10d}")
    print(f"{'ingest, passages/s':34} {report.passages / t_ingest:10.1f}")
    print(f"{'ask, median ms':34} {statistics.median(times) * 1000:10.0f}")
    print(f"{'ask, p95 ms':34} {times[int(0.95 * (len(times) - 1))] * 1000:10.0f}")


if __name__ == "__main__":
    main()
