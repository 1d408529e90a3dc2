#!/usr/bin/python3
"""torch_rl_step.py: the PyTorch side of the RL-step benchmark (bench/bench_rl.c).

One step, as autodidact's rl stage runs it (src/loop/run_rl.c; docs/rl.md):
  generation  P reverse-add prompts at the check's levels, G completions each,
              sampled at temperature 1 with a KV cache (or without: --gen),
              budget = answer bound + 1 = digits + 2 tokens, with the per-token
              log-probs of the sampling policy;
  scoring     the checker (reverse the digits and add, in Python), the verifier
              reward, grpo advantages (r - mean) / (std + 1e-4) per group, and
              the step's figures;
  update      one step of the clipped-ratio objective (epsilon 0.2, token-mean
              over all unmasked completion tokens of the batch, no KL) in
              micro-batches, with the policy's entropy and clip fraction, then
              global-norm clipping at 1 and AdamW (0.9, 0.98, 1e-8, weight decay
              0.01 on matrices), lr 2e-4.
Outputs cut at the budget without EOS are masked (never trained on), as
rl.incomplete = mask does ("incomplete" in check.json; "penalty" would give them
reward -1 and train on them).

Weights and shapes come from DIR, written by `bench_rl --dump DIR`:
model.safetensors (read by hand: 8-byte header length, JSON header, raw
float32) and check.json (n_heads, prompts, group, micro-batch, levels, and a few
sequences with autodidact's logits and sampler log-probs). The script first
prints the max-abs-diff of this model's logits against autodidact's on those
sequences, so both sides compute the same function.

"At its best setting": generation with a KV cache (prefill each prompt once,
then the cache repeated for its G samples; rows of one level share a length, so
no padding) or without one (the whole sequence re-run every token), over all
rows of a level at once or in chunks; the update in micro-batches of the
check's size (as autodidact) or all rows at once. --explore times each choice
on a few steps and keeps the fastest generation and the fastest update for the
timed steps. Output: '#' lines and, per timed step,
    RESULT rl pytorch <threads> gen=S score=S update=S total=S key=value ...
Run with /usr/bin/python3 (Debian's python3-torch); bench/run_rl.sh runs it.
"""

import argparse
import json
import os
import random
import struct
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_baseline import EOS, BOS, Llama, median  # noqa: E402

PAD = 0
PLUS, EQ = 13, 14  # ids of '+' and '='; digit d is 3 + d


# ---- weights ------------------------------------------------------------------

def read_safetensors(path):
    """name -> float32 tensor, from the file format alone."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    data, out = blob[8 + n:], {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: {name} has dtype {info['dtype']}, expected F32")
        b, e = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32).reshape(info["shape"])
    return out


def load_model(path, n_heads):
    """torch_baseline's Llama with autodidact's weights (Hugging Face names)."""
    t = read_safetensors(path)
    layers = sum(1 for k in t if k.endswith("self_attn.q_proj.weight"))
    c = dict(n_layers=layers, n_heads=n_heads, d_model=t["model.norm.weight"].shape[0],
             d_ff=t["model.layers.0.mlp.gate_proj.weight"].shape[0])
    m = Llama(c)
    names = {"embed.weight": "model.embed_tokens.weight", "norm.weight": "model.norm.weight",
             "lm_head.weight": "lm_head.weight"}
    for i in range(layers):
        hf = f"model.layers.{i}."
        for k in ("q_proj", "k_proj", "v_proj", "o_proj"):
            names[f"layers.{i}.{k}.weight"] = hf + f"self_attn.{k}.weight"
        for k in ("gate_proj", "up_proj", "down_proj"):
            names[f"layers.{i}.{k}.weight"] = hf + f"mlp.{k}.weight"
        for k in ("input_layernorm", "post_attention_layernorm"):
            names[f"layers.{i}.{k}.weight"] = hf + f"{k}.weight"
    sd = {ours: t[hf] for ours, hf in names.items()}
    m.load_state_dict(sd, strict=True)
    return m


@torch.no_grad()
def check(model, seqs):
    """Max-abs-diff of the logits and of the sampler's log-probs (autodidact's)
    against this model's teacher-forced forward."""
    d_logits = d_logp = 0.0
    for s in seqs:
        tok = torch.tensor(s["tokens"])
        logits, _ = model(tok[None])
        logits = logits[0]
        ref = torch.tensor(s["logits"], dtype=torch.float32).reshape(logits.shape)
        d_logits = max(d_logits, (logits - ref).abs().max().item())
        lf = s["loss_from"]
        lp = logits[lf - 1:-1].log_softmax(-1).gather(-1, tok[lf:, None])[:, 0]
        d_logp = max(d_logp, (lp - torch.tensor(s["old_logp"])).abs().max().item())
    return d_logits, d_logp


