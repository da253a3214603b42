"""Training the shared safety model: one LoRA on mid layers and one head per default policy, jointly.

1. A row is read as at inference: windows of ``max_tokens`` (its first ``max_windows``), and its log-odds per
   policy are the highest over its windows, so a long benign text is trained to be low everywhere and an
   injection at the end of a document counts where it is. Every window's trunk state (entering layer ``start``)
   is computed once and reused every epoch (and, given a cache folder, kept on disk under a hash of the base
   model, the layers and the token ids, so retraining on the same corpus skips it).
2. The heads read the pooled state standardised per dimension (mean and spread of the un-adapted pooled states of
   up to 2,048 training rows): Gemma's residual stream has dimensions hundreds of times larger than others, and
   heads trained on it raw diverged. The standardisation is folded into each head's raw weights at the end.
3. LoRA (peft, rank r on the layers [start, readout)) and the P heads are trained together with a masked,
   weighted binary cross-entropy: a row's unknown labels (-1) add nothing, team-written rows weigh more, and each
   policy's positives are up-weighted by sqrt(allowed / violating), capped.
4. The calibration split (never trained on) fits each head's Platt scaling and chooses its threshold at a stated
   false-positive budget on every benign source (``calibration.py``).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from shieldkit.classifiers import stack
from shieldkit.classifiers.corpus import UNKNOWN, Corpus
from shieldkit.classifiers.calibration import calibrate_heads
from shieldkit.classifiers.reserve import Reserve
from shieldkit.classifiers.gemma import PolicyHead, attach_lora, pad_batch, token_windows
from shieldkit.classifiers.safety import HeadClassifier, SafetyCard, SafetyModel
from shieldkit.classifiers.storage import ADAPTER_DTYPE, adapter_fingerprint
from shieldkit.errors import ConfigError
from shieldkit.progress import bar

if TYPE_CHECKING:
    from shieldkit.model.runtime import GemmaRuntime

LORA_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class SafetyTrainingConfig:
    epochs: int = 2  # passes over the training split
    learning_rate: float = 1e-3  # AdamW step size for LoRA
    head_learning_rate: float = 1e-3  # AdamW step size for the heads (they start at zero, on standardised states)
    rank: int = 8  # LoRA rank r
    alpha: float = 16.0  # LoRA scaling numerator: updates are scaled by alpha / rank
    batch_size: int = 32  # rows per optimizer step (grouped by length to limit padding)
    readout_layer: int | None = None  # pooled after this many layers; None = 2/3 of the depth
    lora_layers: int | None = None  # adapted layers just below the readout; None = half the readout depth
    max_tokens: int = 128  # text tokens per window
    max_windows: int = 4  # windows read per training row (its first ones); the row scores its highest, as at inference
    positive_weight_cap: float = 8.0  # cap on sqrt(allowed / violating) per policy
    fpr_budget: float = 0.01  # thresholds: at most this false-positive rate on held-out benign rows
    seed: int = 0  # fixes LoRA init and batch order

    def __post_init__(self) -> None:
        for name in ("epochs", "rank", "batch_size", "max_tokens", "max_windows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"SafetyTrainingConfig.{name} must be a whole number >= 1, got {value!r}")
        for name in ("learning_rate", "head_learning_rate", "alpha", "positive_weight_cap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
                raise ConfigError(f"SafetyTrainingConfig.{name} must be a finite number > 0, got {value!r}")
        if not isinstance(self.fpr_budget, (int, float)) or not 0.0 < self.fpr_budget < 1.0:
            raise ConfigError(f"SafetyTrainingConfig.fpr_budget must be in (0, 1), got {self.fpr_budget!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"SafetyTrainingConfig.seed must be a whole number >= 0, got {self.seed!r}")

    def layer_span(self, num_layers: int) -> tuple[int, int]:
        readout = self.readout_layer if self.readout_layer is not None else max(1, round(num_layers * 2 / 3))
        lora = self.lora_layers if self.lora_layers is not None else max(1, readout // 2)
        if not 1 <= lora <= readout <= num_layers:
            raise ConfigError(f"SafetyTrainingConfig: layers {readout - lora}..{readout} do not fit a {num_layers}-layer model")
        return readout - lora, readout

    def to_dict(self) -> dict:
        return asdict(self)


def _encode(runtime, texts: list[str], max_tokens: int, max_windows: int) -> tuple[list[torch.Tensor], list[list[int]]]:
    """Every row's first ``max_windows`` windows, flat ([T] each), and the window indices of each row."""
    bos = runtime.tokenizer.bos_token_id
    windows: list[torch.Tensor] = []
    members: list[list[int]] = []
    for tokens in runtime.tokenizer(texts, add_special_tokens=False)["input_ids"]:
        chosen = token_windows(tokens, bos, max_tokens)[:max_windows]
        members.append(list(range(len(windows), len(windows) + len(chosen))))
        windows += [torch.tensor(ids) for ids in chosen]
    return windows, members


