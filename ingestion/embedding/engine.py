"""The local embedding engine: one model per process, length-sorted batches filled to a token budget.

Every input is tokenised once with the model's own special tokens and sorted by length. Two ways to
run a batch:

* **packed** (default on CUDA in bf16/fp16): the texts of a batch are laid end to end in one row of
  at most ``batch_tokens`` real tokens, with no padding at all. Positions restart at each text and
  attention stays inside each text (flash-attention's variable-length kernel,
  ``torch.nn.attention.varlen``, registered as the transformers attention ``chatsite_packed``;
  causal for last-token decoders, full for encoders and bidirectional decoders). Pooling reads the
  text boundaries. On CPU the same attention runs as SDPA with a block-diagonal mask, which the tests
  use to check the packing against the padded path.
* **padded** (CPU, fp32, or when the kernel is missing): batches of at most ``batch_tokens`` padded
  tokens, longest first, so padding stays small. Position ids are counted from each row's first real
  token, so left and right padding give the same vectors; pooling reads the attention mask (mean,
  first real token, or last real token); SDPA attention.

On CUDA inputs are copied from pinned memory without blocking; on CPU the model uses all cores.
"""

from __future__ import annotations

import functools
import json
import os
import threading

import numpy as np

from ingestion.embedding.cores import CoreShare
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
PACKED_ATTENTION = "chatsite_packed"
CPU_BATCH_TOKENS, CUDA_BATCH_TOKENS = 4096, 65536


# A CPU in bf16/fp16 pads a batch's rows to a multiple of this many tokens. oneDNN builds (and keeps, up
# to its cache's capacity) state for each new shape of a half-precision matrix product: with the exact
# lengths of every question and answer sentence, a web process's memory grew without end (1.3 → 2.3 GB
# in 90 s of random lengths from 8 threads, MiniLM, one thread). Rounded, the shapes are few, the cache
# hits and memory stays flat (~1.05 GB), at the same speed (74 → 75–79 texts a second; indexing 600
# texts alike). float32 keeps exact lengths: its products keep no per-shape state (flat either way).
CPU_HALF_LENGTH_STEP = 32

COALESCE_TEXTS = 64  # a call of at most this many texts may share a forward pass with other waiting calls
# In such a shared pass, a text is not padded by more than this many tokens (it runs in a batch of its own
# length instead): one long sentence of an answer padded three questions beside it to its length, which
# tripled the pass's cost on a CPU (measured: 1 sentence of 256 tokens + 3 questions, 364 → 133 ms).
COALESCED_MAX_WASTE = 32


class _Waiting:
    """One call's texts waiting for the model, and, once a pass ran them, their vectors or its error;
    ``turn`` is set when they are served or when this call is to run the next pass."""

    __slots__ = ("texts", "vectors", "error", "served", "turn")

    def __init__(self, texts: list[str]):
        self.texts = texts
        self.vectors: np.ndarray | None = None
        self.error: BaseException | None = None
        self.served = False
        self.turn = threading.Event()

    def serve(self, vectors: np.ndarray | None, error: BaseException | None) -> None:
        self.vectors, self.error, self.served = vectors, error, True
        self.turn.set()