# ---- generation ---------------------------------------------------------------

def pose(rng, levels, P):
    """P reverse-add prompts (operands least significant digit first, the last
    digit 1-9, as src/tasks/task_add.c): (level, a digits, b digits)."""
    out = []
    for _ in range(P):
        n = rng.choice(levels)
        a = [rng.randrange(10) for _ in range(n - 1)] + [rng.randrange(1, 10)]
        b = [rng.randrange(10) for _ in range(n - 1)] + [rng.randrange(1, 10)]
        out.append((n, a, b))
    return out


def encode(a, b):
    return [BOS] + [3 + d for d in a] + [PLUS] + [3 + d for d in b] + [EQ]


@torch.inference_mode()
def sample_rows(model, prompt_ids, G, budget, cache):
    """G completions of each of the R prompts (one length): tokens [R*G, budget],
    their log-probs, rows in prompt order. Every row runs the whole budget (rows
    past EOS are ignored afterwards, as batched Hugging Face generation does)."""
    toks, lps = [], []
    if cache:
        logits, caches = model(prompt_ids)
        last = logits[:, -1].repeat_interleave(G, 0)
        caches = [(k.repeat_interleave(G, 0), v.repeat_interleave(G, 0)) for k, v in caches]
    else:
        seq = prompt_ids.repeat_interleave(G, 0)
        last = model(seq)[0][:, -1]
    for t in range(budget):
        logp = last.log_softmax(-1)
        tok = torch.multinomial(logp.exp(), 1)
        toks.append(tok)
        lps.append(logp.gather(-1, tok))
        if t + 1 == budget:
            break
        if cache:
            logits, caches = model(tok, caches)
        else:
            seq = torch.cat([seq, tok], 1)
            logits, _ = model(seq)
        last = logits[:, -1]
    return torch.cat(toks, 1), torch.cat(lps, 1)