def _row_maxima(z: torch.Tensor, members: list[list[int]]) -> torch.Tensor:
    """Window log-odds z [W, P] -> each row's highest [B, P] (rows list their windows as positions in z)."""
    widest = max(len(m) for m in members)
    padded = torch.cat([z, z.new_full((1, z.shape[1]), float("-inf"))])  # row W: filler that never wins
    index = torch.tensor([m + [len(z)] * (widest - len(m)) for m in members])  # [B, widest]
    return padded[index].max(dim=1).values


def _flatten(rows: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Rows' window indices -> (all windows in order, each row's positions in that list)."""
    flat = [w for windows in rows for w in windows]
    ends = np.cumsum([len(windows) for windows in rows]).tolist()
    return flat, [list(range(end - len(windows), end)) for end, windows in zip(ends, rows)]


def _trunk_states(runtime, ids: list[torch.Tensor], start: int, cache_dir: Path | None) -> list[torch.Tensor]:
    """[T_i, D] state entering layer ``start`` for every sequence (from ``cache_dir`` when computed before)."""
    digest = hashlib.sha256(f"{runtime.info.fingerprint}:{start}".encode())
    for sequence in ids:
        digest.update(sequence.numpy().tobytes() + b"|")
    path = Path(cache_dir) / f"trunk-{digest.hexdigest()[:24]}.pt" if cache_dir is not None else None
    if path is not None and path.is_file():
        flat, lengths = torch.load(path, weights_only=True)
        return list(torch.split(flat, lengths.tolist()))
    states = _compute_trunk_states(runtime, ids, start)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        torch.save((torch.cat(states), torch.tensor([len(s) for s in states])), partial)
        partial.replace(path)
    return states


def _compute_trunk_states(runtime, ids: list[torch.Tensor], start: int) -> list[torch.Tensor]:
    states: list[torch.Tensor] = [None] * len(ids)  # type: ignore[list-item]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    with torch.inference_mode(), runtime.lock, bar(total=len(ids), desc="trunk states", unit="text") as progress:
        for offset in range(0, len(order), 32):
            chosen = order[offset : offset + 32]
            input_ids, mask = pad_batch([ids[i] for i in chosen])
            hidden = runtime.model.get_input_embeddings()(input_ids.to(runtime.device))
            context = stack.build_context(runtime.model, hidden, mask)
            hidden = stack.run_layers(runtime.model, hidden, context, 0, start)
            for row, index in enumerate(chosen):
                states[index] = hidden[row, : len(ids[index])].cpu().clone()
            progress.update(len(chosen))
    return states


def _batches(indices: np.ndarray, lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(indices)
    batches = []
    window = batch_size * 8
    for offset in range(0, len(order), window):
        chunk = sorted(order[offset : offset + window], key=lambda i: lengths[i])
        batches += [np.asarray(chunk[j : j + batch_size]) for j in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


class Standardise(torch.nn.Module):
    """pooled [B, D] -> (pooled - mean) / std, fixed."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return (pooled.float() - self.mean) / self.std


def _standardiser(network, states, rows: np.ndarray, start: int, readout: int, seed: int) -> Standardise:
    chosen = np.random.default_rng(seed).choice(rows, min(len(rows), 2048), replace=False)
    pooled = []
    with torch.inference_mode():
        for offset in range(0, len(chosen), 32):
            hidden, mask = pad_batch([states[i] for i in chosen[offset : offset + 32]])
            context = stack.build_context(network, hidden, mask)
            pooled.append(stack.mean_pool(stack.run_layers(network, hidden, context, start, readout), mask).float())
    pooled = torch.cat(pooled)
    return Standardise(pooled.mean(0), pooled.std(0) + 1e-3)


def _fold(head: PolicyHead, scale: Standardise) -> PolicyHead:
    """The same head on raw pooled states: w / std, b - sum(w * mean / std)."""
    raw = PolicyHead(head.weight.shape[0])
    with torch.no_grad():
        raw.weight.copy_(head.weight / scale.std)
        raw.bias.copy_(head.bias - (head.weight * scale.mean / scale.std).sum())
    return raw


