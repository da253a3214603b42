"""Streamed answers never leak a secret or PII value in part, however the upstream splits it.

The property tests stream ``prefix + value + suffix``, cut into arbitrary pieces, through the real streaming code
(``guarded_sse``) with the default policy's output redact checks, and compare what the client gets with the
non-streamed answer: the value must come out as one placeholder, with not a character of it around.
"""

import asyncio
import dataclasses
import json
import time
import zlib

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from shieldkit.guardrails.checks import BuildContext
from shieldkit.guardrails.pipeline.engine import Guard
from shieldkit.guardrails.pipeline.streaming import HOLD_LIMIT, StreamJob, guarded_sse
from shieldkit.guardrails.pipeline.vault import Vault
from shieldkit.guardrails.pipeline.windows import WindowCutter, redact_holders
from shieldkit.guardrails.policy import StreamConfig, build_guards, load_policy_file
from shieldkit.guardrails.scoring import ClassifierScorer
from shieldkit.guardrails.upstream import UpstreamStream

LOADED = load_policy_file()  # the packaged default policy: its secrets and PII patterns are what ships
POLICY = LOADED.file.policies["default"]
OUTPUT = build_guards(LOADED, BuildContext(LOADED.base_dir, ClassifierScorer.for_policies(LOADED)))["default"]["output"]
REDACT = Guard("output", [check for check in OUTPUT.checks if check.config.action == "redact"])
# Bounded and derandomised (the same examples every run, about 3 s in all); no shrinking, so a failure reports its
# example at once instead of searching minutes for a smaller one.
BOUNDED = settings(phases=[Phase.explicit, Phase.generate], max_examples=150, derandomize=True, database=None, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
UPPER_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def luhn_complete(body: str) -> str:
    for check in "0123456789":
        digits = body + check
        total = sum(int(c) if i % 2 == 0 else (int(c) * 2 - 9 if int(c) > 4 else int(c) * 2)
                    for i, c in enumerate(reversed(digits)))
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


def iban_complete(country: str, bban: str) -> str:
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def grouped(text: str, size: int, separator: str) -> str:
    return separator.join(text[i:i + size] for i in range(0, len(text), size))


separator = st.sampled_from(["", " ", "-"])
cards = st.builds(lambda body, sep: grouped(luhn_complete(body), 4, sep),
                  st.text("0123456789", min_size=15, max_size=15).filter(lambda d: len(set(d)) > 1), separator)
ibans = st.one_of(
    st.builds(lambda bban, sep: grouped(iban_complete("DE", bban), 4, sep),
              st.text("0123456789", min_size=18, max_size=18), st.sampled_from(["", " "])),
    st.builds(lambda bank, account, sep: grouped(iban_complete("GB", bank + account), 4, sep),
              st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=4, max_size=4),
              st.text("0123456789", min_size=14, max_size=14), st.sampled_from(["", " "])),
)
area = st.integers(200, 999).map(str)
line = st.integers(0, 9999).map(lambda n: f"{n:04d}")
phones = st.one_of(
    st.builds(lambda a, b, c: f"+1 ({a}) {b}-{c}", area, area, line),
    st.builds(lambda a, b, c: f"({a}) {b}-{c}", area, area, line),
    st.builds(lambda a, b, c: f"{a}-{b}-{c}", area, area, line),
    st.builds(lambda a, b, c: f"+44 20 {a}{b[0]} {c}", area, area, line),
)
label = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
emails = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    st.text("abcdefghijklmnopqrstuvwxyz0123456789_%+-", min_size=1, max_size=40),
    st.lists(label, min_size=1, max_size=3), st.text("abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=6),
)
secrets = st.one_of(
    st.builds(lambda body: "AKIA" + body, st.text(UPPER_DIGITS, min_size=16, max_size=16)),
    st.builds(lambda body: "sk-proj-" + body, st.text(ALNUM + "_-", min_size=20, max_size=60)),
    st.builds(lambda body: "ghp_" + body, st.text(ALNUM, min_size=36, max_size=36)),
    st.builds(lambda body: "xoxb-" + body, st.text(ALNUM + "-", min_size=10, max_size=30)),
)
private_keys = st.builds(
    lambda kind, lines: f"-----BEGIN {kind}PRIVATE KEY-----\n" + "\n".join(lines) + f"\n-----END {kind}PRIVATE KEY-----",
    st.sampled_from(["RSA ", "EC ", "OPENSSH ", ""]), st.lists(st.text(B64, min_size=8, max_size=64), min_size=1, max_size=4),
)
VALUES = {"CREDIT_CARD": cards, "IBAN": ibans, "PHONE": phones, "EMAIL": emails, "SECRET": st.one_of(secrets, private_keys)}
prefixes = st.builds(lambda words, sep: words + sep, st.text("xyzXYZ ,;:!?\n", max_size=30),
                     st.sampled_from(["/", " ", "\n", ": "])).map(lambda p: p if p.strip() else "x" * 20 + "/")