def plan_batches(
    lengths: list[int],
    batch_tokens: int,
    *,
    packed: bool = False,
    max_padding: float = 0.2,
    min_rows: int = 4,
    max_waste: int | None = None,
) -> list[list[int]]:
    """Indices grouped longest first, each group's size within the budget.

    Packed, a group costs the sum of its lengths. Padded, it costs longest × count, and a group of
    ``min_rows`` or more also closes before a text that would be padded by more than ``max_padding``
    of the group's longest (a document's short chunks then do not run at its longest chunk's length);
    with ``max_waste``, so does a smaller group before a text that would be padded by more than that
    many tokens as well (a question that shares a pass with an answer's long sentence runs at its own
    length, not at the sentence's).
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    size = 0
    for index in order:
        if packed:
            grown = size + lengths[index]
            too_short = False
        else:
            longest = lengths[(current or [index])[0]]
            grown = longest * (len(current) + 1)
            padded = lengths[index] < (1 - max_padding) * longest
            wasteful = max_waste is not None and longest - lengths[index] > max_waste
            too_short = padded and (len(current) >= min_rows or wasteful)
        if current and (grown > batch_tokens or too_short):
            batches.append(current)
            current, grown = [], lengths[index]
        current.append(index)
        size = grown
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


def text_of_token(lengths):
    """For a packed row of texts of these lengths (a tensor), the index of the text each token is in."""
    import torch

    return torch.repeat_interleave(torch.arange(len(lengths), device=lengths.device), lengths)


def pool_packed(states, starts, lengths, how: str):
    """Sentence vectors from one packed row of token states (total, hidden); text i is
    ``states[starts[i] : starts[i] + lengths[i]]``."""
    import torch

    if how == "mean":
        segments = text_of_token(lengths)
        sums = torch.zeros(len(lengths), states.shape[-1], dtype=torch.float32, device=states.device)
        return sums.index_add_(0, segments, states.float()) / lengths[:, None].float()
    if how == "cls":
        return states[starts]
    if how == "last":
        return states[starts + lengths - 1]
    raise ValueError(f"unknown pooling {how!r}")


@functools.cache
def varlen_kernel():
    """``torch.nn.attention.varlen.varlen_attn`` where this torch has it, else None."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


@functools.cache
def _parameters(function) -> frozenset[str]:
    """The argument names of ``function`` (read once: attention runs once per layer and batch)."""
    import inspect

    return frozenset(inspect.signature(function).parameters)


def packed_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Attention inside each text of a packed row (the transformers attention ``chatsite_packed``).

    ``query``/``key``/``value`` are (1, heads, total, head_dim); the text boundaries come in as
    ``cu_seq_lens_q`` (int32, texts + 1) and ``max_length_q``. Returns (1, total, heads, head_dim).
    """
    import torch

    boundaries, longest = kwargs["cu_seq_lens_q"], int(kwargs["max_length_q"])
    causal = bool(getattr(module, "is_causal", False))
    q, k, v = (tensor[0].transpose(0, 1) for tensor in (query, key, value))  # (total, heads, head_dim)
    kernel = varlen_kernel() if q.is_cuda else None
    if kernel is not None:
        out = _varlen(kernel, q, k, v, boundaries, longest, scaling, causal)
    else:  # the same attention as one SDPA call under a block-diagonal mask (small inputs: tests, CPU)
        segments = text_of_token(boundaries[1:] - boundaries[:-1])
        mask = segments[:, None] == segments[None, :]
        if causal:
            mask = mask.tril()
        out = torch.nn.functional.scaled_dot_product_attention(
            q.transpose(0, 1),
            k.transpose(0, 1),
            v.transpose(0, 1),
            attn_mask=mask,
            scale=scaling,
            enable_gqa=q.shape[1] != k.shape[1],
        ).transpose(0, 1)
    return out.unsqueeze(0), None


def _varlen(kernel, q, k, v, boundaries, longest: int, scaling, causal: bool):
    """flash-attention's variable-length kernel, across the argument names torch versions use."""
    params = _parameters(kernel)
    options = {"scale": scaling} if "scale" in params else {}
    if "window_size" in params:
        options["window_size"] = (-1, 0) if causal else (-1, -1)
    elif "is_causal" in params:
        options["is_causal"] = causal
    elif causal:
        raise RuntimeError("this torch's varlen_attn cannot do causal attention")
    if q.shape[1] != k.shape[1]:  # grouped-query attention
        if "enable_gqa" in params:
            options["enable_gqa"] = True
        else:
            repeat = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
    return kernel(q, k, v, boundaries, boundaries, longest, longest, **options)


