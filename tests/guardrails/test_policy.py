import textwrap

import pytest

from shieldkit.errors import ConfigError
from shieldkit.guardrails import ProxySettings, create_app
from shieldkit.guardrails.checks import BuildContext, CheckConfig, CheckKind, ScanResult, builtin_registry
from shieldkit.guardrails.pipeline.engine import Guard
from shieldkit.guardrails.pipeline.vault import Vault
from shieldkit.guardrails.policy import build_guards, default_policy_path, load_policy_file, parse_policy_text


def parse(text: str):
    return parse_policy_text(textwrap.dedent(text), source="p.yaml")


def test_the_default_policy_loads_with_its_checks_in_order():
    loaded = load_policy_file()
    policy = loaded.file.policies["default"]
    assert loaded.source == str(default_policy_path())
    assert [c.name for c in policy.input][:4] == ["prompt_injection_rules", "harmful_requests", "disguised_text", "pii"]
    assert next(c for c in policy.input if c.name == "disguised_text").kind == "disguise"
    assert {c.classifier for c in policy.input if c.kind == "classifier"} == {
        "hate", "harassment", "sexual", "violence", "self_harm", "dangerous", "prompt_injection"}
    classifiers = [c for c in (*policy.input, *policy.output) if c.kind == "classifier"]
    assert len(classifiers) == 13 and all(c.action == "block" for c in classifiers), "every default classifier enforces"
    assert policy.stream.window == "sentence" and not loaded.file.keys


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("""
         policies:
           default:
             input:
               - name: a
                 kind: classifier
                 classifier: hate
                 treshold: 0.5
         """, 8, "unknown key 'treshold' (did you mean 'threshold'?)"),
        ("""
         policies:
           default:
             input:
               - {name: a, kind: regexp, patterns: [x]}
         """, 5, "unknown check kind 'regexp'; known kinds: regex, words, pii, classifier"),
        ("""
         policies:
           default:
             refusal: a
             refusal: b
         """, 5, "duplicate key 'refusal' (first set on line 4)"),
        ("""
         policies:
           default:
             output:
               - name: a
                 kind: regex
                 patterns:
                   - fine
                   - '(unclosed'
         """, 9, "patterns[1]: is not a valid regular expression"),
        ("""
         policies:
           default:
             input:
               - {name: a, kind: classifier, classifier: hate, action: redact}
         """, 5, "a classifier check can only block or flag, not redact"),
        ("""
         policies:
           default:
             output:
               - {name: a, kind: pii, action: redact, restore: true}
         """, 5, "restore applies to input checks only"),
        ("""
         policies:
           default:
             input:
               - {name: a, kind: pii}
               - {name: a, kind: words, words: [x]}
         """, 6, "duplicate check name 'a'"),
        ("""
         policies:
           default:
             audit:
               keep_text: "yes"
         """, 5, "keep_text: expected true or false"),
        ("""
         policies:
           default: {}
         keys:
           - {id: app, sha256: "%s", policy: nope}
         """ % ("a" * 64), 5, "unknown policy 'nope'"),
        ("""
         policies:
           default: {}
         keys:
           - {id: app, sha256: "%s", policy: default, rate_limit: lots}
         """ % ("a" * 64), 5, "rate_limit: must look like '60/minute'"),
        ("""
         polices:
           default: {}
         """, 2, "unknown key 'polices' (did you mean 'policies'?)"),
        ("""
         policies:
           default:
             input: [
         """, 5, "not valid YAML"),
        ("""
         policies:
           default:
             input:
               - {name: p, kind: pii, entities: [email, passport]}
         """, 5, "unknown entity 'passport'"),
        ("""
         policies:
           default:
             input:
               - {name: w, kind: regex, patterns: ['a*']}
         """, 5, "matches empty text"),
        ("""
         policies:
           default:
             input:
               - {name: w, kind: regex, patterns: ['x', '(?=.*password)']}
         """, 5, "can only match empty text"),
    ],
)
def test_policy_errors_name_the_line(text, line, fragment):
    with pytest.raises(ConfigError) as error:
        parse(text)
    message = str(error.value)
    assert message.startswith(f"p.yaml, line {line}:"), message
    assert fragment in message


