#!/usr/bin/python3
"""torch_nft_reference.py: writes the PyTorch reference fixture for the NFT
objective (negative-aware fine-tuning, Chen et al. 2025), checked by
tests/test_nft.c.

The model is tests/torch_reference.py's (same nn.Module code, same seeded
weight drawing, same checkpoint writer), in its NoPE untied shape with seed 7,
as tests/torch_grpo_reference.py uses. Nine sampled completions are encoded as
the engine does (BOS + prompt + completion, + EOS when sampling reached it; the
loss covers the completion and EOS). Each row is a right (positive) or wrong
(negative) sample with its prompt's correct rate r_q:
  - right and wrong samples at r_q = 0.5, 0.25 and 0.75;
  - a wrong one cut at the length bound (no EOS), and a masked one;
  - a right sample of a prompt whose samples are all right (r_q = 1: no
    signal, left out as the paper leaves such prompts out);
  - r_q = 0.99 and 0.01, which the paper's code clamps to [0.02, 0.98].

The sampling policy's per-token log-probs (old_logp) are the policy's own
float64 log-probs moved by a chosen log-ratio per token and rounded to 1/64
(so they are exact in float32). The log-ratios put tokens in every region,
at least 0.02 from each boundary of every variant:
  - wrong samples with R < 1 (no clip), with R > 1 (value clipped at
    eps = 1, gradient passed through), and with 1 - r R < 0;
  - one right token past the log-ratio cap of 10 (no gradient).

The loss is the one of the paper's code (NVlabs/NFT dp_actor.py, ratio_type
token), in float64:
    R        = exp(min(logp - old_logp, 10))
    r        = clamp(r_q, 0.02, 0.98)
    positive:  -log R
    negative:  -neg_weight * log(clamp_preserve_grad((1 - r R) / (1 - r), min=eps))
    times the prompt weight w(r): dr_grpo 1 - r, grpo sqrt((1 - r) / r), none 1
where clamp_preserve_grad(x) = x + (clamp(x) - x).detach(): the value is
clipped, the gradient is x's. Tokens are aggregated as the grpo objective
does (token-mean, or seq-mean-token-sum-norm: the paper's code sums each
sequence's tokens and divides by a constant).

For each variant the script writes under tests/fixtures/torch_nft/:
  ckpt/model.safetensors, ckpt/config.json   the weights and config
  expected.safetensors
      tokens, targets     I32 [R, T]  right-padded rows, targets -1 off the completion
      lens, loss_from     I32 [R]     each row's length and first completion index
      masked, positive    I32 [R]
      correct_rate        F32 [R]
      old_logp            F32 [R, T]  at the positions where targets >= 0, 0 elsewhere
      token_logp          F32 [R, T]  the policy's log p(target), 0 where targets == -1
      entropy             F32 [1]     mean next-token entropy over the trained tokens
      n_targets           I32 [1]     the trained tokens (rows with 0 < r_q < 1, unmasked)
      <variant>.loss      F32 [1]
      <variant>.clip_fraction, .ratio   F32 [1]
      <variant>.grad.<tensor name>       its gradient, every tensor
    metadata: variants, and per variant <variant>.eps, .neg_weight,
    .prompt_weight, .loss_agg, .norm_len.

As torch_grpo_reference.py, everything is computed in float64 from the
float32 weights and again in float32, and the float32-vs-float64 distance is
printed: the noise floor for the C test's tolerance.

Run with Debian's python3-torch, which imports only under /usr/bin/python3:
    /usr/bin/python3 tests/torch_nft_reference.py
"""

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as R  # noqa: E402  (the shared model, weights and file writers)

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "torch_nft")
CFG = dict(R.BASE, pos="none", tie=False, seed=7)
CAP = 10.0
RATE_MIN, RATE_MAX = 0.02, 0.98

# (prompt, completion, ends with EOS, masked, positive, r_q, per-token log-ratio
# logp - old_logp, one entry per completion token, EOS included)
ROWS = [
    ("1+2=", "3", True, False, True, 0.5, [0.30, -0.20]),
    ("1+2=", "4", True, False, False, 0.5, [-0.40, 0.35]),
    ("7+8=", "15", True, False, True, 0.25, [-0.35, 0.05, 10.5]),
    ("7+8=", "1a6b", False, False, False, 0.25, [0.215, -0.30, 1.2, -0.10]),
    ("ab=", "cd0c", False, True, False, 0.5, [0.5, 0.5, -0.5, -0.5]),
    ("12+9=", "21", True, False, False, 0.75, [0.10, -0.15, 2.0]),
    ("5+5=", "10", True, False, True, 1.0, [0.2, 0.3, -0.2]),
    ("9+1=", "10", True, False, True, 0.99, [0.1, 0.25, -0.1]),
    ("9+1=", "11", True, False, False, 0.01, [0.45, -0.25, 0.3]),
]