suffixes = st.sampled_from(["", " end.", ".\nNext line.", " and more words here", "!"])
streams = st.builds(StreamConfig, window=st.sampled_from(["sentence", "tokens"]), tokens=st.sampled_from([1, 2, 5, 32]),
                    context_chars=st.sampled_from([0, 200]))


def split(text: str, data) -> list[str]:
    """Any split of ``text`` into pieces, often one character per piece."""
    if data.draw(st.booleans(), label="one character per piece"):
        return list(text)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(text) - 1, 1)), max_size=len(text)), label="cuts"))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)]) if b > a]


async def stream(pieces: list[str], stream_config: StreamConfig, *, pause: int = 20, stall: bool = False,
                 guard: Guard = REDACT) -> tuple[str, list[dict]]:
    """What the client gets for an upstream that sends ``pieces`` (``pause`` event-loop turns after each, so the
    proxy sees them one by one or in batches; ``stall``: then never finish): the text and the parsed chunks."""
    async def upstream_pieces():
        for piece in pieces:
            yield piece
            for _ in range(pause):
                await asyncio.sleep(0)
        if stall:
            await asyncio.Event().wait()

    upstream = UpstreamStream(pieces=upstream_pieces())
    policy = dataclasses.replace(POLICY, stream=stream_config)
    job = StreamJob(guard, policy, Vault(), "m", False, time.perf_counter())
    body = b"".join([event async for event in guarded_sse(job, upstream, on_done=lambda verdict, status: None)])
    chunks = [json.loads(line[6:]) for line in body.decode().split("\n\n") if line.startswith("data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    return text, chunks


async def not_streamed(text: str) -> str:
    return (await REDACT.run([text], Vault())).texts[0]


@pytest.mark.parametrize("kind", sorted(VALUES))
def test_no_split_of_a_value_leaks_any_of_it(kind):
    @BOUNDED
    @given(value=VALUES[kind], prefix=prefixes, suffix=suffixes, config=streams, pause=st.sampled_from([1, 3, 20]),
           data=st.data())
    def check(value, prefix, suffix, config, pause, data):
        text = prefix + value + suffix
        expected = prefix + f"<{kind}_1>" + suffix
        assert asyncio.run(not_streamed(text)) == expected  # the value is one finding, so the property means something
        received, chunks = asyncio.run(stream(split(text, data), config, pause=pause))
        assert received == expected
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"

    check()


@pytest.mark.parametrize("pieces", [
    ["x"] * 20 + ["/"] + list("sk-proj-" + "AbCdEfGhIjKlMnOp" * 3 + "9AbCdEfGhIjK") + [" end."],  # the case
    ["Call ", "+1 ", "(415) ", "555-0100", " today."],
    ["Mail ", "a.very.long.address.of.someone", "@subdomain.example", ".co", ".uk now."],
    ["-----BEGIN ", "RSA ", "PRIVATE ", "KEY-----\n", "MIIBOgIBAAJBAK", "j34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu",
     "\n", "-----END RSA PRIVATE KEY-----", " done."],
])
@pytest.mark.parametrize("tokens", [1, 4, 32])
def test_the_reported_splits_come_out_whole(pieces, tokens):
    text = "".join(pieces)
    received, _ = asyncio.run(stream(pieces, StreamConfig(window="sentence", tokens=tokens)))
    assert received == asyncio.run(not_streamed(text)) and "<" in received


def test_a_private_key_without_its_end_line_is_held_then_redacted():
    """The stream ends before the END line: everything from the BEGIN line on is withheld, then redacted."""
    pieces = ["Here it is:\n", "-----BEGIN OPENSSH PRIVATE KEY-----\n"] + ["b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"] * 20
    received, chunks = asyncio.run(stream(pieces, StreamConfig(tokens=2)))
    assert received == "Here it is:\n<SECRET_1>"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_text_that_can_never_be_cut_safely_is_refused_past_the_hold_limit():
    key = "sk-" + "".join(f"{zlib.crc32(bytes([i])):08x}" for i in range(64))  # 515 characters, no cut point
    pieces = ["The key: "] + list(key)  # ... and the upstream goes on sending it
    received, chunks = asyncio.run(stream(pieces, StreamConfig(tokens=4, hold_chars=256), stall=True))
    policy_refusal = POLICY.refusal
    assert received == "The key: \n\n" + policy_refusal
    final = chunks[-1]["choices"][0]
    assert final["finish_reason"] == "content_filter" and final["content_filter_results"][HOLD_LIMIT]["filtered"]


def test_the_cutter_cuts_before_anything_that_may_still_become_a_secret():
    cutter = WindowCutter(StreamConfig(tokens=4), redact_holders(REDACT))
    assert cutter.cut("xxxxxxxxxxxxxxxxxxxx/sk-proj-abc", 100) == 21  # forced, but not into the key
    assert cutter.cut("Call +1 (415) ", 100) == 5  # not inside the phone number
    assert cutter.cut("Hello there. Mail ann@example.co", 100) == len("Hello there. ")
    assert cutter.cut("See <EMAIL", 100) == 4  # nor inside a placeholder
    assert cutter.cut("Nothing to hold here, friend", 3) == 0  # the window is not full yet
    held = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\nj34GkxFhD90vcNLY\n"
    assert cutter.cut("Key:\n" + held, 100) == len("Key:\n")  # line ends inside the block are no cut points
    assert cutter.cut("Key:\n" + held + "-----END RSA PRIVATE KEY-----\nok", 100) == len("Key:\n" + held) + 30


def contents(chunks: list[dict]) -> list[str]:
    return [c["choices"][0]["delta"]["content"] for c in chunks
            if c.get("choices") and c["choices"][0]["delta"].get("content")]


@pytest.mark.parametrize("first_tokens, expected", [
    (4, ["One two three ", "four five six seven eight nine ten."]),
    (0, ["One two three four five six seven eight nine ten."]),  # 0: the first window waits like the others
])
def test_the_first_window_is_short_so_the_answer_starts_at_once(first_tokens, expected):
    words = "One two three four five six seven eight nine ten.".split(" ")
    pieces = [words[0], *(" " + w for w in words[1:])]
    text, chunks = asyncio.run(stream(pieces, StreamConfig(window="sentence", tokens=32, first_tokens=first_tokens)))
    assert contents(chunks) == expected


def test_first_tokens_is_validated_and_capped_by_tokens():
    from shieldkit.guardrails.policy.fields import FieldError

    with pytest.raises(FieldError, match="first_tokens"):
        StreamConfig(first_tokens=-1)
    cutter = WindowCutter(StreamConfig(window="sentence", tokens=2, first_tokens=4))
    assert cutter.cut("One two three", 2) == len("One two ")  # the smaller of the two
    assert cutter.cut("One two", 1, context="Earlier text. ") == 0  # later windows wait for `tokens`


def test_a_residual_match_in_a_later_window_stays_a_block_in_the_stream_verdict():
    """The audit log and content_filter_results read the stream's merged verdict: a redact check that left a
    match in window 2 blocked the stream, so the merged outcome must say so too."""
    from shieldkit.guardrails.pipeline.engine import CheckOutcome, Verdict
    from shieldkit.guardrails.pipeline.streaming import WindowChecker

    def outcome(residual: bool) -> CheckOutcome:
        return CheckOutcome("pii", "pii", "redact", "block", 1.0, None, True, None, 0.1, residual=residual)

    checker = WindowChecker(Guard("output", []), vault=None, context_chars=0)
    checker._add(Verdict("output", ["a"], [outcome(False)], 0.1, changed=True))
    checker._add(Verdict("output", ["b"], [outcome(True)], 0.1, changed=True))
    merged = checker.verdict()
    assert merged.blocked_by is not None and merged.blocked_by.residual and merged.decision == "block"
