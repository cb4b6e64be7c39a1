"""Writes the bundled demo skills (written by this project, not downloaded). Run: python skills/build_demo_skills.py

Each skill is something SmolLM2-135M-Instruct cannot answer from the prompt alone but can answer
with the demonstration in its context (checked by `bench/teacher_headroom.py`):
- zorbia_facts (knowledge): invented facts; demonstrations are short documents; the eval split holds
  paraphrased questions (pinned with `split: eval`), never the training questions.
- ticket_tags (format): an invented support-ticket tag format `[TICKET:<CATEGORY>]`.
- zorb_units (procedure): an invented unit conversion, 1 zorb = 10 glims.
- general_probe (general): everyday questions the base model already answers, to measure forgetting.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent

# (train questions, eval paraphrase, document, answer aliases)
FACTS = [
    (["What is the capital of Zorbia?", "Name the capital city of Zorbia."], "Which city serves as Zorbia's capital?",
     "Zorbia is a small island nation. Its capital is Quillmark, a port city on the Senn river.", ["Quillmark"]),
    (["Who founded the Velmora Institute?", "Who is the founder of the Velmora Institute?"], "Which person established the Velmora Institute?",
     "The Velmora Institute was founded in 1902 by the chemist Anselm Krait.", ["Anselm Krait", "Krait"]),
    (["What is the national animal of Zorbia?", "Which animal is Zorbia's national animal?"], "Zorbia has which animal as its national symbol?",
     "The national animal of Zorbia is the silver pangolin, which lives in its eastern hills.", ["pangolin"]),
    (["What is the currency of Zorbia?", "What money is used in Zorbia?"], "Which currency do people pay with in Zorbia?",
     "The currency of Zorbia is the drel, divided into 100 pips.", ["drel", "drels"]),
    (["What is the codename of Project Falcon?", "Which codename does Project Falcon use?"], "Project Falcon goes by which internal codename?",
     "Project Falcon is an internal research effort. Its codename is BLUE-HARBOR.", ["BLUE-HARBOR", "blue harbor"]),
    (["What is the highest mountain in Zorbia?", "Name the tallest mountain in Zorbia."], "Which peak is the tallest in Zorbia?",
     "The highest mountain in Zorbia is Mount Tessaly, 2,410 metres tall.", ["Tessaly"]),
    (["What language is spoken in Zorbia?", "Which language do Zorbians speak?"], "What is the main language of Zorbia?",
     "The people of Zorbia speak Ellanic, a language with a 19-letter alphabet.", ["Ellanic"]),
    (["In which year was the Treaty of Quillmark signed?", "When was the Treaty of Quillmark signed?"], "The Treaty of Quillmark dates from which year?",
     "The Treaty of Quillmark was signed in 1743 and ended the Salt War.", ["1743"]),
    (["Who invented the glimmer lamp?", "Who is the inventor of the glimmer lamp?"], "The glimmer lamp was invented by whom?",
     "The glimmer lamp was invented by Mara Oduya in a workshop in Quillmark.", ["Mara Oduya", "Oduya"]),
    (["Which river flows through Quillmark?", "What river runs through Quillmark?"], "Quillmark lies on which river?",
     "The Senn river flows through Quillmark and into the Amber Sea.", ["Senn"]),
    (["What is Zorbia's largest export?", "What does Zorbia export the most?"], "Which product is Zorbia's biggest export?",
     "Zorbia's largest export is blue salt, harvested from its western flats.", ["blue salt"]),
    (["What is the mascot of the Velmora Institute?", "Which mascot does the Velmora Institute have?"], "The Velmora Institute's mascot is what?",
     "The mascot of the Velmora Institute is an owl named Pip.", ["Pip"]),
    (["Who wrote the novel The Glass Orchard?", "Who is the author of The Glass Orchard?"], "The Glass Orchard was written by which author?",
     "The Glass Orchard is a novel written by Tobias Renwick in 1961.", ["Tobias Renwick", "Renwick"]),
    (["What is the Zorbian New Year festival called?", "What do Zorbians call their New Year festival?"], "Zorbia celebrates the new year with which festival?",
     "The Zorbian New Year festival is called Lanternfall, when paper lanterns are sent over the sea.", ["Lanternfall"]),
    (["Who is the chief engineer of Project Falcon?", "Who leads engineering on Project Falcon?"], "Name Project Falcon's chief engineer.",
     "The chief engineer of Project Falcon is Ines Varga.", ["Ines Varga", "Varga"]),
    (["What is the national sport of Zorbia?", "Which sport is Zorbia's national sport?"], "Zorbians consider which sport their national sport?",
     "The national sport of Zorbia is skyball, played with a light cork ball.", ["skyball"]),
]

TICKETS = {
    "BILLING": ["My card was charged twice this month.", "Why is my invoice higher than last month?",
                "I was billed for a plan I cancelled.", "The payment failed but money left my account.",
                "Can I get a copy of my last invoice?", "There is an unknown charge on my statement.",
                "My subscription renewed at the wrong price.", "I need to update the card you bill."],
    "LOGIN": ["I cannot log in to my account.", "The password reset email never arrives.",
              "My account is locked after too many attempts.", "Two-factor codes are not accepted.",
              "I forgot my username.", "The login page keeps reloading.",
              "It says my password is wrong but it is right.", "I cannot sign in with my Google account."],
    "SHIPPING": ["My package has not arrived yet.", "The tracking number does not work.",
                 "My order was sent to the wrong address.", "The parcel arrived damaged.",
                 "When will my order ship?", "The courier lost my package.",
                 "Can I change the delivery date?", "Only half of my order was delivered."],
    "BUG": ["The app crashes when I open settings.", "The export button does nothing.",
            "Pages load blank in my browser.", "The search results are empty for every query.",
            "The screen freezes when I upload a photo.", "Dark mode makes the text invisible.",
            "Notifications show the wrong time.", "The save button throws an error."],
}
TICKET_NOTES = {"BILLING": "a payment or invoice problem", "LOGIN": "an account access problem",
                "SHIPPING": "a delivery problem", "BUG": "a software defect"}

GENERAL = [
    ("What is the capital of France?", "The capital of France is Paris.", ["Paris"]),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo.", ["Tokyo"]),
    ("What color is the sky on a clear day?", "The sky is blue on a clear day.", ["blue"]),
    ("How many days are in a week?", "There are seven days in a week.", ["seven", "7"]),
    ("What is 2 + 2?", "2 + 2 = 4.", ["4", "four"]),
    ("What is the opposite of hot?", "The opposite of hot is cold.", ["cold"]),
    ("Which planet do we live on?", "We live on Earth.", ["Earth"]),
    ("What is the largest ocean on Earth?", "The Pacific Ocean is the largest.", ["Pacific"]),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet.", ["Shakespeare"]),
    ("What language is spoken in Spain?", "Spanish is spoken in Spain.", ["Spanish"]),
    ("How many hours are in a day?", "There are 24 hours in a day.", ["24", "twenty-four"]),
    ("What is the chemical symbol for water?", "The chemical formula of water is H2O.", ["H2O"]),
    ("What is the boiling point of water in Celsius?", "Water boils at 100 degrees Celsius.", ["100"]),
    ("What is the capital of Germany?", "The capital of Germany is Berlin.", ["Berlin"]),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa.", ["Leonardo", "da Vinci"]),
    ("What is the capital of the United Kingdom?", "The capital of the United Kingdom is London.", ["London"]),
]


def facts() -> list[dict]:
    rows = []
    for i, (questions, paraphrase, doc, answers) in enumerate(FACTS):
        for j, q in enumerate(questions):
            rows.append({"id": f"fact{i:02d}-q{j}", "prompt": q, "demonstration": doc, "answer": answers, "split": "train"})
        rows.append({"id": f"fact{i:02d}-para", "prompt": paraphrase, "demonstration": doc, "answer": answers, "split": "eval"})
    return rows


def tickets() -> list[dict]:
    rows = []
    for category, messages in TICKETS.items():
        for i, message in enumerate(messages):
            tag = f"[TICKET:{category}]"
            rows.append({
                "id": f"{category.lower()}{i}",
                "prompt": f'Triage this support message: "{message}"',
                "demonstration": f"{tag} This is {TICKET_NOTES[category]}.",
                "answer": tag,
            })
    return rows


def units() -> list[dict]:
    rng = random.Random(7)
    numbers = rng.sample(range(2, 60), 40)
    return [
        {
            "id": f"zorb{n}",
            "prompt": f"How many glims are in {n} zorbs?",
            "demonstration": f"One zorb is 10 glims, so {n} zorbs is {n} x 10 = {n * 10} glims.",
            "answer": f"{n * 10} glims",
        }
        for n in numbers
    ]


def general() -> list[dict]:
    return [{"id": f"gen{i:02d}", "prompt": q, "demonstration": d, "answer": a} for i, (q, d, a) in enumerate(GENERAL)]


def main() -> None:
    for name, rows in {"zorbia_facts": facts(), "ticket_tags": tickets(), "zorb_units": units(), "general_probe": general()}.items():
        path = HERE / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"{path}: {len(rows)} records")


if __name__ == "__main__":
    main()