def register_packed_attention() -> None:
    """Make ``attn_implementation="chatsite_packed"`` known to transformers (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(PACKED_ATTENTION, packed_attention)


def packing_supported(device: str, dtype) -> bool:
    """Whether the packed path's fast kernel runs here: CUDA, half precision, a torch with varlen."""
    import torch

    return device.startswith("cuda") and dtype in (torch.bfloat16, torch.float16) and varlen_kernel() is not None


def cpu_threads() -> int:
    """Threads for a CPU model when none are configured: the process's share of the cores. A prefork
    Celery worker says how many processes share them (``CHATSITE_POOL_PROCESSES``, see
    ``chatsite.celery``), the web server how many uvicorn processes it runs (``WEB_PROCESSES``): two web
    processes on two cores each embed questions on one thread, not two threads each fighting for both
    cores (measured: a question took 9 ms on one thread, 51 ms on two beside other busy processes)."""
    processes = os.environ.get("CHATSITE_POOL_PROCESSES") or os.environ.get("WEB_PROCESSES") or 1
    return max(1, (os.cpu_count() or 1) // max(1, int(processes)))


def cpu_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX): there bf16 embeds 2-3 times
    faster than fp32 with the same vectors to a cosine of 0.9999; elsewhere bf16 is emulated and slower."""
    import torch

    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    try:
        return any(probe() for probe in probes if probe is not None)
    except Exception:  # a private probe that changed: fp32 is always right
        return False


def torch_dtype(dtype: str, device: str):
    """The torch dtype for "bf16"/"fp16"/"fp32"; empty: bf16 on CUDA and on a CPU that runs it natively
    (:func:`cpu_bf16`), fp32 elsewhere."""
    import torch

    dtype = dtype or ("bf16" if device.startswith("cuda") or (device == "cpu" and cpu_bf16()) else "fp32")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, not {dtype!r}")
    return getattr(torch, DTYPES[dtype])


@functools.cache
def _packed_linear_class():
    """The module class (made on first use, so importing this file does not import torch)."""
    import torch

    class PackedLinear(torch.nn.Module):
        """A ``Linear`` whose weight oneDNN reordered once, at load, into its own blocked layout."""

        def __init__(self, linear):
            super().__init__()
            self.in_features, self.out_features = linear.in_features, linear.out_features
            self.packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), None)
            self.bias = None if linear.bias is None else linear.bias.detach()

        def forward(self, x):
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    return PackedLinear


@functools.cache
def cpu_packs_linears(dtype) -> bool:
    """Whether this torch's oneDNN runs a prepacked half-precision linear layer here, with the result of
    the plain one (a probe on a small layer; any failure, or a private op that changed, says no)."""
    import torch

    try:
        if dtype not in (torch.bfloat16, torch.float16) or not torch.backends.mkldnn.is_available():
            return False
        linear = torch.nn.Linear(16, 24).to(dtype)
        x = torch.randn(3, 5, 16).to(dtype)
        with torch.inference_mode():
            return bool(torch.equal(_packed_linear_class()(linear)(x), linear(x)))
    except Exception:
        return False


def pack_linears(model, dtype) -> int:
    """Replace the model's linear layers by prepacked ones on a CPU in half precision; how many were.

    An eager ``Linear`` in bf16 has oneDNN reorder its weight into the blocked layout its kernel reads
    on every call; for the few rows of a question or an answer's sentences that reorder costs more
    than the product itself. Reordered once at load, the same kernel gives the same numbers: measured
    with MiniLM on one thread of an AMX CPU, a 1-row linear layer of 32 tokens 135 -> 75 us, a question
    8.8-13 -> 5.2-9.1 ms, an answer of 200 tokens 21-32 -> 15-18 ms, a 32-text batch of 128 tokens
    3% faster; identical vectors. fp32 gains nothing (MKL's kernel packs its own way), so it is left.
    """
    if not cpu_packs_linears(dtype):
        return 0
    import torch

    packed_linear = _packed_linear_class()
    count = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is torch.nn.Linear and child.weight.dtype == dtype:
                setattr(module, name, packed_linear(child))
                count += 1
    return count


def load_model(path: str, recipe: Recipe, *, dtype, device: str, attention: str = "sdpa"):
    """The bare encoder/decoder (no LM head) by its native transformers class, in ``dtype`` on ``device``.

    ``attention`` is "sdpa" for padded batches or ``PACKED_ATTENTION`` for packed rows.
    """
    from transformers import BertModel, GteModel, Qwen2Model, Qwen3Model

    config = config_dict(path)
    classes = {"bert": BertModel, "gte": GteModel, "new": GteModel, "qwen2": Qwen2Model, "qwen3": Qwen3Model}
    model_class = classes.get(config.get("model_type"))
    if model_class is None:
        raise ValueError(f"{path}: model_type {config.get('model_type')!r} has no native loader")
    extra = {"config": gte_config_from_new(config)} if config["model_type"] == "new" else {}
    if attention == PACKED_ATTENTION:
        register_packed_attention()
    model = model_class.from_pretrained(path, dtype=dtype, attn_implementation=attention, **extra)
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
    in query prompts; ``max_length`` replaces the family's token cap (32k for the Qwen families);
    ``threads`` caps a CPU model's threads (0: the process's share of the cores) and ``adapt_threads``
    lets it run fewer while other processes keep cores busy (cores.py); ``packed`` chooses packed
    rows (True) or padded batches (False); None packs where the fast kernel runs (CUDA in
    bf16/fp16); ``compile`` runs the model through ``torch.compile``.
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
        adapt_threads: bool = True,
        packed: bool | None = None,
        compile: bool = False,
    ):
        import torch
        from transformers import AutoTokenizer

        self.name = name or DEFAULT_MODEL
        base, mrl_dims = parse_name(name)
        path = resolve_model_path(base)
        self.recipe = recipe_for(base)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # On a CPU, the thread count follows the cores other processes leave free (see cores.py).
        self._cores = None
        if self.device == "cpu":
            most = threads or cpu_threads()
            torch.set_num_threads(most)
            if adapt_threads:
                self._cores = CoreShare(most)
        self.dtype = torch_dtype(dtype, self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if self.recipe.padding_side:
            self.tokenizer.padding_side = self.recipe.padding_side
        self.packed = packing_supported(self.device, self.dtype) if packed is None else packed
        half = self.dtype in (torch.bfloat16, torch.float16)
        self.length_step = CPU_HALF_LENGTH_STEP if self.device == "cpu" and half else 1  # padded batches
        attention = PACKED_ATTENTION if self.packed else "sdpa"
        self.model = load_model(path, self.recipe, dtype=self.dtype, device=self.device, attention=attention)
        self.packed_linears = 0  # linear layers prepacked for a CPU in half precision (pack_linears)
        if compile:  # fused elementwise kernels; shapes vary from batch to batch
            self.model = torch.compile(self.model, dynamic=True)
        elif self.device == "cpu":
            self.packed_linears = pack_linears(self.model, self.dtype)
        # BERT-style encoders take segment ids; a packed row is longer than their stored default.
        self.segment_ids = bool(getattr(self.model.config, "type_vocab_size", 0))
        self.native_dims = int(self.model.config.hidden_size)
        self.dims = self.recipe.output_dims(self.native_dims, mrl_dims)
        self.max_length = self._max_length(path, max_length)
        self.instruction = instruction or self.recipe.instruction
        self.special_tokens = len(self.tokenizer("")["input_ids"])  # added to every input
        self.counters = {"tokens": 0, "padded_tokens": 0, "batches": 0}  # real vs padded tokens run
        self.slice_texts = 2048  # texts tokenised at a time (the next slice overlaps the GPU's work)
        # Token budget of a batch when the caller gives none. Measured: on a GPU big batches fill it
        # (65,536 beat 16,384 by 9% on an H200); on a CPU smaller ones stay in cache (4,096 beat
        # 16,384 by 20% with MiniLM on 2 cores).
        self.batch_tokens = CUDA_BATCH_TOKENS if self.device.startswith("cuda") else CPU_BATCH_TOKENS
        # One tokenizer call or forward pass at a time per process: the fast tokenizer changes its
        # truncation state on every call and is not safe to share between threads.
        self._lock = threading.RLock()
        # Small calls waiting for the model: whoever holds it next runs them all in one pass (_embed).
        self._waiting: list[_Waiting] = []
        self._waiting_lock = threading.Lock()
        self._leading = False  # a call is running (or about to run) the waiting calls

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
            backend = getattr(self.tokenizer, "backend_tokenizer", None)
            if backend is None:  # a slow (Python) tokenizer
                encoded = self.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
                return [len(ids) for ids in encoded]
            # The Rust tokenizer itself, without offsets: 2-3x faster than the wrapper's BatchEncoding
            # (the chunker counts every paragraph and heading of every document). The wrapper sets its
            # own truncation and padding again on its next call.
            backend.no_truncation()
            backend.no_padding()
            encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
            return [len(encoding) for encoding in encode(texts, add_special_tokens=False)]

    def format_query(self, text: str, instruction: str | None = None) -> str:
        """The exact string a query is embedded as (the family's instruction prompt, if any)."""
        return self.recipe.format_query(text, instruction or self.instruction)

    def embed_documents(self, texts: list[str], batch_tokens: int | None = None) -> np.ndarray:
        return self._embed(texts, batch_tokens or self.batch_tokens)

    def embed_queries(
        self, texts: list[str], batch_tokens: int | None = None, *, instruction: str | None = None
    ) -> np.ndarray:
        return self._embed([self.format_query(text, instruction) for text in texts], batch_tokens or self.batch_tokens)

    def _embed(self, texts: list[str], batch_tokens: int) -> np.ndarray:
        """The texts' vectors. Small calls (a question, an answer's sentences) that arrive while the model
        is busy wait together, and one of them then runs all of them in one pass: under a burst of
        questions each forward pass serves many, instead of each call waiting its own turn behind the
        others (a short batch costs little more than one text on a CPU)."""
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        if len(texts) > COALESCE_TEXTS or batch_tokens != self.batch_tokens:
            with self._lock:
                return self._embed_now(texts, batch_tokens)
        waiting = _Waiting(texts)
        with self._waiting_lock:
            self._waiting.append(waiting)
            leads = not self._leading  # the first of a burst runs it; the others wait to be served
            self._leading = True
        if not leads:
            waiting.turn.wait()
        if not waiting.served:  # leading: this call and every other one waiting
            self._serve_waiting()
        if waiting.error is not None:
            raise RuntimeError("embedding failed") from waiting.error
        return waiting.vectors

    def _serve_waiting(self) -> None:
        """One pass over every waiting call; then the first call that arrived meanwhile leads the next."""
        with self._lock:
            with self._waiting_lock:
                served, self._waiting = self._waiting, []
            try:
                vectors = self._embed_now(
                    [text for call in served for text in call.texts], self.batch_tokens, max_waste=COALESCED_MAX_WASTE
                )
            except BaseException as error:
                for call in served:
                    call.serve(None, error)
            else:
                start = 0
                for call in served:
                    call.serve(vectors[start : start + len(call.texts)], None)
                    start += len(call.texts)
        with self._waiting_lock:
            if self._waiting:
                self._waiting[0].turn.set()  # not served: it leads the next pass
            else:
                self._leading = False

    def _embed_now(self, texts: list[str], batch_tokens: int, max_waste: int | None = None) -> np.ndarray:
        """The texts in slices of ``slice_texts``: each slice tokenised once, sorted by length and run in
        planned batches. The batches' vectors stay on the device until the last one is queued, so on a
        GPU the next slice is tokenised while the model still runs the previous one. The caller holds
        the model's lock."""
        import torch

        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        forward = self._forward_packed if self.packed else self._forward
        order: list[int] = []
        vectors = []
        with torch.inference_mode():
            for first in range(0, len(texts), self.slice_texts):
                part = texts[first : first + self.slice_texts]
                ids = self.tokenizer(part, truncation=True, max_length=self.max_length, verbose=False)["input_ids"]
                for batch in plan_batches(
                    [len(row) for row in ids], batch_tokens, packed=self.packed, max_waste=max_waste
                ):
                    if self._cores is not None and (threads := self._cores.threads()) != torch.get_num_threads():
                        torch.set_num_threads(threads)
                    vectors.append(forward([ids[i] for i in batch]))
                    order.extend(first + i for i in batch)
            out[order] = torch.cat(vectors).cpu().numpy()
        return out

    def _to_device(self, inputs: dict) -> dict:
        if self.device.startswith("cuda"):
            return {key: value.pin_memory().to(self.device, non_blocking=True) for key, value in inputs.items()}
        return inputs

    def _count(self, real: int, padded: int) -> None:
        self.counters["tokens"] += real
        self.counters["padded_tokens"] += padded
        self.counters["batches"] += 1

    def _forward_packed(self, rows: list[list[int]]):
        """Normalised vectors for one packed row: the token ids end to end, no padding."""
        import torch

        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        total = int(lengths.sum())
        inputs = {
            "input_ids": torch.from_numpy(np.fromiter((t for row in rows for t in row), dtype=np.int64, count=total)),
            "position_ids": torch.from_numpy(np.arange(total) - np.repeat(starts, lengths)),
            "boundaries": torch.from_numpy(np.append(starts, total).astype(np.int32)),
            "starts": torch.from_numpy(starts),
            "lengths": torch.from_numpy(lengths),
        }
        inputs = self._to_device(inputs)
        self._count(total, total)
        extra = {"token_type_ids": torch.zeros_like(inputs["input_ids"])[None]} if self.segment_ids else {}
        states = self.model(
            input_ids=inputs["input_ids"][None],
            position_ids=inputs["position_ids"][None],
            cu_seq_lens_q=inputs["boundaries"],
            cu_seq_lens_k=inputs["boundaries"],
            max_length_q=int(lengths.max()),
            max_length_k=int(lengths.max()),
            **extra,
        ).last_hidden_state[0]
        vectors = pool_packed(states, inputs["starts"], inputs["lengths"], self.recipe.pooling)[:, : self.dims]
        return torch.nn.functional.normalize(vectors.float(), p=2, dim=1)

    def _forward(self, rows: list[list[int]]):
        """Normalised vectors for one padded batch of token ids (a float32 tensor on the model's device)."""
        import torch

        longest = -(-max(map(len, rows)) // self.length_step) * self.length_step  # see CPU_HALF_LENGTH_STEP
        input_ids = np.full((len(rows), longest), self.tokenizer.pad_token_id or 0, dtype=np.int64)
        mask = np.zeros((len(rows), longest), dtype=np.int64)
        left = self.tokenizer.padding_side == "left"
        for row, ids in enumerate(rows):
            span = slice(longest - len(ids), longest) if left else slice(0, len(ids))
            input_ids[row, span] = ids
            mask[row, span] = 1
        inputs = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(mask),
            # Positions count from each row's first real token, whichever side the padding is on.
            "position_ids": torch.from_numpy((mask.cumsum(axis=1) - 1).clip(min=0)),
        }
        inputs = self._to_device(inputs)
        self._count(int(mask.sum()), mask.size)
        mask = inputs["attention_mask"]
        if self.recipe.bidirectional:
            # A ready 4-D mask (True = attend) keeps the decoder from building its causal one.
            inputs["attention_mask"] = {
                "full_attention": mask.bool()[:, None, None, :].expand(-1, 1, mask.shape[1], -1)
            }
        states = self.model(**inputs).last_hidden_state
        vectors = pool(states.float(), mask, self.recipe.pooling)[:, : self.dims]  # a bf16 mean summed in fp32
        return torch.nn.functional.normalize(vectors.float(), p=2, dim=1)
