#!/usr/bin/python3
"""torch_reference.py: writes the PyTorch reference fixtures for tests/test_torch_compare.c.

For a small Llama-style decoder (the architecture of src/model/model.h, written
here as plain nn.Module code, no transformers library) in three variants (NoPE
untied, RoPE untied, NoPE tied) this script draws seeded weights, runs a fixed
right-padded batch forward and backward, then 10 AdamW steps, and writes per
variant, under tests/fixtures/torch/<variant>/:

  ckpt/model.safetensors  the weights, Hugging Face Llama names, [out, in] layout, F32
  ckpt/config.json        our checkpoint config (LlamaConfig fields + position_encoding + vocab)
  expected.safetensors    tokens, targets (I32 [B,T]), logits (F32 [B,T,V]), loss_sum,
                          target_count, grad.<name> (gradient of the MEAN loss, i.e. the
                          loss sum times 1/target_count) for every tensor, and
                          adamw.loss / adamw.grad_norm (F32 [10]): the mean loss and the
                          pre-clipping gradient norm at each of 10 AdamW steps.

Everything is computed twice, in float32 and in float64 from the same float32
weights; the fixtures hold the float64 results rounded to float32 (the more
accurate reference), and the script prints how far float32 PyTorch is from it,
which is the noise floor the C test's tolerance must sit above.

Not for: benchmarking (bench/torch_baseline.py), or anything at test time: the
fixtures are committed so that CI needs no PyTorch. Run with Debian's
python3-torch, which imports only under /usr/bin/python3:
    /usr/bin/python3 tests/torch_reference.py
"""

import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "torch")

# Shared shape of every variant. d_ff = 3 * d_model so that no [F, C] / [C, F]
# or [C, C] confusion can go unnoticed.
BASE = dict(n_layers=2, n_heads=4, d_model=32, d_ff=96, vocab_size=19, max_seq_len=32,
            rms_eps=1e-6, rope_theta=10000.0)
VARIANTS = [
    dict(name="nope_untied", pos="none", tie=False, seed=1),
    dict(name="rope_untied", pos="rope", tie=False, seed=2),
    dict(name="nope_tied", pos="none", tie=True, seed=3),
]
VOCAB = ["<pad>", "<bos>", "<eos>"] + list("0123456789+=abcd")  # 19 tokens
PAD, BOS, EOS = 0, 1, 2

# AdamW as the engine runs it in the test.
ADAMW = dict(lr=1e-3, beta1=0.9, beta2=0.98, eps=1e-8, weight_decay=0.01, grad_clip=1.0, steps=10)


# ---------------------------------------------------------------- the model

