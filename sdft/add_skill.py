"""`sdft add-skill`: validate a new skill's file and append it to the curriculum in params.yaml.

The entry goes after the last skill (its `after:` names that skill), as text: the file's comments and layout
stay as the user wrote them (a YAML round trip would drop them). The new file is loaded and checked like any
params.yaml before it replaces the old one, atomically; on any error params.yaml is untouched.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from .errors import SdftError
from .ingest import validated_records
from .outputs import write_file_atomic
from .params import SkillSpec, check_skill_name, load_params

NEXT_STEP = "dvc repro   (or: prefect deployment run 'learn-pending-skills/nightly')"


def skills_block_end(lines: list[str], where: str) -> int:
    """Index of the line after the last line of the block-style `skills:` mapping."""
    start = next((i for i, line in enumerate(lines) if re.match(r"^skills:\s*(#.*)?$", line)), None)
    if start is None:
        raise SdftError("no block-style `skills:` mapping found to append to.", where=where,
                        fix="add the skill under `skills:` by hand (see the README, 'Add a skill').")
    end = start + 1
    for i in range(start + 1, len(lines)):
        text = lines[i]
        if not text.strip() or text.lstrip().startswith("#") and not text.startswith((" ", "\t")):
            continue  # blank lines and top-level comments may sit inside or after the block
        if not text.startswith((" ", "\t")):
            break  # the next top-level key
        end = i + 1
    return end


def add_skill(params_path: str | Path, data_path: str, kind: str, scorer: str, name: str | None = None) -> str:
    """Append the skill; returns its name. Refuses (params.yaml untouched) a bad name, a name in use, or a data
    file that `sdft ingest` would refuse."""
    params_path = Path(params_path)
    params = load_params(params_path)
    name = name or Path(data_path).stem
    check_skill_name(name, what="--name")
    if name in params.skills or name in params.probes:
        raise SdftError(f"{name!r} is already in params.yaml.", where=str(params_path),
                        fix="pick another `--name`, or edit the existing entry.")
    validated_records(params, SkillSpec(name=name, path=data_path, kind=kind, scorer=scorer))  # as `sdft ingest`
    after = list(params.skills)[-1] if params.skills else "base"
    lines = params_path.read_text(encoding="utf-8").splitlines(keepends=True)
    end = skills_block_end(lines, str(params_path))
    if end and not lines[end - 1].endswith("\n"):
        lines[end - 1] += "\n"
    entry = f"  {name}:\n    path: {data_path}\n    kind: {kind}\n    scorer: {scorer}\n    after: {after}\n"
    text = "".join(lines[:end]) + entry + "".join(lines[end:])
    with tempfile.TemporaryDirectory() as tmp:  # the result must load like any params.yaml before it is written
        candidate = Path(tmp) / "params.yaml"
        candidate.write_text(text, encoding="utf-8")
        try:
            load_params(candidate)
        except SdftError as exc:
            raise SdftError(f"the new entry would not load: {exc.message}", where=str(params_path),
                            fix=exc.fix or "check --kind and --scorer.") from None
    write_file_atomic(params_path, text)
    return name