def test_check_kinds_are_registered_explicitly():
    registry = builtin_registry()
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.get("regex"))
    with pytest.raises(KeyError, match="known kinds: regex, words, pii, classifier"):
        registry.get("nope")


@pytest.mark.anyio
async def test_a_new_check_kind_plugs_in(tmp_path):
    from dataclasses import dataclass

    @dataclass(frozen=True, kw_only=True)
    class LengthConfig(CheckConfig):
        max_chars: int  # longer texts fire

    class LengthScanner:
        def __init__(self, limit):
            self.limit = limit

        async def scan(self, texts):
            return [ScanResult(score=float(len(t) > self.limit), fired=len(t) > self.limit) for t in texts]

    registry = builtin_registry()
    registry.register(CheckKind("length", LengthConfig, lambda c, ctx: LengthScanner(c.max_chars)))
    loaded = parse_policy_text("policies:\n  default:\n    input:\n      - {name: long, kind: length, max_chars: 5}\n",
                               registry=registry)
    guard: Guard = build_guards(loaded, BuildContext(tmp_path))["default"]["input"]
    assert (await guard.run(["short"], Vault())).decision == "allow"
    assert (await guard.run(["much too long"], Vault())).blocked_by.name == "long"


def _classifier_policy(on_error: str, ref: str = "no_such_policy") -> str:
    return f"policies:\n  default:\n    input:\n      - {{name: c, kind: classifier, classifier: {ref}, on_error: {on_error}}}\n"


def test_a_blocking_classifier_check_that_cannot_load_stops_the_start(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(_classifier_policy("block"))
    with pytest.raises(ConfigError, match="classifier check.*default/input/c cannot run: unknown classifier 'no_such_policy'.*on_error: block"):
        create_app(ProxySettings.create(policy=policy, upstream="http://127.0.0.1:9/v1", audit=False))


def test_a_missing_classifier_folder_stops_the_start_even_with_a_bank(tmp_path, fakes):
    policy = tmp_path / "p.yaml"
    policy.write_text(_classifier_policy("block", "./no-such-classifier"))
    with pytest.raises(ConfigError, match="no-such-classifier does not exist"):
        create_app(ProxySettings.create(policy=policy, upstream="http://127.0.0.1:9/v1", audit=False),
                   bank_loader=fakes.loader({}))


def test_an_unloadable_classifier_check_with_on_error_allow_starts_loudly(tmp_path, caplog):
    policy = tmp_path / "p.yaml"
    policy.write_text(_classifier_policy("allow"))
    app = create_app(ProxySettings.create(policy=policy, upstream="http://127.0.0.1:9/v1", audit=False))
    assert "no_such_policy" in app.state.services.scorer.unavailable
    assert any("UNAVAILABLE" in r.message and "default/input/c" in r.message for r in caplog.records)


def test_classifiers_read_surrogate_values_instead_of_placeholders():
    from shieldkit.guardrails.checks.classifier import natural

    assert natural("Reply to <EMAIL_1> about <CREDIT_CARD_1>, not <EMAIL_12>.") == (
        "Reply to sam@example.com about 4000 0000 0000 0002, not sam@example.com.")
    assert natural("key <SECRET_1> and <ACCOUNT_ID_2>; <email_1> and <EMAIL> stay") == (
        "key secret and account id; <email_1> and <EMAIL> stay")


@pytest.mark.anyio
async def test_each_regex_pattern_keeps_its_own_groups_and_flags(tmp_path):
    """Patterns are matched one by one: joined into one alternation, the second pattern's \\1 would point into the
    first's group, and an inline (?i) would stop the policy from building."""
    policy = parse("""
        policies:
          default:
            input:
              - {name: r, kind: regex, ignore_case: false, patterns: ['(token)=\\w+', '(\\w)\\1{7}', '(?i)secret']}
        """)
    guard = build_guards(policy, BuildContext(tmp_path))["default"]["input"]
    for text, fired in [("aaaaaaaa", True), ("token=abc", True), ("SeCrEt", True), ("abcdefgh", False)]:
        verdict = await guard.run([text], Vault())
        assert (verdict.blocked_by is not None) == fired, text
