"""What the speed benchmarks share (not a benchmark itself: ``khabar bench`` skips it).

* the real articles of ``../shared/data`` (NTREX news in English and Arabic, XQuAD and
  ARCD Wikipedia paragraphs) cut into paragraphs that khabar's chunker keeps whole,
  and a fixed set of real Arabic and English questions;
* synthetic articles made from them: real paragraphs with small edits (one sentence
  swapped for another real sentence of the same language, sometimes one dropped, a
  number changed, a dateline), so an archive of any size has real words;
* :class:`Replay`, encoders that give those texts the real encoders' vectors of the
  real passages and sentences they were made from (from a one-off real ingest,
  cached in ``bench/.cache``), plus small Gaussian noise: what makes a million
  passages take an hour instead of days;
* memory and machine-load figures.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from khabar.index import Article

    from khabar.store import Store

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
SEEDS = REPO / "seeds"
CACHE = REPO / "bench" / ".cache"
BASE = CACHE / "scale-base.npz"  # real encoders' vectors of the real passages

MAX_WORDS = 110  # a paragraph stays one passage for both token counters (300 tokens)

# Real outlet names, for the synthetic articles' bylines (and their datelines).
OUTLETS = ["Reuters", "AFP", "AP", "BBC", "Al Jazeera", "Al Arabiya", "Sky News Arabia",
           "Asharq Al-Awsat", "Al-Ahram", "Anadolu", "France 24", "DW", "The Guardian",
           "The New York Times", "CNN", "Bloomberg", "Middle East Eye", "The National",
           "Al-Quds Al-Arabi", "Enab Baladi", "SANA", "WAFA", "Kuwait News Agency",
           "Al Mayadeen", "Arab News", "Gulf News", "Independent Arabia", "RT Arabic",
           "Euronews", "The Times", "Financial Times", "The Washington Post", "NPR",
           "Associated Press", "Xinhua", "TASS", "Al-Akhbar", "An-Nahar", "Hespress",
           "Youm7"]
CITIES = {"en": ["BEIRUT", "CAIRO", "DAMASCUS", "BAGHDAD", "AMMAN", "RIYADH", "DUBAI",
                 "ISTANBUL", "LONDON", "WASHINGTON", "PARIS", "MOSCOW", "GAZA", "TUNIS"],
          "ar": ["بيروت", "القاهرة", "دمشق", "بغداد", "عمان", "الرياض", "دبي", "إسطنبول",
                 "لندن", "واشنطن", "باريس", "موسكو", "غزة", "تونس"]}
AGENCIES = {"en": ["Reuters", "AFP", "AP"], "ar": ["رويترز", "الفرنسية", "أسوشيتد برس"]}


# -- machine and memory ----------------------------------------------------------------
def memory_mb() -> dict[str, float]:
    """This process's resident memory now and at its peak, MB (Linux /proc; else peak
    only, from getrusage)."""
    out = {"rss_mb": float("nan"), "peak_rss_mb": float("nan")}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_mb"] = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                out["peak_rss_mb"] = int(line.split()[1]) / 1024
    except OSError:
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def load_avg() -> str:
    """``uptime``'s load averages (1, 5, 15 min), and the CPUs, as one string."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return load_avg()


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def share_models(home: Path, models: Path) -> Path:
    """Make ``home`` a KHABAR_HOME whose ``models/`` is ``models`` (a built e5 there)."""
    home.mkdir(parents=True, exist_ok=True)
    link = home / "models"
    if not link.exists():
        link.symlink_to(models.resolve(), target_is_directory=True)
    return home


def default_models() -> Path:
    """The models folder of the configured KHABAR_HOME (where the e5 build lives)."""
    from khabar import Settings

    return Settings.load().models_dir


# -- real articles and questions ---------------------------------------------------------
def _pack(sentences: list[str], max_words: int = MAX_WORDS) -> list[str]:
    """Consecutive sentences joined into paragraphs of at most ``max_words`` words (a
    longer sentence alone), none under 80 characters unless it is the only one."""
    out: list[str] = []
    cur: list[str] = []
    for s in sentences:
        if cur and len(" ".join([*cur, s]).split()) > max_words:
            out.append(" ".join(cur))
            cur = []
        cur.append(s)
    if cur:
        out.append(" ".join(cur))
    merged: list[str] = []
    for p in out:
        if merged and len(p) < 80:
            merged[-1] += " " + p
        else:
            merged.append(p)
    return merged


