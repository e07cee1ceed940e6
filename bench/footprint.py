"""Where a store's disk goes, per passage: SQLite tables and indexes, FAISS, lexical files.

    python bench/footprint.py STORE [STORE ...] [--json PATH]

Reads a store folder (made by khabar, e.g. by ``bench/scale.py --home``, whose store
is ``<home>/store``) without opening it through khabar, so nothing is migrated or
written. For SQLite it reports the pages of each table and index (``dbstat``: what
the file really holds, free pages and B-tree overhead included), and the mean
payload of the columns that matter; for the folders, the bytes of each kind of file.
Figures are bytes per passage.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

# Column payloads worth seeing on their own: (table, SQL expression, label).
_COLUMNS = [
    ("passages", "length(CAST(text AS BLOB))", "passages.text"),
    ("passages", "length(CAST(norm AS BLOB))", "passages.norm"),
    ("passage_tokens", "length(CAST(tokens AS BLOB))", "passage_tokens.tokens"),
    ("passage_tokens", "length(CAST(words AS BLOB))", "passage_tokens.words"),
    ("vectors", "length(vec)", "vectors.vec"),
    ("sentence_vectors", "length(vecs)", "sentence_vectors.vecs"),
]


def measure(store: Path) -> dict[str, object]:
    db_path = store / "khabar.sqlite3"
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    n = int(db.execute("SELECT count(*) FROM passages").fetchone()[0]) or 1
    tables = {name: int(size) for name, size in db.execute(
        "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")}
    page_size, pages, free = (db.execute(f"PRAGMA {p}").fetchone()[0]
                              for p in ("page_size", "page_count", "freelist_count"))
    have = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    cols = {r[1] for t in have for r in db.execute(f"PRAGMA table_info({t})")
            if t in {c[0] for c in _COLUMNS}} if have else set()
    payload: dict[str, float] = {}
    for table, expr, label in _COLUMNS:
        column = label.split(".")[1]
        if table in have and column in cols:
            total = db.execute(f"SELECT SUM({expr}) FROM {table}").fetchone()[0] or 0
            payload[label] = round(total / n)
    sentences = None
    if "sentence_vectors" in have:
        rows = db.execute("SELECT count(*) FROM sentence_vectors").fetchone()[0]
        sentences = {"rows_per_passage": round(rows / n, 2)}
    db.close()
    files: dict[str, int] = {}
    for f in store.rglob("*"):
        if not f.is_file():
            continue
        rel = f.relative_to(store)
        if rel.parts[0] in ("faiss", "lexical"):
            key = rel.parts[0] + "/" + (f.suffix or f.name)
        else:
            key = f.name
        files[key] = files.get(key, 0) + f.stat().st_size
    total = sum(files.values())
    return {
        "store": str(store),
        "passages": n,
        "bytes_per_passage": round(total / n),
        "files_per_passage": {k: round(v / n) for k, v in sorted(files.items(),
                                                                 key=lambda kv: -kv[1])},
        "sqlite_per_passage": {k: round(v / n) for k, v in tables.items()},
        "sqlite_page_size": page_size,
        "sqlite_free_pages": f"{free} of {pages}",
        "payload_per_passage": payload,
        "sentence_vectors": sentences,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stores", type=Path, nargs="+")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    out = [measure(s) for s in args.stores]
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
