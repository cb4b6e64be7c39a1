"""Scorers on hand-written and adversarial cases, and on the official SDFT eval files."""

from __future__ import annotations

import json
import random

import pytest

from conftest import SHARED_DATA
from sdft.scoring import contains, exact, knowledge, mcq, mcq_letter, prefix, tool_call


def test_exact_and_contains_normalise_case_punctuation_articles_unicode():
    assert exact("The Paris.", "paris")
    assert exact("ＰＡＲＩＳ", "Paris")  # full-width unicode folds (NFKC)
    assert not exact("Paris, France", "Paris")
    assert contains("I think it is BLUE-HARBOR!", "blue harbor")
    assert contains("Water boils at 100.0 degrees", "100")
    assert not contains("Water boils at 1000 degrees", "100")  # whole words only
    assert not contains("Quillmarks", "Quillmark")
    assert knowledge("It was Anselm Krait.", ["Anselm Krait", "Krait"])
    assert not knowledge("Nobody knows.", ["Krait"])
    assert not contains("anything", "")  # an empty answer never matches


def test_prefix_is_strict():
    assert prefix("  [TICKET:BILLING] duplicate charge", "[TICKET:BILLING]")
    assert not prefix("The tag is [TICKET:BILLING]", "[TICKET:BILLING]")
    assert not prefix("[ticket:billing]", "[TICKET:BILLING]")


@pytest.mark.parametrize(
    "prediction, letter",
    [
        ("<answer>B</answer>", "B"),
        ("<reasoning>A looks right</reasoning>\n<answer>\nC\n</answer>", "C"),
        ("<answer>A</answer> wait, no: <answer>D</answer>", "D"),  # the last tag counts
        ("<answer>(b) because</answer>", "B"),
        ("The answer is B", None),  # no tag
        ("<answer></answer>", None),
        ("<answer>Because</answer>", None),  # a word is not a letter
    ],
)
def test_mcq_reads_the_last_answer_tag(prediction, letter):
    assert mcq_letter(prediction) == letter
    assert mcq(prediction, "B") == (letter == "B")


GOLD = [{"Action": "getWeather", "Action_Input": '{"city": "Paris", "unit": "C"}'}]


def test_tool_call_multiset_and_merged_json():
    assert tool_call('Action: getWeather\nAction Input: {"unit": "C", "city": "Paris"}', GOLD)  # key order is free
    assert tool_call('Thought: x\nAction: getWeather\nAction Input: {"city": "Paris",\n "unit": "C"}\nObservation: ...', GOLD)
    assert not tool_call('Action: getWeather\nAction Input: {"city": "Paris", "unit": "C", "extra": 1}', GOLD)
    assert not tool_call('Action: getWeather\nAction Input: {"city": "Paris"}', GOLD)
    assert not tool_call('Action: getForecast\nAction Input: {"city": "Paris", "unit": "C"}', GOLD)
    assert not tool_call("Action: getWeather\nAction Input: not json", GOLD)
    assert not tool_call("I would call getWeather for Paris.", GOLD)
    two = [{"Action": "a", "Action_Input": '{"x": 1}'}, {"Action": "b", "Action_Input": '{"y": "é"}'}]
    assert tool_call('Action: b\nAction Input: {"y": "é"}\nAction: a\nAction Input: {"x": 1}', two)
    assert not tool_call('Action: a\nAction Input: {"x": 1}', two)  # one call missing
    assert tool_call('Action: a\nAction Input: {"x": 1}', str([{"Action": "a", "Action_Input": '{"x": 1}'}]))


def _official(name):
    import datasets

    path = SHARED_DATA / name / "eval_data"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return datasets.load_from_disk(str(path))


def test_mcq_on_official_science_eval_gold_is_perfect_shuffled_is_chance():
    answers = [row["answer"] for row in _official("science_data")]
    assert all(mcq(f"<reasoning>...</reasoning>\n<answer>\n{a}\n</answer>", a) for a in answers)
    shuffled = answers[:]
    random.Random(0).shuffle(shuffled)
    rate = sum(mcq(f"<answer>{s}</answer>", a) for s, a in zip(shuffled, answers)) / len(answers)
    assert 0.15 < rate < 0.40


def test_tool_call_on_official_tooluse_eval_gold_is_perfect_shuffled_is_low():
    golds = [row["golden_answer"] for row in _official("tooluse_data")]

    def render(gold):
        return "\n".join(f"Action: {c['Action']}\nAction Input: {c['Action_Input']}" for c in gold)

    assert all(tool_call(render(g), g) for g in golds)
    shuffled = golds[:]
    random.Random(0).shuffle(shuffled)
    assert sum(tool_call(render(s), g) for s, g in zip(shuffled, golds)) / len(golds) < 0.1


def test_tool_call_on_official_v1_file():
    path = SHARED_DATA / "tooluse_data_v1" / "eval_data.json"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    rows = json.loads(path.read_text())
    golds = [r["golden_answer"] for r in rows]
    assert all(tool_call("\n".join(f"Action: {c['Action']}\nAction Input: {c['Action_Input']}" for c in g), g) for g in golds)