def generate(model, problems, G, mode, chunk):
    """Rollouts of every prompt, grouped by level (one prompt length each) and
    split into chunks of at most `chunk` prompts (0: all of a level at once).
    Returns a list of rows (prompt index, prompt ids, completion ids with EOS
    when reached, their log-probs, hit_eos)."""
    by_level = {}
    for i, (n, _, _) in enumerate(problems):
        by_level.setdefault(n, []).append(i)
    rows = []
    for n, idx in sorted(by_level.items()):
        step = chunk or len(idx)
        for s in range(0, len(idx), step):
            part = idx[s:s + step]
            ids = [encode(problems[i][1], problems[i][2]) for i in part]
            tok, lp = sample_rows(model, torch.tensor(ids), G, n + 2, mode == "cache")
            for r, (t_row, l_row) in enumerate(zip(tok.tolist(), lp.tolist())):
                end = t_row.index(EOS) + 1 if EOS in t_row else len(t_row)
                rows.append((part[r // G], ids[r // G], t_row[:end], l_row[:end], EOS in t_row))
    return rows


# ---- scoring ------------------------------------------------------------------

def expected_sum(a, b):
    """Reverse addition: digits least significant first, max(len) + 1 digits."""
    out, carry = [], 0
    for i in range(max(len(a), len(b))):
        s = carry + (a[i] if i < len(a) else 0) + (b[i] if i < len(b) else 0)
        out.append(s % 10)
        carry = s // 10
    return out + [carry]


def score(rows, problems, G, penalty):
    """Rewards, grpo advantages per group, and the figures. Returns (advantages
    by row, masked by row, figures)."""
    P = len(problems)
    reward = torch.zeros(P, G)
    correct = torch.zeros(P, G)
    slot = [0] * P
    where = []
    for (i, _, comp, _, eos) in rows:
        body = [t - 3 for t in (comp[:-1] if eos else comp)]
        ok = eos and body == expected_sum(problems[i][1], problems[i][2])
        j = slot[i]
        slot[i] += 1
        correct[i, j] = float(ok)
        reward[i, j] = -1.0 if (penalty and not eos) else float(ok)
        where.append((i, j))
    mean = reward.mean(1, keepdim=True)
    adv = (reward - mean) / (reward.std(1, keepdim=True) + 1e-4)
    rewarded = reward >= 0.5
    fig = dict(reward=reward.mean().item(), accuracy=correct.mean().item(),
               zero_variance=(reward.std(1) == 0).float().mean().item(),
               precision=(correct[rewarded].mean().item() if rewarded.any() else float("nan")),
               length=sum(len(r[2]) for r in rows) / len(rows),
               incomplete=sum(not r[4] for r in rows) / len(rows))
    advs = [adv[i, j].item() for i, j in where]
    masked = [(not r[4]) and not penalty for r in rows]
    return advs, masked, fig


# ---- update -------------------------------------------------------------------

def make_optimizer(model):
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() == 1]
    return torch.optim.AdamW([dict(params=decay, weight_decay=0.01),
                              dict(params=no_decay, weight_decay=0.0)],
                             lr=2e-4, betas=(0.9, 0.98), eps=1e-8, foreach=True)


def update(model, opt, rows, advs, masked, micro, eps=0.2):
    """One grpo step over the unmasked rows: token-mean of the clipped-ratio
    loss over the batch, backward per micro-batch, clip, AdamW."""
    keep = [k for k in range(len(rows)) if not masked[k]]
    n_tok = sum(len(rows[k][2]) for k in keep)
    opt.zero_grad(set_to_none=False)
    stats = dict(loss=0.0, entropy=0.0, clipped=0.0)
    step = micro or len(keep)
    for s in range(0, len(keep), step):
        part = keep[s:s + step]
        T = max(len(rows[k][1]) + len(rows[k][2]) for k in part)
        tok = torch.full((len(part), T), PAD, dtype=torch.long)
        old = torch.zeros(len(part), T - 1)
        mask = torch.zeros(len(part), T - 1)
        A = torch.tensor([advs[k] for k in part])[:, None]
        for r, k in enumerate(part):
            _, ids, comp, lp, _ = rows[k]
            tok[r, :len(ids) + len(comp)] = torch.tensor(ids + comp)
            old[r, len(ids) - 1:len(ids) - 1 + len(comp)] = torch.tensor(lp)
            mask[r, len(ids) - 1:len(ids) - 1 + len(comp)] = 1
        logits, _ = model(tok)
        logp_all = logits[:, :-1].log_softmax(-1)
        logp = logp_all.gather(-1, tok[:, 1:, None])[..., 0]
        ratio = torch.exp(logp - old)
        loss_tok = -torch.min(ratio * A, ratio.clamp(1 - eps, 1 + eps) * A)
        loss = (loss_tok * mask).sum() / n_tok
        loss.backward()
        with torch.no_grad():
            stats["loss"] += loss.item()
            ent = -(logp_all.exp() * logp_all).sum(-1)
            stats["entropy"] += (ent * mask).sum().item() / n_tok
            clip = ((ratio > 1 + eps) & (A > 0)) | ((ratio < 1 - eps) & (A < 0))
            stats["clipped"] += (clip.float() * mask).sum().item() / n_tok
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return stats


# ---- the steps ----------------------------------------------------------------

def rl_step(model, opt, cfg, rng, gen_mode, chunk, micro):
    t0 = time.perf_counter()
    problems = pose(rng, cfg["levels"], cfg["prompts"])
    rows = generate(model, problems, cfg["group"], gen_mode, chunk)
    t1 = time.perf_counter()
    advs, masked, fig = score(rows, problems, cfg["group"], cfg["incomplete"] == "penalty")
    t2 = time.perf_counter()
    st = update(model, opt, rows, advs, masked, micro)
    t3 = time.perf_counter()
    fig.update(st, tokens=sum(len(r[2]) for r in rows))
    return (t1 - t0, t2 - t1, t3 - t2), fig


def explore(model, opt, cfg, rng, reps):
    """The fastest generation (mode, chunk) and update micro-batch, each by
    its median phase time over `reps` steps after one warm-up."""
    gen_times, upd_times = {}, {}
    if reps < 1:
        raise ValueError("--explore needs at least 1 step a setting")
    for gen in (("cache", 0), ("cache", 16), ("nocache", 0)):
        rl_step(model, opt, cfg, rng, gen[0], gen[1], cfg["batch"])
        ts = []
        for _ in range(reps):  # a setting 3x slower than the best after one step is out
            ts.append(rl_step(model, opt, cfg, rng, gen[0], gen[1], cfg["batch"])[0][0])
            if gen_times and ts[0] > 3 * min(gen_times.values()):
                break
        gen_times[gen] = median(ts)
        print(f"# explore gen={gen[0]} chunk={gen[1] or 'all'}: median {gen_times[gen]:.3f} s",
              flush=True)
    best_gen = min(gen_times, key=gen_times.get)
    for micro in (cfg["batch"], 0):
        ts = [rl_step(model, opt, cfg, rng, best_gen[0], best_gen[1], micro)[0] for _ in range(reps)]
        upd_times[micro] = median([t[2] for t in ts])
        print(f"# explore update micro-batch={micro or 'all'}: median {upd_times[micro]:.3f} s",
              flush=True)
    best_upd = min(upd_times, key=upd_times.get)
    print(f"# best: --gen {best_gen[0]} --chunk {best_gen[1]} --micro {best_upd} "
          f"(estimate {gen_times[best_gen] + upd_times[best_upd]:.3f} s a step)", flush=True)
    return best_gen, best_upd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--from", dest="src", required=True, help="bench_rl --dump DIR")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gen", default="cache", help="cache or nocache (ignored with --explore)")
    ap.add_argument("--chunk", type=int, default=0, help="prompts a generation batch (0: a level)")
    ap.add_argument("--micro", type=int, default=-1, help="update rows a micro-batch "
                    "(-1: the check's, 0: all)")
    ap.add_argument("--explore", type=int, default=0, metavar="REPS",
                    help="first time each setting over REPS steps and keep the fastest")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    with open(os.path.join(a.src, "check.json")) as f:
        cfg = json.load(f)
    model = load_model(os.path.join(a.src, "model.safetensors"), int(cfg["n_heads"]))
    n_params = sum(p.numel() for p in model.parameters())
    d_logits, d_logp = check(model, cfg["sequences"])
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, {n_params} params, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}", flush=True)
    print(f"# check: logits max-abs-diff {d_logits:.3g} over {len(cfg['sequences'])} sequences "
          f"of autodidact's first step; sampler log-probs vs teacher-forced {d_logp:.3g}",
          flush=True)
    opt = make_optimizer(model)
    rng = random.Random(a.seed)
    gen, micro = (a.gen, a.chunk), (cfg["batch"] if a.micro < 0 else a.micro)
    if a.explore:
        gen, micro = explore(model, opt, cfg, rng, a.explore)
    if a.steps:
        rl_step(model, opt, cfg, rng, gen[0], gen[1], micro)  # warm-up
    setting = f"gen={gen[0]} chunk={gen[1] or 'all'} micro={micro or 'all'}"
    for s in range(1, a.steps + 1):
        (tg, ts, tu), f = rl_step(model, opt, cfg, rng, gen[0], gen[1], micro)
        print(f"RESULT rl pytorch {a.threads} gen={tg:.4f} score={ts:.4f} update={tu:.4f} "
              f"total={tg + ts + tu:.4f} step={s} tokens={f['tokens']} length={f['length']:.2f} "
              f"incomplete={f['incomplete']:.3f} reward={f['reward']:.3f} "
              f"accuracy={f['accuracy']:.3f} loss={f['loss']:.4f} entropy={f['entropy']:.3f} "
              f"{setting} params={n_params} check={d_logits:.2g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
