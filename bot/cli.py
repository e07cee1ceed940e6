"""The ``khabar`` command.

Errors print as one line (a traceback only with ``--debug``) and exit with a
status that means something: 0 ok, 1 a fault found or an item failed, 2 bad usage
or configuration, 3 the model or store cannot be used.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from index import (
    ConfigError,
    Index,
    KhabarError,
    ModelError,
    Settings,
    StoreError,
    model_info,
    resolve_model_path,
)

EXIT_OK, EXIT_FAULT, EXIT_USAGE, EXIT_UNUSABLE = 0, 1, 2, 3
SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def open_index(settings: Settings, *, seed: bool = True) -> Index:
    """Open the store, loading the model; index ``seeds/`` if the store is empty."""
    index = Index.open(settings, progress=_say)
    if seed and index.store.count_articles() == 0 and SEEDS.is_dir():
        _say(f"the index is empty: indexing the seed articles in {SEEDS}…")
        report = index.add_path(SEEDS)
        _say(f"seeds: {report.summary()}")
    return index


# -- subcommands -------------------------------------------------------------------
def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from retrieval import Khabar

    index = open_index(settings)
    khabar = Khabar(index)
    filters = _filters(args)
    answer = khabar.ask(" ".join(args.question), filters=filters, k=args.k)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        from ._terminal import print_answer

        print_answer(answer)
    index.close()
    return EXIT_OK


def _filters(args: argparse.Namespace):  # -> retrieval.Filters | None
    from retrieval import Filters

    f = Filters(outlets=list(args.outlet or []), langs=list(args.lang or []),
                since=_since(args.since) if args.since else None)
    return f if f else None


def _since(value: str) -> datetime:
    """``24h``, ``7d``, ``2w`` or an ISO date."""
    units = {"h": 1 / 24, "d": 1, "w": 7, "m": 30}
    if value[-1:] in units and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(days=int(value[:-1]) * units[value[-1]])
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"--since takes 24h, 7d, 2w or a date like 2015-09-30, not {value!r}"
                          ) from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from index import IngestReport

    index = open_index(settings, seed=False)
    report = IngestReport()
    show = not args.json and sys.stderr.isatty()
    for target in args.targets:
        if target.startswith(("http://", "https://")):
            report.extend(index.add_url(target, progress=show))
        else:
            report.extend(index.add_path(Path(target), progress=show))
    index.close()
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        for item in report.errors:
            print(f"error: {item.name}: {item.message}")
        print(report.summary())
    return EXIT_FAULT if report.errors else EXIT_OK


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from index import Store

    store = Store(settings.store_dir, index_type=settings.index_type,
                  hnsw_threshold=settings.hnsw_threshold)
    stats = store.stats()
    stats["outlet_counts"] = dict(store.outlets())
    store.close()
    if args.json:
        print(json.dumps(stats, ensure_ascii=False, indent=2))
        return EXIT_OK
    for key in ("articles", "passages", "outlets", "linked_duplicates", "index_type"):
        print(f"{key:18} {stats[key]}")
    langs = ", ".join(f"{k}: {v}" for k, v in stats["languages"].items())  # type: ignore[attr-defined]
    print(f"{'languages':18} {langs or '-'}")
    print(f"{'published':18} {stats['published_from'] or '-'} … {stats['published_to'] or '-'}")
    print(f"{'size on disk':18} {int(stats['size_bytes']) / 1e6:.1f} MB")  # type: ignore[call-overload]
    print(f"{'path':18} {stats['path']}")
    for name, info in stats["spaces"].items():  # type: ignore[attr-defined]
        print(f"{'model ' + name:18} {info['fingerprint']}")
    return EXIT_OK


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from index import load_encoders
    from index._embedder import space_info
    from index._store import Store

    store = Store(settings.store_dir, index_type=settings.index_type)
    expected = [space_info(e) for e in load_encoders(settings, _say)] if args.model else []
    faults = store.check(expected)
    store.close()
    for fault in faults:
        print(f"fault: {fault}")
    print("ok" if not faults else f"{len(faults)} fault(s)")
    return EXIT_FAULT if faults else EXIT_OK


def cmd_forget(args: argparse.Namespace, settings: Settings) -> int:
    from index import Store

    store = Store(settings.store_dir, index_type=settings.index_type)
    if not (args.url or args.outlet or args.before or args.id or args.all):
        raise ConfigError("say what to forget: --url, --outlet, --before, --id or --all")
    ids: set[int] = set(args.id or [])
    for url in args.url or []:
        ids |= set(store.article_ids(url=url))
    for outlet in args.outlet or []:
        ids |= set(store.article_ids(outlet=outlet))
    if args.before:
        ids |= set(store.article_ids(before=_since(args.before)))
    if args.all:
        ids |= set(store.article_ids())
    n = store.delete_articles(sorted(ids))
    store.close()
    print(f"forgot {n} article(s)")
    return EXIT_OK


def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    from index import Store, load_encoders
    from index._embedder import space_info

    encoders = load_encoders(settings, _say)
    store = Store(settings.store_dir, index_type=settings.index_type)
    rows = list(store.iter_passages())
    from tqdm import tqdm

    for enc in encoders:
        vecs = []
        batch = 64
        for i in tqdm(range(0, len(rows), batch), desc=f"reindex {enc.space}",
                      disable=not sys.stderr.isatty()):
            chunk = rows[i:i + batch]
            vecs += list(zip([r["id"] for r in chunk],
                             enc.embed_passages([r["text"] for r in chunk]), strict=True))
        store.replace_vectors(enc.space, vecs)
    store.bind_spaces([space_info(e) for e in encoders], replace=True)
    store.refresh(force_rebuild=True)
    store.close()
    print(f"reindexed {len(rows)} passages with {', '.join(e.name for e in encoders)}")
    return EXIT_OK


def cmd_model(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "build":
        path, name = resolve_model_path(settings, _say)
        print(f"{name}: {path}")
        return EXIT_OK
    info = model_info(settings)
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:15} {v}")
    return EXIT_OK


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    data = settings.public_dict()
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        for k, v in data.items():
            print(f"{k:22} {v}")
    return EXIT_OK


# -- parser --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="khabar",
        description="Answers Arabic and English questions about news coverage from indexed "
                    "articles, with numbered citations.")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    p.add_argument("--home", help="data folder (default KHABAR_HOME or ~/.cache/khabar)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    a = sub.add_parser("ask", help="answer a question from the indexed news")
    a.add_argument("question", nargs="+", help="the question, in Arabic or English")
    a.add_argument("--json", action="store_true", help="print the answer as JSON")
    a.add_argument("--outlet", action="append", help="only this outlet (repeatable)")
    a.add_argument("--since", help="only news published since: 24h, 7d, 2w or a date")
    a.add_argument("--lang", action="append", choices=["ar", "en"],
                   help="only passages in this language")
    a.add_argument("-k", type=int, default=10, help="passages to retrieve (default 10)")
    a.set_defaults(func=cmd_ask)

    i = sub.add_parser("ingest", help="index files, folders, archives, URLs or feeds")
    i.add_argument("targets", nargs="+", metavar="PATH|URL")
    i.add_argument("--json", action="store_true", help="print the report as JSON")
    i.set_defaults(func=cmd_ingest)

    s = sub.add_parser("stats", help="what the index holds")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_stats)

    c = sub.add_parser("check", help="verify the store; exit 1 on any fault")
    c.add_argument("--no-model", dest="model", action="store_false",
                   help="skip the model fingerprint check (no model load)")
    c.set_defaults(func=cmd_check)

    f = sub.add_parser("forget", help="delete articles and their vectors")
    f.add_argument("--url", action="append", help="the article at this URL")
    f.add_argument("--outlet", action="append", help="every article of this outlet")
    f.add_argument("--before", help="everything published before this date (or 30d…)")
    f.add_argument("--id", action="append", type=int, help="article id")
    f.add_argument("--all", action="store_true", help="everything")
    f.set_defaults(func=cmd_forget)

    r = sub.add_parser("reindex", help="rebuild every vector with the configured model")
    r.set_defaults(func=cmd_reindex)

    m = sub.add_parser("model", help="build or describe the embedding model")
    m.add_argument("action", choices=["build", "info"])
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_model)

    g = sub.add_parser("config", help="print the effective settings (secrets masked)")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_config)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.load(home=args.home)
        return int(args.func(args, settings) or 0)
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except KhabarError as exc:
        if args.debug:
            raise
        _say(f"khabar: error: {exc}")
        if isinstance(exc, ConfigError):
            return EXIT_USAGE
        if isinstance(exc, ModelError | StoreError):
            return EXIT_UNUSABLE
        return EXIT_FAULT


if __name__ == "__main__":
    sys.exit(main())
