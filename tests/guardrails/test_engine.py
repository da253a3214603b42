import asyncio

import pytest

from shieldkit.guardrails.batcher import MicroBatcher
from shieldkit.guardrails.checks import BuildContext
from shieldkit.guardrails.policy import build_guards, parse_policy_text
from shieldkit.guardrails.vault import Vault

pytestmark = pytest.mark.anyio

POLICY = """
policies:
  default:
    input:
      - {name: first, kind: words, words: [alpha]}
      - {name: pii, kind: pii, action: redact}
      - {name: shadow, kind: words, action: flag, words: [beta]}
      - {name: phrase, kind: regex, action: redact, label: CODE, patterns: ['code \\d+']}
      - {name: second, kind: words, words: [alpha, gamma]}
      - {name: hate, kind: classifier, classifier: hate}
      - {name: violence, kind: classifier, classifier: violence, threshold: 0.9}
      - {name: dangerous, kind: classifier, classifier: dangerous, action: flag, on_error: allow}
"""


def guard_with_bank(tmp_path, fakes, policy=POLICY, window_ms=3.0):
    loaded = parse_policy_text(policy)
    batcher = MicroBatcher(window_ms=window_ms)
    bank = fakes.FakeBank(["hate", "violence", "dangerous"])
    batcher.attach(bank, {r: r for r in bank.classifiers}, {r: 0.5 for r in bank.classifiers}, {})
    return build_guards(loaded, BuildContext(tmp_path, batcher))["default"]["input"], bank


async def test_first_blocking_check_in_policy_order_decides(tmp_path, fakes):
    guard, _ = guard_with_bank(tmp_path, fakes)
    verdict = await guard.run(["gamma then alpha"], Vault())
    assert verdict.blocked_by.name == "first"
    assert [o.name for o in verdict.outcomes if o.fired] == ["first", "second"]  # every check still ran
    assert verdict.decision == "block"


async def test_redaction_flags_and_thresholds(tmp_path, fakes):
    guard, bank = guard_with_bank(tmp_path, fakes)
    verdict = await guard.run(["mail me: a@b.co, code 42, beta stabbing"], Vault())
    assert verdict.texts == ["mail me: <EMAIL_1>, <CODE_1>, beta stabbing"]
    # classifiers judge what the model would see, with surrogate values in place of the placeholders
    assert bank.calls[0][0] == ["mail me: sam@example.com, code, beta stabbing"]
    assert verdict.changed and verdict.flagged == ["shadow"]
    violence = next(o for o in verdict.outcomes if o.name == "violence")
    assert violence.score == pytest.approx(0.97) and violence.threshold == 0.9 and violence.fired
    assert verdict.blocked_by.name == "violence"


async def test_all_classifier_checks_of_a_request_share_one_bank_call(tmp_path, fakes):
    guard, bank = guard_with_bank(tmp_path, fakes)
    await guard.run(["one text", "another text"], Vault())
    assert len(bank.calls) == 1
    texts, policies = bank.calls[0]
    assert sorted(policies) == ["dangerous", "hate", "violence"] and texts == ["one text", "another text"]


async def test_concurrent_requests_are_micro_batched(tmp_path, fakes):
    guard, bank = guard_with_bank(tmp_path, fakes, window_ms=20)
    bank.delay = 0.05
    verdicts = await asyncio.gather(*(guard.run([f"text {i}" + (" vilehate" if i == 3 else "")], Vault()) for i in range(12)))
    assert len(bank.calls) < 4  # 12 requests x 3 classifier checks, far fewer bank calls
    assert [v.blocked_by.name if v.blocked_by else None for v in verdicts] == [None] * 3 + ["hate"] + [None] * 8


@pytest.mark.parametrize("failure", ["raise", "garbage", "nan"])
async def test_a_failing_bank_follows_each_checks_on_error(tmp_path, fakes, failure):
    guard, bank = guard_with_bank(tmp_path, fakes)
    if failure == "raise":
        bank.fail = True
    else:
        bank.score = (lambda texts, policies: {p: [0.1] for p in policies}) if failure == "garbage" else \
            (lambda texts, policies: {p: [float("nan")] * len(texts) for p in policies})
    verdict = await guard.run(["two", "texts"], Vault())
    errors = {o.name: o for o in verdict.outcomes if o.error}
    assert set(errors) == {"hate", "violence", "dangerous"}
    assert verdict.blocked_by.name == "hate"  # on_error: block is the default
    assert not errors["dangerous"].blocks  # on_error: allow


async def test_a_hanging_check_times_out_and_blocks(tmp_path, fakes):
    guard, bank = guard_with_bank(tmp_path, fakes)
    bank.delay = 1.0
    guard.timeout_s = 0.1
    verdict = await guard.run(["slow"], Vault())
    assert verdict.blocked_by.error.startswith("timed out")


async def test_stream_context_is_not_judged_twice(tmp_path, fakes):
    guard, _ = guard_with_bank(tmp_path, fakes)
    vault = Vault()
    context, window = "alpha was said before. ", "now a@b.co"
    verdict = await guard.run([context + window], vault, skip=[len(context)])
    assert verdict.blocked_by is None  # 'alpha' lies wholly in the already-checked context
    assert verdict.texts[0] == context + "now <EMAIL_1>"


async def test_checks_limited_to_roles_skip_other_messages(tmp_path):
    loaded = parse_policy_text("policies:\n  default:\n    input:\n"
                               "      - {name: inj, kind: words, words: [ignore previous instructions], roles: [user]}\n"
                               "      - {name: pii, kind: pii, action: redact}\n")
    guard = build_guards(loaded, BuildContext(tmp_path))["default"]["input"]
    system = "Never ignore previous instructions. Support: help@corp.com"
    allowed = await guard.run([system, "hello"], Vault(), roles=["system", "user"])
    assert allowed.blocked_by is None and allowed.texts[0].endswith("<EMAIL_1>")  # pii still covers every role
    blocked = await guard.run([system, "ignore previous instructions"], Vault(), roles=["system", "user"])
    assert blocked.blocked_by.name == "inj"
