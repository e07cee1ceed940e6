"""What a chat's scope costs a question in a large store, before and after exclusion.

A chat sees the shared archive and its own additions (issue #13, item 1). Once any
other chat has private additions, the scope used to be the set of every passage the
chat may see, read from SQLite at each question (~100k ids at 100k passages); now it is
the few passages it may not see (``khabar.store.Excluding``), skipped by FAISS
(``IDSelectorNot``) and masked in BM25. This bench adds a few private articles for two
chats to a COPY of a built store, then asks the same questions scoped to one chat,
alternating the old filter (the set, rebuilt here with today's SQL) and the new one in
one process, and reports CPU and wall ms per question, and of the filter alone.

    cp -a /work/scale-runs/lat-100k/. /tmp/scope-100k/   # never the original: it writes
    KHABAR_HOME=/tmp/scope-100k python bench/scope.py --home /tmp/scope-100k
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

import _corpus as C  # noqa: E402

CHATS = ("chat:-100111", "chat:-100222")  # the asking chat, and another with its own


def old_filter(store: Any, scope: str) -> set[int]:
    """Today's scope before this change: every passage the chat may see, as a set."""
    from khabar.store._origin import scope_clause

    clause, args = scope_clause(scope)
    return {r[0] for r in store._conn().execute(
        "SELECT p.id FROM passages p JOIN articles a ON a.id = p.article_id WHERE " + clause,
        args)}


def private_articles(n: int, tag: str) -> list[Any]:
    """``n`` real articles made distinct (so not duplicates of the store's own)."""
    out = []
    for art in C.real_articles()[:n]:
        art.url = f"https://private.test/{tag}/{len(out)}"
        art.paragraphs = [f"{p} ({tag} desk copy)" for p in art.paragraphs]
        out.append(art)
    return out


def shown(answer: Any) -> tuple[list[Any], list[str], list[int]]:
    """What a chat is shown: the cited passages, the answer, the further ones."""
    return ([(s.url, s.position) for s in answer.sources], [s.text for s in answer.sentences],
            [h.passage.id for h in answer.more])


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    got = fn()
    return (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000, got


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, required=True, help="a COPY of a built store's home")
    p.add_argument("--index-type", default="hnsw", choices=["flat", "hnsw", "auto"])
    p.add_argument("--private", type=int, default=5, help="private articles per chat")
    p.add_argument("--questions", type=int, default=40)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()

    from khabar.index import Index
    from khabar.retrieval import Filters, Khabar

    from khabar import Settings
    from khabar.model import load_encoders

    settings = Settings(home=args.home, index_type=args.index_type)
    index = Index.open(settings, encoders=load_encoders(settings))
    store = index.store
    for chat in CHATS:
        report = index.add_articles(private_articles(args.private, chat), origin=chat)
        print(chat, report.summary(), file=sys.stderr)
    khabar = Khabar(index)
    scope = CHATS[0]
    hidden = store.passage_filter(scope=scope)
    new_filter = store.passage_filter

    def old_way(**filters: Any) -> Any:
        """The filter as it was: a scope alone made the set; with other filters (a
        period read from the question's words) the code is unchanged."""
        others = {k: v for k, v in filters.items() if v and k != "scope"}
        return old_filter(store, filters["scope"]) if filters.get("scope") and not others \
            else new_filter(**filters)

    questions = [q for _, q in C.questions()[:args.questions]]
    khabar.ask(questions[0], filters=Filters(scope=scope))  # warm: indexes loaded
    cols: dict[str, dict[str, list[float]]] = {
        k: {"wall": [], "cpu": []} for k in ("old filter", "new filter", "old ask", "new ask",
                                              "unscoped ask")}
    same = 0
    for _ in range(args.repeats):
        for q in questions:
            for name, make in (("old", lambda: old_filter(store, scope)),
                               ("new", lambda: new_filter(scope=scope))):
                wall, cpu, _ = timed(make)
                cols[f"{name} filter"]["wall"].append(wall)
                cols[f"{name} filter"]["cpu"].append(cpu)
            store.passage_filter = old_way  # type: ignore[method-assign]
            w, c, old = timed(lambda q=q: khabar.ask(q, filters=Filters(scope=scope)))
            cols["old ask"]["wall"].append(w)
            cols["old ask"]["cpu"].append(c)
            store.passage_filter = new_filter  # type: ignore[method-assign]
            w, c, new = timed(lambda q=q: khabar.ask(q, filters=Filters(scope=scope)))
            cols["new ask"]["wall"].append(w)
            cols["new ask"]["cpu"].append(c)
            w, c, _ = timed(lambda q=q: khabar.ask(q))
            cols["unscoped ask"]["wall"].append(w)
            cols["unscoped ask"]["cpu"].append(c)
            same += shown(old) == shown(new)
    n = len(questions) * args.repeats
    stats = store.stats()
    print(f"`{' '.join(['python bench/scope.py', *sys.argv[1:]])}` "
          f"({stats.get('passages', store.count_passages()):,} passages, "
          f"{stats['index_type']}; {2 * args.private} private articles of 2 chats, "
          f"{len(getattr(hidden, 'ids', ())):,} passages hidden from the asking chat; "
          f"{n} questions; {C.load_avg()}):\n")
    print("| per question | CPU p50 ms | CPU mean ms | wall p50 ms |")
    print("|---|---|---|---|")
    for name, v in cols.items():
        print(f"| {name} | {statistics.median(v['cpu']):.1f} | "
              f"{statistics.fmean(v['cpu']):.1f} | {statistics.median(v['wall']):.1f} |")
    print(f"\nSame hits, in the same order, old and new: {same} of {n} questions.")
    index.close()


if __name__ == "__main__":
    main()
