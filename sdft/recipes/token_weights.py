"""SDFT with the per-token loss weighted toward the tokens where teacher and student disagree most.

TRL averages the per-token divergence over each rollout. At 135M only the one or two tokens that
name a new fact carry the skill, while every token the teacher would phrase differently (style)
fills the rest of the mean (docs/QUALITY.md §3). With `sdft.disagreement_power` = g > 0 each token's
loss is weighted by (its divergence / the rollout's mean divergence) ** g, the weight detached, so
the gradient of a token is scaled but never reversed. g = 0 is TRL's (and the paper's) plain mean.
"""

from __future__ import annotations

import torch
from trl.experimental.sdft import SDFTTrainer
from trl.experimental.sdft.loss_utils import (
    compute_full_logit_self_distillation_loss,
    compute_topk_self_distillation_loss,
)


def disagreement_weights(per_token_div: torch.Tensor, loss_mask: torch.Tensor, power: float) -> torch.Tensor:
    """mask * (div / mean div over the rollout's loss tokens) ** power; a rollout's weights average to ~1."""
    mask = loss_mask.to(per_token_div.dtype)
    div = per_token_div.detach().clamp(min=0.0) * mask
    mean = div.sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp(min=1.0)
    return mask * (div / mean.clamp(min=1e-8)) ** power


class TokenWeightedSDFTTrainer(SDFTTrainer):
    def __init__(self, *args, disagreement_power: float = 0.0, **kwargs):
        if disagreement_power < 0:
            raise ValueError(f"sdft.disagreement_power must be >= 0, got {disagreement_power}")
        super().__init__(*args, **kwargs)
        self.disagreement_power = disagreement_power

    def _compute_teacher_student_logits(self, model, teacher_model, inputs):
        logits = super()._compute_teacher_student_logits(model, teacher_model, inputs)
        if self.disagreement_power == 0:
            return logits
        args = self.args
        with torch.no_grad():
            if args.distillation_mode == "topk_logits":
                div = compute_topk_self_distillation_loss(
                    logits.student_logits, logits.teacher_logits, distillation_topk=args.distillation_topk,
                    distillation_alpha=args.distillation_alpha, distillation_add_tail=args.distillation_add_tail)
            else:  # full_logits; sampled_token has no per-token divergence to rank by, so it is weighted the same way
                div = compute_full_logit_self_distillation_loss(
                    logits.student_logits, logits.teacher_logits, distillation_alpha=args.distillation_alpha)
        # TRL's loss is sum(loss * mask) / sum(mask) per rollout: a real-valued mask is a per-token weight.
        logits.loss_mask = disagreement_weights(div, logits.loss_mask, self.disagreement_power)
        return logits
