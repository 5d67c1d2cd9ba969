"""
export.py — write a nanopangu checkpoint as a Hugging Face LLaMA model directory.

    python export.py out/ckpt.pt hf/tiny   # then LlamaForCausalLM / AutoTokenizer.from_pretrained

Our Transformer (model.py) IS the LLaMA architecture — pre-norm RMSNorm, rotary embeddings,
SwiGLU, grouped-query attention, no biases — so exporting renames tensors (HF_NAMES), writes a
config, and recomputes nothing:
  - RoPE: model.apply_rope pairs channel i with channel i + D/2 (the two halves of a head), which
    is transformers' "rotate_half" layout, with the same frequencies base^(-2i/D). (Weights from
    Meta's original LLaMA need their q/k rows permuted: Meta pairs channels 2i, 2i+1; ours do not.)
  - RMSNorm: both compute x * rsqrt(mean(x²) + eps) * weight in fp32; the second norm of a block
    is applied to x + attention, which is LLaMA's post_attention_layernorm.
  - vocab_size is the head's rows, padded to a multiple of 64 (model.padded_vocab); the padding
    rows go out as they are (never produced; eval.py masks them, transformers does not).
Files: config.json, model.safetensors (--dtype), tokenizer.json + tokenizer_config.json (the fast
tokenizer: hf_tokenizer), tokenizer.tiktoken, README.md. tests/test_export.py checks the logits.
"""
import argparse
import json
import os
import sys

import torch

# Our parameter names -> transformers' LlamaForCausalLM names (modeling_llama.py). {i} is the layer.
HF_NAMES = {
    "tok_emb.weight": "model.embed_tokens.weight",
    "layers.{i}.attn_norm.weight": "model.layers.{i}.input_layernorm.weight",
    "layers.{i}.attn.q_proj.weight": "model.layers.{i}.self_attn.q_proj.weight",    # (H·D, C)
    "layers.{i}.attn.k_proj.weight": "model.layers.{i}.self_attn.k_proj.weight",    # (Hkv·D, C)
    "layers.{i}.attn.v_proj.weight": "model.layers.{i}.self_attn.v_proj.weight",    # (Hkv·D, C)
    "layers.{i}.attn.o_proj.weight": "model.layers.{i}.self_attn.o_proj.weight",    # (C, H·D)
    "layers.{i}.ffn_norm.weight": "model.layers.{i}.post_attention_layernorm.weight",
    "layers.{i}.ffn.gate_proj.weight": "model.layers.{i}.mlp.gate_proj.weight",     # (F, C)
    "layers.{i}.ffn.up_proj.weight": "model.layers.{i}.mlp.up_proj.weight",         # (F, C)
    "layers.{i}.ffn.down_proj.weight": "model.layers.{i}.mlp.down_proj.weight",     # (C, F)
    "norm.weight": "model.norm.weight", "lm_head.weight": "lm_head.weight",        # head: (V, C)
}


def hf_state_dict(model, dtype):
    """The weights under transformers' names. Tied embeddings: lm_head is left out (safetensors
    stores no shared tensors; tie_word_embeddings makes transformers tie it on load)."""
    names = {ours.format(i=i): hf.format(i=i)         # every layer's names, i = 0 .. n_layer - 1
             for i in range(model.config.n_layer) for ours, hf in HF_NAMES.items()}
    sd, tied = model.state_dict(), model.config.tie_embeddings
    if set(sd) != set(names):                          # model.py changed: update HF_NAMES
        raise ValueError(f"unexpected parameters {sorted(set(sd) ^ set(names))[:4]}: HF_NAMES")
    return {names[k]: v.to(dtype).contiguous() for k, v in sd.items()
            if not (tied and k == "lm_head.weight")}


