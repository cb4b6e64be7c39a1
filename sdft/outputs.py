"""Writing stage outputs without ever deleting what the pipeline did not write.

Every folder a stage produces (ingested data, checkpoints) is built in a temporary sibling and moved
into place whole. A folder already at the target is replaced only when the pipeline wrote it, which
it proves with a marker file inside: a user's folder passed as `--out`, a source tree named through a
skill called `../../skills`, or any path outside the output folders is refused, never removed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path

from .errors import SdftError
from .layout import train_metrics_file

# Written into every folder `publish_dir` creates; its presence is what allows replacing the folder later.
MARKER = ".sdft-output"


# Temporary folders are named `.<target>-<pid>-<random>`: a killed stage leaves its own behind, and the next
# run for the same target (or any `sdft` command, `sweep_leftovers`) removes those whose process is gone,
# never one a live process owns. The name carries the owner, so nothing inside has to be cleaned up.
_TEMP = re.compile(r"^\.(?P<name>.+)-(?P<pid>\d+)-(?P<tail>[a-z0-9_]+)$")


def processes() -> tuple[int, int]:
    """(this process's rank, number of processes): set by `accelerate launch` / torchrun, (0, 1) otherwise. Only
    rank 0 writes or removes anything under the artifacts folder."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def staging_dir(out_dir: Path) -> Path:
    """A fresh temporary folder beside `out_dir` (same filesystem, so the final move is a rename)."""
    check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-{os.getpid()}-", dir=out_dir.parent))


def _proc_stat(pid: int) -> tuple[str, float] | None:
    """(state, start time in seconds since the epoch) of process or thread `pid`; None where /proc cannot tell."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return fields[0], boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # stat fields 3 and 22
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _alive(pid: int, owner_before: float | None = None) -> bool:
    """Whether `pid` still runs *as the owner*. A killed process whose parent died with it lingers as a zombie
    until init reaps it (seconds, for one with many threads): it runs nothing. And a process started after
    `owner_before` (what the owner wrote already existed then) only reuses the number: busy machines wrap PIDs
    around (32768 on many Linux systems, and every thread takes one)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, started = stat
    if state in ("Z", "X"):
        return False
    return owner_before is None or started <= owner_before + 2.0  # /proc's boot time has 1 s resolution


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _stale(folder: Path, target_name: str | None = None) -> bool:
    m = _TEMP.match(folder.name)
    return (bool(m) and folder.is_dir() and target_name in (None, m["name"])
            and not _alive(int(m["pid"]), owner_before=_mtime(folder)))


def remove_stale_temporaries(out_dir: Path) -> list[Path]:
    """Temporary folders for `out_dir` left by a killed run (their owner process is gone)."""
    removed = [f for f in out_dir.parent.glob(f".{out_dir.name}-*") if _stale(f, out_dir.name)]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def sweep_leftovers(root: Path) -> list[Path]:
    """What killed runs left anywhere under the artifacts folder, removed at the start of every `sdft` command:
    DVC may restore a killed stage's output from its run cache without running any `sdft` command, so a run's
    own cleanup cannot be relied on. Removed: temporary folders of dead processes, and resume state of a dead
    run that either saved no step yet or whose checkpoint is already in place (same params, data and base)."""
    root = Path(root)
    if not root.is_dir():
        return []
    removed = [f for f in root.rglob(".*-*") if _stale(f)]
    for stamp in root.rglob("*.resume/fingerprint"):
        fingerprint, pid = _read_stamp(stamp)
        if pid is None or _alive(pid, owner_before=_mtime(stamp)):
            continue
        folder = stamp.parent
        checkpoint = folder.with_name(folder.name.removesuffix(".resume"))
        progress = bool(_complete_checkpoints(folder))
        if not progress or (checkpoint.is_dir() and _recorded_fingerprint(checkpoint) == fingerprint):
            removed.append(folder)
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def _read_stamp(stamp: Path) -> tuple[str, int | None]:
    try:
        fingerprint, pid = stamp.read_text(encoding="utf-8").split()
        return fingerprint, int(pid)
    except (OSError, ValueError):
        return "", None


def _complete_checkpoints(folder: Path) -> list[Path]:
    """Mid-run checkpoints that hold `trainer_state.json`, which transformers writes last."""
    return [c for c in folder.glob("checkpoint-*") if (c / "trainer_state.json").is_file()]


def _mark(folder: Path) -> None:
    (folder / MARKER).write_text("written by sdft; safe for sdft to replace\n", encoding="utf-8")


def _recorded_fingerprint(checkpoint: Path) -> str | None:
    try:
        return json.loads(train_metrics_file(checkpoint).read_text(encoding="utf-8")).get("run_fingerprint")
    except (OSError, ValueError):
        return None


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


def write_file_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def publish_dir(tmp: Path, out_dir: Path) -> Path:
    """Move the finished `tmp` folder to `out_dir`, replacing only a folder the pipeline wrote.

    The old output is moved aside and deleted *before* the new one moves in, so the rename is the last step and
    a kill at any moment leaves the old output, no output (DVC reruns the stage), or the new one, and at most a
    temporary folder of a dead process (removed by the next run), never a half-written output.
    """
    check_replaceable(out_dir)
    _mark(tmp)
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}-{os.getpid()}-old{secrets.token_hex(4)}")
        out_dir.rename(old)
        shutil.rmtree(old)
    tmp.rename(out_dir)
    return out_dir


def resume_dir(checkpoint: Path) -> Path:
    """Mid-run training state of a checkpoint, beside it (not a DVC output: it never enters a hash)."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.name}.resume")


def open_resume_dir(checkpoint: Path, fingerprint: str) -> tuple[Path, Path | None]:
    """The resume folder of `checkpoint` and the newest *complete* mid-run checkpoint in it, or None.

    State from another run (other params, data or base model: another `fingerprint`) is cleared, never
    resumed. transformers writes `trainer_state.json` last (the EMA teacher goes first, sdft_trainer.py),
    so a checkpoint folder without it was cut by a kill and is dropped.
    """
    folder = resume_dir(checkpoint)
    check_replaceable(folder)
    stamp = folder / "fingerprint"
    if folder.exists() and _read_stamp(stamp)[0] != fingerprint:
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _mark(folder)
    write_file_atomic(stamp, f"{fingerprint} {os.getpid()}")  # this run owns it now (sweep_leftovers reads the pid)
    done = _complete_checkpoints(folder)
    for cut in set(folder.glob("checkpoint-*")) - set(done):
        shutil.rmtree(cut, ignore_errors=True)
    return folder, max(done, key=lambda d: int(d.name.rsplit("-", 1)[1]), default=None)
