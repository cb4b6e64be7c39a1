"""Scorers: `score(prediction, answer) -> bool`, chosen per skill with `scorer:` in params.yaml.

- exact:     normalised prediction equals the (or one of the) answer(s).
- contains:  normalised answer appears in the normalised prediction.
- knowledge: like contains, for fact questions with aliases: any alias counts (`answer` may be a list).
- prefix:    the response starts with the answer, exactly (format skills: a tag, a header).
- mcq:       the letter in the *last* `<answer>...</answer>` tag equals the answer letter
             (as the official SDFT science eval scores SciKnowEval).
- tool_call: every `Action:` / `Action Input:` pair is parsed; correct only when the multiset of actions
             equals the gold one and the merged Action Input JSON objects are equal (the official
             tool-use eval); gold is a list of {Action, Action_Input}.
"""

from __future__ import annotations

import ast
import json
import re
import string
import unicodedata
from collections import Counter
from typing import Any, Callable

from .errors import SdftError

# Punctuation becomes a space (not nothing), so "100.0" stays "100 0" and "BLUE-HARBOR" is "blue harbor".
_PUNCT = str.maketrans(string.punctuation, " " * len(string.punctuation))


def normalize(text: Any) -> str:
    """Case, accents' composition, punctuation, articles and spacing do not change an answer."""
    text = unicodedata.normalize("NFKC", str(text)).lower().translate(_PUNCT)
    words = [w for w in text.split() if w not in {"a", "an", "the"}]
    return " ".join(words)


def _answers(answer: Any) -> list[str]:
    if isinstance(answer, list):
        return [normalize(a) for a in answer if normalize(a)]
    return [normalize(answer)] if normalize(answer) else []


def exact(prediction: str, answer: Any) -> bool:
    return normalize(prediction) in _answers(answer)


def contains(prediction: str, answer: Any) -> bool:
    pred = f" {normalize(prediction)} "
    return any(f" {a} " in pred for a in _answers(answer))


def prefix(prediction: str, answer: Any) -> bool:
    """Format skills: the response must *start* with the answer, character for character."""
    answers = answer if isinstance(answer, list) else [answer]
    return any(prediction.strip().startswith(str(a).strip()) for a in answers if str(a).strip())


knowledge = contains  # aliases are a list answer; word-boundary match keeps "Quill" from matching "Quillmark"


_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_LETTER = re.compile(r"^\(?([A-Z])\b")


def mcq_letter(prediction: str) -> str | None:
    tags = _ANSWER_TAG.findall(prediction)
    if not tags:
        return None
    match = _LETTER.match(tags[-1].strip().upper())
    return match.group(1) if match else None


def mcq(prediction: str, answer: Any) -> bool:
    letter = mcq_letter(prediction)
    return letter is not None and letter == str(answer).strip().upper()


_ACTION = re.compile(
    r"Action:\s*(?P<action>[^\n]+?)\s*\n\s*Action Input:\s*(?P<input>.*?)(?=\n\s*(?:Action:|Observation:|Thought:|Final Answer:)|\Z)",
    re.DOTALL,
)


def _parse_json_object(text: str) -> dict | None:
    text = text.strip().strip("`").strip()
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        value = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def parse_tool_calls(prediction: str) -> list[tuple[str, dict | None]]:
    return [(m["action"].strip(), _parse_json_object(m["input"])) for m in _ACTION.finditer(prediction)]


def _gold_calls(answer: Any) -> list[tuple[str, dict | None]]:
    if isinstance(answer, str):  # the official files store the list as a Python literal
        answer = ast.literal_eval(answer)
    calls = []
    for call in answer:
        raw = call.get("Action_Input", "{}")
        calls.append((call["Action"].strip(), raw if isinstance(raw, dict) else _parse_json_object(raw or "{}")))
    return calls


def _merged(calls: list[tuple[str, dict | None]]) -> dict | None:
    merged: dict = {}
    for _, inputs in calls:
        if inputs is None:
            return None
        merged.update(inputs)
    return merged


def tool_call(prediction: str, answer: Any) -> bool:
    pred, gold = parse_tool_calls(prediction), _gold_calls(answer)
    if not pred or Counter(a for a, _ in pred) != Counter(a for a, _ in gold):
        return False
    merged = _merged(pred)
    return merged is not None and merged == _merged(gold)


SCORERS: dict[str, Callable[[str, Any], bool]] = {
    "exact": exact,
    "contains": contains,
    "knowledge": knowledge,
    "prefix": prefix,
    "mcq": mcq,
    "tool_call": tool_call,
}


def get_scorer(name: str) -> Callable[[str, Any], bool]:
    if name not in SCORERS:
        raise SdftError(f"unknown scorer {name!r}.", where="params.yaml", fix=f"use one of {sorted(SCORERS)}.")
    return SCORERS[name]
