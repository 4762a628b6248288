"""A labelled conversational retrieval set, generated deterministically.

A long multi-session chat between a user and an assistant, where the user mentions facts
once each among small talk and lexical distractors; each question's answer lies in exactly
one known turn. Questions come in two phrasings: one reusing the fact's words, one
paraphrased (few shared words). Used by the search quality tests and benchmarks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

NAMES = [
    "Alice",
    "Bruno",
    "Chiara",
    "Dmitri",
    "Esther",
    "Farid",
    "Greta",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemal",
    "Lucia",
    "Mateo",
    "Noor",
    "Oskar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tamar",
    "Umar",
    "Vera",
    "Wiktor",
    "Ximena",
    "Yusuf",
    "Zofia",
]
RELATIONS = [
    "sister",
    "brother",
    "cousin",
    "boss",
    "neighbour",
    "dentist",
    "landlord",
    "colleague",
    "mentor",
    "flatmate",
    "aunt",
    "uncle",
    "coach",
    "doctor",
]
CITIES = [
    "Lisbon",
    "Krakow",
    "Osaka",
    "Nairobi",
    "Valparaiso",
    "Tromso",
    "Ghent",
    "Tbilisi",
    "Quito",
    "Hanoi",
    "Adelaide",
    "Bergen",
    "Cusco",
    "Dakar",
    "Eindhoven",
    "Fes",
]
JOBS = [
    "nurse",
    "pilot",
    "carpenter",
    "pharmacist",
    "translator",
    "geologist",
    "baker",
    "firefighter",
    "architect",
    "librarian",
    "veterinarian",
    "electrician",
]
PETS = [
    ("dog", "Biscuit"),
    ("cat", "Mochi"),
    ("parrot", "Kiwi"),
    ("rabbit", "Pepper"),
    ("tortoise", "Atlas"),
    ("hamster", "Nugget"),
    ("ferret", "Ziggy"),
]
DRINKS = [
    "an espresso",
    "green tea",
    "a glass of kefir",
    "hot chocolate",
    "a flat white",
    "yerba mate",
    "ginger shots",
]
FOODS = ["peanuts", "shellfish", "sesame", "kiwi fruit", "gluten", "soy", "mustard"]
PROJECTS = ["Orion", "Basalt", "Juniper", "Halcyon", "Quartz", "Meridian", "Tundra", "Saffron"]
SMALL_TALK = [
    "That sounds lovely, tell me more.",
    "How was the rest of your week?",
    "I can help you plan that.",
    "Good question, let me think about it.",
    "Thanks for sharing that with me.",
    "Would you like a reminder for it?",
    "Cities are lovely in spring, especially by the water.",
    "Many people drink something warm in the morning.",
    "Deploys fail for all kinds of reasons, usually configuration.",
    "Pets need regular visits to the vet.",
    "Work can be demanding when deadlines pile up.",
    "Food allergies are more common than people think.",
    "Family visits are always a bit hectic.",
    "Restaurants get busy on weekends.",
]


@dataclass(frozen=True)
class Question:
    text: str
    answer: str  # the content of the one turn that answers it
    style: str  # "lexical" or "paraphrase"


@dataclass(frozen=True)
class Dataset:
    turns: list[tuple[str, str]]  # (role, content), in conversation order
    questions: list[Question]


def _facts(rng: random.Random) -> list[tuple[str, str, str, list[str]]]:
    """(fact turn, lexical question, paraphrased question, distractor turns) per fact.

    Distractors mention the same people, things and words without the answer, as a real
    conversation does."""
    facts = []
    for relation in RELATIONS:
        name, city, job = rng.choice(NAMES), rng.choice(CITIES), rng.choice(JOBS)
        facts.append(
            (
                f"My {relation} {name} moved to {city} last year.",
                f"Where did my {relation} {name} move to?",
                f"Which town is my {relation} living in these days?",
                [
                    f"My {relation} {name} called me yesterday about the weekend.",
                    f"I had lunch with my {relation} {name} and we talked about moving.",
                ],
            )
        )
        facts.append(
            (
                f"My {relation} works as a {job} at the hospital near home."
                if job in ("nurse", "pharmacist")
                else f"My {relation} works as a {job} and loves it.",
                f"What does my {relation} work as?",
                f"What is my {relation}'s profession?",
                [
                    f"My {relation} is tired after a long week at work.",
                    f"My {relation} loves talking about work at dinner.",
                ],
            )
        )
    for animal, pet_name in PETS:
        facts.append(
            (
                f"We adopted a {animal} and named it {pet_name}.",
                f"What is the name of our {animal}?",
                f"What did we call the {animal} we took in?",
                [
                    f"The {animal} knocked over a plant again.",
                    f"Our {animal} needs a new name tag for the collar.",
                ],
            )
        )
    for drink, weekday in zip(
        DRINKS,
        ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
        strict=True,
    ):
        facts.append(
            (
                f"On {weekday} mornings I always have {drink} first thing.",
                f"What do I have on {weekday} mornings?",
                f"What's my first beverage when I wake up on a {weekday}?",
                [
                    f"{weekday} mornings are always busy at home.",
                    f"I always have meetings first thing on {weekday}.",
                ],
            )
        )
    for food in FOODS:
        facts.append(
            (
                f"Careful with {food}: I had a bad reaction to it at a wedding.",
                "Which food did I have a bad reaction to at a wedding?",
                "What am I allergic to since that wedding incident?",
                [
                    "The wedding buffet had a lot of food.",
                    "I had a bad reaction to the wedding speech, it was so long.",
                ],
            )
        )
    for project in PROJECTS:
        code = f"ERR-{rng.randint(1000, 9999)}"
        facts.append(
            (
                f"The {project} release was rolled back after {code} showed up in the logs.",
                f"What error showed up in the logs for the {project} release?",
                f"Why did we roll back {project}? Which {code} was it about?",
                [
                    f"The {project} team is planning the next release.",
                    f"Logs for {project} have been noisy since the release.",
                ],
            )
        )
    return facts


def build(seed: int = 7, sessions: int = 12, small_talk_per_fact: int = 4) -> Dataset:
    rng = random.Random(seed)
    facts = _facts(rng)
    rng.shuffle(facts)
    turns: list[tuple[str, str]] = []
    questions: list[Question] = []
    per_session = max(1, len(facts) // sessions)
    distractors = [turn for *_, extra in facts for turn in extra]
    for index, (fact, lexical, paraphrase, _extra) in enumerate(facts):
        if index % per_session == 0:
            turns.append(("system", f"Session {index // per_session + 1} begins."))
        for _ in range(small_talk_per_fact // 2):
            turns.append(("assistant", rng.choice(SMALL_TALK)))
        turns.append(("user", distractors[rng.randrange(len(distractors))]))
        turns.append(("user", fact))
        for _ in range(small_talk_per_fact - small_talk_per_fact // 2):
            turns.append(("assistant", rng.choice(SMALL_TALK)))
        turns.append(("user", distractors[rng.randrange(len(distractors))]))
        questions.append(Question(lexical, fact, "lexical"))
        questions.append(Question(paraphrase, fact, "paraphrase"))
    return Dataset(turns=turns, questions=questions)
