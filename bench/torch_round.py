#!/usr/bin/python3
"""torch_round.py: one flagship round in PyTorch (issue 11 item 6), the work of
examples/flagship-reverse-add-vote.ini's round for each of L lineages:
  acquire   P reverse-add prompts at the round's level, one greedy answer each
            per lineage (acquire.samples = 1: sample 0 is greedy) with a KV
            cache, budget = answer bound + 1 = digits + 2 tokens;
  select    the vote across lineages (kept when all L answers agree);
  optimize  STEPS AdamW steps of BATCH sequences per lineage on the kept labels
            (loss on the answer tokens; the generated answers when none is kept,
            so the step count and shapes stay those of the round);
  evaluate  N problems at each of the eval levels per lineage, greedy.
Model code, prompts and the checker come from torch_rl_step.py / torch_baseline.py.
--amp bf16 trains under CPU autocast to bf16 (oneDNN's bf16 products where the
CPU has AVX512-BF16), PyTorch's counterpart of autodidact's run.precision = bf16.
Weights: --ckpt RUN (a run whose round-0 checkpoints are lineage i's base, e.g. the
base of bench/profile_round.sh)
or random. Prints '#' lines and
    RESULT round pytorch <threads> acquire=S select=S optimize=S evaluate=S total=S
        tokens=N steps=N sequences=N kept=N
Run with /usr/bin/python3 (Debian's python3-torch). Not a test.
"""

import argparse
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_baseline import EOS, Llama  # noqa: E402
from torch_rl_step import encode, expected_sum, load_model, make_optimizer, pose  # noqa: E402


@torch.inference_mode()
def greedy(model, problems):
    """Greedy answers (digit lists, None when EOS never came) of problems of
    one level, in one batch with a KV cache; returns (answers, tokens made)."""
    n = problems[0][0]
    ids = torch.tensor([encode(a, b) for _, a, b in problems])
    logits, caches = model(ids)
    toks = []
    for t in range(n + 2):
        tok = logits[:, -1].argmax(-1, keepdim=True)
        toks.append(tok)
        if t + 1 < n + 2:
            logits, caches = model(tok, caches)
    rows = torch.cat(toks, 1).tolist()
    out, made = [], 0
    for r in rows:
        end = r.index(EOS) if EOS in r else None
        made += (end + 1) if end is not None else len(r)
        out.append(None if end is None else [x - 3 for x in r[:end]])
    return out, made


def train(model, opt, seqs, steps, batch, lr, rng, amp=False):
    """STEPS steps of BATCH (prompt ids, answer ids) pairs drawn from seqs;
    amp: forward and loss under CPU autocast to bf16 (weights and AdamW fp32)."""
    for g in opt.param_groups:
        g["lr"] = lr
    for _ in range(steps):
        pick = [seqs[rng.randrange(len(seqs))] for _ in range(batch)]
        width = max(len(p) + len(a) for p, a in pick)
        tok = torch.zeros(batch, width, dtype=torch.long)
        tgt = torch.full((batch, width), -100, dtype=torch.long)
        for i, (p, a) in enumerate(pick):
            s = p + a
            tok[i, :len(s)] = torch.tensor(s)
            tgt[i, len(p) - 1:len(s) - 1] = torch.tensor(a)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            logits, _ = model(tok)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tgt.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default="")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lineages", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=1024)
    ap.add_argument("--level", type=int, default=9)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--eval-n", type=int, default=256)
    ap.add_argument("--eval-levels", default="8-13")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--amp", choices=["off", "bf16"], default="off",
                    help="bf16: train under CPU autocast (autodidact's run.precision = bf16)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    shape = dict(n_layers=3, n_heads=4, d_model=128, d_ff=512)
    models = [load_model(f"{a.ckpt}/ckpt/l{i:02d}/r0000/model.safetensors", 4) if a.ckpt
              else Llama(shape) for i in range(a.lineages)]
    lo, hi = (int(x) for x in a.eval_levels.split("-"))
    sec = dict(acquire=0.0, select=0.0, optimize=0.0, evaluate=0.0)
    tokens = steps = sequences = 0

    t0 = time.perf_counter()
    problems = pose(rng, [a.level], a.prompts)
    answers = []
    for m in models:
        ans, made = greedy(m, problems)
        answers.append(ans)
        tokens += made
        sequences += len(problems)
    t1 = time.perf_counter()
    sec["acquire"] = t1 - t0
    acquire_tokens = tokens
    kept = [(encode(p[1], p[2]), [3 + d for d in ans[0]] + [EOS])
            for p, *ans in zip(problems, *answers)
            if ans[0] is not None and all(x == ans[0] for x in ans)]
    fallback = [(encode(p[1], p[2]), [3 + d for d in (ans or [])] + [EOS])
                for p, ans in zip(problems, answers[0])]
    sec["select"] = time.perf_counter() - t1

    t1 = time.perf_counter()
    for m in models:
        train(m, make_optimizer(m), kept or fallback, a.steps, a.batch, a.lr, rng, a.amp == "bf16")
        steps += a.steps
    sec["optimize"] = time.perf_counter() - t1

    t1 = time.perf_counter()
    correct = 0
    for m in models:
        for n in range(lo, hi + 1):
            probs = pose(rng, [n], a.eval_n)
            ans, made = greedy(m, probs)
            tokens += made
            sequences += len(probs)
            correct += sum(x == expected_sum(p[1], p[2]) for x, p in zip(ans, probs))
    sec["evaluate"] = time.perf_counter() - t1
    total = time.perf_counter() - t0
    print(f"# eval correct {correct} of {a.lineages * a.eval_n * (hi - lo + 1)}")
    print(f"# training autocast: {a.amp}")
    print(f"RESULT round pytorch {a.threads} " + " ".join(f"{k}={v:.3f}" for k, v in sec.items())
          + f" total={total:.3f} tokens={tokens} acquire_tokens={acquire_tokens} steps={steps} sequences={sequences} kept={len(kept)}")


if __name__ == "__main__":
    main()
