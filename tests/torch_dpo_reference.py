#!/usr/bin/python3
"""torch_dpo_reference.py: writes the PyTorch reference fixture for the DPO
objective, checked by tests/test_objectives.c.

The model is tests/torch_reference.py's (same nn.Module code, same seeded
weight drawing, same checkpoint writer), in its NoPE untied shape with seed 5.
Four preference pairs (prompt, chosen, rejected) of the fixture vocabulary are
encoded as the engine does (BOS + prompt + completion + EOS; the loss covers the
completion and EOS) in the row order c0, r0, c1, r1, ... Their reference
log-probs are fixed numbers (the policy's own log-probs moved by a few nats and
rounded to 1/8, so they are exact in float32 and the margins have both signs).
For each loss variant (sigmoid DPO, conservative DPO with label smoothing, IPO,
RPO) the script computes the mean pair loss over the four pairs and the
gradient of that mean for every tensor, and writes under
tests/fixtures/torch_dpo/:

  ckpt/model.safetensors, ckpt/config.json   the weights and config (as torch_reference.py)
  expected.safetensors
      tokens, targets    I32 [2P, T]  right-padded rows, targets -1 off the completion
      lens, loss_from    I32 [2P]     each row's length and first completion index
      ref_logp           F32 [2P]     the fixed reference log-probs
      logp               F32 [2P]     the policy's log p(completion + EOS | BOS + prompt)
      <variant>.loss     F32 [1]      the mean pair loss
      <variant>.grad.<tensor name>    its gradient, every tensor
    metadata: variants (comma-separated), and per variant <variant>.loss_type
    (sigmoid|ipo|rpo), .beta, .label_smoothing, .nll_weight.

As in torch_reference.py everything is computed in float64 from the float32
weights (the fixture holds those results rounded to float32) and again in
float32, and the script prints how far float32 PyTorch is from float64: the
noise floor for the C test's tolerance.

Run with Debian's python3-torch, which imports only under /usr/bin/python3:
    /usr/bin/python3 tests/torch_dpo_reference.py
"""

import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as R  # noqa: E402  (the shared model, weights and file writers)

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "torch_dpo")
CFG = dict(R.BASE, pos="none", tie=False, seed=5)

# (prompt, chosen, rejected): same prompt, completions of different lengths.
PAIRS = [("1+2=", "3", "4"), ("7+8=", "15", "16a"), ("ab=", "cd", "c"), ("12+9=", "21", "12")]
# Reference = policy + these offsets (nats), rounded to 1/8: margins about
# -a + b = 2.5, -3, -0.25, 5 (without beta).
REF_OFFSET_CHOSEN = [-1.0, 2.0, 0.5, -3.0]
REF_OFFSET_REJECTED = [1.5, -1.0, 0.25, 2.0]

VARIANTS = [
    dict(name="sigmoid", loss="sigmoid", beta=0.5, label_smoothing=0.0, nll_weight=0.0),
    dict(name="sigmoid_ls", loss="sigmoid", beta=0.5, label_smoothing=0.1, nll_weight=0.0),
    dict(name="ipo", loss="ipo", beta=0.5, label_smoothing=0.0, nll_weight=0.0),
    dict(name="rpo", loss="rpo", beta=0.5, label_smoothing=0.0, nll_weight=0.7),
]


def make_rows():
    """Rows c0, r0, c1, r1, ...: tokens and targets [2P, T], lengths, loss_from."""
    sym = {s: i for i, s in enumerate(R.VOCAB)}
    seqs, loss_from = [], []
    for prompt, chosen, rejected in PAIRS:
        for completion in (chosen, rejected):
            seqs.append([R.BOS] + [sym[c] for c in prompt + completion] + [R.EOS])
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


def row_logp(model, tokens, targets):
    """Sum over each row's completion tokens (and EOS) of log p(target)."""
    logp = model(tokens).log_softmax(-1)
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * (targets >= 0).to(logp.dtype)).sum(-1)


