#!/usr/bin/env python3
"""Fits the per-kind factors of the size-target proxy (quant/size_target.h) from
bench/target_calibrate.sh's output and reports how well the proxy ranks the measured KLD.

predicted = factor(kind) * error / signal, factor(kind) = geometric mean over the tensors of
that kind of measured_kld / (error / signal). Spearman rank correlations are printed for the raw
weighted error, the relative error, and the calibrated proxy (leave-one-out: each tensor's factor
comes from the other tensors of its kind, so the figure is not fitted on the point it scores).
Usage: bench/target_fit.py OUTDIR   (reads OUTDIR/table.json and OUTDIR/measured.tsv)
"""
import json
import math
import sys


def ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2.0
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = math.sqrt(sum((x - ma) ** 2 for x in ra))
    vb = math.sqrt(sum((y - mb) ** 2 for y in rb))
    return cov / (va * vb)


def main():
    out = sys.argv[1]
    table = {t["name"]: t for t in json.load(open(out + "/table.json"))["allocation"]["sensitivity"]}
    rows = []
    for line in open(out + "/measured.tsv"):
        name, typ, kld = line.split("\t")
        t = table[name]
        cost = next(c for c in t["costs"] if c["type"] == typ)
        rel = cost["error"] / t["signal"] if t["signal"] > 0 else cost["error"]
        rows.append((name, t["kind"], cost["error"], rel, max(float(kld), 1e-9)))
    kinds = sorted({r[1] for r in rows})
    factor = {}
    for k in kinds:
        logs = [math.log(r[4] / r[3]) for r in rows if r[1] == k]
        factor[k] = math.exp(sum(logs) / len(logs))
    loo = []
    for i, r in enumerate(rows):
        logs = [math.log(s[4] / s[3]) for j, s in enumerate(rows) if s[1] == r[1] and j != i]
        f = math.exp(sum(logs) / len(logs)) if logs else 1.0
        loo.append(f * r[3])
    measured = [r[4] for r in rows]
    res = {
        "n_tensors": len(rows),
        "spearman_weighted_error": spearman([r[2] for r in rows], measured),
        "spearman_relative_error": spearman([r[3] for r in rows], measured),
        "spearman_calibrated_in_sample": spearman([factor[r[1]] * r[3] for r in rows], measured),
        "spearman_calibrated_leave_one_out": spearman(loo, measured),
        "factors": factor,
    }
    print(json.dumps(res, indent=1))
    print("// C++ (size_target.cpp default_proxy_model):", file=sys.stderr)
    for k in kinds:
        print('      {"%s", %.4g},' % (k, factor[k]), file=sys.stderr)


if __name__ == "__main__":
    main()
