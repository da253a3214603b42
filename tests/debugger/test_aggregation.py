import pytest

from shieldkit.debugger import ContinuationTarget, aggregate, explain
from shieldkit.debugger.results import TokenScore
from shieldkit.errors import ConfigError

PROMPT = "First sentence here.  Second one, with 🦄 emoji!\nThird line without stop"
GRANULARITIES = [("tokens", None), ("words", None), ("sentences", None), ("regex", r"\w+"), ("regex", r"🦄|Second")]


@pytest.fixture(scope="module")
def result(tiny_runtime):
    target = ContinuationTarget(tiny_runtime, PROMPT, " and more")
    return explain(target, "leave_one_out", progress=lambda *_: None)


@pytest.mark.parametrize("granularity, pattern", GRANULARITIES)
def test_sums_are_preserved_and_every_token_lands_once(result, granularity, pattern):
    segments = result.segments(granularity, pattern)
    assert sum(s.score for s in segments) == pytest.approx(sum(result.scores), abs=1e-6)
    members = sorted(i for s in segments for i in s.tokens)
    assert members == list(range(len(result.tokens)))
    for segment in segments:
        assert segment.score == pytest.approx(sum(result.tokens[i].score for i in segment.tokens), abs=1e-9)


def test_words_and_sentences_are_cut_where_people_read_them(result):
    words = [s.text.strip() for s in result.segments("words") if s.kind == "text"]
    assert words[:4] == ["First", "sentence", "here.", "Second"]
    assert "🦄" in words and words[-1] == "more"
    sentences = [s.text.strip() for s in result.segments("sentences") if s.kind == "text"]
    assert sentences == ["First sentence here.", "Second one, with 🦄 emoji!", "Third line without stop", "and more"]
    assert result.segments("words")[0].kind == "control"  # <bos> stays its own segment


def test_regex_segments_keep_the_gaps(result):
    segments = result.segments("regex", r"Second one|emoji")
    matched = [s.text for s in segments if s.kind == "text"]
    assert matched == ["Second one", "emoji"]
    assert any(s.kind == "gap" for s in segments)


def test_a_token_joins_the_word_of_its_first_visible_character():
    text = "ab  cd"
    tokens = [TokenScore(0, 0, "ab", 0, 2, "text", 1.0), TokenScore(1, 0, "▁▁c", 2, 5, "text", 2.0),
              TokenScore(2, 0, "d", 5, 6, "text", 4.0)]
    segments = aggregate(tokens, text, "words")
    assert [(s.text, s.score) for s in segments] == [("ab", 1.0), ("  cd", 6.0)]


def test_bad_granularity_and_regex_are_clear_errors(result):
    with pytest.raises(ConfigError, match="granularity must be one of tokens, words, sentences, regex"):
        result.segments("paragraphs")
    with pytest.raises(ConfigError, match="invalid regex"):
        result.segments("regex", "(unclosed")
    with pytest.raises(ConfigError, match="needs a pattern"):
        result.segments("regex", "")


@pytest.mark.parametrize("granularity, pattern", [("words", None), ("sentences", None), ("regex", r"[^,]+")])
def test_no_segment_is_both_target_and_source(tiny_runtime, granularity, pattern):
    # the prompt has no sentence end, so without the cuts its last sentence ran on into the continuation
    target = ContinuationTarget(tiny_runtime, "The Eiffel Tower is in the city of", "Paris, France. It is tall",
                                span=(2, 4))
    result = explain(target, "gradient_x_input", progress=lambda *_: None)
    start, end = target.highlight
    for segment in result.segments(granularity, pattern):
        sides = {(i < target.prompt_tokens, start <= i < end) for i in segment.tokens}
        assert len(sides) == 1, (segment.text, segment.tokens)
    assert sum(s.score for s in result.segments(granularity, pattern)) == pytest.approx(sum(result.scores), abs=1e-6)
