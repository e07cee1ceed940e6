"""What identifies a model folder: its digest, and the part of it that does not count.

A built e5 folder may hold khabar's ONNX export (:data:`EXPORT_DIR`, written by
``_export``). The export computes the same vectors as the folder's weights run by
sentence-transformers (to ~1e-7), so it is the same model: it is left out of the
digest, and adding it to an existing folder keeps the fingerprint that the store
recorded (a different one would demand a reindex).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

# khabar's own names, so a hub model's ``onnx/`` folder still counts as before.
EXPORT_DIR = "khabar_onnx"
EXPORT_FAILED = "khabar_onnx.failed"  # why the last automatic export failed (JSON)


def folder_digest(path: Path) -> str:
    """A short digest of a model folder's configuration and weight sizes."""
    h = hashlib.sha256()
    if path.is_dir():
        for f in sorted(path.rglob("*")):
            rel = f.relative_to(path)
            if rel.parts[0] in (EXPORT_DIR, EXPORT_FAILED) or rel.parts[0].startswith(
                    f".{EXPORT_DIR}"):
                continue
            if f.is_file() and f.suffix in {".json", ".safetensors", ".bin", ".txt", ".model"}:
                h.update(rel.as_posix().encode())
                if f.suffix == ".json" and f.stat().st_size < 5_000_000:
                    h.update(f.read_bytes())
                else:
                    h.update(str(f.stat().st_size).encode())
    return h.hexdigest()[:12]
