#!/usr/bin/env python3
"""Size-KLD curve of issue 14 -> an SVG (log KLD over file size): the size-targeted files as a
line, qforge's fixed mixes as squares, llama.cpp's mixes as crosses.
Usage: bench/target_plot.py RESULTS.tsv OUT.svg [MODEL]
RESULTS.tsv is either bench/quality_vs_llamacpp.sh's quality.tsv (every file of MODEL, default
refmodel, scored by llama-perplexity: the side-by-side curve) or bench/target_sweep.sh's
results.tsv (qforge's scoring; llama.cpp's points then come from issue 13's table)."""
import math
import sys

LLAMA = {"Q2_K": (12022400, 0.230110), "Q3_K_M": (14619264, 0.053726),
         "Q4_K_M": (17183360, 0.018220), "Q5_K_M": (19837568, 0.005440),
         "Q6_K": (22657664, 0.002139)}


def read_side_by_side(rows, model):
    """quality.tsv: model mix tool bytes quant_s llama_ppl llama_kld ..."""
    global LLAMA
    rows = [r for r in rows[1:] if r[0] == model and r[6] not in ("", "null")]
    targets = sorted((int(r[3]), float(r[6])) for r in rows if r[2].startswith("qforge-"))
    mixes = [(int(r[3]), float(r[6]), r[1]) for r in rows if r[2] == "qforge"]
    LLAMA = {r[1]: (int(r[3]), float(r[6])) for r in rows if r[2] == "llama.cpp"}
    return targets, mixes


def main():
    rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
    side_by_side = rows[0][:3] == ["model", "mix", "tool"]
    if side_by_side:
        targets, mixes = read_side_by_side(rows, sys.argv[3] if len(sys.argv) > 3 else "refmodel")
    else:
        targets = sorted((int(r[3]), float(r[4])) for r in rows if r[0] == "target")
        mixes = [(int(r[3]), float(r[4]), r[1]) for r in rows if r[0] == "mix"]
    W, H, L, R, T, B = 720, 440, 70, 20, 30, 50
    xs = [p[0] for p in targets] + [m[0] for m in mixes]
    ys = [p[1] for p in targets] + [m[1] for m in mixes] + [v[1] for v in LLAMA.values()]
    x0, x1 = min(xs) * 0.98, max(xs) * 1.02
    y0, y1 = math.log10(min(ys)) - 0.1, math.log10(max(ys)) + 0.1
    X = lambda x: L + (x - x0) / (x1 - x0) * (W - L - R)
    Y = lambda y: T + (y1 - math.log10(y)) / (y1 - y0) * (H - T - B)
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
         'font-size="11">' % (W, H), '<rect width="100%" height="100%" fill="white"/>']
    for e in range(math.floor(y0), math.ceil(y1) + 1):
        for m in (1, 2, 5):
            v = m * 10 ** e
            if y0 <= math.log10(v) <= y1:
                o.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (L, W - R, Y(v), Y(v)))
                o.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>' % (L - 4, Y(v) + 4, v))
    for mb in range(int(x0 / 1e6) + 1, int(x1 / 1e6) + 1):
        o.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eee"/>' % (X(mb * 1e6), X(mb * 1e6), T, H - B))
        o.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (X(mb * 1e6), H - B + 14, mb))
    o.append('<text x="%d" y="%d" text-anchor="middle">file size (MB, 10^6 bytes)</text>' % ((L + W - R) / 2, H - 12))
    o.append('<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">mean KLD vs F16 (log)</text>' % (H / 2, H / 2))
    pts = " ".join("%.1f,%.1f" % (X(x), Y(y)) for x, y in targets)
    o.append('<polyline points="%s" fill="none" stroke="#c00" stroke-width="2"/>' % pts)
    for x, y in targets:
        o.append('<circle cx="%.1f" cy="%.1f" r="3.5" fill="#c00"/>' % (X(x), Y(y)))
    for x, y, n in mixes:
        o.append('<rect x="%.1f" y="%.1f" width="7" height="7" fill="#06c"/>' % (X(x) - 3.5, Y(y) - 3.5))
        o.append('<text x="%.1f" y="%.1f" fill="#06c">%s</text>' % (X(x) + 6, Y(y) - 5, n))
    for n, (x, y) in LLAMA.items():
        o.append('<path d="M%.1f %.1f l6 6 m0 -6 l-6 6" stroke="#080" stroke-width="1.5"/>' % (X(x) - 3, Y(y) - 3))
    if side_by_side:
        legend = ("qforge --target-size", "qforge fixed mixes (error feedback)",
                  "llama.cpp mixes (llama-quantize, its imatrix)")
    else:
        legend = ("qforge --target-size (20 chunks of eval.txt)", "qforge fixed mixes (same chunks)",
                  "llama.cpp mixes (issue 13, whole eval.txt)")
    o.append('<g transform="translate(%d,%d)"><circle cx="0" cy="0" r="3.5" fill="#c00"/>'
             '<text x="8" y="4">%s</text>'
             '<rect x="-3.5" y="12" width="7" height="7" fill="#06c"/><text x="8" y="20">%s</text>'
             '<path d="M-3 29 l6 6 m0 -6 l-6 6" stroke="#080" stroke-width="1.5"/>'
             '<text x="8" y="36">%s</text></g>' % ((W - 300, T + 10) + legend))
    if side_by_side:
        o.append('<text x="%d" y="%d">every point: llama-perplexity KLD vs F16, whole eval.txt</text>' % (L + 6, T - 10))
    o.append("</svg>")
    open(sys.argv[2], "w").write("\n".join(o) + "\n")


if __name__ == "__main__":
    main()
