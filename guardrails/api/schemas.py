"""Request bodies, validated strictly: wrong types, unknown parameters and empty messages are 400s that name the
parameter. Parameters whose output the proxy cannot check (tools, logprobs, n > 1) are refused, not ignored; their
values that ask for nothing (``"tools": []``, ``"logprobs": false``) are accepted and not forwarded. The models
are also the request schemas of the OpenAPI document (guardrails/api/openapi.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, WithJsonSchema, field_validator

from shieldkit.guardrails.api.errors import InvalidRequest, RequestTooLarge
from shieldkit.guardrails.pipeline.normalise import has_visible_text

# Parameters whose output the proxy cannot check: what they would ask for, and the values that ask for nothing.
UNCHECKABLE: dict[str, tuple[str, tuple[Any, ...]]] = {
    "tools": ("tool calls", ([],)), "tool_choice": ("tool calls", ("none",)),
    "functions": ("function calls", ([],)), "function_call": ("function calls", ("none",)),
    "logprobs": ("log-probabilities", (False,)), "top_logprobs": ("log-probabilities", (0,)),
    "audio": ("audio", ()), "modalities": ("audio", (["text"],)),
    "prediction": ("predicted outputs", ()), "logit_bias": ("logit bias", ({},)),
}
NOTHING = "asks for nothing, so only this value is accepted (the proxy cannot check {})"
TEXT_PART = {"type": "object", "additionalProperties": False, "required": ["type", "text"],
             "properties": {"type": {"const": "text"}, "text": {"type": "string"}}}
STOP_SCHEMA = {"anyOf": [{"type": "string", "minLength": 1},
                         {"type": "array", "maxItems": 4, "items": {"type": "string", "minLength": 1}}, {"type": "null"}]}
ONE_CHOICE_SCHEMA = {"anyOf": [{"type": "integer", "const": 1}, {"type": "null"}],
                     "description": "only 1: each choice would need its own checks"}
TEXTS_SCHEMA = {"anyOf": [{"type": "string", "minLength": 1},
                          {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}],
                "description": "one text or a list of texts; each must hold visible text"}
MODERATION_INPUT_SCHEMA = {"anyOf": [*TEXTS_SCHEMA["anyOf"], {"type": "array", "minItems": 1, "items": TEXT_PART}],
                           "description": "one text, a list of texts, or a list of text parts (one input)"}
CONTENT_SCHEMA = {"anyOf": [{"type": "string", "minLength": 1}, {"type": "array", "minItems": 1, "items": TEXT_PART}],
                  "description": "text, or text parts (joined by line breaks); must hold visible text"}


def asks_nothing(name: str, value: Any) -> bool:
    """Whether an uncheckable parameter's value asks for nothing (null, or e.g. an empty tool list)."""
    return value is None or any(type(value) is type(nothing) and value == nothing for nothing in UNCHECKABLE[name][1])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Message(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[Any, WithJsonSchema(CONTENT_SCHEMA)]  # text, or a list of {"type": "text", "text": ...} parts
    name: str | None = None

    @field_validator("content")
    @classmethod
    def _text_content(cls, value: Any) -> str:
        if isinstance(value, str):
            text = value
        elif isinstance(value, list) and value and all(isinstance(p, dict) for p in value):
            text = joined_text_parts(value)
        else:
            raise ValueError("must be a string or a non-empty list of text parts")
        if not has_visible_text(text):  # whitespace, NUL, zero-width characters, ... only
            raise ValueError("must not be empty (it has no visible text)")
        return text


def joined_text_parts(parts: list[dict]) -> str:
    """``[{"type": "text", "text": ...}, ...]`` -> the texts joined by line breaks; any other part (an image) is
    refused, since it cannot be checked."""
    texts = []
    for part in parts:
        if part.get("type") != "text" or not isinstance(part.get("text"), str) or set(part) - {"type", "text"}:
            raise ValueError("only text parts ({'type': 'text', 'text': ...}) can be checked, so only they are accepted")
        texts.append(part["text"])
    return "\n".join(texts)


class StreamOptions(_Strict):
    include_usage: bool = False


class ChatRequest(_Strict):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    stop: Annotated[str | list[str] | None, WithJsonSchema(STOP_SCHEMA)] = None
    n: Annotated[int | None, WithJsonSchema(ONE_CHOICE_SCHEMA)] = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    user: str | None = None
    # Accepted only with values that ask for nothing (see UNCHECKABLE); never forwarded.
    tools: Annotated[list[Any], Field(max_length=0, description=NOTHING.format("tool calls"))] | None = None
    tool_choice: Literal["none"] | None = Field(None, description=NOTHING.format("tool calls"))
    functions: Annotated[list[Any], Field(max_length=0, description=NOTHING.format("function calls"))] | None = None
    function_call: Literal["none"] | None = Field(None, description=NOTHING.format("function calls"))
    logprobs: Literal[False] | None = Field(None, description=NOTHING.format("log-probabilities"))
    top_logprobs: Literal[0] | None = Field(None, description=NOTHING.format("log-probabilities"))
    audio: None = Field(None, description=NOTHING.format("audio"))
    modalities: Annotated[list[Literal["text"]], Field(min_length=1, max_length=1)] | None = Field(
        None, description=NOTHING.format("audio"))
    prediction: None = Field(None, description=NOTHING.format("predicted outputs"))
    logit_bias: Annotated[dict[str, Any], Field(max_length=0, description=NOTHING.format("logit bias"))] | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> list[str] | None:
        stops = [value] if isinstance(value, str) else value
        if stops is not None and (len(stops) > 4 or not all(stops)):
            raise ValueError("must be up to 4 non-empty strings")
        return stops

    @field_validator("stream_options")
    @classmethod
    def _only_when_streaming(cls, value: StreamOptions | None, info: ValidationInfo) -> StreamOptions | None:
        if value is not None and not info.data.get("stream"):
            raise ValueError("is only allowed with stream: true (as OpenAI's API has it)")
        return value

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int | None) -> int | None:
        if value not in (None, 1):
            raise ValueError("only n = 1 is supported (each choice would need its own checks)")
        return value