VARIANTS = [
    dict(name="default", eps=1.0, neg_weight=1.0, weight="dr_grpo", agg="token-mean",
         norm_len=0.0),
    dict(name="eps_half_grpo", eps=0.5, neg_weight=1.0, weight="grpo", agg="token-mean",
         norm_len=0.0),
    dict(name="none_neg_half", eps=1.0, neg_weight=0.5, weight="none", agg="token-mean",
         norm_len=0.0),
    dict(name="sum_norm", eps=1.0, neg_weight=1.0, weight="dr_grpo",
         agg="seq-mean-token-sum-norm", norm_len=6.0),
]


def make_rows():
    """tokens and targets [R, T], lengths, loss_from."""
    sym = {s: i for i, s in enumerate(R.VOCAB)}
    seqs, loss_from = [], []
    for prompt, completion, eos, *_ in ROWS:
        seq = [R.BOS] + [sym[c] for c in prompt + completion] + ([R.EOS] if eos else [])
        seqs.append(seq)
        loss_from.append(1 + len(prompt))
    T = max(len(s) for s in seqs)
    tokens, targets = [], []
    for seq, first in zip(seqs, loss_from):
        tgt = [-1] * T
        for t in range(first - 1, len(seq) - 1):
            tgt[t] = seq[t + 1]
        tokens.append(seq + [R.PAD] * (T - len(seq)))
        targets.append(tgt)
    return (torch.tensor(tokens, dtype=torch.int64), torch.tensor(targets, dtype=torch.int64),
            [len(s) for s in seqs], loss_from)


def token_logp(model, tokens, targets):
    """log p(target) [R, T] (0 where targets == -1) and the next-token entropy [R, T]."""
    logp = model(tokens).log_softmax(-1)
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    on = (targets >= 0).to(logp.dtype)
    return picked * on, entropy


def clamp_preserve_grad(x, min_val):
    """The paper's code: the value clipped at min_val, the gradient x's."""
    return x + (torch.clamp(x, min=min_val) - x).detach()


def prompt_weight(kind, r):
    if kind == "grpo":
        return torch.sqrt((1 - r) / r)
    if kind == "none":
        return torch.ones_like(r)
    return 1 - r


def nft_loss(var, lp, old, rate, pos, mask):
    """The step loss. lp, old, mask are [R, T]; rate, pos [R]; mask is 1 on the
    trained rows' completion tokens. Returns the loss and the clip fraction and
    mean ratio over those tokens."""
    x = lp - old
    ratio = torch.exp(x.clamp(max=CAP))
    r = rate.clamp(RATE_MIN, RATE_MAX).unsqueeze(-1)
    proxy = (1 - r * ratio) / (1 - r)
    neg = -torch.log(clamp_preserve_grad(proxy, var["eps"]))
    posl = -torch.log(ratio)
    P = pos.unsqueeze(-1)
    per_token = (neg * (1 - P) * var["neg_weight"] + P * posl) * prompt_weight(var["weight"], r)
    per_token = per_token * mask
    rows = mask.sum(-1) > 0
    n_seq = int(rows.sum())
    if var["agg"] == "token-mean":
        loss = per_token.sum() / mask.sum()
    else:
        loss = per_token.sum(-1)[rows].sum() / (n_seq * var["norm_len"])
    with torch.no_grad():
        clipped = (x > CAP) | ((P == 0) & (proxy < var["eps"]))
        n = mask.sum()
        stats = dict(clip_fraction=float((clipped.to(mask.dtype) * mask).sum() / n),
                     ratio=float((torch.exp(x) * mask).sum() / n))
    return loss, stats


def compute(weights, dtype, tokens, targets, old, rate, pos, mask):
    """Per variant the step loss, its statistics and its gradients."""
    model = R.build(CFG, weights, dtype)
    out = {}
    for var in VARIANTS:
        model.zero_grad()
        lp, _ = token_logp(model, tokens, targets)
        loss, stats = nft_loss(var, lp, old.to(dtype), rate.to(dtype), pos.to(dtype),
                               mask.to(dtype))
        loss.backward()
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
        out[var["name"]] = (loss.item(), stats, grads)
    return out


