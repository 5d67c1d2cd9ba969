"""export.py — write a nanopangu checkpoint as a Hugging Face LLaMA model directory.

    python export.py out/ckpt.pt hf/tiny   # then LlamaForCausalLM / AutoTokenizer.from_pretrained

Our Transformer (model.py) IS the LLaMA architecture (pre-norm RMSNorm, rotary embeddings, SwiGLU,
grouped-query attention, no biases): exporting renames tensors (HF_NAMES), writes a config, and
recomputes nothing:
  - RoPE: model.apply_rope pairs channel i with i + D/2 (the two halves of a head): transformers'
    "rotate_half" layout, same frequencies base^(-2i/D) (Meta's LLaMA weights pair 2i with 2i+1).
  - RMSNorm: both compute x * rsqrt(mean(x²) + eps) * weight in fp32; a block's second norm, on
    x + attention, is LLaMA's post_attention_layernorm.
  - vocab_size: the head's rows, padded to a multiple of 64 (model.padded_vocab); the padding rows
    go out as they are (never produced; eval.py masks them, transformers does not).
Files: config.json, model.safetensors (--dtype), tokenizer.json + tokenizer_config.json (the fast
tokenizer: hf_tokenizer), tokenizer.tiktoken, README.md. tests/test_export.py checks the logits."""
import argparse
import json
import os
import pathlib
import sys

import torch

# Ours -> LlamaForCausalLM's names (modeling_llama.py); {i}: the layer; + ".weight" (no biases).
# Shapes: emb and head (V, C); q (H·D, C), k, v (Hkv·D, C), o (C, H·D); gate, up (F, C), down (C, F)
HF_NAMES = {"tok_emb": "model.embed_tokens", "norm": "model.norm", "lm_head": "lm_head",
            "layers.{i}.attn_norm": "model.layers.{i}.input_layernorm",
            "layers.{i}.ffn_norm": "model.layers.{i}.post_attention_layernorm",       # norms: (C,)
            **{f"layers.{{i}}.attn.{x}_proj": f"model.layers.{{i}}.self_attn.{x}_proj" for x in "qkvo"},
            **{f"layers.{{i}}.ffn.{x}_proj": f"model.layers.{{i}}.mlp.{x}_proj" for x in ("gate", "up", "down")}}


def hf_state_dict(model, dtype):
    """The weights under transformers' names. Tied embeddings: lm_head is left out (safetensors
    stores no shared tensors; tie_word_embeddings makes transformers tie it on load)."""
    names = {f"{ours}.weight".format(i=i): f"{hf}.weight".format(i=i)   # i = 0 .. n_layer - 1
             for i in range(model.config.n_layer) for ours, hf in HF_NAMES.items()}
    sd, skip = model.state_dict(), "lm_head.weight" if model.config.tie_embeddings else None
    if set(sd) != set(names):                          # model.py changed: update HF_NAMES
        raise ValueError(f"unexpected parameters {sorted(set(sd) ^ set(names))[:4]}: HF_NAMES")
    return {names[k]: v.to(dtype).contiguous() for k, v in sd.items() if k != skip}


def hf_config(c, enc, dtype):                          # c: our ModelConfig -> LlamaConfig's fields
    return dict(architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=c.vocab_size,
                hidden_size=c.n_embd, intermediate_size=c.ffn_hidden, num_hidden_layers=c.n_layer,
                num_attention_heads=c.n_head, num_key_value_heads=c.kv_heads, head_dim=c.head_dim,
                hidden_act="silu", max_position_embeddings=c.block_size, rope_theta=c.rope_base,
                rms_norm_eps=c.norm_eps, tie_word_embeddings=c.tie_embeddings, attention_bias=False,
                mlp_bias=False, bos_token_id=enc.eot_token, eos_token_id=enc.eot_token,
                torch_dtype=str(dtype).split(".")[1])     # torch.bfloat16 -> "bfloat16"