def _paragraph(text: str) -> list[str]:
    from khabar.text import split_sentences

    text = " ".join(text.replace("\ufeff", " ").split())
    if len(text.split()) <= MAX_WORDS:
        return [text]
    pieces = []
    for s in split_sentences(text):  # a run-on sentence is cut at spaces
        words = s.split()
        pieces += [" ".join(words[i:i + MAX_WORDS]) for i in range(0, len(words), MAX_WORDS)]
    return _pack(pieces)


def _tidy(body: list[str]) -> list[str]:
    """Paragraphs under 80 characters joined to a neighbour, as khabar's chunker would."""
    out: list[str] = []
    for p in body:
        if out and (len(out[-1]) < 80 or len(p) < 80):
            out[-1] += " " + p
        else:
            out.append(p)
    return out


def ntrex_docs() -> list[tuple[str, dict[str, list[str]]]]:
    """NTREX's documents in order: (id, {"en": lines, "ar": lines})."""
    root = DATA / "raw" / "ntrex"
    ids = (root / "DOCUMENT_IDS.tsv").read_text().split()
    lines = {"en": (root / "newstest2019-src.eng.txt").read_text(encoding="utf-8").splitlines(),
             "ar": (root / "newstest2019-ref.arb.txt").read_text(encoding="utf-8").splitlines()}
    docs: dict[str, list[int]] = {}
    for i, doc in enumerate(ids):
        docs.setdefault(doc, []).append(i)
    return [(doc, {lg: [lines[lg][i].strip() for i in rows] for lg in lines})
            for doc, rows in docs.items()]


def ntrex_articles(langs: Sequence[str] = ("en", "ar")) -> list[Article]:
    """Each NTREX document as an article per language: its first line the title, the
    rest in paragraphs of four sentences (as the data's news benchmarks cut them)."""
    from khabar.index import Article

    out = []
    for doc, by_lang in ntrex_docs():
        outlet = doc.split(".")[0]
        for lang in langs:
            text = [t for t in (s.replace("\ufeff", "").strip() for s in by_lang[lang]) if t]
            body = [" ".join(text[j:j + 4]) for j in range(1, len(text), 4)]
            body = _tidy([q for p in body for q in _paragraph(p)])
            if body:
                out.append(Article(title=text[0], paragraphs=body, outlets=[outlet],
                                   url=f"https://ntrex.test/{lang}/{doc}", lang=lang,
                                   source="NTREX-128"))
    return out


