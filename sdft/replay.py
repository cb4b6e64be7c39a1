"""Replay: the rows one training run sees, step by step, when earlier skills and general prompts share the batch.

Every step's batch of B rows holds round(B * prior_fraction) rows from the earlier skills' training
splits (taken from each earlier skill in turn, so they share it evenly), round(B * anchor_fraction)
general anchor prompts, and the rest from the new skill. With G rollouts per prompt (SDFT's
`sdft.num_generations`) a batch of B rows is B/G prompts, each sampled G times (TRL repeats each row G times
in order), and the shares count those prompts. `train.num_train_epochs` counts passes over
the new skill, so replay adds steps rather than taking them from the new skill. The order is fixed
here (seeded), and the recipes keep it (no second shuffle), so the share holds in every batch.

Each row is a record plus `source` ("new", "prior", "anchor"), `skill` and `kind`: the SDFT recipe
gives a replayed row its own skill's teacher template, and an anchor row the frozen parent as teacher
with no demonstration (on its own sampled rollout, or on the parent's greedy answer: `replay.anchor_rollouts`);
the SFT recipe trains on replayed demonstrations and on the parent's own answers to the anchors.
"""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path
from typing import Callable, Iterator

from .data import load_split, prompt_key, read_records, validate_records
from .errors import SdftError
from .outputs import processes
from .params import Params


def is_active(params: Params) -> bool:
    return params.replay.prior_fraction > 0 or params.replay.anchor_fraction > 0


def reframes(params: Params, kind: str) -> list[str]:
    """The framings the new skill's prompts go through, pass by pass (`train.prompt_framings`)."""
    return params.train.prompt_framings if kind in params.train.reframe_kinds else ["{prompt}"]


def _cycle(rows: list[dict], rng: random.Random, framings: tuple[str, ...] = ("{prompt}",)) -> Iterator[dict]:
    """Endless passes over `rows`, each pass in a new seeded order; pass k words every prompt in framing k mod n."""
    for k in itertools.count():
        order = rows[:]
        rng.shuffle(order)
        framing = framings[k % len(framings)]
        yield from (order if framing == "{prompt}" else
                    ({**r, "prompt": framing.replace("{prompt}", r["prompt"])} for r in order))


def load_anchors(params: Params) -> list[dict]:
    """The bundled general prompts; refused if one of them is a question the gate scores (probe or eval split)."""
    path = Path(params.replay.anchor_prompts)
    raw = read_records(path, params.data.max_file_mb)
    for i, row in enumerate(raw):  # anchors need no demonstration: the parent model answers them
        if isinstance(row, dict):
            row.setdefault("demonstration", "-")
        else:
            raise SdftError(f"record {i + 1} is not an object.", where=str(path), fix="one {\"prompt\": ...} per line.")
    anchors = validate_records(raw, where=str(path))
    # Any prompt of any skill or probe counts as scored: a skill's eval split is drawn at its ingest, which for
    # a later skill has not happened yet, so the whole file is the only safe set.
    scored = set()
    for name in [*params.skills, *params.probes]:
        spec = params.skill(name)
        column = spec.columns.get("prompt", "prompt")
        scored |= {prompt_key(r[column]) for r in read_records(spec.path, params.data.max_file_mb)
                   if isinstance(r, dict) and r.get(column)}
    leaked = [a["id"] for a in anchors if prompt_key(a["prompt"]) in scored]
    if leaked:
        raise SdftError(f"anchor prompts {leaked[:5]} are also prompts of a skill or probe: training on them "
                        "would hide forgetting from the gate (or teach a skill's eval question).",
                        where=str(path), fix="remove them from the anchor file.")
    return [{"id": a["id"], "prompt": a["prompt"], "demonstration": ""} for a in anchors]


def prior_pools(params: Params, skill: str) -> dict[str, list[dict]]:
    """The training split of every skill learned before `skill` (eval splits never enter training)."""
    return {name: load_split(params.layout.data_dir(name), "train") for name in params.skills_through(skill)[:-1]}


def mixture(params: Params, skill: str, new: list[dict], prior: dict[str, list[dict]], anchors: list[dict]) -> list[dict]:
    """The whole run's rows in training order: `steps` batches of B rows with the stated shares. B is the global
    batch of one optimizer step: under `accelerate launch` each of the N processes takes B/N of it."""
    rp, tp = params.replay, params.train
    rows_per_step = tp.per_device_train_batch_size * tp.gradient_accumulation_steps * processes()[1]
    batch = rows_per_step // (params.sdft.num_generations if tp.method == "sdft" else 1)  # distinct prompts a step
    n_prior = round(batch * rp.prior_fraction) if prior else 0
    n_anchor = round(batch * rp.anchor_fraction) if anchors else 0
    n_new = batch - n_prior - n_anchor
    if n_new < 1:
        raise SdftError(f"a batch of {batch} leaves no room for the new skill after replay "
                        f"({n_prior} prior + {n_anchor} anchor rows).", where="params.yaml: replay",
                        fix="lower `replay.prior_fraction`/`replay.anchor_fraction` or raise the batch size.")
    steps = math.ceil(len(new) * tp.num_train_epochs / n_new)
    if tp.max_steps > 0:
        steps = tp.max_steps
    rng = random.Random(tp.seed)
    kinds = {name: params.skill(name).kind for name in [skill, *prior]}
    new_rows = _cycle([{**r, "source": "new", "skill": skill, "kind": kinds[skill]} for r in new], rng,
                      tuple(reframes(params, kinds[skill])))
    prior_rows = {name: _cycle([{**r, "source": "prior", "skill": name, "kind": kinds[name]} for r in rows], rng)
                  for name, rows in prior.items() if rows}
    anchor_rows = _cycle([{**r, "source": "anchor", "skill": "anchor", "kind": "general"} for r in anchors], rng)
    names = list(prior_rows)
    rows, turn = [], 0
    for _ in range(steps):
        step = [next(new_rows) for _ in range(n_new)]
        for _ in range(n_prior):  # earlier skills in turn: each gets an even share over the run
            step.append(next(prior_rows[names[turn % len(names)]]))
            turn += 1
        step += [next(anchor_rows) for _ in range(n_anchor)]
        rows += step
    return rows


def training_rows(params: Params, skill: str, new: list[dict]) -> tuple[list[dict], bool]:
    """(rows, mixed): the new skill's records alone (the recipes shuffle them), or the fixed mixture (replay, or
    prompts reworded pass by pass)."""
    kind = params.skill(skill).kind
    if not is_active(params) and len(reframes(params, kind)) == 1:
        return [{**r, "source": "new", "skill": skill, "kind": kind} for r in new], False
    prior = prior_pools(params, skill) if params.replay.prior_fraction > 0 else {}
    anchors = load_anchors(params) if params.replay.anchor_fraction > 0 else []
    return mixture(params, skill, new, prior, anchors), True


def anchor_answers(rows: list[dict], answer: Callable[[list], list]) -> list:
    """Per row, the parent's own answer to an anchor prompt (None for the other rows): `answer(prompts)` is the
    parent's greedy generation, run once per distinct prompt before any update. SFT trains on them as
    demonstrations (text), so SFT with replay is anchored to the same behaviour as SDFT's frozen-parent teacher;
    SDFT with `replay.anchor_rollouts: parent_greedy` distils along them (token ids) instead of a sampled rollout."""
    prompts = {r["id"]: r["prompt"] for r in rows if r["source"] == "anchor"}
    answers = dict(zip(prompts, answer(list(prompts.values())), strict=True))
    return [answers[r["id"]] if r["source"] == "anchor" else None for r in rows]
