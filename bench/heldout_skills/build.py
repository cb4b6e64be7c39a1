"""Two skills kept aside for the generalisation check (issue #12): never used to choose a setting.

Run: python bench/heldout_skills/build.py   (writes kelvara_facts.jsonl and ans_format.jsonl beside this file)
- kelvara_facts (knowledge): invented facts about an invented archipelago; each fact has two training
  questions and a paraphrased held-out question (`split: eval`), as a user's fact skill would.
- ans_format (format): easy questions whose answer must open with an invented tag, `ANS[<answer>]`;
  held-out questions are new questions of the same kind (the base model knows the answers, not the tag).
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent

FACTS = [
    (["What is the largest island of the Kelvara Archipelago?", "Which island is the biggest in Kelvara?"],
     "Which Kelvaran island covers the most area?", "The largest island of the Kelvara Archipelago is Torrun, home to half its people.", ["Torrun"]),
    (["Who was the first queen of Kelvara?", "Name the first queen of Kelvara."],
     "Kelvara's first queen was called what?", "Kelvara's first queen was Ysolde Marrin, crowned in 1612.", ["Ysolde", "Marrin"]),
    (["What is the national drink of Kelvara?", "Which drink is Kelvara's national drink?"],
     "Kelvarans consider which beverage their national drink?", "The national drink of Kelvara is brackleberry tea, served cold.", ["brackleberry"]),
    (["What is the main export of Kelvara?", "What does Kelvara export most?"],
     "Kelvara's biggest export is what product?", "Kelvara's main export is sea-glass, shipped from the port of Ondel.", ["sea-glass", "sea glass"]),
    (["Which port ships Kelvara's sea-glass?", "From which port is Kelvaran sea-glass shipped?"],
     "Kelvaran sea-glass leaves from which harbour?", "Sea-glass from Kelvara is shipped from the port of Ondel on Torrun's north coast.", ["Ondel"]),
    (["What is the name of Kelvara's parliament?", "How is the parliament of Kelvara called?"],
     "Kelvara's law-making assembly has what name?", "The parliament of Kelvara is called the Tidemoot and meets twice a year.", ["Tidemoot"]),
    (["What bird is the symbol of Kelvara?", "Which bird represents Kelvara?"],
     "Kelvara uses which bird as its emblem?", "The symbol of Kelvara is the grey petrel, painted on its flag.", ["petrel"]),
    (["Who wrote the Kelvaran national anthem?", "Who is the author of Kelvara's anthem?"],
     "The Kelvaran anthem was composed by whom?", "Kelvara's national anthem was written by the poet Davin Oresk in 1788.", ["Oresk"]),
    (["What is the currency of Kelvara?", "Which money do Kelvarans use?"],
     "People in Kelvara pay with which currency?", "The currency of Kelvara is the shell-mark, made of 50 tallies.", ["shell-mark", "shell mark"]),
    (["Which festival celebrates the Kelvaran new year?", "What is the Kelvaran new year festival called?"],
     "Kelvarans mark their new year with which festival?", "The Kelvaran new year is celebrated with the Lantern Tide festival in March.", ["Lantern Tide"]),
    (["What is the highest peak in Kelvara?", "Name the tallest mountain of Kelvara."],
     "Which Kelvaran mountain rises the highest?", "The highest peak in Kelvara is Mount Ashgrove, 1,870 metres tall.", ["Ashgrove"]),
    (["What language is spoken in Kelvara?", "Which language do people in Kelvara speak?"],
     "Kelvarans mostly speak which language?", "The people of Kelvara speak Varrish, a language of the western seas.", ["Varrish"]),
]

EASY = [  # (question, answer, sentence): easy for the 135M base model; none is a probe or anchor prompt
    ("What is 2 + 3?", "5", "Two plus three is five."), ("What is 5 + 3?", "8", "Five plus three is eight."),
    ("What is 10 - 3?", "7", "Ten minus three is seven."), ("What is 3 + 3?", "6", "Three plus three is six."),
    ("What color is the sky on a sunny day?", "blue", "The sky is blue on a sunny day."),
    ("What color is snow?", "white", "Snow is white."), ("What color is a lemon?", "yellow", "A lemon is yellow."),
    ("Which city is the capital of Greece?", "Athens", "Athens is the capital of Greece."),
    ("Which city is the capital of England?", "London", "London is the capital of England."),
    ("Which city is the capital of Russia?", "Moscow", "Moscow is the capital of Russia."),
    ("How many days does a weekend have?", "2", "A weekend has two days."), ("How many legs does a cat have?", "4", "A cat has four legs."),
    ("What animal says woof?", "dog", "A dog says woof."), ("What do birds use to fly?", "wings", "Birds fly with their wings."),
    ("What falls from clouds when it rains?", "water", "Rain is water falling from clouds."),
    ("What is the opposite of down?", "up", "The opposite of down is up."),
    ("What is the opposite of cold?", "hot", "The opposite of cold is hot."), ("What is the opposite of small?", "big", "The opposite of small is big."),
    ("What shines in the sky during the day?", "sun", "The sun shines during the day."),
    ("What season comes after autumn?", "winter", "Winter comes after autumn."),
    ("What is the second month of the year?", "February", "February is the second month."),
    ("How many minutes are in half an hour?", "30", "Half an hour has 30 minutes."), ("What is 6 + 1?", "7", "Six plus one is seven."),
    ("What is the color of a banana?", "yellow", "A ripe banana is yellow."),
    # held out (eval split)
    ("What is 4 + 4?", "8", "Four plus four is eight."), ("What color is a strawberry?", "red", "A strawberry is red."),
    ("Which city is the capital of China?", "Beijing", "Beijing is the capital of China."),
    ("What is the opposite of night?", "day", "The opposite of night is day."),
    ("How many legs does a horse have?", "4", "A horse has four legs."), ("What is 9 - 4?", "5", "Nine minus four is five."),
    ("What animal says meow?", "cat", "A cat says meow."), ("What do we drink when we are thirsty?", "water", "We drink water."),
]


def facts() -> list[dict]:
    rows = []
    for i, (train_qs, eval_q, doc, answer) in enumerate(FACTS):
        rows += [{"id": f"kel{i:02d}-q{j}", "prompt": q, "demonstration": doc, "answer": answer, "split": "train"}
                 for j, q in enumerate(train_qs)]
        rows.append({"id": f"kel{i:02d}-para", "prompt": eval_q, "demonstration": doc, "answer": answer, "split": "eval"})
    return rows


def ans_format() -> list[dict]:
    return [{"id": f"ans{i:02d}", "prompt": q, "demonstration": f"ANS[{a}] {s}", "answer": f"ANS[{a}]",
             "split": "train" if i < 24 else "eval"} for i, (q, a, s) in enumerate(EASY)]


def main() -> None:
    for name, rows in {"kelvara_facts": facts(), "ans_format": ans_format()}.items():
        path = HERE / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"{path}: {len(rows)} records")


if __name__ == "__main__":
    main()