def pair_losses(var, lp, ref, n_tok):
    """The per-pair losses of docs/objectives.md; lp, ref, n_tok are [2P] in row order."""
    lp_c, lp_r, ref_c, ref_r = lp[0::2], lp[1::2], ref[0::2], ref[1::2]
    len_c, len_r = n_tok[0::2], n_tok[1::2]
    beta, e = var["beta"], var["label_smoothing"]
    if var["loss"] == "ipo":
        m = (lp_c - ref_c) / len_c - (lp_r - ref_r) / len_r
        return (m - 1.0 / (2.0 * beta)) ** 2
    h = beta * ((lp_c - ref_c) - (lp_r - ref_r))
    loss = -(1.0 - e) * F.logsigmoid(h) - e * F.logsigmoid(-h)
    if var["loss"] == "rpo":
        loss = loss + var["nll_weight"] * (-lp_c / len_c)
    return loss


def compute(weights, dtype, tokens, targets, ref, n_tok):
    """Policy log-probs, and per variant the mean pair loss and its gradients."""
    model = R.build(CFG, weights, dtype)
    out = {}
    with torch.no_grad():
        lp0 = row_logp(model, tokens, targets)
    for var in VARIANTS:
        model.zero_grad()
        lp = row_logp(model, tokens, targets)
        loss = pair_losses(var, lp, ref.to(dtype), n_tok.to(dtype)).mean()
        loss.backward()
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
        out[var["name"]] = (loss.item(), grads)
    return lp0, out


def main():
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    weights = R.draw_weights(CFG, CFG["seed"])
    tokens, targets, lens, loss_from = make_rows()
    n_tok = torch.tensor([n - f for n, f in zip(lens, loss_from)], dtype=torch.float64)

    with torch.no_grad():
        lp64 = row_logp(R.build(CFG, weights, torch.float64), tokens, targets)
    offsets = [x for pair in zip(REF_OFFSET_CHOSEN, REF_OFFSET_REJECTED) for x in pair]
    ref = torch.tensor([math.floor((float(v) + o) * 8 + 0.5) / 8 for v, o in zip(lp64, offsets)],
                       dtype=torch.float64)

    lp32, res32 = compute(weights, torch.float32, tokens, targets, ref, n_tok)
    lp64, res64 = compute(weights, torch.float64, tokens, targets, ref, n_tok)
    margins = (lp64[0::2] - ref[0::2]) - (lp64[1::2] - ref[1::2])
    print("policy log-probs", [round(float(v), 4) for v in lp64])
    print("margins", [round(float(v), 4) for v in margins])
    for var in VARIANTS:
        l32, g32 = res32[var["name"]]
        l64, g64 = res64[var["name"]]
        worst = max(R.rel_err(g32[n], g64[n]) for n in g64)
        print(f"{var['name']}: loss {l64:.6f}; float32 vs float64 PyTorch: loss "
              f"{abs(l32 - l64) / abs(l64):.2e}, worst grad {worst:.2e}")

    os.makedirs(os.path.join(OUT_DIR, "ckpt"), exist_ok=True)
    R.write_config(os.path.join(OUT_DIR, "ckpt", "config.json"), CFG)
    R.write_safetensors(os.path.join(OUT_DIR, "ckpt", "model.safetensors"),
                        [R.f32(n, weights[n]) for n in R.hf_param_names(CFG)], {"format": "pt"})
    P2 = len(lens)
    fx = [("tokens", "I32", tuple(tokens.shape), tokens.reshape(-1).tolist()),
          ("targets", "I32", tuple(targets.shape), targets.reshape(-1).tolist()),
          ("lens", "I32", (P2,), lens),
          ("loss_from", "I32", (P2,), loss_from),
          R.f32("ref_logp", ref),
          R.f32("logp", lp64)]
    meta = dict(variants=",".join(v["name"] for v in VARIANTS), torch=torch.__version__,
                precision="float64", seed=CFG["seed"])
    for var in VARIANTS:
        loss, grads = res64[var["name"]]
        fx.append((var["name"] + ".loss", "F32", (1,), [loss]))
        fx += [R.f32(f"{var['name']}.grad.{n}", grads[n]) for n in R.hf_param_names(CFG)]
        for key in ("beta", "label_smoothing", "nll_weight"):
            meta[f"{var['name']}.{key}"] = repr(var[key])
        meta[f"{var['name']}.loss_type"] = var["loss"]
    R.write_safetensors(os.path.join(OUT_DIR, "expected.safetensors"), fx, meta)
    print("fixture written under", os.path.relpath(OUT_DIR))
    return 0


if __name__ == "__main__":
    sys.exit(main())
