"""The ``khabar`` command: ask, repl, ingest, forget, reindex, stats, check, summary,
timeline, serve, model, bench, config, completion — each with ``--help``.

Exit status:

    0    ok (an abstention is an answer: ``"abstained": true`` in ``--json``)
    1    a fault was found (``check``) or an item failed (``ingest``)
    2    bad usage or configuration (a flag, a period, a setting, khabar.toml)
    3    the model or the store cannot be used
    4    an internal error (a bug: ``--debug`` shows the traceback)
    130  interrupted

Errors print as one line on stderr, ``khabar: error: …``; a traceback only with
``--debug``. Results go to stdout (JSON with ``--json`` for ask, summary, timeline,
stats, ingest, model info and config); messages and progress go to stderr, progress
bars only when stderr is a terminal. Settings come from one place,
``khabar.Settings.load`` (``--home``, then ``KHABAR_*`` variables, then ``./.env``, then
``khabar.toml``); a bad value is a ``ConfigError`` (exit 2); ``khabar config`` prints them.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

from khabar import FilterError
from khabar._redact import RedactingFormatter, redact

from ._filters import PERIOD_HELP, parse_since

if TYPE_CHECKING:
    from khabar.index import Index, IngestReport
    from langchain_core.language_models import BaseChatModel
    from rich.console import Console

    from khabar import Settings
    from khabar.model import Encoder
    from khabar.store import ArchiveStore
# index and retrieval (torch, langchain: seconds) are imported by the commands that
# need them, so --help and argument errors answer at once.

EXIT_OK, EXIT_FAULT, EXIT_USAGE, EXIT_UNUSABLE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"


def _say(msg: str) -> None:
    print(redact(msg), file=sys.stderr, flush=True)


@contextmanager
def _status(first: str) -> Iterator[Callable[[str], None]]:
    """Progress messages: a spinner on a terminal, plain lines on stderr otherwise."""
    if not sys.stderr.isatty():
        yield _say
        return
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    with console.status(first) as status:
        def update(msg: str) -> None:
            console.print(msg, style="dim", markup=False)
            status.update(msg)

        yield update


def open_index(settings: Settings, *, seed: bool = True) -> Index:
    """Open the store (seeding an empty one) with progress on stderr."""
    from ._app import open_index as open_app_index

    with _status("loading khabar…") as progress:
        return open_app_index(settings, seed=seed, progress=progress)


def _console() -> Console:
    """stdout for rich; a reader that leaves (``| head``) ends us quietly, status 0."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:  # rich's own exits with 1, which means a fault
            raise BrokenPipeError

    return _Console(highlight=False)


def _print_json(data: Any) -> None:
    print(redact(json.dumps(data, ensure_ascii=False, indent=2, default=str)))


def _period(value: str) -> Any:
    """argparse type for --since/--until/--before: fails before the model loads."""
    try:
        return parse_since(value)
    except FilterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _chat_model(settings: Settings) -> BaseChatModel | None:
    """KHABAR_LLM's chat model, set up before the encoders load: a missing llm extra or a
    bad spec is said at once, not after a model load."""
    if not settings.llm:
        return None
    from khabar.retrieval._generate import load_chat_model

    return load_chat_model(settings.llm, settings.llm_api_key)


# -- subcommands -------------------------------------------------------------------
def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from khabar.retrieval import Filters, Khabar

    filters = Filters(outlets=list(args.outlet or []), langs=list(args.lang or []),
                      since=args.since, until=args.until)
    llm = _chat_model(settings)
    index = open_index(settings)
    try:
        answer = Khabar(index, llm=llm).ask(" ".join(args.question), previous=args.previous,
                                            filters=filters or None, k=args.k)
    finally:
        index.close()
    if args.json:
        _print_json(answer.to_dict())
    else:
        from ._terminal import print_answer

        print_answer(answer, _console())
    return EXIT_OK


