#!/usr/bin/env python3
"""Fits the per-kind factors of the size-target proxy (quant/size_target.h) from
bench/target_calibrate.sh's output and reports how well the proxy ranks the measured KLD.

predicted = factor(kind) * depth(layer) * error (log-additive least squares of measured_kld /
error). Spearman rank correlations are printed for the raw weighted error, the relative error
(error / signal) and the fitted variants (absolute or relative error; per kind, or per kind and
layer), in sample and leave-one-out (each tensor scored by a fit without it).
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


def fit(rows, base, use_layer):
    """log(measured / proxy) = a[kind] + b[layer] (b = 0 without layers, b[-1] = 0)."""
    a, b = {}, {}
    for _ in range(50 if use_layer else 1):
        for k in {r["kind"] for r in rows}:
            v = [math.log(r["kld"] / r[base]) - b.get(r["layer"], 0) for r in rows if r["kind"] == k]
            a[k] = sum(v) / len(v)
        if use_layer:
            for l in {r["layer"] for r in rows if r["layer"] >= 0}:
                v = [math.log(r["kld"] / r[base]) - a[r["kind"]] for r in rows if r["layer"] == l]
                b[l] = sum(v) / len(v)
    return a, b


def predict(a, b, r, base):
    return math.exp(a.get(r["kind"], 0.0) + b.get(r["layer"], 0.0)) * r[base]


def main():
    out = sys.argv[1]
    table = {t["name"]: t for t in json.load(open(out + "/table.json"))["allocation"]["sensitivity"]}
    rows = []
    for line in open(out + "/measured.tsv"):
        name, typ, kld = line.split("\t")
        t = table[name]
        cost = next(c for c in t["costs"] if c["type"] == typ)
        rel = cost["error"] / t["signal"] if t["signal"] > 0 else cost["error"]
        rows.append({"name": name, "kind": t["kind"], "layer": t["layer"], "abs": cost["error"],
                     "rel": rel, "kld": max(float(kld), 1e-9)})
    measured = [r["kld"] for r in rows]
    res = {"n_tensors": len(rows),
           "spearman_weighted_error": spearman([r["abs"] for r in rows], measured),
           "spearman_relative_error": spearman([r["rel"] for r in rows], measured)}
    for base in ("abs", "rel"):
        for use_layer in (False, True):
            label = "%s_%s" % (base, "kind_layer" if use_layer else "kind")
            a, b = fit(rows, base, use_layer)
            res["spearman_in_sample_" + label] = spearman([predict(a, b, r, base) for r in rows],
                                                          measured)
            loo = []
            for i, r in enumerate(rows):
                a2, b2 = fit([s for j, s in enumerate(rows) if j != i], base, use_layer)
                loo.append(predict(a2, b2, r, base))
            res["spearman_leave_one_out_" + label] = spearman(loo, measured)
    # The model size_target.h uses: absolute error, factors per kind and per relative depth.
    a, b = fit(rows, "abs", True)
    n_layer = max(r["layer"] for r in rows) + 1
    res["error"] = "absolute"
    res["factors"] = {k: math.exp(v) for k, v in sorted(a.items())}
    res["depth_factors"] = [math.exp(b.get(l, 0.0)) for l in range(n_layer)]
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
