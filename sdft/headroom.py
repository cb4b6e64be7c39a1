"""Can the model teach this skill to itself? Measured before SDFT spends a step on it.

SDFT moves the student (prompt only) toward what the teacher (the same model with the demonstration in
context) does. A skill the teacher does no better than the student gives the loss nothing to pull toward:
the run then costs its steps and the general answers it moves, and learns nothing. At 135M that was a
made-up answer format: the teacher, shown `ANS[5] Two plus three is five.`, still answered "2 + 3 = 5"
(0 of 32, docs/QUALITY.md §29), and three SDFT runs on it learned 0-12% while losing probe answers.

Both views of every scorable training record (never the eval split) are answered greedily in one batch and
scored with the skill's own scorer, exactly as evaluation scores them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from .errors import SdftError
from .evaluate import score_answers
from .prompts import teacher_prompt


class NoTeacherHeadroom(SdftError):
    """A skill refused before training because its teacher does no better than its student."""


@dataclass(frozen=True)
class Headroom:
    n: int          # scored records
    student: float  # share right from the prompt alone
    teacher: float  # share right with the demonstration in context (the skill kind's teacher template)

    @property
    def gain(self) -> float:
        return self.teacher - self.student

    def as_dict(self) -> dict:
        return {**asdict(self), "gain": round(self.gain, 6)}


def measure_headroom(generate: Callable[[list, int], list[str]], records: list[dict], template: str, scorer: str,
                     max_new_tokens: int) -> Headroom | None:
    """Student and teacher scores on `records` (those with an `answer`); None when none has one."""
    scored = [r for r in records if r.get("answer") is not None and r.get("demonstration")]
    if not scored:
        return None
    views = [r["prompt"] for r in scored] + [teacher_prompt(r["prompt"], r["demonstration"], template) for r in scored]
    answers = generate(views, max_new_tokens)
    n = len(scored)
    return Headroom(n=n, student=score_answers(answers[:n], scored, scorer)[0],
                    teacher=score_answers(answers[n:], scored, scorer)[0])


def check_headroom(headroom: Headroom | None, minimum: float, skill: str, path: str) -> None:
    """Refuse a skill whose teacher is not at least `minimum` better than its student (0 = no check)."""
    if minimum <= 0 or headroom is None or headroom.gain >= minimum:
        return
    raise NoTeacherHeadroom(
        f"SDFT has nothing to teach for skill {skill!r}: with the demonstration in context the model answers "
        f"{headroom.teacher:.0%} of its {headroom.n} training prompts right, from the prompt alone {headroom.student:.0%} "
        f"(sdft.min_teacher_headroom asks for {minimum:.0%} more). SDFT only moves the model toward what it does with "
        "the demonstration in context; nothing was trained.",
        where=path,
        fix="write demonstrations the model can follow in context (or a clearer `sdft.teacher_templates` entry for "
            "this kind; `python bench/teacher_headroom.py` scores both views), use a larger model, train this skill "
            "with `train.method: sft`, or set `sdft.min_teacher_headroom: 0` to train anyway.")
