#!/usr/bin/python3
"""torch_baseline.py: the PyTorch side of the engine benchmark (bench/README.md).

Runs the architecture of src/model/model.h (Llama-style decoder, NoPE, untied
LM head) in PyTorch 1.13 at the sizes, batch and sequence length that
bench/bench_engine.c uses, and prints one line per measurement:

    RESULT <what> <size> <tokens_per_s> [key=value ...]

with <what> = train (forward + backward + global-norm clipping + AdamW over a
batch of B rows of T tokens; tokens/s counts B*T per step) or generate (greedy
decoding of B prompts with a KV cache written in the usual Hugging Face way:
one prefill pass over the prompts, then one token per row per step with the
cache grown by torch.cat; tokens/s counts the B*new tokens generated,
prefill included in the time). The value is the median over the timed
repetitions after one warm-up; best=... is the fastest one.

As in bench_engine.c the EOS row of the LM head is zero and two other rows are
opposite, so EOS can never be the argmax: every row generates exactly `new`
tokens on both sides and the work is identical whatever the random weights.

Not for: correctness (tests/torch_reference.py), or timing anything else.
Run with Debian's python3-torch (/usr/bin/python3); bench/run_all.sh runs it
with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset and 2 threads.
"""

import argparse
import copy
import ctypes
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# Keep in step with bench/bench_engine.c.
SIZES = {
    "0.5M": dict(n_layers=4, n_heads=4, d_model=96, d_ff=288),
    "14M": dict(n_layers=6, n_heads=6, d_model=384, d_ff=1536),
}
VOCAB = 15          # <pad> <bos> <eos> 0-9 + =
BOS, EOS = 1, 2
DIGITS = 16         # reverse addition of two 16-digit numbers
PROMPT = 1 + DIGITS + 1 + DIGITS + 1            # BOS a + b =        35
NEW = DIGITS + 1 + 1                             # sum digits + EOS   18
SEQ = PROMPT + NEW                               # 53
EPS = 1e-6


class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        C, Fd = c["d_model"], c["d_ff"]
        self.H, self.D = c["n_heads"], C // c["n_heads"]
        self.input_layernorm = RMSNorm(C)
        self.q_proj = nn.Linear(C, C, bias=False)
        self.k_proj = nn.Linear(C, C, bias=False)
        self.v_proj = nn.Linear(C, C, bias=False)
        self.o_proj = nn.Linear(C, C, bias=False)
        self.post_attention_layernorm = RMSNorm(C)
        self.gate_proj = nn.Linear(C, Fd, bias=False)
        self.up_proj = nn.Linear(C, Fd, bias=False)
        self.down_proj = nn.Linear(Fd, C, bias=False)

    def forward(self, x, cache=None):
        """x [B,T,C]. With cache = (k, v) of [B,H,S,D] (or None for no cache kept),
        returns (x, (k, v)) with the new keys/values appended."""
        B, T, C = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.H, self.D).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.H, self.D).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.H, self.D).transpose(1, 2)
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        S = k.shape[2]
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.D)
        if T > 1:  # causal mask over the new positions (a single new token sees everything)
            mask = torch.ones(T, S, dtype=torch.bool).tril(S - T)
            att = att.masked_fill(~mask, float("-inf"))
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.o_proj(y)
        h = self.post_attention_layernorm(x)
        x = x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))
        return x, (k, v)


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, c["d_model"])
        self.layers = nn.ModuleList([Block(c) for _ in range(c["n_layers"])])
        self.norm = RMSNorm(c["d_model"])
        self.lm_head = nn.Linear(c["d_model"], VOCAB, bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)
        with torch.no_grad():  # EOS is never the argmax (see the top of the file)
            self.lm_head.weight[EOS].zero_()
            self.lm_head.weight[4].copy_(-self.lm_head.weight[3])

    def forward(self, tokens, caches=None):
        x = self.embed(tokens)
        new = []
        for i, layer in enumerate(self.layers):
            x, kv = layer(x, None if caches is None else caches[i])
            new.append(kv)
        return self.lm_head(self.norm(x)), new


