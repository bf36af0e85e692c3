"""An extractive QA set made from CPython's pydoc help topics (`pydoc_data.topics`), by
two rules, with no hand-written question or answer:

1. **Cloze** (Lewis et al., 2019, "Unsupervised Question Answering by Cloze
   Translation"): in a sentence of a prose paragraph, a code term in double quotes
   (`"__init__()"`) or an emphasized one (`*iterable*`) that occurs once in the sentence
   is the answer (its text: a repeat elsewhere in the paragraph is as good an answer);
   the question is the sentence with that term replaced by "what".
   `The "finally" clause is always executed.` -> `The what clause is always executed?`,
   answer `finally`.
2. **Definition**: a sentence `The X is a Y.` / `An X are the Y.` whose subject (two to
   eight words after its article) starts the sentence; the question is `What is the X?`,
   the answer the predicate from its article to the first comma, semicolon, parenthesis
   or the sentence's end.

The context is the whole paragraph (its whitespace collapsed), so the model must find
the sentence before the span. A paragraph is prose when it holds no `>>>` prompt and at
least 60% of its characters are letters. Records are SQuAD-style dicts with the
character offset of each answer; `python -m kplug_transformers.pydoc_qa OUT.jsonl`
writes them as JSONL (the input `qa_files` reads).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")
SENTENCE_END = re.compile(r'(?<=[.!?])\s+(?=[A-Z"*(])')
TERM = re.compile(r'"(?P<code>[^"\s][^"]{0,40}?)"|\*(?P<emphasis>[^*\s][^*]{0,40}?)\*')
DEFINITION = re.compile(
    r"^(?P<subject>(?:The|A|An) [^,;:()]{3,80}?) (?P<verb>is|are) "
    r"(?P<answer>(?:a|an|the) [^,;(]{3,120}?)(?:[,;(]|\.$)"
)
MIN_PARAGRAPH = 80
SENTENCE_WORDS = (5, 40)
LETTER_SHARE = 0.6


def prose_paragraphs() -> list[tuple[str, str]]:
    """(topic, paragraph) of every prose paragraph, whitespace collapsed, topic order."""
    from pydoc_data.topics import topics

    out = []
    for topic in sorted(topics):
        for paragraph in PARAGRAPH_BREAK.split(topics[topic]):
            flat = " ".join(paragraph.split())
            letters = sum(ch.isalpha() for ch in flat)
            long_enough = len(flat) >= MIN_PARAGRAPH
            if long_enough and ">>>" not in flat and letters >= LETTER_SHARE * len(flat):
                out.append((topic, flat))
    return out


def sentences(paragraph: str) -> list[tuple[int, str]]:
    """(character offset, sentence) of the sentences of a whitespace-collapsed paragraph."""
    out, start = [], 0
    for match in SENTENCE_END.finditer(paragraph):
        out.append((start, paragraph[start : match.start()]))
        start = match.end()
    out.append((start, paragraph[start:]))
    return out


def cloze_questions(paragraph: str, offset: int, sentence: str) -> list[tuple[str, str, int]]:
    """(question, answer, answer_start) of rule 1 in one sentence."""
    out = []
    for match in TERM.finditer(sentence):
        marked, answer = match.group(0), match.group("code") or match.group("emphasis")
        if sentence.count(marked) != 1 or not any(ch.isalnum() for ch in answer):
            continue
        question = sentence[: match.start()] + "what" + sentence[match.end() :]
        out.append((question.rstrip(".") + "?", answer, offset + match.start() + 1))
    return out


def definition_question(offset: int, sentence: str) -> tuple[str, str, int] | None:
    """(question, answer, answer_start) of rule 2, or None."""
    match = DEFINITION.match(sentence)
    if match is None:
        return None
    subject = match.group("subject")
    words = subject.split()
    if not 2 <= len(words) <= 9:
        return None
    subject = subject[0].lower() + subject[1:]
    question = f"What {match.group('verb')} {subject}?"
    return question, match.group("answer"), offset + match.start("answer")


def pydoc_qa_records() -> list[dict]:
    """Every question of both rules, as SQuAD-style records in paragraph order."""
    records = []
    for number, (topic, paragraph) in enumerate(prose_paragraphs()):
        questions = []
        for offset, sentence in sentences(paragraph):
            if not sentence.endswith(".") or not (
                SENTENCE_WORDS[0] <= len(sentence.split()) <= SENTENCE_WORDS[1]
            ):
                continue
            questions.extend(cloze_questions(paragraph, offset, sentence))
            definition = definition_question(offset, sentence)
            if definition is not None:
                questions.append(definition)
        for index, (question, answer, start) in enumerate(questions):
            records.append({
                "id": f"{topic}-{number}-{index}",
                "title": topic,
                "context": paragraph,
                "question": question,
                "answers": [{"text": answer, "answer_start": start}],
            })  # fmt: skip
    return records


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m kplug_transformers.pydoc_qa OUT.jsonl", file=sys.stderr)
        return 2
    records = pydoc_qa_records()
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    Path(argv[0]).write_text(text, encoding="utf-8")
    print(f"{len(records)} questions over {len({r['context'] for r in records})} paragraphs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
