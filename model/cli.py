"""``shieldkit generate`` and ``shieldkit model info``."""

from __future__ import annotations

import argparse
import json
import sys

from shieldkit.errors import ConfigError


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model/--dtype/--device, shared by every command that loads Gemma (defaults come from SHIELDKIT_*)."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", help="'embedded' (default), 'tiny-random', a Gemma folder or a .gguf file")
    group.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], help="weights dtype (default float32)")
    group.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="where to run (default auto)")


def settings_from_args(args: argparse.Namespace):
    from shieldkit.model.settings import ModelSettings

    return ModelSettings.create(model=args.model, dtype=args.dtype, device=args.device)


def register(subparsers: argparse._SubParsersAction) -> None:
    generate = subparsers.add_parser(
        "generate", help="generate text with Gemma", description="Continue PROMPT with Gemma (or answer it with --chat)."
    )
    generate.add_argument("prompt", metavar="PROMPT", help="the text to continue")
    generate.add_argument("--max-new-tokens", type=int, default=64, help="most tokens to generate (default 64)")
    generate.add_argument("--stream", action="store_true", help="print text as it is generated")
    generate.add_argument("--chat", action="store_true",
                          help="send PROMPT as a user turn, in the model's chat format (SHIELDKIT_CHAT_FORMAT)")
    generate.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default); > 0 samples")
    generate.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1.0)")
    generate.add_argument("--top-k", type=int, default=0, help="sample among the k most likely tokens (0 = all)")
    generate.add_argument("--seed", type=int, help="sampling seed, for reproducible samples")
    generate.add_argument("--stop", action="append", default=[], metavar="TEXT", help="stop before TEXT (repeatable)")
    add_model_arguments(generate)
    generate.set_defaults(handler=run_generate)

    model = subparsers.add_parser("model", help="inspect the model", description="Inspect the configured Gemma.")
    model_commands = model.add_subparsers(title="model commands", metavar="COMMAND", required=True)
    info = model_commands.add_parser("info", help="which model, where cached, parameters, dtype, load time")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    add_model_arguments(info)
    info.set_defaults(handler=run_model_info)


def run_generate(args: argparse.Namespace) -> int:
    if not args.prompt.strip():
        raise ConfigError("PROMPT must not be empty")
    from shieldkit.model.generation import GenerationConfig
    from shieldkit.model.runtime import GemmaRuntime

    config = GenerationConfig(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
        seed=args.seed, stop=tuple(args.stop),
    )
    runtime = GemmaRuntime.load(settings_from_args(args))
    prompt = [{"role": "user", "content": args.prompt}] if args.chat else args.prompt
    stream = runtime.stream(prompt, config)
    if args.stream:
        for piece in stream:
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
    else:
        for _ in stream:
            pass
        print(stream.result.text)
    result = stream.result
    print(
        f"[{runtime.info.name}: {result.completion_tokens} tokens in {result.seconds:.2f} s "
        f"({result.tokens_per_second:.1f} tok/s), finish: {result.finish_reason}]",
        file=sys.stderr,
    )
    return 0


def run_model_info(args: argparse.Namespace) -> int:
    from shieldkit.model.runtime import GemmaRuntime

    info = GemmaRuntime.load(settings_from_args(args)).info
    if args.json:
        print(json.dumps(info.to_dict()))
        return 0
    rows = [
        ("model", info.name),
        ("source", info.source_path or info.source_kind),
        ("architecture", info.architecture),
        ("fingerprint", info.fingerprint[:16]),
        ("cache", f"{info.cache_path} ({info.cache_event})" if info.cache_path else "not used"),
        ("parameters", f"{info.parameters:,} ({info.num_layers} layers, {info.num_heads} heads, hidden {info.hidden_size}, vocabulary {info.vocab_size:,})"),
        ("dtype", info.dtype),
        ("device", info.device),
        ("decode", f"{info.decode} (SHIELDKIT_DECODE)"),
        ("chat format", f"{info.chat_format} (SHIELDKIT_CHAT_FORMAT)"),
        ("classifier precision", f"{info.classifier_precision} (SHIELDKIT_CLASSIFIER_PRECISION)"),
        ("load time", f"{info.load_seconds:.2f} s"),
    ]
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0
