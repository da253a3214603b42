"""Chat from the embedded base model: how many of 30 everyday questions get an on-topic answer, per chat format.

    flock /tmp/shieldkit-cpu.lock env HF_HUB_OFFLINE=1 .venv/bin/python bench/chat.py [--max-tokens 64] [--seeds 0 1 2]

Each question is sent as one user message, as the proxy's embedded upstream sends it (``runtime.generate`` on the
messages), with ``--max-tokens`` new tokens. Rows: Gemma's turn format on the float reference decoder (the
behaviour before the transcript), the transcript on the reference decoder, on int8-head, and on the default
decoder. Greedy, and sampled at temperature 0.7 / top-p 1.0 (the proxy's default temperature) for each seed.

On-topic rule: an answer is on topic when it contains one of the question's keywords (listed beside it below),
case-insensitively, starting at a word boundary (so "hydrat" matches "hydrated"; a number must not run on into
more digits). No keyword appears in its own question, so echoing the question does not count.
"""

from __future__ import annotations

import argparse
import re
import statistics

from shieldkit.model import GemmaRuntime, GenerationConfig, ModelSettings

# (question, keywords): team-written, fixed. None of them is one of the transcript's few-shot examples.
QUESTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What is the capital of France?", ("paris",)),
    ("How many days are there in a week?", ("seven", "7")),
    ("What colour is the sky on a clear day?", ("blue",)),
    ("What do bees make?", ("honey", "wax")),
    ("How many minutes are in an hour?", ("sixty", "60")),
    ("What is the opposite of hot?", ("cold", "cool")),
    ("Which planet do we live on?", ("earth",)),
    ("What do you use to brush your teeth?", ("toothbrush", "toothpaste")),
    ("What is frozen water called?", ("ice",)),
    ("How many wheels does a bicycle have?", ("two", "2")),
    ("What is the largest ocean on Earth?", ("pacific",)),
    ("What gas do plants take in from the air?", ("carbon dioxide", "co2")),
    ("At what temperature does water boil, in Celsius?", ("100", "one hundred")),
    ("What language is mainly spoken in Spain?", ("spanish", "castilian")),
    ("What fruit is guacamole made from?", ("avocado",)),
    ("How many hours are in a day?", ("24", "twenty-four", "twenty four")),
    ("What do you call a baby cat?", ("kitten",)),
    ("Which season comes after winter?", ("spring",)),
    ("What is the main ingredient of bread?", ("flour", "wheat")),
    ("Which animal gives us wool?", ("sheep", "lamb", "alpaca", "llama", "goat")),
    ("How do you say thank you in French?", ("merci",)),
    ("What is the tallest mountain in the world?", ("everest",)),
    ("What should I do if I cut my finger?", ("bandage", "plaster", "pressure", "wash", "clean", "rinse")),
    ("How can I fall asleep faster?", ("bed", "screen", "dark", "routine", "caffeine", "relax", "breath", "read")),
    ("What is a good way to save money?", ("budget", "spend", "expense", "bank", "account", "cheaper")),
    ("How long should I boil an egg for a soft yolk?", ("minute",)),
    ("What is the currency of Japan?", ("yen",)),
    ("Who wrote Romeo and Juliet?", ("shakespeare",)),
    ("Which instrument has black and white keys?", ("piano", "keyboard", "organ")),
    ("Why should I drink water every day?", ("hydrat", "dehydrat", "body", "health")),
)
# (chat_format, decode); "auto" is llama-cpp where the extra is installed
ROWS = (("turns", "reference"), ("transcript", "reference"), ("transcript", "int8-head"), ("transcript", "auto"))


def keyword_pattern(keyword: str) -> re.Pattern:
    tail = r"(?!\d)" if keyword[-1].isdigit() else ""
    return re.compile(r"\b" + re.escape(keyword) + tail, re.IGNORECASE)


def on_topic(answer: str, keywords: tuple[str, ...]) -> bool:
    return any(keyword_pattern(k).search(answer) for k in keywords)


def check_questions() -> None:
    assert len(QUESTIONS) == 30, len(QUESTIONS)
    for question, keywords in QUESTIONS:
        echoed = [k for k in keywords if on_topic(question, (k,))]
        assert not echoed, f"{question!r} contains its own keyword(s) {echoed}"


def run(runtime: GemmaRuntime, config: GenerationConfig) -> tuple[int, list[str]]:
    answers = [runtime.generate([{"role": "user", "content": q}], config).text for q, _ in QUESTIONS]
    return sum(on_topic(a, k) for a, (_, k) in zip(answers, QUESTIONS)), answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--show", action="store_true", help="print every greedy answer")
    parser.add_argument("--decode", action="append", metavar="MODE",
                        help="run only the rows of this decode mode as written in ROWS (repeatable; default: all)")
    args = parser.parse_args()
    check_questions()
    base = GemmaRuntime.load(ModelSettings.create(), progress=False)  # auto: finds the GGUF when llama-cpp can run
    print(f"# chat benchmark: {base.info.name}, {len(QUESTIONS)} questions, {args.max_tokens} new tokens at most\n")
    print(f"| chat format | decode | on topic, greedy (of {len(QUESTIONS)}) | on topic, T=0.7 (mean over seeds "
          f"{', '.join(map(str, args.seeds))}) | mean answer length, greedy (chars) |\n|---|---|---|---|---|")
    shown = {}
    for chat_format, decode in (row for row in ROWS if not args.decode or row[1] in args.decode):
        runtime = GemmaRuntime(base.model, base.tokenizer, base.info, chat_format=chat_format, decode=decode,
                               gguf=base.gguf)
        greedy, answers = run(runtime, GenerationConfig(max_new_tokens=args.max_tokens))
        sampled = [run(runtime, GenerationConfig(max_new_tokens=args.max_tokens, temperature=0.7, seed=s))[0]
                   for s in args.seeds]
        mean_sampled = f"{statistics.mean(sampled):.1f}" if sampled else "-"
        length = statistics.mean(len(a) for a in answers)
        print(f"| {chat_format} | {runtime.info.decode} | {greedy} | {mean_sampled} | {length:.0f} |", flush=True)
        shown[(chat_format, runtime.info.decode)] = answers
    if args.show:
        for (chat_format, decode), answers in shown.items():
            print(f"\n## {chat_format} / {decode}")
            for (question, keywords), answer in zip(QUESTIONS, answers):
                mark = "on " if on_topic(answer, keywords) else "off"
                print(f"[{mark}] {question} -> {answer[:160]!r}")


if __name__ == "__main__":
    main()
