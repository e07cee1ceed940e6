"""A reader answers while another process ingests a batch: every answer cites only
whole, committed articles (all their passages stored), and new articles show up in
answers without a restart."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from khabar.index import Index
from khabar.retrieval import Khabar

from khabar import Settings

from .test_crash import _articles, _articles_stored

pytestmark = pytest.mark.model


def test_answers_during_an_ingest_cite_only_whole_articles(
        khabar_home: Path, tmp_path: Path, encoders: list) -> None:
    folder = tmp_path / "batch"
    _articles(folder, 90)
    reader = Index.open(Settings(home=khabar_home), encoders=encoders)
    khabar = Khabar(reader)
    env = {k: v for k, v in os.environ.items() if k != "KHABAR_HOME"}
    writer = subprocess.Popen([sys.executable, "-m", "khabar", "--home", str(khabar_home),
                               "ingest", str(folder)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env)
    seen_counts: list[int] = []
    answered = 0
    try:
        deadline = time.monotonic() + 600
        while writer.poll() is None and time.monotonic() < deadline:
            answer = khabar.ask("how many families moved into tents near the stadium?")
            cited = {s.article_id: s.n_passages for s in answer.sources}
            if cited:
                answered += 1
                stored = reader.store.article_passages(list(cited))
                per_article: dict[int, int] = {}
                for p in stored:
                    per_article[p.article_id] = per_article.get(p.article_id, 0) + 1
                for article_id, n in cited.items():
                    assert per_article.get(article_id) == n, (
                        f"article {article_id}: {per_article.get(article_id)} of {n}")
            seen_counts.append(reader.store.count_articles())
        _, err = writer.communicate(timeout=600)
        assert writer.returncode == 0, err.decode()[-2000:]
    finally:
        if writer.poll() is None:
            writer.kill()
        reader.close()
    assert answered >= 2, f"only {answered} answers had sources while the ingest ran"
    # The reader saw the archive grow while it answered, without reopening.
    assert len(set(seen_counts)) >= 2 and seen_counts == sorted(seen_counts)
    assert _articles_stored(khabar_home) == 90

