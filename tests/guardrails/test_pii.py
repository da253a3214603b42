import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

from shieldkit.guardrails.checks.base import Finding
from shieldkit.guardrails.checks.pii_recognisers import find_pii, iban_valid, luhn_valid
from shieldkit.guardrails.pipeline.vault import Vault

DATA = Path(os.environ.get("SHIELDKIT_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))


def labels(text: str) -> list[tuple[str, str]]:
    return [(f.label, text[f.start:f.end]) for f in find_pii(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to Jane.Doe+news@mail.example.co.uk today", [("EMAIL", "Jane.Doe+news@mail.example.co.uk")]),
        ("card 4111 1111 1111 1111 exp", [("CREDIT_CARD", "4111 1111 1111 1111")]),
        ("card 4111-1111-1111-1112 exp", []),  # fails the Luhn check: not a card
        ("IBAN GB82 WEST 1234 5698 7654 32 please", [("IBAN", "GB82 WEST 1234 5698 7654 32")]),
        ("IBAN GB82WEST12345698765433", []),  # wrong check digits
        ("ssn 123-45-6789.", [("US_SSN", "123-45-6789")]),
        ("ssn 000-45-6789 and 666-12-3456", []),  # never-issued areas
        ("from 192.168.0.1 and 2001:db8::8a2e:370:7334", [("IP_ADDRESS", "192.168.0.1"), ("IP_ADDRESS", "2001:db8::8a2e:370:7334")]),
        ("version 1.2.3.4000 and 999.1.1.1", []),
        ("call +1 (415) 555-0132 or 020 7946 0958", [("PHONE", "+1 (415) 555-0132"), ("PHONE", "020 7946 0958")]),
        ("on 2024-01-15 at 12:30, order 1234567", []),  # dates, times and bare numbers are not phones
    ],
)
def test_recognizers_find_valid_pii_only(text, expected):
    assert labels(text) == expected


def test_checksums():
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")
    assert not iban_valid("DE8937040044053201300")  # Germany's IBANs have 22 characters


def test_vault_numbers_values_per_type_and_restores_only_what_it_should():
    vault = Vault()
    text = "a@x.io, b@y.io, a@x.io"
    spans = [(Finding(0, 6, "EMAIL"), True), (Finding(8, 14, "EMAIL"), False), (Finding(16, 22, "EMAIL"), True)]
    redacted = vault.redact(text, spans, role="user")
    assert redacted == "<EMAIL_1>, <EMAIL_2>, <EMAIL_1>"
    # restorable: EMAIL_1 only; an unknown look-alike stays as it is
    assert vault.restore("to <EMAIL_1> not <EMAIL_2> nor <EMAIL_9>") == "to a@x.io not <EMAIL_2> nor <EMAIL_9>"
    assert vault.restore_unsent("<EMAIL_1>") == "<EMAIL_1>"  # the user sent it: restored after the checks only
    assert Vault().restore("<EMAIL_1>") == "<EMAIL_1>"  # another request's vault knows nothing


def test_vault_gives_the_user_back_only_what_the_user_sent():
    vault = Vault()
    system = vault.redact("cfo@corp.example", [(Finding(0, 16, "EMAIL"), True)], role="system")
    user = vault.redact("me@home.example", [(Finding(0, 15, "EMAIL"), True)], role="user")
    answer = vault.redact("bot@x.example", [(Finding(0, 13, "EMAIL"), False)], role=None)  # found in the answer
    assert (system, user, answer) == ("<EMAIL_1>", "<EMAIL_2>", "<EMAIL_3>")
    assert vault.restore("<EMAIL_1> <EMAIL_2> <EMAIL_3>") == "<EMAIL_1> me@home.example <EMAIL_3>"
    # a restorable value from another role goes back in before the output checks, for them to judge
    assert vault.restore_unsent("<EMAIL_1> <EMAIL_2> <EMAIL_3>") == "cfo@corp.example <EMAIL_2> <EMAIL_3>"
    # the output check redacts it again: the same placeholder, still not the user's, so it stays
    again = vault.redact("cfo@corp.example", [(Finding(0, 16, "EMAIL"), False)], role=None)
    assert again == "<EMAIL_1>" and vault.restore(again) == "<EMAIL_1>"


@pytest.mark.skipif(not (DATA / "presidio-pii").is_dir(), reason="../shared/data/presidio-pii not present (set SHIELDKIT_DATA)")
def test_recall_and_precision_on_presidio_synthetic_pii():
    """Presidio's 1,500 human-templated synthetic sentences: spans we find vs. the labelled ones."""
    rows = json.loads((DATA / "presidio-pii" / "synth_dataset_v2.json").read_text())
    ours = {"EMAIL_ADDRESS": "EMAIL", "CREDIT_CARD": "CREDIT_CARD", "IBAN_CODE": "IBAN", "US_SSN": "US_SSN",
            "IP_ADDRESS": "IP_ADDRESS", "PHONE_NUMBER": "PHONE"}
    hits, gold_total, found_total, found_right = defaultdict(int), defaultdict(int), 0, 0
    for row in rows:
        gold = [(s["start_position"], s["end_position"], ours[s["entity_type"]]) for s in row["spans"] if s["entity_type"] in ours]
        found = find_pii(row["full_text"])
        for start, end, label in gold:
            gold_total[label] += 1
            hits[label] += any(f.label == label and f.start < end and start < f.end for f in found)
        found_total += len(found)
        found_right += sum(any(f.label == g[2] and f.start < g[1] and g[0] < f.end for g in gold) for f in found)
    recall = {label: hits[label] / gold_total[label] for label in gold_total}
    for label in ("EMAIL", "IBAN", "US_SSN", "IP_ADDRESS"):
        assert recall[label] == 1.0, recall
    assert recall["CREDIT_CARD"] >= 0.9 and recall["PHONE"] >= 0.65, recall
    assert found_right / found_total >= 0.95