class RMSNorm(nn.Module):
    """Hugging Face LlamaRMSNorm: w * x / sqrt(mean(x^2) + eps)."""

    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_cos_sin(T, D, theta, dtype):
    """HF Llama rotary tables [T, D], computed in float64 then cast."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["d_model"]
        self.H = cfg["n_heads"]
        self.D = C // self.H
        self.q_proj = nn.Linear(C, C, bias=False)
        self.k_proj = nn.Linear(C, C, bias=False)
        self.v_proj = nn.Linear(C, C, bias=False)
        self.o_proj = nn.Linear(C, C, bias=False)
        self.rope = cfg["pos"] == "rope"
        self.theta = cfg["rope_theta"]

    def forward(self, x):
        B, T, C = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.D).transpose(1, 2)  # [B,H,T,D]
        k = self.k_proj(x).view(B, T, self.H, self.D).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.H, self.D).transpose(1, 2)
        if self.rope:
            cos, sin = rope_cos_sin(T, self.D, self.theta, x.dtype)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.D)
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        att = att.masked_fill(~causal, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.o_proj(y)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, Fd = cfg["d_model"], cfg["d_ff"]
        self.gate_proj = nn.Linear(C, Fd, bias=False)
        self.up_proj = nn.Linear(C, Fd, bias=False)
        self.down_proj = nn.Linear(Fd, C, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg["d_model"], cfg["rms_eps"])
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg["d_model"], cfg["rms_eps"])
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class Inner(nn.Module):
    """The `model.` prefix of the Hugging Face names."""

    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["d_model"])
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg["n_layers"])])
        self.norm = RMSNorm(cfg["d_model"], cfg["rms_eps"])


class Llama(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.model = Inner(cfg)
        self.tie = cfg["tie"]
        if not self.tie:
            self.lm_head = nn.Linear(cfg["d_model"], cfg["vocab_size"], bias=False)

    def forward(self, tokens):
        x = self.model.embed_tokens(tokens)
        for block in self.model.layers:
            x = block(x)
        x = self.model.norm(x)
        head = self.model.embed_tokens.weight if self.tie else self.lm_head.weight
        return x @ head.t()


def hf_param_names(cfg):
    """Tensor names in the engine's (and Hugging Face's) order."""
    names = ["model.embed_tokens.weight"]
    for i in range(cfg["n_layers"]):
        for part in ["input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                     "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj",
                     "mlp.up_proj", "mlp.down_proj"]:
            names.append(f"model.layers.{i}.{part}.weight")
    names.append("model.norm.weight")
    if not cfg["tie"]:
        names.append("lm_head.weight")
    return names


def draw_weights(cfg, seed):
    """Seeded float32 weights. Matrices: normal(0, 0.02) plus a perturbation of
    scale 1/sqrt(fan_in) (0.5 for the embedding), so that activations, attention
    patterns and gradients are far from trivial; norm weights: 1 + normal(0, 0.2)."""
    g = torch.Generator().manual_seed(seed)
    shapes = dict(Llama(cfg).named_parameters())
    out = {}
    for name in hf_param_names(cfg):
        shape = shapes[name].shape
        if len(shape) == 1:
            w = 1.0 + 0.2 * torch.randn(shape, generator=g, dtype=torch.float64)
        else:
            scale = 0.5 if "embed_tokens" in name else 1.0 / math.sqrt(shape[1])
            w = 0.02 * torch.randn(shape, generator=g, dtype=torch.float64)
            w += scale * torch.randn(shape, generator=g, dtype=torch.float64)
        out[name] = w.to(torch.float32)
    return out


def build(cfg, weights, dtype):
    m = Llama(cfg).to(dtype)
    params = dict(m.named_parameters())
    with torch.no_grad():
        for name, w in weights.items():
            params[name].copy_(w.to(dtype))
    return m


# ---------------------------------------------------------------- the batch

def make_batch():
    """B=3 rows of T=12: BOS + prompt + completion + EOS, right padded with PAD.
    targets[t] = tokens[t+1] where tokens[t+1] is a completion token or EOS; -1
    on the prompt and the padding."""
    sym = {s: i for i, s in enumerate(VOCAB)}
    # lengths with BOS and EOS: 12 (no padding), 8, 6
    rows = [("1+2=", "3abc12"), ("7+8=", "15"), ("ab=", "c")]
    T = 12
    tokens, targets = [], []
    for prompt, completion in rows:
        seq = [BOS] + [sym[c] for c in prompt] + [sym[c] for c in completion] + [EOS]
        first_scored = 1 + len(prompt)  # index of the first completion token
        tgt = [-1] * T
        for t in range(first_scored - 1, len(seq) - 1):
            tgt[t] = seq[t + 1]
        tokens.append(seq + [PAD] * (T - len(seq)))
        targets.append(tgt)
    return torch.tensor(tokens, dtype=torch.int64), torch.tensor(targets, dtype=torch.int64)


# ---------------------------------------------------------------- computing

def forward_backward(model, tokens, targets):
    """Returns logits, loss sum, target count and the gradients of the mean loss."""
    model.zero_grad()
    logits = model(tokens)
    V = logits.shape[-1]
    loss_sum = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-1,
                               reduction="sum")
    count = int((targets >= 0).sum())
    (loss_sum / count).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    return logits.detach(), loss_sum.item(), count, grads


def adamw_losses(model, tokens, targets):
    """10 steps of torch.optim.AdamW (decoupled decay p *= 1 - lr*wd before the
    Adam update, which is algebraically the engine's p -= lr*(update + wd*p) with
    p the pre-step value) with global-norm clipping, no decay on norm weights.
    Returns the mean loss and the pre-clipping gradient norm at each step."""
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() == 1]
    opt = torch.optim.AdamW(
        [dict(params=decay, weight_decay=ADAMW["weight_decay"]),
         dict(params=no_decay, weight_decay=0.0)],
        lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"])
    losses, norms = [], []
    V = len(VOCAB)
    count = int((targets >= 0).sum())
    for _ in range(ADAMW["steps"]):
        opt.zero_grad()
        logits = model(tokens)
        loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-1,
                               reduction="sum") / count
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), ADAMW["grad_clip"])
        opt.step()
        losses.append(loss.item())
        norms.append(float(norm))
    return losses, norms


# ---------------------------------------------------------------- files

def write_safetensors(path, tensors, metadata=None):
    """Minimal safetensors writer (stdlib only): 8-byte little-endian header
    length, JSON header padded with spaces to a multiple of 8, raw data.
    tensors: list of (name, dtype "F32"|"I32", shape, flat list of numbers)."""
    header, blobs, offset = {}, [], 0
    for name, dtype, shape, values in tensors:
        fmt = {"F32": "f", "I32": "i"}[dtype]
        blob = struct.pack("<%d%s" % (len(values), fmt), *values)
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def f32(name, t):
    t = t.detach().to(torch.float32).contiguous()
    return (name, "F32", tuple(t.shape), t.reshape(-1).tolist())


def write_config(path, cfg):
    conf = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": cfg["d_model"],
        "intermediate_size": cfg["d_ff"],
        "num_hidden_layers": cfg["n_layers"],
        "num_attention_heads": cfg["n_heads"],
        "num_key_value_heads": cfg["n_heads"],
        "vocab_size": cfg["vocab_size"],
        "max_position_embeddings": cfg["max_seq_len"],
        "rms_norm_eps": cfg["rms_eps"],
        "rope_theta": cfg["rope_theta"],
        "tie_word_embeddings": cfg["tie"],
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "initializer_range": 0.02,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "pad_token_id": PAD,
        "torch_dtype": "float32",
        "position_encoding": cfg["pos"],
        "seed": str(cfg["seed"]),
        "vocab": VOCAB,
    }
    with open(path, "w") as f:
        json.dump(conf, f, indent=2)
        f.write("\n")


def rel_err(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / max(float(b.norm()), 1e-30))


def run_variant(var):
    cfg = dict(BASE, pos=var["pos"], tie=var["tie"], seed=var["seed"])
    weights = draw_weights(cfg, var["seed"])
    tokens, targets = make_batch()
    results = {}
    for dtype in (torch.float32, torch.float64):
        m = build(cfg, weights, dtype)
        logits, loss_sum, count, grads = forward_backward(m, tokens, targets)
        losses, norms = adamw_losses(m, tokens, targets)
        results[dtype] = (logits, loss_sum, count, grads, losses, norms)

    lo32, ls32, _, g32, l32, n32 = results[torch.float32]
    logits, loss_sum, count, grads, losses, norms = results[torch.float64]
    print(f"{var['name']}: loss {loss_sum / count:.6f} over {count} targets; "
          f"grad norms {min(norms):.3f}..{max(norms):.3f} (clip {ADAMW['grad_clip']})")
    print(f"  float32 vs float64 PyTorch: logits {rel_err(lo32, logits):.2e}, "
          f"loss {abs(ls32 - loss_sum) / loss_sum:.2e}, worst grad "
          f"{max(rel_err(g32[n], grads[n]) for n in grads):.2e}, worst AdamW loss "
          f"{max(abs(a - b) / b for a, b in zip(l32, losses)):.2e}")

    d = os.path.join(OUT_DIR, var["name"])
    os.makedirs(os.path.join(d, "ckpt"), exist_ok=True)
    write_config(os.path.join(d, "ckpt", "config.json"), cfg)
    write_safetensors(os.path.join(d, "ckpt", "model.safetensors"),
                      [f32(n, weights[n]) for n in hf_param_names(cfg)],
                      {"format": "pt"})
    fx = [("tokens", "I32", tuple(tokens.shape), tokens.reshape(-1).tolist()),
          ("targets", "I32", tuple(targets.shape), targets.reshape(-1).tolist()),
          f32("logits", logits),
          ("loss_sum", "F32", (1,), [loss_sum]),
          ("target_count", "I32", (1,), [count]),
          ("adamw.loss", "F32", (len(losses),), losses),
          ("adamw.grad_norm", "F32", (len(norms),), norms)]
    fx += [f32("grad." + n, grads[n]) for n in hf_param_names(cfg)]
    meta = dict(ADAMW, variant=var["name"], torch=torch.__version__, precision="float64")
    write_safetensors(os.path.join(d, "expected.safetensors"), fx, meta)


def main():
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    for var in VARIANTS:
        run_variant(var)
    print("fixtures written under", os.path.relpath(OUT_DIR))
    return 0


if __name__ == "__main__":
    sys.exit(main())