def _squad(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["data"]


def xquad_articles() -> list[Article]:
    from khabar.index import Article

    out = []
    for lang in ("en", "ar"):
        for doc in _squad(DATA / "raw" / "xquad" / f"xquad.{lang}.json"):
            body = _tidy([q for p in doc["paragraphs"] for q in _paragraph(p["context"])])
            title = doc["title"].replace("_", " ") if lang == "en" else \
                " ".join(body[0].split()[:10])
            out.append(Article(title=title, paragraphs=body, outlets=["Wikipedia"],
                               url=f"https://xquad.test/{lang}/{doc['title']}", lang=lang,
                               source="XQuAD"))
    return out


def arcd_articles() -> list[Article]:
    from khabar.index import Article

    out = []
    for i, doc in enumerate(_squad(DATA / "raw" / "arcd" / "arcd.json")):
        body = _tidy([q for p in doc["paragraphs"] for q in _paragraph(p["context"])])
        if body:
            out.append(Article(title=doc["title"], paragraphs=body, outlets=["Wikipedia"],
                               url=f"https://arcd.test/{i}", lang="ar", source="ARCD"))
    return out


def real_articles() -> list[Article]:
    """Every real article, news first (NTREX English and Arabic), then Wikipedia
    (XQuAD in both languages, ARCD): about 2,000 passages."""
    return ntrex_articles() + xquad_articles() + arcd_articles()


def sample_sentences(articles: Sequence[Article], n: int) -> list[str]:
    """About ``n`` distinct sentences, an even sample of those in the articles' paragraphs
    of more than one sentence (the sentences khabar embeds apart from their passage)."""
    from khabar.model._batch import sentence_texts

    sents: list[str] = []
    for art in articles:
        for para in art.paragraphs:
            split = sentence_texts(para)
            if split != [para]:
                sents += split
    sents = list(dict.fromkeys(sents))
    return sents[::max(1, len(sents) // n)][:n]


def questions() -> list[tuple[str, str]]:
    """A fixed set of 40 real questions, (lang, text): the seed article's two, then
    questions written for XQuAD (18 English, 10 Arabic, each about another paragraph)
    and 10 native Arabic ARCD questions."""
    out = [("en", "who struck Aleppo?"), ("ar", "من قصف حلب؟")]
    paras = {lg: [p for d in _squad(DATA / "raw" / "xquad" / f"xquad.{lg}.json")
                  for p in d["paragraphs"]] for lg in ("en", "ar")}
    for j in range(28):
        lang = "en" if j < 18 else "ar"
        out.append((lang, paras[lang][(j * 17) % len(paras[lang])]["qas"][0]["question"]))
    arcd = [p for d in _squad(DATA / "raw" / "arcd" / "arcd.json") for p in d["paragraphs"]]
    for j in range(10):
        q = arcd[(j * 41) % len(arcd)]["qas"][0]["question"]
        out.append(("ar", q.lstrip("- ").strip()))
    return out


# -- synthetic articles ------------------------------------------------------------------
_NUMBER = re.compile(r"\d+")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class Synth:
    """Synthetic article ``j``: real article ``j mod n`` (in a fixed shuffled order) with
    small edits to every paragraph, its own URL, outlet and date (``minutes`` apart).
    Deterministic in ``j``. ``origin`` maps each edited text (paragraph or sentence) to
    the real one whose vectors stand for it (filled as articles are made; the caller
    clears it)."""

    real: list[Article]
    minutes: float = 5.0
    origin: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from khabar.text import split_sentences

        self._split = split_sentences
        self.order = list(range(len(self.real)))
        random.Random(0).shuffle(self.order)
        self.pool: dict[str, list[str]] = {}
        for art in self.real:
            for p in art.paragraphs:
                self.pool.setdefault(art.lang or "en", []).extend(
                    s for s in split_sentences(p) if len(s) >= 40)

    def article(self, j: int) -> Article:
        from khabar.index import Article

        rng = random.Random(j * 7919 + 1)
        base = self.real[self.order[j % len(self.real)]]
        lang = base.lang or "en"
        outlet = rng.choice(OUTLETS)
        body = [self._edit(p, lang, rng, dateline=(k == 0)) for k, p in enumerate(base.paragraphs)]
        return Article(title=base.title, paragraphs=body, outlets=[outlet],
                       url=f"https://scale.test/{lang}/{j}", lang=lang,
                       published=T0 + timedelta(minutes=self.minutes * j),
                       source="synthetic")

    def _edit(self, paragraph: str, lang: str, rng: random.Random, *, dateline: bool) -> str:
        sents = self._split(paragraph) or [paragraph]
        swap = rng.choice(self.pool[lang])
        if len(sents) == 1:
            sents = [*sents, swap]
        else:
            sents[rng.randrange(len(sents))] = swap
        if len(sents) >= 4 and rng.random() < 0.3:
            del sents[rng.randrange(len(sents))]
        if rng.random() < 0.5:
            i = rng.randrange(len(sents))
            edited = _NUMBER.sub(lambda _m: str(rng.randint(2, 999)), sents[i], count=1)
            if edited != sents[i]:
                self.origin[edited] = self.origin.get(sents[i], sents[i])
                sents[i] = edited
        if dateline:
            city = rng.choice(CITIES[lang])
            agency = rng.choice(AGENCIES[lang])
            edited = f"{city} ({agency}) - {sents[0]}"
            self.origin[edited] = self.origin.get(sents[0], sents[0])
            sents[0] = edited
        text = " ".join(sents)
        self.origin[text] = paragraph
        return text


# -- replayed vectors --------------------------------------------------------------------
@dataclass
class Base:
    """The real encoders' vectors of the real passages and of their sentences, as a real
    khabar ingest stored them (widened back to float32)."""

    meta: dict
    texts: dict[str, int]  # passage or sentence text -> row
    vecs: dict[str, np.ndarray]  # space -> (rows, dim) float32

    @classmethod
    def load(cls, path: Path = BASE) -> Base:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            texts = json.loads(str(z["texts"]))
            vecs = {s: z[f"vec_{s}"].astype(np.float32) for s in meta["spaces"]}
        return cls(meta, {t: i for i, t in enumerate(texts)}, vecs)


def export_base(store: Store, path: Path = BASE, *, took: float | None = None) -> dict:
    """Write the passage and sentence vectors of a store (ingested with the real
    encoders) to ``path``: what :class:`Replay` replays."""
    from khabar.text import passage_sentences

    spaces = store.spaces()
    texts: list[str] = []
    seen: set[str] = set()
    rows: dict[str, list[np.ndarray]] = {s: [] for s in spaces}
    for row in list(store.iter_passages()):
        pid, text = row["id"], row["text"]
        vec = {s: store.vectors(s, [pid])[pid] for s in spaces}
        sent = {s: store.sentence_vectors(s, [pid]).get(pid) for s in spaces}
        items = [(text, {s: vec[s] for s in spaces})]
        split = passage_sentences(text)
        if all(m is not None and len(m) == len(split) for m in sent.values()):
            items += [(t, {s: sent[s][k] for s in spaces}) for k, t in enumerate(split)]
        for t, v in items:
            if t not in seen:
                seen.add(t)
                texts.append(t)
                for s in spaces:
                    rows[s].append(np.asarray(v[s], np.float32))
    meta = {"spaces": {s: vars(i) for s, i in spaces.items()},
            "passages": store.count_passages(), "texts": len(texts),
            "made": datetime.now(UTC).isoformat(timespec="seconds"), "ingest_s": took}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, meta=json.dumps(meta), texts=json.dumps(texts, ensure_ascii=False),
             **{f"vec_{s}": np.stack(rows[s]) for s in spaces})
    tmp.replace(path)
    return meta


class Replay:
    """Vectors for the texts of the real and synthetic articles without running a model.

    A text found in the base (a real passage or sentence, or an edit of one through
    ``synth.origin``) gets its real vector; any other is the normalised mean of its
    sentences' (``composed``), or, failing that, a real vector at random (``missed``).
    ``noise`` (per dimension, then renormalised) is added to everything while it is
    above zero: 0 for the real articles, which thus get exactly their real vectors.
    """

    def __init__(self, base: Base, synth: Synth | None, noise: float = 0.0, seed: int = 0):
        self.base = base
        self.synth = synth
        self.noise = noise
        self.rng = np.random.default_rng(seed)
        self.counts = {"exact": 0, "composed": 0, "missed": 0}

    def encoders(self) -> list[ReplayEncoder]:
        return [ReplayEncoder(self, s, f"replay-{s}", int(info["dim"]), info["fingerprint"])
                for s, info in self.base.meta["spaces"].items()]

    def _row(self, text: str) -> int | None:
        origin = self.synth.origin if self.synth else {}
        for t in (text, text.strip()):
            row = self.base.texts.get(origin.get(t, t))
            if row is not None:
                return row
        return None

    def vectors(self, space: str, texts: Sequence[str]) -> np.ndarray:
        from khabar.text import passage_sentences

        table = self.base.vecs[space]
        out = np.empty((len(texts), table.shape[1]), np.float32)
        for i, text in enumerate(texts):
            row = self._row(text)
            if row is not None:
                out[i] = table[row]
                self.counts["exact"] += 1
                continue
            rows = [r for r in (self._row(s) for s in passage_sentences(text)) if r is not None]
            if rows:
                v = table[rows].mean(axis=0)
                out[i] = v / np.linalg.norm(v)
                self.counts["composed"] += 1
            else:
                out[i] = table[int(self.rng.integers(len(table)))]
                self.counts["missed"] += 1
        if self.noise > 0 and len(texts):
            out += self.rng.normal(0, self.noise, out.shape).astype(np.float32)
            out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


@dataclass
class ReplayEncoder:
    """One space of :class:`Replay`, with the real encoder's name, width and fingerprint
    (so a process with the real encoders opens the store and asks it questions)."""

    replay: Replay
    space: str
    name: str
    dim: int
    _fingerprint: str

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.replay.vectors(self.space, texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        raise RuntimeError("replayed vectors are for ingest; questions need the real model")


def hash_encoders() -> list:
    """The tests' hash encoder in both spaces, at the real encoders' widths (384, 512),
    so vectors cost what real ones do on disk and in FAISS."""
    from tests.fakes import HashEncoder

    return [HashEncoder("e5", 384, "hash-e5"), HashEncoder("use", 512, "hash-use")]


def batched(items: Sequence, n: int) -> Iterator[Sequence]:
    for i in range(0, len(items), n):
        yield items[i:i + n]
