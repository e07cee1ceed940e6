"""A reader's resident memory with the real encoders, stage by stage.

    python bench/memory.py --home HOME [--questions 40] [--relabel]

In this process: import khabar, load the real encoders (e5 and USE, as ``khabar serve``
does), open ``HOME``'s store (``Index.open`` + ``Khabar``), answer the first question,
then ``--questions`` of ``bench/_corpus.py``'s fixed questions; after each stage it
reports RSS (``VmRSS``), its anonymous and file-backed parts (``RssAnon``/``RssFile``:
memory-mapped files count in RSS once touched, but the kernel can drop them) and the
peak (``VmHWM``), with the bytes of the FAISS indexes and of the BM25 arrays held.

``--relabel`` first rewrites the store's recorded encoder fingerprints to the real
encoders' (a store grown with ``bench/scale.py --encoder hash``, at the real widths):
the vectors are then meaningless but take exactly the memory real ones would, and
the questions go through every stage. Use it on a copy of a store.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import _corpus as C  # noqa: E402


def status() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = round(int(line.split()[1]) / 1024, 1)
    return out


def faiss_mb(index: object) -> float:
    """The codes the FAISS indexes hold (what a flat index keeps in memory)."""
    import faiss

    total = 0
    for vi in index.store._faiss.by_space.values():  # type: ignore[attr-defined]
        for ix in vi.by_lang.values():
            total += ix.ntotal * faiss.downcast_index(ix.index).sa_code_size()
    return round(total / 2**20, 1)


def relabel(store: Path, encoders: list) -> None:
    db = sqlite3.connect(store / "khabar.sqlite3")
    spaces = json.loads(db.execute("SELECT value FROM meta WHERE key = 'spaces'").fetchone()[0])
    for enc in encoders:
        assert spaces[enc.space]["dim"] == enc.dim, (enc.space, enc.dim)
        spaces[enc.space]["fingerprint"] = enc.fingerprint
    # As khabar writes it (sorted keys): anything else is a change of spaces, and every
    # reader would start again.
    db.execute("UPDATE meta SET value = ? WHERE key = 'spaces'",
               (json.dumps(spaces, sort_keys=True),))
    db.commit()
    db.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--questions", type=int, default=40)
    p.add_argument("--relabel", action="store_true")
    p.add_argument("--models", type=Path, help="a models folder (default: KHABAR_HOME's)")
    args = p.parse_args()
    stages: dict[str, dict[str, float]] = {"start": status()}
    t0 = time.perf_counter()
    from khabar.index import Index
    from khabar.retrieval import Khabar

    from khabar import Settings
    from khabar.model import load_encoders

    stages["imported"] = status()
    C.share_models(args.home, args.models or C.default_models())
    settings = Settings(home=args.home)
    encoders = load_encoders(settings)
    stages["encoders"] = status()
    if args.relabel:
        relabel(settings.store_dir, encoders)
    index = Index.open(settings, encoders=encoders)
    khabar = Khabar(index)
    rebuilds = index.store._faiss.rebuilds
    stages["opened"] = status()
    khabar.ask("who struck Aleppo?")
    stages["first_answer"] = status()
    stages["first_answer"]["faiss_codes_mb"] = faiss_mb(index)
    for _lang, q in C.questions()[:args.questions]:
        khabar.ask(q)
    stages[f"after_{args.questions}_questions"] = status()
    out = {"home": str(args.home), "passages": index.store.count_passages(),
           "faiss_rebuilt": index.store._faiss.rebuilds > rebuilds,
           "seconds": round(time.perf_counter() - t0, 1), "load": C.load_avg(),
           "stages": stages}
    print(json.dumps(out, indent=1))
    index.close()


if __name__ == "__main__":
    main()
