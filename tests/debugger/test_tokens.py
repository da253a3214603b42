import pytest

from shieldkit.debugger.tokens import align, build_document, decode_pieces

TEXTS = [
    "Hello  world,   how are you?",
    "  leading and trailing spaces   ",
    "Emoji 🦄 and a family 👨‍👩‍👧 and flags 🇫🇷!",
    "naïve café, 日本語のテキスト, Ελληνικά, עברית",
    "Math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and combining x\u0301 and ﬁ ligature",
    "tabs\t\tand\nnew\n\n\nlines and <table> tags",
    "a literal \u2581 lower block",
    "zero\u200bwidth",
]


@pytest.mark.parametrize("text", TEXTS)
def test_spans_map_pieces_back_to_the_exact_characters(tiny_runtime, text):
    ids = tiny_runtime.encode(text, add_bos=False).tolist()
    spans = align(tiny_runtime.tokenizer, ids, text)
    assert "".join(text[s:e] for s, e, _ in spans) == text
    assert all(e0 == s1 for (_, e0, _), (s1, _, _) in zip(spans, spans[1:]))  # contiguous, no overlap
    # where the tokenizer's own offsets do not overlap (no split characters), they agree with ours
    offsets = tiny_runtime.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    overlapping = {i for i in range(1, len(offsets)) if offsets[i][0] < offsets[i - 1][1]}
    overlapping |= {i - 1 for i in overlapping}
    for i, ((start, end, _), offset) in enumerate(zip(spans, offsets)):
        if i not in overlapping:
            assert (start, end) == tuple(offset), (i, text)


def test_a_split_character_belongs_to_the_piece_with_its_last_byte(tiny_runtime):
    text = "x 𝔘 y"  # 𝔘 is byte-fallback: four <0x..> pieces
    ids = tiny_runtime.encode(text, add_bos=False).tolist()
    pieces = tiny_runtime.tokenizer.convert_ids_to_tokens(ids)
    spans = align(tiny_runtime.tokenizer, ids, text)
    byte_spans = [(s, e) for (s, e, _), p in zip(spans, pieces) if p.startswith("<0x")]
    assert byte_spans == [(2, 2), (2, 2), (2, 2), (2, 3)]


def test_control_tokens_match_their_literal_text_in_a_rendered_chat(tiny_runtime):
    messages = [{"role": "user", "content": "Hi <end_of_turn> there"}]
    document = build_document(tiny_runtime.tokenizer, [(tiny_runtime.encode_chat(messages).tolist(),
                                                        tiny_runtime.render_chat(messages))])
    kinds = [(t.piece, t.kind, document.text[t.start:t.end]) for t in document.tokens]
    assert kinds[0] == ("<bos>", "control", "")
    assert kinds[1] == ("<start_of_turn>", "control", "<start_of_turn>")
    # the user's literal "<end_of_turn>" is ordinary text, split into pieces
    assert "<end_of_turn>" not in [piece for piece, kind, _ in kinds if kind == "text"]
    assert "".join(text for _, _, text in kinds) == document.text


def test_generated_ids_align_with_their_decoded_text(tiny_runtime):
    ids = tiny_runtime.encode("résumé 🦄  done", add_bos=False).tolist()
    text = decode_pieces(tiny_runtime.tokenizer, ids)
    assert text == "résumé 🦄  done"
    document = build_document(tiny_runtime.tokenizer, [(ids, text)])
    assert "".join(document.text[t.start:t.end] for t in document.tokens) == text


def test_a_mismatching_text_never_shifts_later_tokens(tiny_runtime):
    ids = tiny_runtime.encode("alpha beta gamma", add_bos=False).tolist()
    spans = align(tiny_runtime.tokenizer, ids, "alpha BETA gamma")
    text = "alpha BETA gamma"
    assert text[spans[0][0]:spans[0][1]] == "alpha"
    assert text[spans[-1][0]:spans[-1][1]] == " gamma"


def test_chat_template_words_are_control_tokens_and_score_zero(tiny_runtime):
    from shieldkit.debugger import NextTokenTarget, explain

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello to the user."}]
    target = NextTokenTarget(tiny_runtime, messages)
    document = target.document
    text = [document.token_text(t.index) for t in document.tokens if t.kind == "text"]
    assert "".join(text) == "Be brief.\n\nSay hello to the user."  # the message text, nothing of the template
    template = [document.token_text(t.index) for t in document.tokens if t.kind == "control"]
    assert "user" in "".join(template) and "model" in "".join(template)
    result = explain(target, "gradient_x_input", progress=lambda *_: None)
    assert all(t.score == 0 for t in result.tokens if t.kind != "text")
    assert sum(t.score != 0 for t in result.tokens if t.kind == "text") >= 3


def test_in_a_transcript_the_message_text_is_what_scores(tiny_runtime):
    """A base model (the embedded Gemma) chats through a transcript; the instruction, the example exchanges and the
    labels are template there, and the user's own words are the text."""
    from shieldkit.debugger import NextTokenTarget
    from shieldkit.model import GemmaRuntime

    runtime = GemmaRuntime(tiny_runtime.model, tiny_runtime.tokenizer, tiny_runtime.info, chat_format="transcript")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello to the user."}]
    document = NextTokenTarget(runtime, messages).document
    text = "".join(document.token_text(t.index) for t in document.tokens if t.kind == "text")
    assert text.replace(" ", "") == "Bebrief.Sayhellototheuser."  # a token may carry the space before a word
    template = "".join(document.token_text(t.index) for t in document.tokens if t.kind == "control")
    assert "helpful, knowledgeable Assistant" in template and "spider" in template and "User:" in template
