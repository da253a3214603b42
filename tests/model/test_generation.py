import pytest

from shieldkit.errors import ConfigError
from shieldkit.model.generation import GenerationConfig, _pending_stop_prefix


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": 2.5}, "max_new_tokens"),
        ({"temperature": -1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -3}, "top_k"),
        ({"seed": "abc"}, "seed"),
        ({"stop": ("",)}, "stop"),
    ],
)
def test_bad_generation_settings_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=f"GenerationConfig.{field}"):
        GenerationConfig(**kwargs)


def test_a_single_stop_string_is_accepted():
    assert GenerationConfig(stop="END").stop == ("END",)


def test_pending_stop_prefix():
    assert _pending_stop_prefix("hello wor", ("world",)) == 3
    assert _pending_stop_prefix("hello", ("world",)) == 0
    assert _pending_stop_prefix("abc##", ("###", "#!")) == 2


def test_greedy_decoding_is_deterministic(tiny_runtime):
    config = GenerationConfig(max_new_tokens=12)
    first = tiny_runtime.generate("The weather today", config)
    second = tiny_runtime.generate("The weather today", config)
    assert first.text == second.text and first.text
    assert first.finish_reason == "length" and first.completion_tokens == 12


def test_sampling_is_reproducible_with_a_seed(tiny_runtime):
    def sample(seed):
        return tiny_runtime.generate("Once upon", GenerationConfig(max_new_tokens=10, temperature=1.0, seed=seed)).text

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_top_k_one_equals_greedy(tiny_runtime):
    greedy = tiny_runtime.generate("Once upon", GenerationConfig(max_new_tokens=8)).text
    top1 = tiny_runtime.generate("Once upon", GenerationConfig(max_new_tokens=8, temperature=0.7, top_k=1, seed=1)).text
    tiny_p = tiny_runtime.generate("Once upon", GenerationConfig(max_new_tokens=8, temperature=0.7, top_p=1e-9, seed=1)).text
    assert greedy == top1 == tiny_p


def test_streaming_yields_the_same_text(tiny_runtime):
    config = GenerationConfig(max_new_tokens=20, temperature=0.9, seed=3)
    stream = tiny_runtime.stream("Tell me", config)
    pieces = list(stream)
    assert len(pieces) > 1
    assert "".join(pieces) == stream.result.text == tiny_runtime.generate("Tell me", config).text


def test_stop_sequence_cuts_the_text_and_is_never_streamed(tiny_runtime):
    full = tiny_runtime.generate("Hello", GenerationConfig(max_new_tokens=20)).text
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    assert stop.strip(), "the tiny model's greedy output should have text to cut"
    stream = tiny_runtime.stream("Hello", GenerationConfig(max_new_tokens=20, stop=(stop,)))
    streamed = "".join(stream)
    assert streamed == full[: full.find(stop)]
    assert stream.result.finish_reason == "stop"


def test_chat_messages_are_accepted(tiny_runtime):
    result = tiny_runtime.generate([{"role": "user", "content": "Hi"}], GenerationConfig(max_new_tokens=3))
    assert result.prompt_tokens == len(tiny_runtime.encode_chat([{"role": "user", "content": "Hi"}]))


def test_prompt_longer_than_the_context_is_refused(tiny_runtime):
    with pytest.raises(ConfigError, match="exceeds the model's context"):
        tiny_runtime.generate("word " * 3000, GenerationConfig(max_new_tokens=4))
