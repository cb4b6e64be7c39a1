"""Elastic weight consolidation toward the parent (`replay.anchor_ewc_weight`; Kirkpatrick et al. 2017).

The anchors' distillation (sdft/replay.py) holds the parent's answers on the handful of anchor rows each step
happens to draw. EWC holds every anchor at once, in weight space: before the first update the parent's diagonal
Fisher information F is estimated on the anchor prompts along the parent's own greedy answers (per anchor, the
squared gradient of the answer's log-likelihood), and the loss gains

    lambda * sum_i F_i (theta_i - parent_i) ** 2

so the weights the parent's general answers depend on are held near their values, and the rest are free to learn.
F is normalised to mean 1 over the trained weights: lambda then reads as an L2 pull toward the parent for a weight
of average importance, whatever the model's size.
"""

from __future__ import annotations

import torch


def trained(model) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def anchor_fisher(model, sequences: list[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
    """Diagonal Fisher of `model` (the parent, before any update) over (prompt ids, answer ids) pairs: the mean over
    pairs of the squared gradient of log p(answer | prompt), normalised to mean 1 over every trained weight."""
    if not sequences:
        raise ValueError("EWC needs at least one anchor (prompt, answer) pair")
    params = trained(model)
    fisher = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in params.items()}
    was_training = model.training
    model.eval()  # no dropout: the parent's own distribution
    device = next(model.parameters()).device
    for prompt, answer in sequences:
        ids = torch.tensor([list(prompt) + list(answer)], device=device)
        logits = model(input_ids=ids, use_cache=False).logits[0, len(prompt) - 1:-1].float()
        log_likelihood = torch.log_softmax(logits, -1).gather(-1, ids[0, len(prompt):, None]).sum()
        model.zero_grad(set_to_none=True)
        log_likelihood.backward()
        for name, p in params.items():
            if p.grad is not None:
                fisher[name] += p.grad.detach().float() ** 2
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    total = sum(f.sum() for f in fisher.values())
    count = sum(f.numel() for f in fisher.values())
    mean = (total / count).clamp(min=torch.finfo(torch.float32).tiny)
    return {name: f / mean for name, f in fisher.items()}


def ewc_penalty(model, anchor: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor]) -> torch.Tensor:
    """sum_i F_i (theta_i - anchor_i) ** 2 over the trained weights (differentiable in theta)."""
    terms = [(fisher[name] * (p.float() - anchor[name]) ** 2).sum() for name, p in trained(model).items()]
    return torch.stack(terms).sum()
