"""Labelled examples from CSV or JSONL, checked line by line.

A file has a text column and a label column (1 = violates the policy, 0 = allowed; ``true/false``, ``unsafe/safe``,
``yes/no`` and ``violates/allowed`` are accepted too). Every problem names the file and line: a missing column, an
empty text, an unknown label, conflicting duplicates; a file with a single class is refused. Exact duplicates with
the same label are dropped and reported.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shieldkit.errors import DataError

LABELS = ("allowed", "violates")  # index = label value

_LABEL_WORDS = {
    "1": 1, "1.0": 1, "true": 1, "unsafe": 1, "yes": 1, "violates": 1, "violating": 1, "positive": 1,
    "0": 0, "0.0": 0, "false": 0, "safe": 0, "no": 0, "allowed": 0, "allowing": 0, "negative": 0,
}


@dataclass(frozen=True)
class Example:
    text: str
    label: int  # 1 = violates the policy, 0 = allowed
    line: int = 0  # where it came from (1-based; 0 = built in code)


@dataclass(frozen=True)
class LabeledData:
    examples: tuple[Example, ...]
    source: str = "<memory>"
    duplicates: tuple[str, ...] = field(default=())  # one message per dropped duplicate

    @property
    def texts(self) -> list[str]:
        return [example.text for example in self.examples]

    @property
    def labels(self) -> list[int]:
        return [example.label for example in self.examples]

    @property
    def positives(self) -> int:
        return sum(self.labels)

    def __len__(self) -> int:
        return len(self.examples)

    def fingerprint(self) -> str:
        """sha256 of the examples in order (label, tab, text per line): identifies the training data."""
        digest = hashlib.sha256()
        for example in self.examples:
            digest.update(f"{example.label}\t{example.text}\n".encode())
        return digest.hexdigest()


def parse_label(value: object, where: str) -> int:
    """1/0, true/false, unsafe/safe, yes/no, violates/allowed (any case) -> 1 or 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    if isinstance(value, str) and value.strip().lower() in _LABEL_WORDS:
        return _LABEL_WORDS[value.strip().lower()]
    raise DataError(f"{where}: unknown label {value!r}; use 1/0, true/false, unsafe/safe or violates/allowed")


def from_pairs(pairs: Iterable[tuple[str, object]], source: str = "<memory>") -> LabeledData:
    """Examples from (text, label) pairs, checked like a file (line = position, from 1)."""
    rows = [(index, text, label) for index, (text, label) in enumerate(pairs, start=1)]
    return _validate(source, "item", rows)


def load_examples(path: str | Path, *, text_column: str = "text", label_column: str = "label",
                  both_classes: bool = True) -> LabeledData:
    """Read and check a .csv/.tsv (header row; ',', ';' or tab separated) or .jsonl/.json-lines file. Lines end at
    ``\n`` (or ``\r\n``) only: U+2028 and other Unicode line separators are text, as JSON and CSV writers leave them.
    ``both_classes``: refuse a file without examples of both labels (training needs them; measuring need not)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not content.strip():
        raise DataError(f"{path}: the file is empty")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows = _jsonl_rows(path, content, text_column, label_column)
    else:
        rows = _csv_rows(path, content, text_column, label_column)
    return _validate(str(path), "line", rows, both_classes)


def _csv_rows(path: Path, content: str, text_column: str, label_column: str) -> list[tuple[int, object, object]]:
    first = content.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    header = [name.strip() for name in next(reader)]
    lowered = [name.lower() for name in header]
    columns = []
    for wanted in (text_column, label_column):
        if wanted.lower() not in lowered:
            raise DataError(f"{path}: missing column {wanted!r} (found: {', '.join(header) or 'nothing'})")
        columns.append(lowered.index(wanted.lower()))
    rows = []
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                raise DataError(f"{path}: line {reader.line_num}: {len(record)} fields, the header has {len(header)}")
            rows.append((reader.line_num, record[columns[0]], record[columns[1]]))
    except csv.Error as exc:
        raise DataError(f"{path}: line {reader.line_num}: malformed CSV ({exc})") from None
    return rows


def _jsonl_rows(path: Path, content: str, text_column: str, label_column: str) -> list[tuple[int, object, object]]:
    rows = []
    for number, line in enumerate(content.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {number}: invalid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}: line {number}: expected a JSON object, got {type(record).__name__}")
        for wanted in (text_column, label_column):
            if wanted not in record:
                raise DataError(f"{path}: line {number}: missing key {wanted!r} (found: {', '.join(record) or 'nothing'})")
        rows.append((number, record[text_column], record[label_column]))
    return rows


def _validate(source: str, unit: str, rows: Sequence[tuple[int, object, object]],
              both_classes: bool = True) -> LabeledData:
    if not rows:
        raise DataError(f"{source}: no examples")
    examples: list[Example] = []
    seen: dict[str, Example] = {}
    duplicates: list[str] = []
    for number, text, label in rows:
        where = f"{source}: {unit} {number}"
        if not isinstance(text, str):
            raise DataError(f"{where}: text must be a string, got {type(text).__name__}")
        if not text.strip():
            raise DataError(f"{where}: empty text")
        value = parse_label(label, where)
        key = text.strip()
        if key in seen:
            first = seen[key]
            if first.label != value:
                raise DataError(
                    f"{where}: the same text as {unit} {first.line} with the opposite label ({value} vs {first.label})"
                )
            duplicates.append(f"{unit} {number} repeats {unit} {first.line} (dropped)")
            continue
        example = Example(text=text, label=value, line=number)
        seen[key] = example
        examples.append(example)
    counts = [sum(1 for e in examples if e.label == label) for label in (0, 1)]
    for label, count in enumerate(counts):
        if count == 0 and both_classes:
            other = LABELS[1 - label]
            raise DataError(
                f"{source}: all {len(examples)} examples are labelled {1 - label} ({other}); "
                f"a classifier needs examples of both classes, none is labelled {label} ({LABELS[label]})"
            )
    return LabeledData(examples=tuple(examples), source=source, duplicates=tuple(duplicates))
