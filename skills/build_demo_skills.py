"""Writes the bundled demo skills (written by this project, not downloaded). Run: python skills/build_demo_skills.py

Each skill is something SmolLM2-135M-Instruct cannot answer from the prompt alone but can answer
with the demonstration in its context (checked by `bench/teacher_headroom.py`):
- zorbia_facts (knowledge): invented facts; demonstrations are short documents; the eval split holds
  paraphrased questions (pinned with `split: eval`), never the training questions.
- ticket_tags (format): an invented support-ticket tag format `[TICKET:<CATEGORY>]`.
- zorb_units (procedure): an invented unit conversion, 1 zorb = 10 glims.
- general_probe (general): everyday questions the base model answers, and keeps answering under random weight
  noise of a learned skill's size (NOISY below), to measure forgetting.
- anchor_prompts: general prompts (no answers) that replay distils toward the parent model; none is a probe question.
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
    # Grown to 65 (session 4) so one question is 1.5 points: candidates the base model answered right, kept.
    ("What is the capital of Norway?", "The capital of Norway is Oslo.", ["Oslo"]),
    ("What is the capital of Ireland?", "The capital of Ireland is Dublin.", ["Dublin"]),
    ("What is the capital of Austria?", "The capital of Austria is Vienna.", ["Vienna"]),
    ("What is the capital of Kenya?", "The capital of Kenya is Nairobi.", ["Nairobi"]),
    ("What is the capital of South Korea?", "The capital of South Korea is Seoul.", ["Seoul"]),
    ("What is the capital of Thailand?", "The capital of Thailand is Bangkok.", ["Bangkok"]),
    ("What is the capital of Sweden?", "The capital of Sweden is Stockholm.", ["Stockholm"]),
    ("What is the capital of Poland?", "The capital of Poland is Warsaw.", ["Warsaw"]),
    ("What is the capital of the Netherlands?", "The capital of the Netherlands is Amsterdam.", ["Amsterdam"]),
    ("What star is at the center of our solar system?", "The Sun.", ["Sun"]),
    ("How many days are in a regular year?", "A regular year has 365 days.", ["365"]),
    ("How many centimeters are in a meter?", "There are 100 centimeters in a meter.", ["100", "hundred"]),
    ("How many grams are in a kilogram?", "There are 1000 grams in a kilogram.", ["1000", "1,000", "thousand"]),
    ("What is 20 minus 5?", "20 minus 5 is 15.", ["15", "fifteen"]),
    ("What is 9 times 9?", "9 times 9 is 81.", ["81"]),
    ("What is 3 times 4?", "3 times 4 is 12.", ["12", "twelve"]),
    ("What is 10 + 10?", "10 + 10 = 20.", ["20", "twenty"]),
    ("What is 50 + 50?", "50 + 50 = 100.", ["100"]),
    ("What is 1 + 1?", "1 + 1 = 2.", ["2", "two"]),
    ("What is 6 + 6?", "6 + 6 = 12.", ["12", "twelve"]),
    ("What is the opposite of day?", "The opposite of day is night.", ["night"]),
    ("What is the opposite of black?", "The opposite of black is white.", ["white"]),
    ("What is the opposite of old?", "The opposite of old is young (or new).", ["young", "new"]),
    ("What is the opposite of open?", "The opposite of open is closed.", ["close", "closed", "shut"]),
    ("What is the opposite of wet?", "The opposite of wet is dry.", ["dry"]),
    ("What is the opposite of left?", "The opposite of left is right.", ["right"]),
    ("What is the opposite of true?", "The opposite of true is false.", ["false"]),
    ("What is the plural of foot?", "The plural of foot is feet.", ["feet"]),
    ("What is the plural of tooth?", "The plural of tooth is teeth.", ["teeth"]),
    ("What color is a ripe tomato?", "A ripe tomato is red.", ["red"]),
    ("What color is coal?", "Coal is black.", ["black"]),
    ("How many legs does a dog have?", "A dog has four legs.", ["four", "4"]),
    ("What do fish use to breathe?", "Fish breathe with gills.", ["gills"]),
    ("Which country is home to the kangaroo?", "Australia.", ["Australia"]),
    ("In which country are the pyramids of Giza?", "Egypt.", ["Egypt"]),
    ("Who invented the telephone?", "Alexander Graham Bell.", ["Bell"]),
    ("Who wrote the Harry Potter books?", "J.K. Rowling.", ["Rowling"]),
    ("What is the chemical symbol for oxygen?", "O.", ["O", "O2"]),
    ("What is H2O commonly called?", "Water.", ["water"]),
    ("How many sides does a triangle have?", "Three.", ["three", "3"]),
    ("How many sides does a hexagon have?", "Six.", ["six", "6"]),
    ("How many letters are in the English alphabet?", "26.", ["26", "twenty-six"]),
    ("What do you call a person who teaches students?", "A teacher.", ["teacher"]),
    ("Where does the sun rise?", "In the east.", ["east"]),
    ("What is the last month of the year?", "December.", ["December"]),
    ("Answer yes or no: is fire cold?", "No.", ["no"]),
    ("Repeat the word 'apple'.", "apple", ["apple"]),
    ("Write the number five as a digit.", "5", ["5"]),
    ("Spell the word 'dog' in capital letters.", "DOG", ["DOG"]),
    # Added in session 6 (ids gen65-gen115), candidates for the noise-filtered probe (bench/probe_noise.py):
    ("What is the capital of Spain?", "The capital of Spain is Madrid.", ["Madrid"]),
    ("What is the capital of Portugal?", "The capital of Portugal is Lisbon.", ["Lisbon"]),
    ("What is the capital of Argentina?", "The capital of Argentina is Buenos Aires.", ["Buenos Aires"]),
    ("What is the capital of Denmark?", "The capital of Denmark is Copenhagen.", ["Copenhagen"]),
    ("What is the capital of Finland?", "The capital of Finland is Helsinki.", ["Helsinki"]),
    ("What is the capital of Turkey?", "The capital of Turkey is Ankara.", ["Ankara"]),
    ("What is the capital of Belgium?", "The capital of Belgium is Brussels.", ["Brussels"]),
    ("What is the capital of Cuba?", "The capital of Cuba is Havana.", ["Havana"]),
    ("What is the capital of Peru?", "The capital of Peru is Lima.", ["Lima"]),
    ("What is 5 + 3?", "5 + 3 = 8.", ["8", "eight"]),
    ("What is 7 + 2?", "7 + 2 = 9.", ["9", "nine"]),
    ("What is 4 times 5?", "4 times 5 is 20.", ["20", "twenty"]),
    ("What is 10 minus 3?", "10 minus 3 is 7.", ["7", "seven"]),
    ("What is 2 times 3?", "2 times 3 is 6.", ["6", "six"]),
    ("What is 8 + 8?", "8 + 8 = 16.", ["16", "sixteen"]),
    ("What is 4 + 4?", "4 + 4 = 8.", ["8", "eight"]),
    ("What is 30 + 20?", "30 + 20 = 50.", ["50", "fifty"]),
    ("What is 7 times 2?", "7 times 2 is 14.", ["14", "fourteen"]),
    ("What is the opposite of full?", "The opposite of full is empty.", ["empty"]),
    ("What is the opposite of light?", "The opposite of light is dark.", ["dark", "heavy"]),
    ("What is the opposite of early?", "The opposite of early is late.", ["late"]),
    ("What is the opposite of inside?", "The opposite of inside is outside.", ["outside"]),
    ("What is the opposite of win?", "The opposite of win is lose.", ["lose", "loss"]),
    ("What is the plural of man?", "The plural of man is men.", ["men"]),
    ("What is the plural of woman?", "The plural of woman is women.", ["women"]),
    ("What is the plural of goose?", "The plural of goose is geese.", ["geese"]),
    ("What color is snow?", "Snow is white.", ["white"]),
    ("What color is a lemon?", "A lemon is yellow.", ["yellow"]),
    ("How many legs does a cat have?", "A cat has four legs.", ["four", "4"]),
    ("How many days are in a weekend?", "There are two days in a weekend.", ["two", "2"]),
    ("How many hours are in half a day?", "There are twelve hours in half a day.", ["12", "twelve"]),
    ("How many eyes does a person have?", "A person has two eyes.", ["two", "2"]),
    ("What animal is known as the king of the jungle?", "The lion is known as the king of the jungle.", ["lion"]),
    ("What animal says moo?", "A cow says moo.", ["cow"]),
    ("Who wrote Pride and Prejudice?", "Pride and Prejudice was written by Jane Austen.", ["Austen"]),
    ("What is the last day of the week?", "Sunday is the last day of the week.", ["Sunday", "Saturday"]),
    ("Answer yes or no: is ice cold?", "Yes.", ["yes"]),
    ("Answer yes or no: do birds have feathers?", "Yes.", ["yes"]),
    ("Repeat the word 'house'.", "house", ["house"]),
    ("Write the number seven as a digit.", "7", ["7"]),
    ("Spell the word 'cat' in capital letters.", "CAT", ["CAT"]),
    ("What is the main language spoken in France?", "The main language spoken in France is French.", ["French"]),
    ("What is the main language spoken in Germany?", "The main language spoken in Germany is German.", ["German"]),
    ("What is the tallest animal in the world?", "The giraffe is the tallest animal in the world.", ["giraffe"]),
    ("What do we call the meal eaten in the morning?", "The meal eaten in the morning is breakfast.", ["breakfast"]),
    ("What do you use to cut paper?", "You use scissors to cut paper.", ["scissors"]),
    ("What is the capital of the United States?", "The capital of the United States is Washington, D.C.", ["Washington"]),
    ("What is the chemical symbol for iron?", "The chemical symbol for iron is Fe.", ["Fe"]),
    ("What do plants need from the sun to grow?", "Plants need sunlight to grow.", ["light", "sunlight", "energy"]),
    ("Which is colder, ice or fire?", "Ice is colder than fire.", ["ice"]),
    ("What is the opposite of north?", "The opposite of north is south.", ["south"]),
]


# General prompts for replay's anchor (sdft/replay.py): never a probe or eval question (checked at train).
ANCHORS = [
    "What is the capital of Italy?",
    "What is the capital of Canada?",
    "What is the capital of Egypt?",
    "What is the capital of Australia?",
    "What is the capital of Brazil?",
    "What is the capital of Russia?",
    "What is the capital of China?",
    "What is the capital of India?",
    "What is the capital of Mexico?",
    "What is the capital of Greece?",
    "Which is the largest planet in the solar system?",
    "Which planet is known as the Red Planet?",
    "What is the closest star to Earth?",
    "How many continents are there?",
    "What is the longest river in Africa?",
    "What is the tallest mountain in the world?",
    "What gas do plants absorb from the air?",
    "What do bees make?",
    "What is frozen water called?",
    "How many legs does a spider have?",
    "How many legs does an insect have?",
    "What is the main language spoken in Brazil?",
    "Who was the first person to walk on the Moon?",
    "Who developed the theory of relativity?",
    "Who wrote the play Hamlet?",
    "What is the largest mammal?",
    "What is the fastest land animal?",
    "What is the freezing point of water in Fahrenheit?",
    "How many minutes are in an hour?",
    "How many months are in a year?",
    "How many seconds are in a minute?",
    "What is 3 + 5?",
    "What is 10 - 4?",
    "What is 6 times 7?",
    "What is 12 divided by 3?",
    "What is 9 + 8?",
    "What is 15 - 7?",
    "What is 5 times 5?",
    "What is 100 divided by 10?",
    "What is half of 50?",
    "What is the square root of 81?",
    "Is 17 a prime number?",
    "What is the next number after 99?",
    "Which number is larger, 45 or 54?",
    "What is the opposite of big?",
    "What is the opposite of happy?",
    "What is the opposite of up?",
    "What is the opposite of fast?",
    "What is a synonym for quick?",
    "What is a synonym for big?",
    "What does the word \"ancient\" mean?",
    "What does \"generous\" mean?",
    "What is the plural of \"child\"?",
    "What is the plural of \"mouse\"?",
    "What is the past tense of \"run\"?",
    "What is the past tense of \"go\"?",
    "Spell the word \"necessary\".",
    "What color do you get by mixing blue and yellow?",
    "What color do you get by mixing red and white?",
    "What color are bananas when they are ripe?",
    "What color is grass?",
    "What shape has three sides?",
    "How many sides does a square have?",
    "What is the shape of a ball called?",
    "Name a fruit that is red.",
    "Name an animal that lives in the ocean.",
    "Name three colors of the rainbow.",
    "Name a vegetable that is orange.",
    "What do cows drink?",
    "Where do penguins mostly live?",
    "What do you call a baby dog?",
    "What do you call a baby cat?",
    "What is the primary ingredient in bread?",
    "What instrument has black and white keys?",
    "How many players are on a soccer team on the field?",
    "What sport uses a bat and a ball and has innings?",
    "What do you use to write on a blackboard?",
    "Which season comes after winter?",
    "Which day comes after Monday?",
    "What is the first month of the year?",
    "Translate \"hello\" into Spanish.",
    "Translate \"thank you\" into French.",
    "Write one sentence about the sea.",
    "Write a short greeting for a friend's birthday.",
    "Give me one tip for staying healthy.",
    "Suggest a name for a pet goldfish.",
    "List three things you might find in a kitchen.",
    "Describe a cat in one sentence.",
    "Answer with yes or no: is the sun hot?",
    "Answer with yes or no: can fish fly?",
    "Answer in one word: what is the color of snow?",
    "Complete the sentence: The early bird catches the ...",
    "Complete the sentence: An apple a day keeps the ...",
    "Rewrite this sentence in the past tense: I walk to school.",
    "Put these numbers in order from smallest to largest: 9, 2, 7.",
    "Count from one to five.",
    "What is the capital letter of the letter \"b\"?",
    "Which word rhymes with \"cat\": hat or dog?",
    "What is a group of wolves called?",
    "Why do we need to sleep?",
    "What is the boiling point of water in Fahrenheit?",
    "How many wheels does a bicycle have?",
    "What is the chemical symbol for gold?",
    "What organ pumps blood through the body?",
    "What do caterpillars turn into?",
    "What is the largest desert in the world?",
    "Which ocean lies between Europe and North America?",
    "What is the main gas in the air we breathe?",
    "Who painted The Starry Night?",
    "What currency is used in Japan?",
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


# Left out of the probe by `bench/probe_noise.py` (eps 0.005, 3 seeds; docs/QUALITY.md §11): the base model answers
# them wrong, or right only until its weights move by as much as a learned skill moves them, in a random
# direction. Such a question measures noise, not forgetting.
NOISY = {"gen06", "gen10", "gen27", "gen29", "gen31", "gen33", "gen46", "gen59", "gen65", "gen66", "gen67", "gen68", "gen69", "gen70", "gen71", "gen74", "gen75", "gen76", "gen77", "gen78", "gen80", "gen81", "gen82", "gen84", "gen90", "gen91", "gen92", "gen94", "gen95", "gen96", "gen97", "gen98", "gen101", "gen102", "gen108", "gen109", "gen110", "gen111"}


def general() -> list[dict]:
    return [{"id": f"gen{i:02d}", "prompt": q, "demonstration": d, "answer": a} for i, (q, d, a) in enumerate(GENERAL)
            if f"gen{i:02d}" not in NOISY]


def anchors() -> list[dict]:
    return [{"id": f"anchor{i:03d}", "prompt": p} for i, p in enumerate(ANCHORS)]


def main() -> None:
    files = {"zorbia_facts": facts(), "ticket_tags": tickets(), "zorb_units": units(), "general_probe": general(),
             "anchor_prompts": anchors()}
    for name, rows in files.items():
        path = HERE / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"{path}: {len(rows)} records")


if __name__ == "__main__":
    main()