def _non_empty_texts(value: str | list[str]) -> str | list[str]:
    texts = [value] if isinstance(value, str) else value
    if not texts or not all(has_visible_text(t) for t in texts):
        raise ValueError("must be a non-empty string or a non-empty list of non-empty strings")
    return value


class ModerationRequest(_Strict):
    # one text, a list of texts (one result each), or OpenAI's multi-modal list of parts (one input: its text parts)
    input: Annotated[str | list[str] | list[dict], WithJsonSchema(MODERATION_INPUT_SCHEMA)]
    model: str | None = None

    @field_validator("input")
    @classmethod
    def _texts(cls, value: str | list[str] | list[dict]) -> str | list[str]:
        if isinstance(value, list) and value and all(isinstance(p, dict) for p in value):
            value = joined_text_parts(value)
        return _non_empty_texts(value)


class CheckRequest(_Strict):
    text: Annotated[str | list[str], WithJsonSchema(TEXTS_SCHEMA)]
    direction: Literal["input", "output"] = "input"
    policy: str | None = None

    @field_validator("text")
    @classmethod
    def _texts(cls, value: str | list[str]) -> str | list[str]:
        return _non_empty_texts(value)


REQUEST_MODELS = (ChatRequest, ModerationRequest, CheckRequest)  # the bodies the OpenAPI document declares


def parse(model: type[_Strict], data: dict[str, Any], *, max_items: int | None = None, list_field: str = "messages") -> Any:
    for name in data:
        if name in UNCHECKABLE and not asks_nothing(name, data[name]):
            raise InvalidRequest(f"'{name}' is not supported: the guardrail proxy cannot check {UNCHECKABLE[name][0]}",
                                 param=name, code="unsupported_parameter")
    items = data.get(list_field)
    if max_items is not None and isinstance(items, list) and len(items) > max_items:
        raise RequestTooLarge(f"{len(items)} entries in '{list_field}' are more than this proxy's limit of {max_items}",
                              param=list_field)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = _param(error["loc"])
        if error["type"] == "extra_forbidden":
            raise InvalidRequest(f"unknown parameter '{param}'", param=param, code="unknown_parameter") from None
        if error["type"] == "missing":
            raise InvalidRequest(f"missing required parameter '{param}'", param=param, code="missing_parameter") from None
        if error["type"] == "finite_number":  # JSON has no NaN or Infinity; Python's parser lets them through
            spelled = "NaN" if error["input"] != error["input"] else ("-Infinity" if error["input"] < 0 else "Infinity")
            raise InvalidRequest(f"{param}: must be a finite number, got {spelled}", param=param) from None
        message = error["msg"].removeprefix("Value error, ")
        raise InvalidRequest(f"{param}: {message}", param=param) from None


def _param(loc: tuple) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("str", "list[str]") or "[" in str(part) or part.startswith("function-"):
            continue  # pydantic's union-branch tags
        else:
            text += f".{part}" if text else str(part)
    return text
