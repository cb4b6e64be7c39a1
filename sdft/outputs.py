"""Writing stage outputs without ever deleting what the pipeline did not write.

Every folder a stage produces (ingested data, checkpoints) is built in a temporary sibling and moved
into place whole. A folder already at the target is replaced only when the pipeline wrote it, which
it proves with a marker file inside: a user's folder passed as `--out`, a source tree named through a
skill called `../../skills`, or any path outside the output folders is refused, never removed.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .errors import SdftError

# Written into every folder `publish_dir` creates; its presence is what allows replacing the folder later.
MARKER = ".sdft-output"


def staging_dir(out_dir: Path) -> Path:
    """A fresh temporary folder beside `out_dir` (same filesystem, so the final move is a rename)."""
    check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))


def check_replaceable(out_dir: Path) -> None:
    """Refuse, before any work starts, a target that exists and was not written by the pipeline."""
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise SdftError(
            "refusing to replace this path: it is not a folder the pipeline wrote.",
            where=str(out_dir),
            fix="pass an output folder that does not exist yet (or one written by an earlier sdft run).",
        )
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise SdftError(
            f"refusing to replace a folder that the pipeline did not write (no {MARKER} marker inside); "
            "nothing was changed.",
            where=str(out_dir),
            fix="pass an output folder that does not exist yet or is empty.",
        )


def train_metrics_file(checkpoint: Path) -> Path:
    """The training log of a checkpoint sits *beside* it, not inside: it holds wall-clock seconds, and inside
    the checkpoint it would give a bit-identical retrain a new DVC hash (and re-run everything downstream)."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.name}.train_metrics.json")


def write_file_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def publish_dir(tmp: Path, out_dir: Path) -> Path:
    """Move the finished `tmp` folder to `out_dir`, replacing only a folder the pipeline wrote."""
    check_replaceable(out_dir)
    (tmp / MARKER).write_text("written by sdft; safe for sdft to replace\n", encoding="utf-8")
    old = None
    if out_dir.exists():
        # Move the old output aside first: between the two renames nothing is half-written.
        old = out_dir.with_name(f".{out_dir.name}-old-{tmp.name}")
        out_dir.rename(old)
    tmp.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out_dir
