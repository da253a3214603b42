"""Training: LoRA on a few Gemma layers plus a pooled linear head, from a handful of labelled examples.

1. Every example's trunk state (after layer ``start``) is computed once; all epochs and folds reuse it.
2. The head starts as a logistic-regression probe on the un-adapted pooled states (LoRA starts at zero).
3. Cross-validation: a model per fold scores its held-out examples; those scores fit Platt scaling and choose
   the F1-maximising threshold, so the threshold and probabilities come from data the model did not see.
4. The final model is, by default, the "soup" of the fold models: their LoRA updates B·A averaged per layer and
   re-factored to rank r by truncated SVD, their heads averaged (BENCHMARKS.md: better ROC-AUC than refitting on
   all examples, and no extra training). ``final_model="refit"`` trains once more on all examples instead.
   The LoRA weights are rounded to float16 (as saved).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from shieldkit.classifiers import stack
from shieldkit.classifiers.config import TrainingConfig
from shieldkit.classifiers.data import LabeledData, from_pairs, load_examples
from shieldkit.classifiers.evaluation import THRESHOLD_RULES, binary_metrics, fit_platt
from shieldkit.classifiers.gemma import ClassifierCard, GemmaClassifier, PolicyHead, attach_lora, pad_batch
from shieldkit.classifiers.storage import ADAPTER_DTYPE
from shieldkit.errors import ConfigError, DataError
from shieldkit.progress import bar

if TYPE_CHECKING:
    from shieldkit.model.runtime import GemmaRuntime


@dataclass
class _Prepared:
    trunk: list[torch.Tensor]  # per example: [T_i, D] state after layer `start`
    base_features: np.ndarray  # [N, D] pooled states at `readout` without LoRA (the probe's input)
    labels: np.ndarray  # [N]


def train_classifier(
    data: LabeledData | str | Path | Sequence[tuple[str, object]],
    runtime: GemmaRuntime,
    *,
    policy: str,
    description: str = "",
    config: TrainingConfig | None = None,
) -> GemmaClassifier:
    """Train a classifier for ``policy`` from labelled examples (a LabeledData, a CSV/JSONL path, or pairs)."""
    started = time.perf_counter()
    config = config or TrainingConfig()
    if not isinstance(policy, str) or not policy.strip():
        raise ConfigError("policy must be a non-empty name, e.g. 'hate'")
    data = _as_data(data)
    counts = {label: data.labels.count(label) for label in (0, 1)}
    if min(counts.values()) < config.cv_folds:
        raise DataError(
            f"{data.source}: {config.cv_folds}-fold cross-validation needs at least {config.cv_folds} examples of "
            f"each class; found {counts[1]} violating and {counts[0]} allowed"
        )
    start, readout = config.layer_span(runtime.info.num_layers)
    prepared = _prepare(runtime, data, config, start, readout)
    lora = _lora_config(config, start, readout)
    folds = _folds(prepared.labels, config)
    steps = sum(config.epochs * _n_batches(len(train), config.batch_size) for train, _ in folds)
    if config.final_model == "refit":
        steps += config.epochs * _n_batches(len(data), config.batch_size)
    with bar(total=steps, desc=f"training {policy}", unit="step") as progress:
        held_out = np.zeros(len(data))
        fold_models, losses = [], []
        for number, (train, test) in enumerate(folds, start=1):
            network, head, loss = _fit(runtime, prepared, train, config, lora, start, readout, progress, f"fold {number}/{len(folds)}")
            held_out[test] = _logodds(network, head, [prepared.trunk[i] for i in test], start, readout)
            fold_models.append((network, head))
            losses.append(loss)
        if config.final_model == "refit":
            network, head, loss = _fit(runtime, prepared, np.arange(len(data)), config, lora, start, readout, progress, "final")
        else:
            network, head = _soup(runtime, fold_models, lora, config)
            loss = float(np.mean(losses))
    _round_adapter(network)
    calibration = fit_platt(held_out, prepared.labels)
    held_out_p = calibration.apply(torch.tensor(held_out)).numpy()
    threshold = THRESHOLD_RULES[config.threshold_rule](held_out_p, prepared.labels)
    metrics = {
        "cross_validated": binary_metrics(prepared.labels, held_out_p, threshold),
        "uncalibrated_ece": binary_metrics(prepared.labels, 1 / (1 + np.exp(-held_out)), 0.5)["ece"],
        "final_train_loss": loss,
        "seconds": round(time.perf_counter() - started, 2),
    }
    card = ClassifierCard(
        policy=policy.strip(),
        description=description.strip(),
        threshold=threshold,
        calibration=calibration,
        start=start,
        readout=readout,
        max_tokens=config.max_tokens,
        base_model={
            "name": runtime.info.name,
            "fingerprint": runtime.info.fingerprint,
            "num_layers": runtime.info.num_layers,
            "hidden_size": runtime.info.hidden_size,
        },
        training=config.to_dict(),
        data={
            "sha256": data.fingerprint(),
            "n": len(data),
            "positives": data.positives,
            "source": Path(data.source).name,
            "duplicates_dropped": len(data.duplicates),
        },
        metrics=metrics,
    )
    return GemmaClassifier(runtime, card, network, head)


def _as_data(data) -> LabeledData:
    if isinstance(data, LabeledData):
        return data
    if isinstance(data, (str, Path)):
        return load_examples(data)
    return from_pairs(data)


def _prepare(runtime: GemmaRuntime, data: LabeledData, config: TrainingConfig, start: int, readout: int) -> _Prepared:
    """Trunk states after ``start`` and un-adapted pooled features at ``readout``, for every example."""
    bos = runtime.tokenizer.bos_token_id
    ids = [
        torch.tensor([bos, *runtime.tokenizer(text, add_special_tokens=False)["input_ids"][: config.max_tokens]])
        for text in data.texts
    ]
    trunk: list[torch.Tensor] = [None] * len(ids)  # type: ignore[list-item]
    features = np.zeros((len(ids), runtime.info.hidden_size), dtype=np.float32)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    with torch.inference_mode(), runtime.lock:
        for offset in range(0, len(order), 16):
            chosen = order[offset : offset + 16]
            input_ids, mask = pad_batch([ids[i] for i in chosen])
            hidden = runtime.model.get_input_embeddings()(input_ids.to(runtime.device))
            context = stack.build_context(runtime.model, hidden, mask)
            hidden = stack.run_layers(runtime.model, hidden, context, 0, start)
            top = stack.run_layers(runtime.model, hidden, context, start, readout)
            pooled = stack.mean_pool(top, mask).float().cpu().numpy()
            for row, index in enumerate(chosen):
                trunk[index] = hidden[row, : len(ids[index])].cpu().clone()
                features[index] = pooled[row]
    return _Prepared(trunk=trunk, base_features=features, labels=np.asarray(data.labels))


def _lora_config(config: TrainingConfig, start: int, readout: int):
    from peft import LoraConfig

    return LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=0.0,
        target_modules=list(config.target_modules),
        layers_to_transform=list(range(start, readout)),
        layers_pattern="layers",
        bias="none",
    )


def _folds(labels: np.ndarray, config: TrainingConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=config.cv_folds, shuffle=True, random_state=config.seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def _n_batches(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def _probe_head(prepared: _Prepared, train: np.ndarray, config: TrainingConfig, hidden_size: int) -> PolicyHead:
    """Logistic regression on standardised un-adapted features, folded back into raw-feature weights."""
    from sklearn.linear_model import LogisticRegression

    x = prepared.base_features[train].astype(np.float64)
    mean, std = x.mean(0), x.std(0) + 1e-6
    probe = LogisticRegression(C=config.probe_c, max_iter=5000).fit((x - mean) / std, prepared.labels[train])
    head = PolicyHead(hidden_size)
    with torch.no_grad():
        head.weight.copy_(torch.tensor(probe.coef_[0] / std, dtype=torch.float32))
        head.bias.fill_(float(probe.intercept_[0] - (probe.coef_[0] * mean / std).sum()))
    return head


def _fit(runtime, prepared: _Prepared, train: np.ndarray, config: TrainingConfig, lora, start: int, readout: int,
         progress, stage: str):
    """Train LoRA + head on the examples ``train``; returns (network, head, last epoch's mean loss)."""
    network = attach_lora(runtime, lora, seed=config.seed)
    head = _probe_head(prepared, train, config, runtime.info.hidden_size)
    adapter_params = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": adapter_params, "lr": config.learning_rate},
         {"params": list(head.parameters()), "lr": config.head_learning_rate}],
        weight_decay=0.0,
    )
    rng = np.random.default_rng(config.seed)
    targets = torch.tensor(prepared.labels, dtype=torch.float32)
    lengths = np.array([len(t) for t in prepared.trunk])
    epoch_loss = float("nan")
    network.train()
    for _ in range(config.epochs):
        total = 0.0
        for batch in _bucketed_batches(train, lengths, config.batch_size, rng):
            hidden, mask = pad_batch([prepared.trunk[i] for i in batch])
            with runtime.lock:  # the frozen weights are the runtime's own tensors
                context = stack.build_context(network, hidden, mask)
                top = stack.run_layers(network, hidden, context, start, readout)
                z = head(stack.mean_pool(top, mask))
                loss = torch.nn.functional.binary_cross_entropy_with_logits(z, targets[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            value = loss.item()
            total += value * len(batch)
            progress.update(1)
            progress.set_postfix_str(f"{stage} loss {value:.3f}")
        epoch_loss = total / len(train)
    network.eval()
    return network, head, epoch_loss


def _bucketed_batches(indices: np.ndarray, lengths: np.ndarray, batch_size: int, rng: np.random.Generator):
    """Shuffle, then sort within windows of 4 batches by length (less padding), then shuffle the batches."""
    order = rng.permutation(indices)
    batches = []
    window = batch_size * 4
    for offset in range(0, len(order), window):
        chunk = sorted(order[offset : offset + window], key=lambda i: lengths[i])
        batches += [np.asarray(chunk[j : j + batch_size]) for j in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _soup(runtime, models: list, lora, config: TrainingConfig):
    """One rank-r LoRA whose update per linear layer is the truncated SVD of the fold models' mean update B·A,
    and the mean of their heads (the heads read the same pooled space, since every fold starts from the same
    base model and init)."""
    network = attach_lora(runtime, lora, seed=config.seed)
    fold_params = [dict(model.named_parameters()) for model, _ in models]
    params = dict(network.named_parameters())
    with torch.no_grad():
        for name_a, param_a in params.items():
            if ".lora_A." not in name_a:
                continue
            name_b = name_a.replace(".lora_A.", ".lora_B.")
            delta = sum(fold[name_b] @ fold[name_a] for fold in fold_params) / len(models)  # [out, in]
            u, values, vh = torch.linalg.svd(delta, full_matrices=False)
            root = values[: config.rank].sqrt()  # split sqrt(sigma) between B and A: B·A = the mean update
            params[name_b].copy_(u[:, : config.rank] * root)
            param_a.copy_(root[:, None] * vh[: config.rank])
    head = PolicyHead(runtime.info.hidden_size)
    with torch.no_grad():
        head.weight.copy_(torch.stack([h.weight for _, h in models]).mean(0))
        head.bias.copy_(torch.stack([h.bias for _, h in models]).mean(0))
    network.eval()
    return network, head


def _logodds(network, head: PolicyHead, trunk: list[torch.Tensor], start: int, readout: int) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for offset in range(0, len(trunk), 16):
            hidden, mask = pad_batch(trunk[offset : offset + 16])
            context = stack.build_context(network, hidden, mask)
            top = stack.run_layers(network, hidden, context, start, readout)
            out.append(head(stack.mean_pool(top, mask)))
    return torch.cat(out).numpy().astype(np.float64)


def _round_adapter(network) -> None:
    """Round the LoRA weights to the saved precision, so the classifier in memory equals the one on disk."""
    with torch.no_grad():
        for name, param in network.named_parameters():
            if "lora_" in name:
                param.copy_(param.to(ADAPTER_DTYPE).float())