def hf_config(c, enc, dtype):
    eot = enc.eot_token                                # <|endoftext|>: begins and ends a document
    return dict(architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=c.vocab_size,
                hidden_size=c.n_embd, intermediate_size=c.ffn_hidden, num_hidden_layers=c.n_layer,
                num_attention_heads=c.n_head, num_key_value_heads=c.kv_heads, head_dim=c.head_dim,
                hidden_act="silu", max_position_embeddings=c.block_size, rope_theta=c.rope_base,
                rms_norm_eps=c.norm_eps, tie_word_embeddings=c.tie_embeddings, attention_bias=False,
                mlp_bias=False, bos_token_id=eot, eos_token_id=eot,
                torch_dtype=str(dtype).split(".")[1])     # torch.bfloat16 -> "bfloat16"


def hf_tokenizer(enc):
    """tokenizer.json for the `tokenizers` library, encoding exactly as tiktoken does:
    - the same pre-tokenizer regex (Split), then bytes -> byte-level characters. One rewrite:
      tiktoken reads cl100k's "\\p{N}{1,3}+" as a possessive {1,3} (pieces of up to 3 digits),
      the Oniguruma engine of `tokenizers` as ({1,3})+ (any run of digits); greedy "{1,3}" is
      the same as possessive there, as nothing follows it;
    - ignore_merges: a piece that is a token becomes that token (tiktoken's whole-piece lookup;
      it makes the merge-unreachable tokens a pruned vocabulary has, tokenizer_compress.py);
    - else BPE, one merge per reachable token in rank order: the pair tiktoken's bpe_merge joins
      LAST when it builds the token from its bytes, the only pair ever used (a pruned vocabulary
      cannot keep the base's merges: their parents may be gone)."""
    from tokenizer_compress import bpe_merge
    # GPT-2's byte-level alphabet: printable Latin-1 bytes as themselves, the other 68 from U+0100
    keep = [*range(33, 127), *range(161, 173), *range(174, 256)]
    chars = {**{b: chr(b) for b in keep}, **{b: chr(256 + j) for j, b in
                                            enumerate(b for b in range(256) if b not in keep)}}
    text = lambda b: "".join(chars[x] for x in b)       # noqa: E731
    ranks, merges = dict(enc._mergeable_ranks), []     # a copy: each token is hidden in turn
    for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tok) > 1:                                # BPE on its bytes with the token itself
            del ranks[tok]                              # hidden stops one merge short
            parts = bpe_merge(tok, ranks)
            ranks[tok] = rank
            if len(parts) == 2:                         # else merge-unreachable: whole pieces only
                merges.append(f"{text(parts[0])} {text(parts[1])}")
    specials = [dict(id=i, content=s, single_word=False, lstrip=False, rstrip=False,
                     normalized=False, special=True)
                for s, i in sorted(enc._special_tokens.items(), key=lambda kv: kv[1])]
    byte_level = dict(type="ByteLevel", add_prefix_space=False, trim_offsets=True, use_regex=False)
    split = dict(type="Split", pattern={"Regex": enc._pat_str.replace("{1,3}+", "{1,3}")},
                 behavior="Isolated", invert=False)
    # the special tokens in the vocab too: else `tokenizers` renumbers them to close id gaps
    # (cl100k has <|endoftext|> = 100257 after 100,256 ranks); no regex piece can equal them
    bpe = dict(type="BPE", merges=merges, dropout=None, unk_token=None, continuing_subword_prefix=None,
               end_of_word_suffix=None, fuse_unk=False, byte_fallback=False, ignore_merges=True,
               vocab={**{text(t): r for t, r in ranks.items()}, **enc._special_tokens})
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": specials,
            "normalizer": None, "post_processor": None, "decoder": byte_level, "model": bpe,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [split, byte_level]}}


README = """# {name} (nanopangu export)
A LLaMA-format model for `LlamaForCausalLM` / `AutoTokenizer.from_pretrained(this_dir)`.
`vocab_size` = {rows} rows; the tokenizer uses {n_vocab}, the rest are padding, never produced.
Documents are separated by `<|endoftext|>` (id {eot}); put it first to start a document.
The tokenizer in tiktoken's own format (`tokenizer.tiktoken`: one `base64(token) rank` per line):
```python
import json, tiktoken, tiktoken.load
pat = json.load(open("tokenizer.json"))["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
enc = tiktoken.Encoding("{name}", pat_str=pat, special_tokens={specials},
                        mergeable_ranks=tiktoken.load.load_tiktoken_bpe("tokenizer.tiktoken"))
```
"""