def hf_tokenizer(enc):
    """tokenizer.json for the `tokenizers` library, encoding exactly as tiktoken does:
    - the same pre-tokenizer regex (Split), then bytes -> byte-level characters. One rewrite:
      tiktoken reads cl100k's "\\p{N}{1,3}+" as a possessive {1,3} (pieces of up to 3 digits), the
      Oniguruma engine of `tokenizers` as ({1,3})+ (any run); greedy {1,3} is possessive there too;
    - ignore_merges: a piece that is a token becomes that token (tiktoken's whole-piece lookup; it
      makes the merge-unreachable tokens a pruned vocabulary has, tokenizer_compress.py);
    - else BPE, one merge per reachable token in rank order: the pair tiktoken's bpe_merge joins
      LAST when it builds the token from its bytes, the only pair ever used (a pruned vocabulary
      cannot keep the base's merges: their parents may be gone)."""
    from tokenizer_compress import bpe_merge
    # GPT-2's byte-level alphabet: printable Latin-1 bytes as themselves, the other 68 from U+0100
    keep = [*range(33, 127), *range(161, 173), *range(174, 256)]
    chars = {**{b: chr(256 + j) for j, b in enumerate(sorted(set(range(256)) - set(keep)))},
             **{b: chr(b) for b in keep}}
    text = lambda b: "".join(chars[x] for x in b)       # noqa: E731  token bytes -> its characters
    ranks, merges = dict(enc._mergeable_ranks), []     # a copy: each token is hidden in turn
    for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tok) > 1:                                # BPE on its bytes with the token itself
            del ranks[tok]                              # hidden stops one merge short: 2 parts
            parts, ranks[tok] = bpe_merge(tok, ranks), rank
            if len(parts) == 2:                         # else merge-unreachable: whole pieces only
                merges.append(f"{text(parts[0])} {text(parts[1])}")
    flags = dict(single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)
    specials = [dict(id=i, content=s, **flags)                  # in id order
                for s, i in sorted(enc._special_tokens.items(), key=lambda kv: kv[1])]
    byte_level = dict(type="ByteLevel", add_prefix_space=False, trim_offsets=True, use_regex=False)
    split = dict(type="Split", pattern={"Regex": enc._pat_str.replace("{1,3}+", "{1,3}")},
                 behavior="Isolated", invert=False)
    # specials in the vocab too, else `tokenizers` renumbers them to close id gaps (cl100k's 100257)
    bpe = dict(type="BPE", merges=merges, dropout=None, unk_token=None, fuse_unk=False,
               continuing_subword_prefix=None, end_of_word_suffix=None, byte_fallback=False,
               ignore_merges=True, vocab={**{text(t): r for t, r in ranks.items()}, **enc._special_tokens})
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
    model, ckpt = load_model(ckpt_path, trust=trust)   # weights_only, unless --trust_checkpoint
    if "source" not in (tok := ckpt.get("tokenizer") or {}):
        raise ValueError(f"{ckpt_path} records no tokenizer: not a checkpoint train.py wrote")
    enc = load_tokenizer(tok["source"])
    tok_dir = os.path.dirname(os.path.abspath(enc.source))
    if is_dir and os.path.isfile(enc.source) and os.path.samefile(tok_dir, out_dir):
        raise ValueError(f"{out_dir} holds the tokenizer {enc.source}: export elsewhere")
    if tokenizer_identity(enc)["sha256"] != tok["sha256"]:   # e.g. the file was rewritten since
        raise ValueError(f"tokenizer {tok['source']} is not the one {ckpt_path} was trained with")
    dt, c, eot = getattr(torch, dtype), model.config, "<|endoftext|>"
    fast = dict(tokenizer_class="PreTrainedTokenizerFast", bos_token=eot, eos_token=eot,
                model_max_length=c.block_size, clean_up_tokenization_spaces=False)
    files = {"model.safetensors": hf_state_dict(model, dt),
             "config.json": json.dumps(hf_config(c, enc, dt), indent=1),
             "tokenizer.json": json.dumps(hf_tokenizer(enc), ensure_ascii=False),
             "tokenizer_config.json": json.dumps(fast),                   # AutoTokenizer reads it
             "tokenizer.tiktoken": ranks_file_bytes(enc),                 # tiktoken's ranks format
             "README.md": README.format(name=enc.name, rows=c.vocab_size, n_vocab=enc.n_vocab,
                                        eot=enc.eot_token, specials=enc._special_tokens)}
    os.makedirs(out_dir, exist_ok=True)
    for name, data in files.items():         # each to a temp name, then renamed: never half a file
        tmp = os.path.join(out_dir, name + ".tmp")
        if isinstance(data, dict):                             # the weights: {HF name: tensor}
            save_file(data, tmp, metadata={"format": "pt"})
        else:                                                  # str (UTF-8) or bytes
            pathlib.Path(tmp).write_bytes(data if isinstance(data, bytes) else data.encode())
        os.replace(tmp, os.path.join(out_dir, name))
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
    add("--trust_checkpoint", action="store_true", help="full unpickle of CKPT (it can run code)")
    args = p.parse_args(argv)
    try:
        export(args.ckpt, args.out_dir, args.dtype, args.force, args.trust_checkpoint)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"export.py: error: {e}")
    except KeyboardInterrupt:                          # each file: a temp name, then renamed
        sys.exit(f"export.py: interrupted; {args.out_dir} may be partial: run again with --force")


if __name__ == "__main__":
    main()
