"""The update kept off the parent's general-text subspace (`replay.anchor_projection_share`; docs/QUALITY.md §27).

A linear layer's change dW alters its output on an input x by dW x. If every input the parent sees on general
text lies in a subspace U, an update with dW U = 0 leaves those outputs exactly as they were, and is free to act on
inputs outside U: the subject of a new fact, say. This is the specificity principle of MEMIT (Meng et al. 2023,
the update shaped by the covariance of general-text keys) and of gradient projection memory (GPM, Saha et al. 2021,
each task's update kept orthogonal to the earlier tasks' input subspaces).

Here U is estimated once, before the first update, per `nn.Linear` of the decoder: the inputs it receives over every
anchor the run draws, along the parent's own greedy answer (the path the gate scores), C = sum x x^T, and U the
top eigenvectors of C holding `share` of its trace. After every optimizer step the cumulative change is projected:
W = W0 + (W - W0)(I - U U^T). Because the change was already off U before the step, this projects the step itself,
whatever the optimizer did to it (Adam's per-weight scaling does not keep a projected gradient off U).
The output head is left free (SmolLM2 ties it to the input embeddings, which are not a linear layer's input).
"""

from __future__ import annotations

import torch


def linear_layers(model) -> dict[str, torch.nn.Linear]:
    """Every trained nn.Linear of the decoder; the output head is not one of them."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return {name: mod for name, mod in model.named_modules()
            if isinstance(mod, torch.nn.Linear) and mod is not head and mod.weight.requires_grad}


def input_covariances(model, sequences: list[list[int]]) -> dict[str, torch.Tensor]:
    """sum over every token of every sequence of x x^T, x the input of each linear layer (float64)."""
    layers = linear_layers(model)
    cov: dict[str, torch.Tensor] = {}

    def recorder(name):
        def hook(_mod, args, _out):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).double()
            cov[name] = cov.get(name, 0) + x.T @ x
        return hook

    hooks = [mod.register_forward_hook(recorder(name)) for name, mod in layers.items()]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for ids in sequences:  # one at a time: no padding to mask out of the sums
                model(input_ids=torch.tensor([list(ids)], device=device), use_cache=False)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return cov


def top_subspace(cov: torch.Tensor, share: float) -> torch.Tensor:
    """The fewest leading eigenvectors of `cov` whose eigenvalues hold `share` of its trace (columns, float32)."""
    eigenvalues, vectors = torch.linalg.eigh(cov)  # ascending
    eigenvalues, vectors = eigenvalues.flip(0).clamp(min=0), vectors.flip(1)
    cumulative = torch.cumsum(eigenvalues, 0) / eigenvalues.sum().clamp(min=torch.finfo(torch.float64).tiny)
    k = min(int((cumulative < share).sum()) + 1, len(eigenvalues))
    return vectors[:, :k].float()


def off_subspace(delta: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """A weight change with its action on the basis's span removed: dW (I - B B^T), B orthonormal columns."""
    return delta - (delta @ basis) @ basis.T


class UpdateProjector:
    """Holds each linear layer's parent weight and general-input basis; `project()` after every optimizer step."""

    def __init__(self, model, sequences: list[list[int]], share: float):
        if not 0 < share < 1:
            raise ValueError(f"the projection share must lie in (0, 1), got {share}")
        if not sequences:
            raise ValueError("the update projection needs at least one anchor sequence")
        self.layers = linear_layers(model)
        self.bases = {name: top_subspace(c, share).to(self.layers[name].weight.device)
                      for name, c in input_covariances(model, sequences).items()}
        self.parent = {name: mod.weight.detach().clone() for name, mod in self.layers.items()}

    @torch.no_grad()
    def project(self) -> None:
        for name, mod in self.layers.items():
            basis, parent = self.bases[name], self.parent[name]
            delta = off_subspace(mod.weight.float() - parent.float(), basis)
            mod.weight.copy_((parent.float() + delta).to(mod.weight.dtype))