def cmd_repl(args: argparse.Namespace, settings: Settings) -> int:
    from khabar.retrieval import Khabar

    from ._repl import run

    llm = _chat_model(settings)
    index = open_index(settings)
    try:
        return run(Khabar(index, llm=llm), settings.home / "repl_history", debug=args.debug)
    finally:
        index.close()


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from khabar.index import IngestReport

    from khabar import ConfigError

    missing = [t for t in args.targets
               if not t.startswith(("http://", "https://")) and not Path(t).exists()]
    if missing:
        raise ConfigError(f"no such file or folder: {missing[0]}")
    index = open_index(settings, seed=False)
    report = IngestReport()
    show = sys.stderr.isatty()
    try:
        for target in args.targets:
            if target.startswith(("http://", "https://")):
                report.extend(index.add_url(target, progress=show))
            else:
                report.extend(index.add_path(Path(target), progress=show))
        if report.passages >= BULK_PASSAGES:
            _catch_up_lexical(index)
    finally:
        index.close()
    print_report(report, as_json=args.json)
    return EXIT_FAULT if report.errors else EXIT_OK


def print_report(report: IngestReport, *, as_json: bool) -> None:
    """An ingest's report on stdout: its errors and summary, or all of it as JSON. Item
    names and reasons come from files, archives and feeds: one line each, with no
    terminal control or bidi override (khabar.text.strip_controls) in either form."""
    from khabar.text import one_line as line

    if as_json:
        data = report.to_dict()
        data["items"] = [{**vars(i), "name": line(i.name), "message": line(i.message)}
                         for i in report.items]
        _print_json(data)
        return
    for item in report.errors:
        print(redact(line(f"error: {item.name}: {item.message}")))
    print(report.summary())


BULK_PASSAGES = 2000
"""An ingest of this many passages brings the readers' lexical files up to date as it
ends. The writer keeps no BM25 or bridge (readers do), so otherwise the next reader to
open the store applies the whole delta from SQLite before its first answer (46 s after
480k passages at 1M, docs/benchmarks.md); a smaller ingest leaves that to the readers
rather than rewrite the files for a few articles."""


def _catch_up_lexical(index: Index) -> None:
    from khabar.retrieval import Searcher

    with _status("bringing the lexical files up to date…"):
        try:
            Searcher(index).catch_up()
        except Exception as exc:  # the articles are in: the next reader does it instead
            _say(f"warning: lexical files not saved ({exc})")


