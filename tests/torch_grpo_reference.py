#!/usr/bin/python3
"""torch_grpo_reference.py: writes the PyTorch reference fixture for the GRPO
objective, checked by tests/test_grpo.c.

The model is tests/torch_reference.py's (same nn.Module code, same seeded
weight drawing, same checkpoint writer), in its NoPE untied shape with seed 7.
Six sampled completions of the fixture vocabulary are encoded as the engine
does (BOS + prompt + completion, + EOS when "sampling reached it"; the loss
covers the completion and EOS): four end with EOS, two were cut at the length
bound (no EOS), and one of those two is masked. Each row has an advantage
(both signs; the masked row's is never used).

The sampling policy's per-token log-probs (old_logp) are the policy's own
float64 log-probs moved by a chosen log-ratio per token and rounded to 1/64
(so they are exact in float32): every row holds tokens in the regions that
matter, at least 0.02 from every clip boundary:
  - A > 0, rho > 1 + 0.28: clipped (no gradient);
  - A > 0, 1.2 < rho < 1.28: clipped only when epsilon_high = epsilon = 0.2;
  - A < 0, rho < 0.8: clipped;
  - outside the range on the side the advantage does not push: not clipped;
  - inside the range.
The reference's per-token log-probs (ref_logp) are the policy's moved by fixed
offsets, rounded to 1/64.

For each variant (the three aggregations token-mean, seq-mean-token-mean and
seq-mean-token-sum-norm, each without and with the k3 KL; and token-mean with
epsilon_high = epsilon) the script computes the step loss of docs/rl.md and
its gradient for every tensor, and writes under tests/fixtures/torch_grpo/:

  ckpt/model.safetensors, ckpt/config.json   the weights and config (as torch_reference.py)
  expected.safetensors
      tokens, targets    I32 [R, T]  right-padded rows, targets -1 off the completion
      lens, loss_from    I32 [R]     each row's length and first completion index
      masked             I32 [R]     1 for the masked row
      advantage          F32 [R]
      old_logp, ref_logp F32 [R, T]  at the positions where targets >= 0, 0 elsewhere
      token_logp         F32 [R, T]  the policy's log p(target), 0 where targets == -1
      entropy            F32 [1]     mean next-token entropy over the unmasked completion tokens
      <variant>.loss     F32 [1]     the step loss
      <variant>.clip_fraction, .ratio, .kl   F32 [1]  the statistics (kl NaN without KL)
      <variant>.grad.<tensor name>    its gradient, every tensor
    metadata: variants (comma-separated), and per variant <variant>.loss_agg,
    .epsilon, .epsilon_high, .kl_beta, .norm_len.

As in torch_reference.py everything is computed in float64 from the float32
weights (the fixture holds those results rounded to float32) and again in
float32, and the script prints how far float32 PyTorch is from float64: the
noise floor for the C test's tolerance.

Run with Debian's python3-torch, which imports only under /usr/bin/python3:
    /usr/bin/python3 tests/torch_grpo_reference.py
"""

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as R  # noqa: E402  (the shared model, weights and file writers)

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "torch_grpo")
CFG = dict(R.BASE, pos="none", tie=False, seed=7)

# (prompt, completion, ends with EOS, masked, advantage, per-token log-ratio
# logp - old_logp, per-token reference offset ref_logp - logp). The log-ratio
# lists have one entry per completion token (EOS included).
LN_HI, LN_HI_SYM, LN_LO = math.log(1.28), math.log(1.2), math.log(0.8)  # 0.247, 0.182, -0.223
ROWS = [
    ("1+2=", "3", True, False, 1.25, [0.40, 0.215], [0.3, -0.5]),
    ("1+2=", "4", True, False, -0.75, [-0.40, 0.35], [-0.2, 0.6]),
    ("7+8=", "15", True, False, 0.5, [-0.35, 0.05, 0.30], [0.1, -0.4, 0.25]),
    ("7+8=", "1a6b", False, False, -1.5, [0.215, -0.30, -0.1, 0.0], [0.5, 0.0, -0.3, 0.2]),
    ("ab=", "cd0c", False, True, 2.0, [0.5, 0.5, -0.5, -0.5], [0.1, 0.1, 0.1, 0.1]),
    ("12+9=", "21", True, False, -0.25, [0.1, -0.15, -0.5], [-0.6, 0.2, 0.4]),
]