def boundaries(r):
    """The log-ratios where a token of a row with rate r changes region, for
    every variant's eps: the cap, and where (1 - r R) / (1 - r) = eps."""
    rc = min(max(r, RATE_MIN), RATE_MAX)
    out = [CAP]
    for var in VARIANTS:
        R_at = (1 - var["eps"] * (1 - rc)) / rc
        if R_at > 0:
            out.append(math.log(R_at))
    return out


def main():
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    weights = R.draw_weights(CFG, CFG["seed"])
    tokens, targets, lens, loss_from = make_rows()
    Rn, T = tokens.shape

    with torch.no_grad():
        lp64, ent64 = token_logp(R.build(CFG, weights, torch.float64), tokens, targets)
    old = torch.zeros(Rn, T, dtype=torch.float64)
    mask = torch.zeros(Rn, T, dtype=torch.float64)
    for r, (_, _, _, masked, _, rate, ratios) in enumerate(ROWS):
        first = loss_from[r] - 1
        assert len(ratios) == lens[r] - loss_from[r]
        for k, x in enumerate(ratios):
            v = float(lp64[r, first + k])
            old[r, first + k] = math.floor((v - x) * 64 + 0.5) / 64
            if not masked and 0 < rate < 1:
                mask[r, first + k] = 1.0
                lr = v - float(old[r, first + k])
                assert min(abs(lr - b) for b in boundaries(rate)) > 0.02, (r, k, lr)
    rate = torch.tensor([row[5] for row in ROWS], dtype=torch.float64)
    pos = torch.tensor([float(row[4]) for row in ROWS], dtype=torch.float64)
    entropy = float((ent64 * mask).sum() / mask.sum())

    res32 = compute(weights, torch.float32, tokens, targets, old, rate, pos, mask)
    res64 = compute(weights, torch.float64, tokens, targets, old, rate, pos, mask)
    print("trained tokens", int(mask.sum()), "mean entropy over them", round(entropy, 6))
    for var in VARIANTS:
        l32, _, g32 = res32[var["name"]]
        l64, s64, g64 = res64[var["name"]]
        worst = max(R.rel_err(g32[n], g64[n]) for n in g64)
        print(f"{var['name']}: loss {l64:.6f}, clip fraction {s64['clip_fraction']:.4f}, ratio "
              f"{s64['ratio']:.4f}; float32 vs float64 PyTorch: loss "
              f"{abs(l32 - l64) / abs(l64):.2e}, worst grad {worst:.2e}")

    os.makedirs(os.path.join(OUT_DIR, "ckpt"), exist_ok=True)
    R.write_config(os.path.join(OUT_DIR, "ckpt", "config.json"), CFG)
    R.write_safetensors(os.path.join(OUT_DIR, "ckpt", "model.safetensors"),
                        [R.f32(n, weights[n]) for n in R.hf_param_names(CFG)], {"format": "pt"})
    fx = [("tokens", "I32", (Rn, T), tokens.reshape(-1).tolist()),
          ("targets", "I32", (Rn, T), targets.reshape(-1).tolist()),
          ("lens", "I32", (Rn,), lens),
          ("loss_from", "I32", (Rn,), loss_from),
          ("masked", "I32", (Rn,), [int(row[3]) for row in ROWS]),
          ("positive", "I32", (Rn,), [int(row[4]) for row in ROWS]),
          R.f32("correct_rate", rate),
          R.f32("old_logp", old),
          R.f32("token_logp", lp64),
          ("entropy", "F32", (1,), [entropy]),
          ("n_targets", "I32", (1,), [int(mask.sum())])]
    meta = dict(variants=",".join(v["name"] for v in VARIANTS), torch=torch.__version__,
                precision="float64", seed=CFG["seed"])
    for var in VARIANTS:
        loss, stats, grads = res64[var["name"]]
        fx.append((var["name"] + ".loss", "F32", (1,), [loss]))
        for key in ("clip_fraction", "ratio"):
            fx.append((f"{var['name']}.{key}", "F32", (1,), [stats[key]]))
        fx += [R.f32(f"{var['name']}.grad.{n}", grads[n]) for n in R.hf_param_names(CFG)]
        for key in ("eps", "neg_weight", "norm_len"):
            meta[f"{var['name']}.{key}"] = repr(var[key])
        meta[f"{var['name']}.prompt_weight"] = var["weight"]
        meta[f"{var['name']}.loss_agg"] = var["agg"]
    R.write_safetensors(os.path.join(OUT_DIR, "expected.safetensors"), fx, meta)
    print("fixture written under", os.path.relpath(OUT_DIR))
    return 0


if __name__ == "__main__":
    sys.exit(main())
