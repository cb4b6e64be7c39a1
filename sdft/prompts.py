"""How a record's prompt becomes model input, for the student, the teacher and evaluation alike.

One function decides it, so the student's prompt at training time is byte-for-byte the prompt the
evaluator and vLLM see later, and the teacher sees the same chat rendering plus the demonstration.
"""

from __future__ import annotations

from typing import Any, Callable

from .errors import SdftError


def as_model_prompt(prompt: str | list[dict], tokenizer) -> str | list[dict]:
    """Chat models get messages (TRL applies the chat template); base models get plain text."""
    if getattr(tokenizer, "chat_template", None):
        return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    if isinstance(prompt, list):
        raise SdftError(
            "this skill's prompts are chat messages but the model's tokenizer has no chat template.",
            fix="use an instruction-tuned model, or give the prompts as plain text.",
        )
    return prompt


def render_prompt(prompt: str | list[dict], tokenizer) -> str:
    """The exact text the model is conditioned on (generation prompt included for chat models)."""
    model_prompt = as_model_prompt(prompt, tokenizer)
    if isinstance(model_prompt, str):
        return model_prompt
    return tokenizer.apply_chat_template(model_prompt, add_generation_prompt=True, tokenize=False)


def teacher_prompt(prompt: str | list[dict], demonstration: str, template: str) -> str | list[dict]:
    """The teacher's view: the last user turn rewritten with the demonstration in context.

    Mirrors TRL's `DemonstrationTeacherContextBuilder` (system messages kept in front, one user turn),
    and exists so tests and reports can show what the teacher read.
    """
    if isinstance(prompt, str):
        return template.format(prompt=prompt, demonstration=demonstration)
    text = template.format(prompt=prompt[-1]["content"], demonstration=demonstration)
    return prompt[:-1] + [{"role": "user", "content": text}]


def to_trl_template(template: str) -> str:
    """Our templates name the slot `{demonstration}`; TRL's name it `{privileged_context}`."""
    for slot in ("{prompt}", "{demonstration}"):
        if slot not in template:
            raise SdftError(
                f"teacher template lacks the {slot} slot.",
                where="params.yaml: sdft.teacher_template",
                fix="keep both {prompt} and {demonstration} in the template.",
            )
    return template.replace("{demonstration}", "{privileged_context}")


def teacher_view(record: dict[str, Any], template: str, tokenizer) -> str | list[dict]:
    """The teacher's whole prompt for one row: the demonstration in context through the row's own template;
    an anchor row (no demonstration) is its prompt alone."""
    if not record.get("demonstration"):
        return as_model_prompt(record["prompt"], tokenizer)
    return as_model_prompt(teacher_prompt(record["prompt"], record["demonstration"], template), tokenizer)


def sdft_rows(records: list[dict[str, Any]], tokenizer, template_for: Callable[[str], str]) -> list[dict[str, Any]]:
    """Rows for the SDFT trainer: the student prompt, the teacher's rendered view, the demonstration (for the
    optional SFT term), where the row comes from (sdft/replay.py: new, prior or anchor) and a fixed rollout
    (token ids; [] = sample one; anchors on the parent's greedy path get its answer, sdft/recipes/sdft.py)."""
    return [{"prompt": as_model_prompt(r["prompt"], tokenizer),
             "privileged_context": teacher_view(r, template_for(r["kind"]), tokenizer),
             "demonstration": r.get("demonstration") or "",
             "source": r.get("source", "new"),
             "rollout": []} for r in records]


def sft_rows(records: list[dict[str, Any]], tokenizer) -> list[dict[str, Any]]:
    """Prompt-completion rows for TRL's SFTTrainer, so the loss covers the demonstration only."""
    rows = []
    for r in records:
        prompt = as_model_prompt(r["prompt"], tokenizer)
        completion = (
            [{"role": "assistant", "content": r["demonstration"]}] if isinstance(prompt, list) else r["demonstration"]
        )
        rows.append({"prompt": prompt, "completion": completion})
    return rows