VARIANTS = [
    dict(name="token_mean", agg="token-mean", eps=0.2, eps_high=0.28, beta=0.0, norm_len=0.0),
    dict(name="token_mean_kl", agg="token-mean", eps=0.2, eps_high=0.28, beta=0.3, norm_len=0.0),
    dict(name="seq_mean", agg="seq-mean-token-mean", eps=0.2, eps_high=0.28, beta=0.0,
         norm_len=0.0),
    dict(name="seq_mean_kl", agg="seq-mean-token-mean", eps=0.2, eps_high=0.28, beta=0.3,
         norm_len=0.0),
    dict(name="sum_norm", agg="seq-mean-token-sum-norm", eps=0.2, eps_high=0.28, beta=0.0,
         norm_len=6.0),
    dict(name="sum_norm_kl", agg="seq-mean-token-sum-norm", eps=0.2, eps_high=0.28, beta=0.3,
         norm_len=6.0),
    # epsilon_high 0 means "the same as epsilon": symmetric clipping at 0.2
    dict(name="token_mean_sym", agg="token-mean", eps=0.2, eps_high=0.0, beta=0.0, norm_len=0.0),
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


def grpo_loss(var, lp, old, ref, adv, mask):
    """The step loss of docs/rl.md. lp, old, ref, mask are [R, T]; adv [R];
    mask is 1 on the unmasked rows' completion tokens. Returns the loss and the
    clip fraction, mean ratio and mean k3 (NaN without KL) over those tokens."""
    eps_lo = var["eps"]
    eps_hi = var["eps_high"] if var["eps_high"] > 0 else var["eps"]
    A = adv.unsqueeze(-1)
    rho = torch.exp(lp - old)
    per_token = -torch.min(rho * A, torch.clamp(rho, 1 - eps_lo, 1 + eps_hi) * A)
    kl = torch.exp(ref - lp) - (ref - lp) - 1
    if var["beta"] > 0:
        per_token = per_token + var["beta"] * kl
    per_token = per_token * mask
    rows = mask.sum(-1) > 0  # the unmasked rows
    n_seq = int(rows.sum())
    if var["agg"] == "token-mean":
        loss = per_token.sum() / mask.sum()
    elif var["agg"] == "seq-mean-token-mean":
        loss = (per_token.sum(-1)[rows] / mask.sum(-1)[rows]).sum() / n_seq
    else:
        loss = per_token.sum(-1)[rows].sum() / (n_seq * var["norm_len"])
    with torch.no_grad():
        clipped = ((rho > 1 + eps_hi) & (A > 0)) | ((rho < 1 - eps_lo) & (A < 0))
        n = mask.sum()
        stats = dict(clip_fraction=float((clipped.to(mask.dtype) * mask).sum() / n),
                     ratio=float((rho * mask).sum() / n),
                     kl=float((kl * mask).sum() / n) if var["beta"] > 0 else float("nan"))
    return loss, stats


def compute(weights, dtype, tokens, targets, old, ref, adv, mask):
    """Per variant the step loss, its statistics and its gradients."""
    model = R.build(CFG, weights, dtype)
    out = {}
    for var in VARIANTS:
        model.zero_grad()
        lp, _ = token_logp(model, tokens, targets)
        loss, stats = grpo_loss(var, lp, old.to(dtype), ref.to(dtype), adv.to(dtype),
                                mask.to(dtype))
        loss.backward()
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
        out[var["name"]] = (loss.item(), stats, grads)
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
    ref = torch.zeros(Rn, T, dtype=torch.float64)
    mask = torch.zeros(Rn, T, dtype=torch.float64)
    for r, (_, _, _, masked, _, ratios, offsets) in enumerate(ROWS):
        first = loss_from[r] - 1
        assert len(ratios) == len(offsets) == lens[r] - loss_from[r]
        for k, (x, o) in enumerate(zip(ratios, offsets)):
            v = float(lp64[r, first + k])
            old[r, first + k] = math.floor((v - x) * 64 + 0.5) / 64
            ref[r, first + k] = math.floor((v + o) * 64 + 0.5) / 64
            if not masked:
                mask[r, first + k] = 1.0
                # the rounded log-ratio stays clear of every clip boundary
                lr = v - float(old[r, first + k])
                assert min(abs(lr - b) for b in (LN_HI, LN_HI_SYM, LN_LO)) > 0.02, (r, k, lr)
    adv = torch.tensor([row[4] for row in ROWS], dtype=torch.float64)
    entropy = float((ent64 * mask).sum() / mask.sum())

    res32 = compute(weights, torch.float32, tokens, targets, old, ref, adv, mask)
    res64 = compute(weights, torch.float64, tokens, targets, old, ref, adv, mask)
    print("mean entropy over the unmasked completion tokens", round(entropy, 6))
    for var in VARIANTS:
        l32, _, g32 = res32[var["name"]]
        l64, s64, g64 = res64[var["name"]]
        worst = max(R.rel_err(g32[n], g64[n]) for n in g64)
        print(f"{var['name']}: loss {l64:.6f}, clip fraction {s64['clip_fraction']:.4f}, ratio "
              f"{s64['ratio']:.4f}, kl {s64['kl']:.4f}; float32 vs float64 PyTorch: loss "
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
          R.f32("advantage", adv),
          R.f32("old_logp", old),
          R.f32("ref_logp", ref),
          R.f32("token_logp", lp64),
          ("entropy", "F32", (1,), [entropy])]
    meta = dict(variants=",".join(v["name"] for v in VARIANTS), torch=torch.__version__,
                precision="float64", seed=CFG["seed"])
    for var in VARIANTS:
        loss, stats, grads = res64[var["name"]]
        fx.append((var["name"] + ".loss", "F32", (1,), [loss]))
        for key in ("clip_fraction", "ratio", "kl"):
            fx.append((f"{var['name']}.{key}", "F32", (1,), [stats[key]]))
        fx += [R.f32(f"{var['name']}.grad.{n}", grads[n]) for n in R.hf_param_names(CFG)]
        meta[f"{var['name']}.loss_agg"] = var["agg"]
        for key, field in (("epsilon", "eps"), ("epsilon_high", "eps_high"),
                           ("kl_beta", "beta"), ("norm_len", "norm_len")):
            meta[f"{var['name']}.{key}"] = repr(var[field])
    R.write_safetensors(os.path.join(OUT_DIR, "expected.safetensors"), fx, meta)
    print("fixture written under", os.path.relpath(OUT_DIR))
    return 0


if __name__ == "__main__":
    sys.exit(main())
