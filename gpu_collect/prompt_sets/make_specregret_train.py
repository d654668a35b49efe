"""Source of ``specregret-train.jsonl``: prompts for training draft heads by self-distillation
(Apache-2.0, generated here from the templates and subjects below; nothing downloaded).

The same seven categories as ``specregret-84`` (the evaluation set) but none of its prompts:
``python gpu_collect/prompt_sets/make_specregret_train.py`` rewrites the file and refuses to
write a prompt whose words overlap an evaluation turn's by more than half (content-word Jaccard;
``tests/test_heads.py`` checks the shipped file).
"""

import itertools
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHAT_T = ["What are some practical tips for {}?", "Explain to a beginner how to approach {}.",
          "What common mistakes do people make when {}?", "Give me a short checklist for {}."]
CHAT_S = ["cooking rice on a stove", "learning to swim as an adult", "organising a small closet",
          "writing a thank-you note", "keeping houseplants alive in winter", "planning a picnic",
          "studying for an exam in one week", "taking care of a new puppy"]
CODE_T = ["Write a Python function that {}.", "Write a short Python program that {}, with a docstring.",
          "Explain step by step how you would write code that {}."]
CODE_S = ["reverses the words in a sentence", "returns the second largest number in a list",
          "checks whether two strings are anagrams", "checks whether a year is a leap year",
          "counts the vowels in a string", "splits a list into chunks of a given size",
          "computes the factorial of a number without recursion", "finds the longest word in a sentence"]
MATH_T = ["A shop sells {a} apples for {b} dollars. How much do {c} apples cost? Show your steps.",
          "A train travels {a} kilometres in {b} hours. At the same speed, how far does it go in {c} hours?",
          "Tom has {a} marbles, gives away {b} and then buys {c} more. How many does he have?"]
MATH_N = [(6, 3, 10), (12, 4, 9), (15, 5, 7), (8, 2, 11), (20, 4, 6), (9, 3, 13), (14, 7, 5)]
SUMM_T = ["Summarize the following text in two sentences.\n\n{}", "Give the main point of this passage.\n\n{}"]
SUMM_S = [
    "The town library opened a new reading room this spring. It has large windows, comfortable chairs and "
    "a small corner for children. Volunteers run story hours on Saturdays, and the room stays open late on "
    "Thursdays so that people who work during the day can visit.",
    "Farmers in the valley switched to drip irrigation over the last five years. The pipes deliver water "
    "straight to the roots, which saves water during dry summers. The change was expensive at first, but "
    "most farms say their harvests became more reliable.",
    "A group of students built a small weather station on the school roof. It measures temperature, wind "
    "and rain every ten minutes and sends the data to a web page. Teachers now use the readings in maths "
    "and geography lessons.",
    "The city added protected bicycle lanes on three main streets. Cycling on those streets doubled within "
    "a year, and the number of accidents involving cyclists fell. Some shop owners worried about parking, "
    "but most now report no loss of customers.",
    "Researchers followed a flock of migrating birds with tiny trackers. The birds flew more than four "
    "thousand kilometres and rested at the same three lakes every year. Protecting those lakes may be "
    "important for the survival of the species.",
]
EXTRACT_T = ["List every person and the city they live in from this text: {}",
             "Extract all dates mentioned in the following text as a list: {}"]
EXTRACT_S = ["Maria lives in Lisbon and visits her brother Paul in Madrid every March. Their cousin Ana moved to "
             "Porto on 4 June 2021.",
             "The meeting moved from 2 May to 9 May. Kenji from Osaka and Lena from Berlin will join, and the "
             "report is due on 30 June.",
             "Omar, who lives in Cairo, met Sofia from Rome on 12 January. They plan to meet again in Paris "
             "on 3 April."]
TRANSLATE_T = ["Translate into French: {}", "Translate into Spanish: {}", "Translate into German: {}"]
TRANSLATE_S = ["The weather is nice today, so we will walk to the market.",
               "Please close the window before you leave the room.",
               "My sister is learning to play the piano."]
RAG_T = ["Use the context to answer the question.\n\nContext: {}\n\nQuestion: {}"]
RAG_S = [("The bakery on Elm Street opens at seven in the morning and closes at three. It is closed on Mondays.",
          "When can I buy bread there on a Tuesday afternoon?"),
         ("The museum offers free entry on the first Sunday of every month. Audio guides cost four dollars.",
          "How much does a visit with an audio guide cost on the first Sunday?"),
         ("The river path is four kilometres long and has benches every five hundred metres.",
          "How many benches are along the path, roughly?"),
         ("The community pool is heated to twenty-eight degrees and has lanes reserved for swimmers before nine.",
          "Can I swim laps at eight in the morning?")]


def questions() -> list[dict]:
    cats = [
        ("chat", [t.format(s) for t, s in itertools.product(CHAT_T, CHAT_S)]),
        ("code", [t.format(s) for t, s in itertools.product(CODE_T, CODE_S)]),
        ("math", [t.format(a=a, b=b, c=c) for t, (a, b, c) in itertools.product(MATH_T, MATH_N)]),
        ("summarization", [t.format(s) for t, s in itertools.product(SUMM_T, SUMM_S)]),
        ("extraction", [t.format(s) for t, s in itertools.product(EXTRACT_T, EXTRACT_S)]),
        ("translation", [t.format(s) for t, s in itertools.product(TRANSLATE_T, TRANSLATE_S)]),
        ("rag", [t.format(c, q) for t, (c, q) in itertools.product(RAG_T, RAG_S)]),
    ]
    out, qid = [], 1
    for cat, prompts in cats:
        for p in prompts:
            out.append({"question_id": qid, "category": cat, "turns": [p]})
            qid += 1
    return out


# words of the instructions themselves, not of what is asked
STOP = set("a an the and or of to in on for with by from at as is are be it its this that these those what how "
           "which who why when do does you your me my i we give write python javascript function program code short "
           "docstring explain step would into one two use using following text".split())


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower())) - STOP


def near_duplicates(train: list[str], evals: list[str], threshold: float = 0.5) -> list[tuple[str, str, float]]:
    """(training prompt, evaluation turn, Jaccard) for every pair whose word sets overlap more
    than ``threshold``: a near-copy would let a head memorise an evaluation answer."""
    out = []
    for t in train:
        a = _words(t)
        for e in evals:
            b = _words(e)
            j = len(a & b) / max(1, len(a | b))
            if j > threshold:
                out.append((t, e, round(j, 3)))
    return out


def main() -> None:
    evals = [t for line in (HERE / "specregret-84.jsonl").read_text().splitlines() if line.strip()
             for t in json.loads(line)["turns"]]
    qs = questions()
    clash = near_duplicates([q["turns"][0] for q in qs], evals)
    if clash:
        raise SystemExit(f"training prompts too close to evaluation turns (content-word Jaccard > 0.5): {clash[:3]}")
    (HERE / "specregret-train.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    print(f"wrote {len(qs)} training prompts")


if __name__ == "__main__":
    main()