def batch_tokens(B, g):
    """B rows of BOS a + b = s EOS with random digits (ids 3..12; '+' 13, '=' 14)."""
    t = torch.randint(3, 13, (B, SEQ), generator=g)
    t[:, 0] = BOS
    t[:, 1 + DIGITS] = 13
    t[:, PROMPT - 1] = 14
    t[:, SEQ - 1] = EOS
    targets = torch.full((B, SEQ), -1, dtype=torch.long)
    targets[:, PROMPT - 1:SEQ - 1] = t[:, PROMPT:SEQ]
    return t, targets


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def bench_train(model, B, steps, foreach, amp=False):
    g = torch.Generator().manual_seed(1)
    tokens, targets = batch_tokens(B, g)
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() == 1]
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=0.01),
                             dict(params=no_decay, weight_decay=0.0)],
                            lr=1e-4, betas=(0.9, 0.98), eps=1e-12, foreach=foreach)

    def step():
        opt.zero_grad(set_to_none=False)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            logits, _ = model(tokens)
            loss = F.cross_entropy(logits.reshape(-1, VOCAB).float(), targets.reshape(-1),
                                   ignore_index=-1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    step()  # warm-up: allocations, optimizer state
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return B * SEQ / median(times), B * SEQ / min(times)


@torch.inference_mode()
def generate(model, prompts, amp=False):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        return generate_tokens(model, prompts)


def generate_tokens(model, prompts):
    logits, caches = model(prompts)
    tok = logits[:, -1].argmax(-1, keepdim=True)
    out = [tok]
    for _ in range(NEW - 1):
        logits, caches = model(tok, caches)
        tok = logits[:, -1].argmax(-1, keepdim=True)
        out.append(tok)
    return torch.cat(out, dim=1)


def bench_generate(model, B, reps, amp=False):
    g = torch.Generator().manual_seed(2)
    prompts = batch_tokens(B, g)[0][:, :PROMPT]
    out = generate(model, prompts, amp)  # warm-up
    assert out.shape == (B, NEW) and not (out == EOS).any()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        generate(model, prompts, amp)
        times.append(time.perf_counter() - t0)
    return B * NEW / median(times), B * NEW / min(times)


def bench_generate_bf16(model, B, reps):
    """Generation at PyTorch's best when bf16 is allowed: fp32, under bf16
    autocast, and with a bf16 copy of the model (weights and activations in
    bf16); the fastest counts."""
    modes = {"fp32": (model, False), "autocast": (model, True),
             "weights": (copy.deepcopy(model).bfloat16(), False)}
    best = None
    for name, (m, amp) in modes.items():
        r = bench_generate(m, B, reps, amp)
        print(f"# generate {name}: median {r[0]:.1f} best {r[1]:.1f} tokens/s", flush=True)
        if best is None or r[0] > best[0][0]:
            best = (r, name)
    return best


def blas_report():
    """Which BLAS PyTorch calls: its build setting, the library actually mapped into
    this process after a matrix product, and OpenBLAS's chosen kernel (core)."""
    info = [kv.split("=")[1] for kv in torch.__config__.show().replace(",", " ").split()
            if kv.startswith("BLAS_INFO=")]
    torch.ones(64, 64) @ torch.ones(64, 64)
    with open("/proc/self/maps") as f:
        libs = sorted({ln.split()[-1] for ln in f if "blas" in ln.split()[-1].lower()})
    line = f"# torch BLAS_INFO={info[0] if info else '?'}; mapped: {', '.join(libs) or 'none'}"
    for lib in libs:
        try:
            h = ctypes.CDLL(lib)
            h.openblas_get_corename.restype = ctypes.c_char_p
            h.openblas_get_config.restype = ctypes.c_char_p
            line += (f"; OpenBLAS core {h.openblas_get_corename().decode()} "
                     f"({h.openblas_get_config().decode()})")
            break
        except (OSError, AttributeError):
            continue
    line += f"; libblas.so.3 -> {os.path.realpath('/usr/lib/x86_64-linux-gnu/libblas.so.3')}"
    print(line, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="0.5M,14M")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-steps", default="0.5M:15,14M:5")
    ap.add_argument("--gen-reps", default="0.5M:7,14M:7")
    ap.add_argument("--foreach", choices=["on", "off", "both"], default="both",
                    help="AdamW implementation; 'both' measures each and reports the faster")
    ap.add_argument("--amp", choices=["off", "bf16"], default="off",
                    help="bf16: train under CPU autocast to bf16, and generate at the fastest "
                    "of fp32, bf16 autocast and a bf16 copy of the model, as autodidact's "
                    "--precision bf16 trains and decodes in bf16")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    train_steps = dict(kv.split(":") for kv in a.train_steps.split(","))
    gen_reps = dict(kv.split(":") for kv in a.gen_reps.split(","))
    cap = [ln.split(":")[1].strip() for ln in torch.__config__.show().splitlines()
           if "CPU capability usage" in ln]
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"cpu capability {cap[0] if cap else '?'}", flush=True)
    blas_report()
    for size in a.sizes.split(","):
        c = SIZES[size]
        model = Llama(c)
        n_params = sum(p.numel() for p in model.parameters())
        modes = {"on": [True], "off": [False], "both": [False, True]}[a.foreach]
        best = None
        for fe in modes:
            r = bench_train(model, a.batch, int(train_steps[size]), fe, a.amp == "bf16")
            print(f"# train {size} foreach={fe}: median {r[0]:.1f} best {r[1]:.1f} tokens/s",
                  flush=True)
            if best is None or r[0] > best[0][0]:
                best = (r, fe)
        (tps, fastest), fe = best
        print(f"RESULT train {size} {tps:.2f} params={n_params} batch={a.batch} seq={SEQ} "
              f"best={fastest:.2f} foreach={fe} amp={a.amp}", flush=True)
        mode = "fp32"
        if a.amp == "bf16":
            (tps, fastest), mode = bench_generate_bf16(model, a.batch, int(gen_reps[size]))
        else:
            tps, fastest = bench_generate(model, a.batch, int(gen_reps[size]))
        print(f"RESULT generate {size} {tps:.2f} params={n_params} batch={a.batch} "
              f"prompt={PROMPT} new={NEW} best={fastest:.2f} precision={mode}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