def train_safety_model(corpus: Corpus, runtime: GemmaRuntime, config: SafetyTrainingConfig | None = None,
                       descriptions: dict[str, str] | None = None, cache_dir: str | Path | None = None,
                       reserve: Reserve | None = None) -> tuple[SafetyModel, dict[str, HeadClassifier]]:
    """Train the shared LoRA and one head per corpus policy; returns the model and its calibrated heads (``reserve``:
    benign rows the corpus left out, for the everyday sources' budgets, ``reserve.py``)."""
    from peft import LoraConfig

    started = time.perf_counter()
    config = config or SafetyTrainingConfig()
    descriptions = descriptions or {}
    start, readout = config.layer_span(runtime.info.num_layers)
    policies = corpus.policies
    train, held = corpus.subset("train"), corpus.subset("calibration")
    if not len(train) or not len(held):
        raise ConfigError("the corpus needs rows in both the train and the calibration split")
    for column, name in enumerate(policies):
        for value, word in ((1, "violating"), (0, "allowed")):
            if not (corpus.labels[held, column] == value).any():
                raise ConfigError(f"policy {name!r} has no {word} rows in the calibration split")
    ids, members = _encode(runtime, corpus.texts, config.max_tokens, config.max_windows)
    states = _trunk_states(runtime, ids, start, cache_dir)  # one per window
    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0, target_modules=list(LORA_MODULES),
                      layers_to_transform=list(range(start, readout)), layers_pattern="layers", bias="none")
    network = attach_lora(runtime, lora, seed=config.seed)
    scale = _standardiser(network, states, np.array([members[i][0] for i in train]), start, readout, config.seed)
    labels = torch.tensor(corpus.labels, dtype=torch.float32)  # [N, P]
    known = (labels != UNKNOWN).float()
    targets = labels.clamp(min=0)
    weights = torch.tensor(corpus.weights, dtype=torch.float32)
    positives = ((labels[train] == 1).float() * weights[train, None]).sum(0)
    negatives = ((labels[train] == 0).float() * weights[train, None]).sum(0)
    pos_weight = (negatives / positives.clamp(min=1)).sqrt().clamp(1.0, config.positive_weight_cap)
    heads = torch.nn.ModuleList(PolicyHead(runtime.info.hidden_size) for _ in policies)
    with torch.no_grad():
        for column, head in enumerate(heads):  # start at each policy's base rate
            head.bias.fill_(float(torch.log(positives[column].clamp(min=1) / negatives[column].clamp(min=1))))
    adapter = [p for p in network.parameters() if p.requires_grad]
    parameters = adapter + list(heads.parameters())
    optimizer = torch.optim.AdamW([{"params": adapter, "lr": config.learning_rate},
                                   {"params": list(heads.parameters()), "lr": config.head_learning_rate}], weight_decay=0.0)
    rng = np.random.default_rng(config.seed)
    lengths = np.array([sum(len(states[w]) for w in windows) for windows in members])  # tokens per row
    plan = [_batches(train, lengths, config.batch_size, rng) for _ in range(config.epochs)]
    total_steps = sum(len(epoch) for epoch in plan)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 50) * max(0.05, 1 - step / total_steps))
    losses = []
    network.train()
    with torch.random.fork_rng(devices=[]), bar(total=total_steps, desc="training safety model", unit="step") as progress:
        torch.manual_seed(config.seed)
        for epoch, batches in enumerate(plan, start=1):
            running = []
            for batch in batches:
                flat, positions = _flatten([members[i] for i in batch])
                hidden, mask = pad_batch([states[w] for w in flat])
                with runtime.lock:
                    context = stack.build_context(network, hidden, mask)
                    pooled = stack.mean_pool(stack.run_layers(network, hidden, context, start, readout), mask)
                    pooled = scale(pooled)
                    z = _row_maxima(torch.stack([head(pooled) for head in heads], dim=-1), positions)  # [B, P]
                    loss_terms = torch.nn.functional.binary_cross_entropy_with_logits(
                        z, targets[batch], pos_weight=pos_weight, reduction="none")
                    mask_terms = known[batch] * weights[batch, None]
                    loss = (loss_terms * mask_terms).sum() / mask_terms.sum().clamp(min=1)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
                    optimizer.step()
                    schedule.step()
                running.append(loss.item())
                progress.update(1)
                progress.set_postfix_str(f"epoch {epoch} loss {np.mean(running[-50:]):.4f}")
            losses.append(float(np.mean(running)))
    network.eval()
    heads = torch.nn.ModuleList(_fold(head, scale) for head in heads)
    with torch.no_grad():
        for name, param in network.named_parameters():
            if "lora_" in name:
                param.copy_(param.to(ADAPTER_DTYPE).float())  # what is saved is what was calibrated
    from peft import get_peft_model_state_dict

    fingerprint = adapter_fingerprint(get_peft_model_state_dict(network))
    card = SafetyCard(
        start=start, readout=readout, max_tokens=config.max_tokens,
        base_model={"name": runtime.info.name, "fingerprint": runtime.info.fingerprint,
                    "num_layers": runtime.info.num_layers, "hidden_size": runtime.info.hidden_size},
        fingerprint=fingerprint, training=config.to_dict(),
        data={"corpus_sha256": corpus.fingerprint(), **corpus.summary()},
        metrics={"train_loss_per_epoch": losses, "seconds": round(time.perf_counter() - started, 1)},
    )
    safety = SafetyModel(runtime, card, network)
    classifiers = calibrate_heads(safety, dict(zip(policies, heads)), corpus, config.fpr_budget, descriptions,
                                  config.to_dict(), reserve)
    return safety, classifiers
