"""The click-log training step of Infobound, written in PyTorch, as the reference bench:step compares with.

The same work per step as worker/train/contrastive-step.ts on the default click-log config: hashed
features mean-pooled from 2^17-row tables, two-layer query and site towers to unit vectors, the
momentum site tower's keys as positives, InfoNCE of the queries against [keys; a 4,096-key bank] with
logQ correction and masks, the site->query in-batch term, backward, gradient clipping, Adam on the
dense weights, row-wise Adagrad on the touched table rows, the momentum update (dense, and the
touched rows of the key table), the keys enqueued, and on every 10th step the critic scores and the
four bounds. Random feature ids of the same count per row stand in for the featurised text.

Run: python3 pytorch-clicklog-step.py --threads 1 [--steps 20] [--json]   (Debian: python3-torch,
with libopenblas0-openmp so that it does not fall back to the reference BLAS).
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--batch', type=int, default=256)
    ap.add_argument('--bank', type=int, default=4096)
    ap.add_argument('--buckets', type=int, default=1 << 17)
    ap.add_argument('--embedding', type=int, default=64)
    ap.add_argument('--hidden', type=int, default=256)
    ap.add_argument('--out', type=int, default=128)
    ap.add_argument('--query-features', type=int, default=20)
    ap.add_argument('--site-features', type=int, default=20)
    ap.add_argument('--log-every', type=int, default=10)
    ap.add_argument('--json', action='store_true')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    b, k, e, h, d = a.batch, a.bank, a.embedding, a.hidden, a.out
    tau, momentum, lr, sparse_lr, max_norm, masked = 0.07, 0.99, 0.002, 0.05, 5.0, -1e9

    def tower():
        return torch.nn.Sequential(torch.nn.Linear(e, h), torch.nn.ReLU(), torch.nn.Linear(h, d))

    q_tower, s_tower = tower(), tower()
    key_tower = tower()
    key_tower.load_state_dict(s_tower.state_dict())
    for p in key_tower.parameters():
        p.requires_grad_(False)
    q_table = torch.randn(a.buckets, e) * 0.1
    s_table = torch.randn(a.buckets, e) * 0.1
    key_table = s_table.clone()
    q_acc = torch.zeros(a.buckets)
    s_acc = torch.zeros(a.buckets)
    dense = list(q_tower.parameters()) + list(s_tower.parameters())
    adam = torch.optim.Adam(dense, lr=lr)
    bank = F.normalize(torch.randn(k, d), dim=1)
    bank_ids = torch.randint(0, 2000, (k,))
    log_q = torch.log(torch.rand(2000) * 1e-3 + 1e-4)
    head = 0

    def pooled(table, ids):
        return table[ids].mean(dim=1)

    def rowwise_adagrad(table, acc, ids, grad_pooled, count):
        # d(mean pool)/d(row) = 1/count for each of a row's occurrences.
        rows = ids.reshape(-1)
        g = (grad_pooled / count).repeat_interleave(count, dim=0)
        uniq, inverse = torch.unique(rows, return_inverse=True)
        gsum = torch.zeros(uniq.numel(), e).index_add_(0, inverse, g)
        acc[uniq] += (gsum * gsum).mean(dim=1)
        table[uniq] -= sparse_lr * gsum / torch.sqrt(acc[uniq] + 1e-10).unsqueeze(1)
        return uniq

    def step(logged):
        nonlocal head
        q_ids = torch.randint(0, a.buckets, (b, a.query_features))
        s_ids = torch.randint(0, a.buckets, (b, a.site_features))
        sites = torch.randint(0, 2000, (b,))
        with torch.no_grad():
            kpos = F.normalize(key_tower(pooled(key_table, s_ids)), dim=1)
        pq = pooled(q_table, q_ids).requires_grad_(True)
        ps = pooled(s_table, s_ids).requires_grad_(True)
        q = F.normalize(q_tower(pq), dim=1)
        # Other rows' positives masked (MoCo), accidental hits masked, logQ on the bank's keys.
        bias = torch.full((b, b + k), 0.0)
        bias[:, :b] = masked
        bias[torch.arange(b), torch.arange(b)] = -log_q[sites]
        bias[:, b:] = -log_q[bank_ids].unsqueeze(0)
        bias[:, b:][sites.unsqueeze(1) == bank_ids.unsqueeze(0)] = masked
        logits = q @ torch.cat([kpos, bank]).T / tau + bias
        loss = F.cross_entropy(logits, torch.arange(b))
        s = F.normalize(s_tower(ps), dim=1)
        site_mask = torch.where((sites.unsqueeze(1) == sites.unsqueeze(0)) & ~torch.eye(b, dtype=torch.bool), masked, 0.0)
        aux = F.cross_entropy(s @ q.T / tau + site_mask, torch.arange(b))
        adam.zero_grad()
        (loss + aux).backward()
        torch.nn.utils.clip_grad_norm_(dense, max_norm)
        adam.step()
        with torch.no_grad():
            rowwise_adagrad(q_table, q_acc, q_ids, pq.grad, a.query_features)
            touched = rowwise_adagrad(s_table, s_acc, s_ids, ps.grad, a.site_features)
            key_table[touched] = momentum * key_table[touched] + (1 - momentum) * s_table[touched]
            for kp, sp in zip(key_tower.parameters(), s_tower.parameters()):
                kp.mul_(momentum).add_(sp, alpha=1 - momentum)
            rows = (torch.arange(b) + head) % k
            bank[rows] = kpos
            bank_ids[rows] = sites
            head = (head + b) % k
            if logged:
                # The critic as trained, without masks: column 0 the positive, then every bank key.
                scores = torch.cat([(q * kpos).sum(1, keepdim=True) / tau - log_q[sites].unsqueeze(1), q @ bank.T / tau - log_q[bank_ids]], dim=1)
                pos, neg = scores[:, 0], scores[:, 1:]
                infonce = math.log(k + 1) + (pos - torch.logsumexp(scores, 1)).mean()
                dv = pos.mean() - (torch.logsumexp(neg.reshape(-1), 0) - math.log(neg.numel()))
                nwj = pos.mean() - torch.exp(neg - 1).mean()
                jsd = -F.softplus(-pos).mean() - F.softplus(neg).mean()
                return float(infonce + dv + nwj + jsd)
        return None

    for i in range(5):
        step(False)
    times = []
    for i in range(a.steps):
        t0 = time.perf_counter()
        step((i + 1) % a.log_every == 0)
        times.append(time.perf_counter() - t0)
    ms = 1000 * sum(times) / len(times)
    result = {'engine': 'pytorch', 'threads': a.threads, 'ms_per_step': ms, 'examples_per_s': b * 1000 / ms, 'torch': torch.__version__, 'blas': loaded_blas()}
    print(json.dumps(result) if a.json else f"pytorch {torch.__version__} on {result['blas']}, {a.threads} thread(s): {ms:.1f} ms/step, {b * 1000 / ms:.0f} examples/s")


def loaded_blas():
    """Which BLAS the process loaded (Debian's torch takes whatever libblas.so.3 points at)."""
    with open('/proc/self/maps') as maps:
        libs = {line.split('/')[-1].strip() for line in maps if '.so' in line}
    for name in ('openblas', 'mkl', 'blis', 'libblas'):
        hit = sorted(lib for lib in libs if name in lib)
        if hit:
            return hit[0]
    return 'unknown'



if __name__ == '__main__':
    main()
