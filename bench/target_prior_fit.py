#!/usr/bin/env python3
"""Fit the built-in size-target prior on measured one-tensor-at-a-time KLDs (issue 14).

Inputs: pairs PROXY.json QUANT.json per model, PROXY.json from `qforge quantize --target-size N
--imatrix F --calibration TEXT --proxy-out PROXY.json --json > QUANT.json` (its "measured"
rows: each tensor alone at one type, the rest F16, KLD on chunks of TEXT; QUANT.json's
allocation.sensitivity gives each tensor's signal). Model (log10):
  log10(kld / relerr) = C_model + a_kind + f_kind*[layer==0] + s_kind*(depth - 0.5)
relerr = error / signal (scale-free: the absolute errors of two models differ by their
activation scale, the relative ones do not), depth = (layer-1)/(n_layer-2) over layers 1..n-1.
C_model is free per model (the allocation depends only on ratios within one model).
Prints the factors and Spearman in sample and across models (fit on one, rank the other).

hessian_proxy_model() (src/quant/size_target.cpp) holds this fit (first-block factor, no slope:
the slope fits better in sample and worse across models) on refmodel's and mini's measurements
(docs/BENCHMARKS.md, issue 14, "Built-in prior for Hessian-weighted tables"). output.weight is
split by hand: its relative error is weighted when the imatrix has an entry for it (`imatrix
--process-output`: refmodel's and mini's earlier measurements, geometric mean) and plain when it
has none (mini's measurement with the imatrix as written); the plain one is ~3x larger for the
same KLD, so ProxyModel::unweighted_scale carries its own factor.
Usage: bench/target_prior_fit.py REF.proxy.json REF.quant.json MINI.proxy.json MINI.quant.json"""
import json, math, sys

def load(proxy, quant):
    p = json.load(open(proxy))
    s = {t['name']: t for t in json.load(open(quant))['allocation']['sensitivity']}
    nl = max(t['layer'] for t in s.values()) + 1
    rows = []
    for r in p['measured']:
        t = s[r['name']]
        if r['kld'] <= 0 or t['signal'] <= 0: continue
        rows.append(dict(name=r['name'], kind=r['kind'], layer=r['layer'], kld=r['kld'],
                         rel=r['error'] / t['signal'], err=r['error'], nl=nl))
    return rows

def feats(r, use_first, use_slope):
    f = [1.0]
    if r['layer'] >= 0:
        if use_first: f.append(1.0 if r['layer'] == 0 else 0.0)
        if use_slope:
            d = 0.0 if r['layer'] == 0 or r['nl'] <= 2 else (r['layer'] - 1) / (r['nl'] - 2) - 0.5
            f.append(d)
    return f

def solve(A, b):
    n = len(b)
    M = [A[i][:] + [b[i]] for i in range(n)]
    for i in range(n):
        p = max(range(i, n), key=lambda k: abs(M[k][i]))
        M[i], M[p] = M[p], M[i]
        if abs(M[i][i]) < 1e-12: M[i][i] = 1e-12
        for k in range(n):
            if k != i:
                c = M[k][i] / M[i][i]
                for j in range(i, n + 1): M[k][j] -= c * M[i][j]
    return [M[i][n] / M[i][i] for i in range(n)]

def fit(models, use_first=True, use_slope=True, ridge=0.05):
    C = {m: 0.0 for m in models}
    par = {}
    for _ in range(50):
        kinds = sorted({r['kind'] for rows in models.values() for r in rows})
        for k in kinds:
            X, y = [], []
            for m, rows in models.items():
                for r in rows:
                    if r['kind'] == k:
                        X.append(feats(r, use_first, use_slope)); y.append(math.log10(r['kld'] / r['rel']) - C[m])
            n = len(X[0])
            A = [[sum(x[i] * x[j] for x in X) + (ridge if i == j and i > 0 else 0) for j in range(n)] for i in range(n)]
            b = [sum(x[i] * yy for x, yy in zip(X, y)) for i in range(n)]
            par[k] = solve(A, b)
        for m, rows in models.items():
            # anchor: the first model's constant is 0
            res = [math.log10(r['kld'] / r['rel']) - sum(p * f for p, f in zip(par[r['kind']], feats(r, use_first, use_slope))) for r in rows]
            C[m] = sum(res) / len(res)
        m0 = next(iter(models))
        c0 = C[m0]
        for m in C: C[m] -= c0
        for k in par: par[k][0] += c0
    return par, C

def predict(par, r, use_first, use_slope):
    p = par.get(r['kind'])
    if p is None: return float('nan')
    return r['rel'] * 10 ** sum(a * f for a, f in zip(p, feats(r, use_first, use_slope)))

def spearman(a, b):
    def rank(v):
        o = sorted(range(len(v)), key=lambda i: v[i]); rk = [0] * len(v)
        for i, j in enumerate(o): rk[j] = i
        return rk
    ra, rb = rank(a), rank(b); n = len(a)
    return 1 - 6 * sum((x - y) ** 2 for x, y in zip(ra, rb)) / (n * (n * n - 1))

if __name__ == '__main__':
    args = sys.argv[1:]
    models = {}
    for i in range(0, len(args), 2):
        models[args[i].split('/')[-1].split('.')[0]] = load(args[i], args[i + 1])
    for uf, us in [(False, False), (True, False), (True, True)]:
        par, C = fit(models, uf, us)
        line = f"first={uf} slope={us}:"
        for m, rows in models.items():
            kl = [r['kld'] for r in rows]
            line += f" {m} in {spearman(kl, [predict(par, r, uf, us) for r in rows]):.3f}"
            others = {k: v for k, v in models.items() if k != m}
            if others:
                po, _ = fit(others, uf, us)
                line += f" cross {spearman(kl, [predict(po, r, uf, us) for r in rows]):.3f}"
            line += f" raw-rel {spearman(kl, [r['rel'] for r in rows]):.3f} raw-abs {spearman(kl, [r['err'] for r in rows]):.3f};"
        print(line)
    par, C = fit(models, True, True)
    print('model constants (log10):', C)
    print(json.dumps({k: [round(10 ** v[0], 6)] + [round(10 ** x, 4) for x in v[1:]] for k, v in par.items()}, indent=1))