def _store(settings: Settings) -> ArchiveStore:  # without loading the model
    from khabar.store import open_store

    return open_store(settings)


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    try:
        stats = store.stats()
        stats["outlet_counts"] = dict(store.outlets())
    finally:
        store.close()
    if args.json:
        _print_json(stats)
    else:
        from ._terminal import stats_table

        _console().print(stats_table(stats))
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Copy the configured archive to ``--to`` (no model: the vectors go as stored)."""
    from khabar import ConfigError
    from khabar.store import open_store
    from khabar.store._migrate import migrate

    target_settings = settings.with_(store=args.to)
    if target_settings.store_location == settings.store_location:
        raise ConfigError("--to names the store being copied")
    source, target = _store(settings), open_store(target_settings)
    try:
        with _status("copying…") as progress:
            report = migrate(source, target,
                             progress=lambda done, n: progress(f"copying… {done}/{n}"))
    finally:
        source.close()
        target.close()
    if args.json:
        _print_json({"counts": report.counts, "source_faults": report.source_faults,
                     "target_faults": report.target_faults})
    else:
        print(", ".join(f"{n} {status}" for status, n in sorted(report.counts.items()))
              or "nothing to copy")
        for fault in report.source_faults:
            print(redact(f"source: {fault}"))
        for fault in report.target_faults:
            print(redact(f"target: {fault}"))
    return EXIT_OK if report.ok else EXIT_FAULT


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from khabar import ModelError
    from khabar.model import load_encoders, sentence_methods, space_info

    encoders: list[Encoder] = []
    if args.model:
        with _status("loading the model…") as progress:
            encoders = list(load_encoders(settings, progress))
    store = _store(settings)
    notes = []
    try:
        expected, methods, faults = [], {}, []
        if encoders:
            stored = store.spaces()
            try:  # the store's own way of making sentence vectors, as ingest keeps it
                methods = sentence_methods(encoders, stored, settings.sentence_method)
            except ModelError as exc:
                faults.append(str(exc))
            expected = [space_info(e, methods.get(e.space, settings.sentence_method))
                        for e in encoders]
            # What `khabar reindex` would make: the configured way, where it can.
            target = sentence_methods(encoders, {}, settings.sentence_method)
            notes += [_method_note(space, how, target[space]) for space, how in methods.items()
                      if space in stored and how != target[space]]
        faults += store.check(expected)
        if args.model and methods:
            faults += _sampled_vectors(store, encoders, methods)
        old = (settings.sentence_vectors and store.count_passages() > 0
               and not store.count_sentence_vectors())
        if store.reindex_pending():
            print("note: a reindex was started and not finished; the store still answers "
                  "with its old vectors; `khabar reindex` goes on with it")
    finally:
        store.close()
    for fault in faults:
        print(f"fault: {fault}")
    for note in notes:
        print(f"note: {note}")
    if old:  # a store from before sentence vectors: it works, a little less well
        print("note: no passage has sentence vectors; `khabar reindex --sentences` adds them")
    print("ok" if not faults else f"{len(faults)} fault(s)")
    return EXIT_FAULT if faults else EXIT_OK


def _method_note(space: str, how: str, target: str) -> str:
    return (f"this store's {space} sentence vectors are {_SAID[how]} and new articles "
            f"keep that; `khabar reindex` makes them all {_SAID[target]} "
            f"(KHABAR_SENTENCE_METHOD={target})")


_SAID = {"each": "embedded one by one", "late": "pooled from each passage's run",
         "int8": "embedded one by one at int8"}
SAMPLE = 16  # passages whose vectors check embeds again
SAME_VECTOR = 0.99  # float16 storage moves a vector by ~1e-4 of cosine


def _sampled_vectors(store: ArchiveStore, encoders: Sequence[Encoder],
                     methods: dict[str, str]) -> list[str]:
    """Faults where stored vectors were not made by the configured encoders (the same
    fingerprint, other vectors: a store written by hand, or by an older khabar's
    interrupted reindex), or sentence vectors not made the store's way (``methods``):
    a sample of passages embedded again and compared."""
    import random

    from khabar.model import embed_for_store

    rows = list(store.iter_passages())
    sample = random.Random(len(rows)).sample(rows, min(SAMPLE, len(rows)))
    faults = []
    for enc in encoders:
        stored = store.vectors(enc.space, [r["id"] for r in sample])
        have = [r for r in sample if r["id"] in stored]
        if not have:
            continue
        how = methods.get(enc.space, "each")
        fresh = embed_for_store([enc], [r["text"] for r in have], methods={enc.space: how},
                                workers=1)
        cos = [_cosine(stored[r["id"]], v)
               for r, v in zip(have, fresh.passages[enc.space], strict=True)]
        bad = sum(c < SAME_VECTOR for c in cos)
        if bad:
            faults.append(f"{bad} of {len(have)} sampled {enc.space} vectors differ from what "
                          f"{enc.name} makes of their passage (vectors of another model?): "
                          "`khabar reindex`")
            continue
        sentences = store.sentence_vectors(enc.space, [r["id"] for r in have])
        pairs = [(sentences[r["id"]], m) for r, m in
                 zip(have, fresh.sentences[enc.space], strict=True)
                 if len(sentences.get(r["id"], ())) > 0]  # empty: one sentence, the passage
        odd = sum(len(a) != len(b) or min(map(_cosine, a, b)) < SAME_VECTOR for a, b in pairs)
        if odd:
            faults.append(f"{odd} of {len(pairs)} sampled passages have {enc.space} sentence "
                          f"vectors that differ from the store's own ({_SAID[how]}): vectors of "
                          "another kind or model; `khabar reindex` makes them all anew")
    return faults


def _cosine(a: Any, b: Any) -> float:
    import numpy as np

    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def cmd_forget(args: argparse.Namespace, settings: Settings) -> int:
    from khabar import ConfigError

    if not (args.url or args.outlet or args.before or args.id or args.all):
        raise ConfigError("say what to forget: --url, --outlet, --before, --id or --all")
    store = _store(settings)
    try:
        ids: set[int] = set(args.id or [])
        for url in args.url or []:
            ids |= set(store.article_ids(url=url))
        for outlet in args.outlet or []:
            ids |= set(store.article_ids(outlet=outlet))
        if args.before:
            ids |= set(store.article_ids(before=args.before))
        if args.all:
            ids |= set(store.article_ids())
        n = store.delete_articles(sorted(ids))
    finally:
        store.close()
    print(f"forgot {n} article(s)")
    return EXIT_OK


def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    from khabar.model import load_encoders, sentence_methods, space_info

    if args.layout:
        return _relayout(settings)
    with _status("loading the model…") as progress:
        encoders = load_encoders(settings, progress)
    store = _store(settings)
    try:
        if args.sentences:
            return _add_sentence_vectors(store, encoders, settings)
        # New vectors go beside the old ones, batch by batch (a crash keeps them: the
        # same command goes on), then replace them in one switch (store/_reindex.py).
        # Sentence vectors are made the configured way, whatever the store's was.
        methods = sentence_methods(encoders, {}, settings.sentence_method)
        spaces = [space_info(e, methods[e.space]) for e in encoders]
        done = store.reindex_begin(spaces)
        rows = list(store.iter_passages())
        for enc in encoders:
            have = done.get(enc.space, set())
            todo = [(r["id"], r["text"]) for r in rows if r["id"] not in have]
            while todo:
                _reindex_space(store, enc, todo, settings.sentence_vectors,
                               method=methods[enc.space])
                todo = store.reindex_missing(enc.space)  # passages added meanwhile
        store.reindex_commit(spaces, sentences=settings.sentence_vectors)
        store.refresh(force_rebuild=True)
    finally:
        store.close()
    print(f"reindexed {len(rows)} passages with {', '.join(e.name for e in encoders)}")
    return EXIT_OK


def _relayout(settings: Settings) -> int:
    """A Milvus store's passages moved to today's layout (HNSW on a server, the
    language as partition key), vectors copied: no model needed (docs/milvus.md)."""
    store = _store(settings)
    try:
        relayout = getattr(store, "relayout", None)
        if relayout is None:
            print("nothing to do: the SQLite store's indexes follow its size by themselves")
            return EXIT_OK
        with _status("copying the passages into the new layout…"):
            moved = relayout()
    finally:
        store.close()
    print("the store has the current layout already" if moved is None
          else f"moved {moved} passages to the current layout")
    return EXIT_OK


def _reindex_space(store: ArchiveStore, enc: Encoder, todo: list[tuple[int, str]],
                   sentences: bool, *, method: str, batch: int = 64) -> None:
    from tqdm import tqdm

    from khabar.model import embed_for_store

    for i in tqdm(range(0, len(todo), batch), desc=f"reindex {enc.space}", unit="batch",
                  disable=not sys.stderr.isatty()):
        chunk = todo[i:i + batch]
        ids, texts = [pid for pid, _ in chunk], [text for _, text in chunk]
        embedded = embed_for_store([enc], texts, sentences=sentences,
                                   methods={enc.space: method})
        store.reindex_write(enc.space, ids, embedded.passages[enc.space],
                            embedded.sentences[enc.space] if sentences else None)


def _add_sentence_vectors(store: ArchiveStore, encoders: Sequence[Encoder],
                          settings: Settings) -> int:
    """Embed the sentences of passages that have none (the store's way), reusing
    their passage vectors where each sentence is embedded on its own."""
    import numpy as np

    from khabar.model import embed_for_store, embed_sentences, sentence_methods, space_info

    methods = sentence_methods(encoders, store.spaces(), settings.sentence_method)
    # Refuses another model.
    store.bind_spaces([space_info(e, methods[e.space]) for e in encoders])
    added = 0
    for enc in encoders:
        missing = store.passages_without_sentence_vectors(enc.space)
        for i in range(0, len(missing), 256):
            chunk = missing[i:i + 256]
            ids, texts = [pid for pid, _ in chunk], [text for _, text in chunk]
            if methods[enc.space] != "each":  # pooled from the passage's run, or int8
                mats = embed_for_store([enc], texts,
                                       methods={enc.space: methods[enc.space]}).sentences
            else:
                whole = store.vectors(enc.space, ids)
                mats = embed_sentences([enc], texts,
                                       {enc.space: np.stack([whole[pid] for pid in ids])})
            store.add_sentence_vectors(enc.space, zip(ids, mats[enc.space], strict=True))
            added += len(chunk)
    print(f"added sentence vectors to {added} passage vector set(s)")
    return EXIT_OK


def _labels_lang(args: argparse.Namespace, topic: str | None) -> str:
    """Labels in the language asked for, else the topic's, else a single --lang's."""
    from khabar.retrieval import understand

    return args.labels or (understand(topic).lang if topic else None) or (
        args.lang[0] if args.lang and len(args.lang) == 1 else "en")


def cmd_summary(args: argparse.Namespace, settings: Settings) -> int:
    from khabar.retrieval import summarize

    from ._render_summary import render_summary_plain

    topic = " ".join(args.topic) if args.topic else None
    lang = _labels_lang(args, topic)
    since = args.since or parse_since("24h")
    index = open_index(settings)
    try:
        summary = summarize(index, since=since, until=args.until, topic=topic,
                            outlets=tuple(args.outlet or ()), langs=tuple(args.lang or ()),
                            lang=lang, limit=args.limit)
    finally:
        index.close()
    if args.json:
        _print_json(summary.to_dict())
        return EXIT_OK
    print(render_summary_plain(summary, lang))
    return EXIT_OK


def cmd_timeline(args: argparse.Namespace, settings: Settings) -> int:
    from khabar.retrieval import summarize, timeline

    from ._render_summary import render_summary_plain, render_timeline_plain

    topic = " ".join(args.topic) or None
    lang = _labels_lang(args, topic)
    index = open_index(settings)
    try:  # the most covered story (about the topic), then its articles in date order
        summary = summarize(index, since=args.since or parse_since("7d"), until=args.until,
                            topic=topic, outlets=tuple(args.outlet or ()),
                            langs=tuple(args.lang or ()), lang=lang, limit=1)
        story = summary.stories[0] if summary.stories else None
        entries = timeline(index, story) if story else []
    finally:
        index.close()
    if args.json:
        _print_json({"since": summary.since.isoformat(), "until": summary.until.isoformat(),
                     "topic": topic, "story": story.to_dict() if story else None,
                     "timeline": [e.to_dict() for e in entries]})
    elif story is None:
        print(render_summary_plain(summary, lang))  # "nothing (about it) was covered"
    else:
        print(render_timeline_plain(story, entries, lang))
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from khabar import ConfigError

    try:  # the telegram extra: everything else runs without it
        import telegram  # noqa: F401
    except ImportError as exc:
        raise ConfigError("the Telegram bot needs the telegram extra: "
                          "pip install 'khabar[telegram]'") from exc
    from .telegram import serve

    serve(settings, webhook_url=args.webhook_url, listen=args.listen, port=args.port)
    return EXIT_OK


def cmd_model(args: argparse.Namespace, settings: Settings) -> int:
    from khabar.model import build_model, model_info

    if args.action == "build":
        with _status("building the model…") as progress:
            path, name, no_export = build_model(settings, progress)
        if no_export:
            _say(f"warning: no ONNX export ({no_export}); the model runs on torch")
        print(f"{name}: {path}")
        return EXIT_OK
    info = model_info(settings)
    if args.json:
        _print_json(info)
    else:
        for k, v in info.items():
            print(f"{k:15} {v}")
    return EXIT_OK


def benchmarks() -> dict[str, str]:
    """``bench/*.py`` by name, with the first line of each docstring (not executed)."""
    out: dict[str, str] = {}
    for path in sorted(BENCH.glob("*.py")) if BENCH.is_dir() else []:
        if path.name.startswith("_"):
            continue
        try:
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        except (OSError, SyntaxError):
            doc = ""
        out[path.stem] = doc.strip().split("\n")[0]
    return out


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from khabar import ConfigError

    available = benchmarks()
    if not args.name:
        if not available:
            raise ConfigError(f"no benchmarks in {BENCH} (they ship with the source tree)")
        for name, doc in available.items():
            print(f"{name:14} {doc}")
        print("\nkhabar bench NAME [ARGS…] runs bench/NAME.py; khabar bench NAME --help"
              " lists its options")
        return EXIT_OK
    if args.name not in available:
        raise ConfigError(f"no benchmark {args.name!r}; available: {', '.join(available)}")
    env = {**os.environ, "KHABAR_HOME": str(settings.home)}
    return subprocess.call([sys.executable, str(BENCH / f"{args.name}.py"), *args.args],
                           env=env, cwd=REPO)


SHELLS = ("bash", "zsh", "fish")


def completion_script(shell: str) -> str:
    """The completion script for ``shell``, generated from the parser (nothing heavy loads:
    a shell may run this at every start)."""
    import shtab

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for sp in [parser, *sub.choices.values()]:
        for action in sp._actions:
            if action.dest == "home":
                action.complete = shtab.DIRECTORY
            elif action.dest == "targets":  # ingest: files or folders (or URLs, typed)
                action.complete = shtab.FILE
    return shtab.complete(parser, shell=shell)


def cmd_completion(args: argparse.Namespace, settings: Settings | None = None) -> int:
    print(completion_script(args.shell), end="")
    return EXIT_OK


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    data = settings.public_dict()
    if args.json:
        _print_json(data)
        return EXIT_OK
    from khabar._settings import DOTENV_NAME, config_file

    toml = config_file()
    dotenv = Path(DOTENV_NAME)
    print(f"# KHABAR_* variables over {dotenv.resolve() if dotenv.is_file() else 'no .env'}"
          f" over {toml.resolve() if toml else 'no khabar.toml'} over defaults;"
          " secrets masked")
    for k, v in data.items():
        print(f"{k:22} {v}")
    return EXIT_OK


# -- parser --------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, not the usage block: the fix is in the message or in --help."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _TopFormatter(argparse.HelpFormatter):
    """Every subcommand's help beside its name: argparse sizes the column without the
    subcommands' indent, which would put "completion"'s help on a line of its own."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog)
        self._action_max_length = len("    completion")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    # SUPPRESS: given after the subcommand they override, absent they keep the top level's.
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and debug logs")
    common.add_argument("--home", default=argparse.SUPPRESS,
                        help="data folder (default KHABAR_HOME, else the user data folder: "
                             "khabar config shows it)")

    p = _Parser(
        prog="khabar",
        formatter_class=_TopFormatter,
        description="Answers Arabic and English questions about news coverage from indexed "
                    "articles, with numbered citations.",
        epilog="Exit status: 0 ok, 1 a fault or failed item, 2 bad usage or configuration, "
               "3 model or store unusable, 4 internal error, 130 interrupted.")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    p.add_argument("--home", help="data folder (default KHABAR_HOME, else the user data "
                                  "folder: khabar config shows it)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           parser_class=_Parser)

    def command(name: str, help: str, func: Callable[..., int], **kw: Any
                ) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help, parents=[common], **kw)
        sp.set_defaults(func=func)
        return sp

    def filter_flags(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--outlet", action="append", metavar="NAME",
                        help="only this outlet (repeatable)")
        sp.add_argument("--since", type=_period, metavar="PERIOD",
                        help=f"only news published since: {PERIOD_HELP}")
        sp.add_argument("--until", type=_period, metavar="PERIOD",
                        help="only news published before this (same forms)")
        sp.add_argument("--lang", action="append", choices=["ar", "en"],
                        help="only passages in this language (repeatable)")

    a = command("ask", "answer a question from the indexed news", cmd_ask)
    a.add_argument("question", nargs="+", help="the question, in Arabic or English")
    a.add_argument("--json", action="store_true", help="print the answer as JSON")
    filter_flags(a)
    a.add_argument("--previous", metavar="QUESTION",
                   help="the previous question, to read this one as a follow-up")
    a.add_argument("-k", type=int, default=10, help="passages to retrieve (default 10)")

    command("repl", "interactive questions with :filter, :why, :more, :summary, …",
            cmd_repl)

    i = command("ingest", "index files, folders, archives, URLs or feeds", cmd_ingest)
    i.add_argument("targets", nargs="+", metavar="PATH|URL")
    i.add_argument("--json", action="store_true", help="print the report as JSON")

    f = command("forget", "delete articles and their vectors", cmd_forget)
    f.add_argument("--url", action="append", help="the article at this URL")
    f.add_argument("--outlet", action="append", help="every article of this outlet")
    f.add_argument("--before", type=_period, metavar="PERIOD",
                   help=f"everything published before this: {PERIOD_HELP}")
    f.add_argument("--id", action="append", type=int, help="article id")
    f.add_argument("--all", action="store_true", help="everything")

    r = command("reindex", "rebuild every vector with the configured model", cmd_reindex)
    r.add_argument("--sentences", action="store_true",
                   help="only add the sentence vectors that passages lack (a store from before "
                        "them, or ingested with KHABAR_SENTENCE_VECTORS=false); same model")
    r.add_argument("--layout", action="store_true",
                   help="Milvus: copy the passages, vectors and all, into the current "
                        "layout (HNSW on a server, language partitions); no model")

    s = command("stats", "what the index holds (no model load)", cmd_stats)
    s.add_argument("--json", action="store_true", help="print the figures as JSON")

    c = command("check", "verify the store; exit 1 on any fault", cmd_check)
    c.add_argument("--no-model", dest="model", action="store_false",
                   help="skip the model fingerprint check (no model load)")

    mg = command("migrate", "copy the archive to another store (SQLite <-> Milvus) without "
                 "embedding again; resumable, checked on both sides", cmd_migrate)
    mg.add_argument("--to", required=True, metavar="STORE",
                    help="a folder, milvus-lite:///path/khabar.db or milvus://host:19530")
    mg.add_argument("--json", action="store_true", help="print the report as JSON")

    sm = command("summary", "what the indexed news covered: stories across outlets",
                 cmd_summary)
    sm.add_argument("--topic", nargs="+", metavar="WORD", help="only stories about this")
    sm.add_argument("--json", action="store_true", help="print the stories as JSON")
    sm.add_argument("--limit", type=int, default=10, help="stories to describe (default 10)")
    sm.add_argument("--labels", choices=["ar", "en"],
                    help="language of the labels (default the topic's, else English)")
    filter_flags(sm)
    sm.set_defaults(func=cmd_summary)  # --since defaults to the last 24 hours

    tl = command("timeline", "a story's articles in date order, with outlets, languages and "
                 "links: the most covered story (about TOPIC) of the period (default the "
                 "last 7 days)", cmd_timeline)
    tl.add_argument("topic", nargs="*", metavar="TOPIC", help="words the story is about")
    tl.add_argument("--json", action="store_true", help="print the story and its timeline as JSON")
    tl.add_argument("--labels", choices=["ar", "en"],
                    help="language of the labels (default the topic's, else English)")
    filter_flags(tl)  # --since defaults to the last 7 days

    sv = command("serve", "run the Telegram bot (long polling, or a webhook)", cmd_serve)
    sv.add_argument("--webhook-url", metavar="URL",
                    help="public HTTPS URL Telegram posts updates to (default: long polling)")
    sv.add_argument("--listen", default="127.0.0.1", metavar="HOST",
                    help="address the webhook server binds (default 127.0.0.1)")
    sv.add_argument("--port", type=int, default=8443, help="webhook port (default 8443)")

    m = command("model", "build or describe the embedding model", cmd_model)
    m.add_argument("action", choices=["build", "info"],
                   help="build: convert it once into KHABAR_HOME/models; info: describe it")
    m.add_argument("--json", action="store_true", help="info as JSON")

    b = command("bench", "list the benchmarks in bench/, or run one with its arguments",
                cmd_bench)
    b.add_argument("name", nargs="?", help="benchmark to run (none: list them)")
    b.add_argument("args", nargs=argparse.REMAINDER, help="passed to the benchmark as is")

    g = command("config", "print the effective settings (secrets masked)", cmd_config)
    g.add_argument("--json", action="store_true", help="print them as JSON")

    cp = command("completion", "print the shell completion script (bash, zsh or fish)",
                 cmd_completion,
                 epilog="bash: eval \"$(khabar completion bash)\" in ~/.bashrc; zsh: "
                        "khabar completion zsh > ~/.zfunc/_khabar (a folder on $fpath); "
                        "fish: khabar completion fish > "
                        "~/.config/fish/completions/khabar.fish")
    cp.add_argument("shell", choices=SHELLS)
    return p


def _redacted_traceback(kind: type[BaseException], exc: BaseException,
                        tb: TracebackType | None) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(kind, exc, tb))))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)
    # On the handler: some libraries (bm25s) set their own loggers to DEBUG on import.
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.DEBUG if args.debug else logging.WARNING)
        handler.setFormatter(RedactingFormatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    sys.excepthook = _redacted_traceback  # --debug re-raises: its traceback too
    if not args.debug:  # libraries' notices are for developers, not in a user's stderr
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
    if not sys.stderr.isatty():  # progress bars only on a terminal, libraries' too
        os.environ.setdefault("TQDM_DISABLE", "1")
    if args.func is cmd_completion:  # from a shell's startup: no settings to get wrong
        return cmd_completion(args)
    from khabar import ConfigError, KhabarError, ModelError, Settings, StoreError

    try:
        settings = Settings.load(home=args.home)
        return int(args.func(args, settings) or 0)
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `khabar ask … | head`: the reader left, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KhabarError as exc:
        if args.debug:
            raise
        if isinstance(exc, AssertionError):  # CitationError: a bug, as before it had a type
            _say(f"khabar: internal error: {type(exc).__name__}: {exc} (--debug shows where)")
            return EXIT_BUG
        _say(f"khabar: error: {exc}")
        if isinstance(exc, ConfigError | FilterError):
            return EXIT_USAGE
        if isinstance(exc, ModelError | StoreError):
            return EXIT_UNUSABLE
        return EXIT_FAULT
    except Exception as exc:
        if args.debug:
            raise
        _say(f"khabar: internal error: {type(exc).__name__}: {exc} (--debug shows where)")
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