def export(ckpt_path, out_dir, dtype="float32", force=False, trust=False):
    """Write OUT_DIR. Checked before any work: OUT_DIR is new or empty (or --force), and holds none
    of the inputs (the checkpoint, its tokenizer file), which --force would replace or mix in."""
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise ValueError("export needs safetensors: pip install -r requirements-dev.txt") from None
    from model import load_model
    from tokenizer_compress import load_tokenizer, ranks_file_bytes, tokenizer_identity
    is_dir = os.path.isdir(out_dir)
    if os.path.exists(out_dir) and (not is_dir or (os.listdir(out_dir) and not force)):
        raise ValueError(f"{out_dir} exists and is not an empty folder; choose another or --force")
    if is_dir and os.path.samefile(os.path.dirname(os.path.abspath(ckpt_path)), out_dir):
        raise ValueError(f"{out_dir} holds the checkpoint {ckpt_path}; export into another folder")
    model, ckpt = load_model(ckpt_path, trust=trust)
    tok = ckpt.get("tokenizer") or {}
    if "source" not in tok:
        raise ValueError(f"{ckpt_path} records no tokenizer: not a checkpoint train.py wrote")
    enc = load_tokenizer(tok["source"])
    tok_dir = os.path.dirname(os.path.abspath(enc.source))
    if is_dir and os.path.isfile(enc.source) and os.path.samefile(tok_dir, out_dir):
        raise ValueError(f"{out_dir} holds the tokenizer {enc.source}: export elsewhere")
    if tokenizer_identity(enc)["sha256"] != tok["sha256"]:   # e.g. the file was rewritten since
        raise ValueError(f"tokenizer {tok['source']} is not the one {ckpt_path} was trained with")
    dt, c, eot = getattr(torch, dtype), model.config, "<|endoftext|>"
    files = {"config.json": json.dumps(hf_config(c, enc, dt), indent=1),
             "tokenizer.json": json.dumps(hf_tokenizer(enc), ensure_ascii=False),
             "tokenizer_config.json": json.dumps({
                 "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": eot, "eos_token": eot,
                 "model_max_length": c.block_size, "clean_up_tokenization_spaces": False}),
             "tokenizer.tiktoken": ranks_file_bytes(enc),                 # tiktoken's ranks format
             "README.md": README.format(name=enc.name, rows=c.vocab_size, n_vocab=enc.n_vocab,
                                        eot=enc.eot_token, specials=enc._special_tokens)}
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "model.safetensors")
    save_file(hf_state_dict(model, dt), path + ".tmp", metadata={"format": "pt"})
    os.replace(path + ".tmp", path)                    # temp file + rename: never half a file
    for name, data in files.items():
        with open(os.path.join(out_dir, name + ".tmp"), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        os.replace(os.path.join(out_dir, name + ".tmp"), os.path.join(out_dir, name))
    print(f"wrote {out_dir}: {model.param_count()['total'] / 1e6:.2f}M parameters ({dtype}), "
          f"tokenizer {enc.name} ({enc.n_vocab} ids, {c.vocab_size} rows)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = p.add_argument
    add("ckpt", help="checkpoint written by train.py")
    add("out_dir", help="folder to write (new or empty, unless --force)")
    add("--dtype", default="float32", choices=["float32", "bfloat16", "float16"], help="of weights")
    add("--force", action="store_true", help="write into OUT_DIR even if it holds files")
    add("--trust_checkpoint", action="store_true",
        help="load CKPT by a full unpickle (it can run code): a checkpoint you trust")
    args = p.parse_args(argv)
    try:
        export(args.ckpt, args.out_dir, args.dtype, args.force, args.trust_checkpoint)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"export.py: error: {e}")
    except KeyboardInterrupt:                          # each file: a temp name, then renamed
        sys.exit(f"export.py: interrupted; {args.out_dir} may be partial: run again with --force")


if __name__ == "__main__":
    main()
