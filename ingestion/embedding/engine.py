"""The local embedding engine: one model per process, length-sorted batches filled to a token budget.

Every input is tokenised once with the model's own special tokens, sorted by length and packed into
batches of at most ``batch_tokens`` padded tokens, so padding stays small. Position ids are counted
from each row's first real token, so left and right padding give the same vectors; pooling reads the
attention mask (mean, first real token, or last real token). On CUDA the model runs in bf16 (or fp16)
with SDPA attention and pinned, non-blocking input copies; on CPU in fp32 on all cores.
"""
from __future__ import annotations

import json
import os
import threading

import numpy as np

from ingestion.embedding.recipes import (
    DEFAULT_MODEL,
    Recipe,
    config_dict,
    gte_config_from_new,
    parse_name,
    recipe_for,
    resolve_model_path,
)

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def plan_batches(lengths: list[int], batch_tokens: int) -> list[list[int]]:
    """Indices grouped longest first, each group's padded size (longest × count) within the budget."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current and lengths[current[0]] * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def pool(states, mask, how: str):
    """Sentence vectors from token states (batch, seq, hidden) under a 0/1 mask, either padding side."""
    import torch

    if how == "mean":
        keep = mask.unsqueeze(-1).bool()
        summed = torch.where(keep, states, torch.zeros((), dtype=states.dtype, device=states.device)).sum(dim=1)
        return summed / mask.sum(dim=1, keepdim=True).clamp(min=1).to(states.dtype)
    positions = torch.arange(mask.shape[1], device=mask.device)
    if how == "cls":  # the first real token
        index = torch.where(mask.bool(), positions, mask.shape[1]).amin(dim=1)
    elif how == "last":  # the last real token
        index = torch.where(mask.bool(), positions, -1).amax(dim=1)
    else:
        raise ValueError(f"unknown pooling {how!r}")
    return states[torch.arange(states.shape[0], device=states.device), index]


def torch_dtype(dtype: str, device: str):
    """The torch dtype for "bf16"/"fp16"/"fp32"; empty: bf16 on CUDA, fp32 elsewhere."""
    import torch

    dtype = dtype or ("bf16" if device.startswith("cuda") else "fp32")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, not {dtype!r}")
    return getattr(torch, DTYPES[dtype])


def load_model(path: str, recipe: Recipe, *, dtype, device: str):
    """The bare encoder/decoder (no LM head) by its native transformers class, in ``dtype`` on ``device``."""
    from transformers import BertModel, GteModel, Qwen2Model, Qwen3Model

    config = config_dict(path)
    classes = {"bert": BertModel, "gte": GteModel, "new": GteModel, "qwen2": Qwen2Model, "qwen3": Qwen3Model}
    model_class = classes.get(config.get("model_type"))
    if model_class is None:
        raise ValueError(f"{path}: model_type {config.get('model_type')!r} has no native loader")
    extra = {"config": gte_config_from_new(config)} if config["model_type"] == "new" else {}
    model = model_class.from_pretrained(path, dtype=dtype, attn_implementation="sdpa", **extra)
    return prepare_model(model, recipe, device)


def prepare_model(model, recipe: Recipe, device: str):
    """Eval mode on ``device``; a decoder trained bidirectionally gets its attention un-masked."""
    model = model.to(device).eval()
    if recipe.bidirectional:
        for module in model.modules():
            if hasattr(module, "is_causal"):
                module.is_causal = False
    return model


class Embedder:
    """Normalised sentence vectors from a local model, by its family's recipe.

    ``name`` may carry an MRL size (``model@256``); ``instruction`` replaces the family's default task
    in query prompts; ``max_length`` replaces the family's token cap (32k for the Qwen families).
    """

    def __init__(
        self,
        name: str = "",
        device: str = "",
        *,
        dtype: str = "",
        max_length: int | None = None,
        instruction: str | None = None,
        threads: int = 0,
    ):
        import torch
        from transformers import AutoTokenizer

        self.name = name or DEFAULT_MODEL
        base, mrl_dims = parse_name(name)
        path = resolve_model_path(base)
        self.recipe = recipe_for(base)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cpu":
            torch.set_num_threads(threads or os.cpu_count() or 1)
        self.dtype = torch_dtype(dtype, self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if self.recipe.padding_side:
            self.tokenizer.padding_side = self.recipe.padding_side
        self.model = load_model(path, self.recipe, dtype=self.dtype, device=self.device)
        self.native_dims = int(self.model.config.hidden_size)
        self.dims = self.recipe.output_dims(self.native_dims, mrl_dims)
        self.max_length = self._max_length(path, max_length)
        self.instruction = instruction or self.recipe.instruction
        self.special_tokens = len(self.tokenizer("")["input_ids"])  # added to every input
        self.counters = {"tokens": 0, "padded_tokens": 0, "batches": 0}  # real vs padded tokens run
        # One tokenizer call or forward pass at a time per process: the fast tokenizer changes its
        # truncation state on every call and is not safe to share between threads.
        self._lock = threading.RLock()

    def _max_length(self, path: str, cap: int | None) -> int:
        """The smallest of the cap, the sentence-transformers limit, the positions and the tokenizer limit."""
        limits = [cap or self.recipe.max_length]
        if positions := config_dict(path).get("max_position_embeddings"):
            limits.append(int(positions))
        sentence_bert = os.path.join(path, "sentence_bert_config.json")
        if os.path.isfile(sentence_bert):
            with open(sentence_bert) as handle:
                limits.append(int(json.load(handle)["max_seq_length"]))
        if 0 < getattr(self.tokenizer, "model_max_length", 0) < 10**7:
            limits.append(int(self.tokenizer.model_max_length))
        return min(limits)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text, without special tokens or truncation."""
        if not texts:
            return []
        with self._lock:
            encoded = self.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def format_query(self, text: str, instruction: str | None = None) -> str:
        """The exact string a query is embedded as (the family's instruction prompt, if any)."""
        return self.recipe.format_query(text, instruction or self.instruction)

    def embed_documents(self, texts: list[str], batch_tokens: int = 16384) -> np.ndarray:
        return self._embed(texts, batch_tokens)

    def embed_queries(
        self, texts: list[str], batch_tokens: int = 16384, *, instruction: str | None = None
    ) -> np.ndarray:
        return self._embed([self.format_query(text, instruction) for text in texts], batch_tokens)

    def _embed(self, texts: list[str], batch_tokens: int) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        if not texts:
            return out
        lengths = [min(n + self.special_tokens, self.max_length) for n in self.count_tokens(texts)]
        with self._lock, torch.inference_mode():
            for batch in plan_batches(lengths, batch_tokens):
                vectors = self._forward([texts[i] for i in batch])
                out[batch] = vectors.cpu().numpy()
        return out

    def _forward(self, texts: list[str]):
        """Normalised vectors for one batch (a float32 tensor on the model's device)."""
        import torch

        encoded = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        mask = encoded["attention_mask"]
        inputs = {
            "input_ids": encoded["input_ids"],
            "attention_mask": mask,
            # Positions count from each row's first real token, whichever side the padding is on.
            "position_ids": (mask.cumsum(dim=1) - 1).clamp(min=0),
        }
        if self.device.startswith("cuda"):
            inputs = {key: value.pin_memory().to(self.device, non_blocking=True) for key, value in inputs.items()}
        self.counters["tokens"] += int(mask.sum())
        self.counters["padded_tokens"] += mask.numel()
        self.counters["batches"] += 1
        mask = inputs["attention_mask"]
        if self.recipe.bidirectional:
            # A ready 4-D mask (True = attend) keeps the decoder from building its causal one.
            inputs["attention_mask"] = {"full_attention": mask.bool()[:, None, None, :].expand(-1, 1, mask.shape[1], -1)}
        states = self.model(**inputs).last_hidden_state
        vectors = pool(states, mask, self.recipe.pooling)[:, : self.dims]
        return torch.nn.functional.normalize(vectors.float(), p=2, dim=1)
