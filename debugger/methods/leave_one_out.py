"""Leave one token out (occlusion), batched.

score_t = target(x) − target(x with token t's embedding replaced by the baseline). Replacing rather than deleting
keeps every other token at its position. Tokens that cannot influence the target (after it, causally) are skipped
and score exactly 0. Tokens are perturbed in position order, a batch at a time; for causal language-model targets
the batch's unchanged prefix runs once (KV cache), which halves the work on long prompts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from shieldkit.debugger.base import Attribution, PrefixScorer, Progress, Target
from shieldkit.debugger.baselines import check_baseline, input_and_baseline
from shieldkit.debugger.methods.shared import batch_for, check_positive_int, chunks, finite_or_error


@dataclass(frozen=True)
class LeaveOneOutConfig:
    baseline: str = "zero"  # what a left-out token becomes: zero | pad | unk (see baselines.BASELINES)
    batch_size: int = 8  # perturbed copies per forward pass

    def __post_init__(self) -> None:
        check_baseline(self.baseline, "LeaveOneOutConfig.baseline")
        check_positive_int(self.batch_size, "LeaveOneOutConfig", "batch_size")


class LeaveOneOut:
    name = "leave_one_out"
    label = "Leave one token out"
    description = "Drop in the target when a token is replaced by the baseline: signed, one forward pass per token."
    signed = True
    config_class = LeaveOneOutConfig

    def __init__(self, config: LeaveOneOutConfig | None = None) -> None:
        self.config = config or LeaveOneOutConfig()

    def attribute(self, target: Target, progress: Progress | None = None) -> Attribution:
        inputs, base, mask = input_and_baseline(target, self.config.baseline)  # [T, D], [T, D], [T]
        mask[target.influence_end :] = False
        positions = mask.nonzero().flatten().tolist()
        value = float(target.scores(inputs[None])[0])
        scores = torch.zeros(len(inputs))
        for part in chunks(len(positions), batch_for(self.config.batch_size, len(inputs))):
            chosen = positions[part]
            batch = inputs[None].repeat(len(chosen), 1, 1)  # [b, T, D]
            rows = torch.arange(len(chosen))
            batch[rows, chosen] = base[chosen]
            perturbed = target.scores_after(batch, chosen[0]) if isinstance(target, PrefixScorer) else target.scores(batch)
            scores[chosen] = value - perturbed
            if progress:
                progress(part.stop, len(positions))
        return finite_or_error(Attribution(scores, value, None, {"perturbed_tokens": len(positions)}), self.name)

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)
