#!/usr/bin/env python3
"""Writes small, valid seed inputs for the libFuzzer targets in fuzz/ (deterministic).

Usage: make_seeds.py OUT_DIR [SHARED_DIR]
Creates OUT_DIR/<target>/ for imatrix_fuzz, hf_tokenizer_json_fuzz, kld_base_fuzz and
hf_parse_fuzz; the first byte of an imatrix / tokenizer.json / hf_parse seed is the target's mode byte (see the targets).
SHARED_DIR (default ../shared beside the repo) supplies a real tokenizer.json to cut down.
"""
import hashlib
import json
import os
import struct
import sys


def w(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def dat(entries, trailer=None):
    b = struct.pack("<i", len(entries))
    for name, ncall, vals in entries:
        nb = name.encode()
        b += struct.pack("<i", len(nb)) + nb + struct.pack("<ii", ncall, len(vals))
        b += struct.pack("<%df" % len(vals), *vals)
    if trailer:
        chunks, ds = trailer
        b += struct.pack("<ii", chunks, len(ds)) + ds.encode()
    return b


def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(kvs, tensors, align=32):
    """kvs: [(key, type, payload bytes)]; tensors: [(name, dims, f32 values)] (all F32)."""
    b = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, typ, payload in kvs:
        b += gguf_str(key) + struct.pack("<I", typ) + payload
    off = 0
    blobs = []
    for name, dims, vals in tensors:
        b += gguf_str(name) + struct.pack("<I", len(dims))
        b += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", 0, off)
        blob = struct.pack("<%df" % len(vals), *vals)
        blob += b"\0" * (-len(blob) % align)
        blobs.append(blob)
        off += len(blob)
    b += b"\0" * (-len(b) % align)
    return b + b"".join(blobs)


def imatrix_seeds(out):
    d = os.path.join(out, "imatrix_fuzz")
    w(d + "/dat_one", b"\0" + dat([("blk.0.attn_q.weight", 10, [1.0, 2.0, 0.5, 4.0])]))
    w(d + "/dat_trailer", b"\0" + dat([("blk.0.ffn_up.weight", 3, [0.1] * 8),
                                       ("blk.0.ffn_down.weight", 0, [2.0] * 4)],
                                      (7, "eval.txt")))
    u32, arr, s = 4, 9, 8
    kvs = [("general.type", s, gguf_str("imatrix")),
           ("imatrix.datasets", arr, struct.pack("<IQ", s, 1) + gguf_str("eval.txt")),
           ("imatrix.chunk_count", u32, struct.pack("<I", 7)),
           ("imatrix.chunk_size", u32, struct.pack("<I", 512))]
    t = [("blk.0.attn_q.weight.in_sum2", [4, 1], [4.0, 8.0, 2.0, 16.0]),
         ("blk.0.attn_q.weight.counts", [1, 1], [4.0]),
         ("blk.0.ffn_up_exps.weight.in_sum2", [2, 3], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
         ("blk.0.ffn_up_exps.weight.counts", [1, 3], [1.0, 0.0, 2.0])]
    w(d + "/gguf_two", b"\1" + gguf(kvs, t))


def tokenizer_seeds(out, shared):
    d = os.path.join(out, "hf_tokenizer_json_fuzz")
    src = os.path.join(shared, "models/tiny-qwen2/tokenizer.json")
    if os.path.exists(src):
        j = json.load(open(src, encoding="utf-8"))
        keep = 320  # 256 + 32 * 2: mode byte 4 (qwen2, vocab 320)
        vocab = {k: v for k, v in j["model"]["vocab"].items() if v < keep}
        merges = []
        for m in j["model"]["merges"]:
            a, b = m if isinstance(m, list) else m.split(" ", 1)
            if a in vocab and b in vocab and a + b in vocab:
                merges.append(m)
        j["model"]["vocab"] = vocab
        j["model"]["merges"] = merges
        j["added_tokens"] = [t for t in j["added_tokens"] if t["id"] < keep]
        w(d + "/qwen2_320", b"\x04" + json.dumps(j, ensure_ascii=False).encode())
    # A hand-made minimal byte-level BPE (mode byte 0: qwen2, vocab 256).
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    vocab = {chr(c): i for i, c in enumerate(cs)}
    mini = {"version": "1.0", "added_tokens": [{"id": 255, "content": "<|end|>", "special": True}],
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
            "decoder": {"type": "ByteLevel"},
            "model": {"type": "BPE", "vocab": vocab, "merges": []}}
    w(d + "/bytes_256", b"\0" + json.dumps(mini, ensure_ascii=False).encode())


def kld_record(n_vocab, seed):
    lps = [-(1.0 + ((i * 7 + seed) % 13) * 0.5) for i in range(n_vocab)]
    hi, lo = max(lps), min(lps)
    step = (hi - lo) / 65535.0
    codes = [int(round((v - lo) / step)) for v in lps]
    return struct.pack("<fff", lo, step, lps[seed % n_vocab]) + struct.pack("<%dH" % n_vocab, *codes)


def kld_seeds(out):
    d = os.path.join(out, "kld_base_fuzz")
    for n_vocab, n_ctx, n_chunks in [(8, 4, 1), (16, 8, 2)]:
        scored = n_ctx - 1 - n_ctx // 2
        sha = hashlib.sha256(b"seed").hexdigest().encode()
        name = b"seed-model"
        h = b"QFKLDB1\n" + struct.pack("<IIIIII", 1, n_vocab, n_ctx, n_chunks, scored, 0)
        h += struct.pack("<Q", n_ctx * n_chunks * 2) + sha + struct.pack("<H", len(name)) + name
        recs = b"".join(kld_record(n_vocab, i) for i in range(n_chunks * scored))
        w("%s/v%d_ctx%d_c%d" % (d, n_vocab, n_ctx, n_chunks), h + recs)


def hf_parse_seeds(out, shared):
    d = os.path.join(out, "hf_parse_fuzz")
    hdr = json.dumps({"__metadata__": {"format": "pt"},
                      "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                      "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]}}).encode()
    st = struct.pack("<Q", len(hdr)) + hdr + bytes(range(22))
    w(d + "/safetensors_two", b"\0" + st)
    spm = os.path.join(shared, "models/tiny-spm/tokenizer.model")
    if os.path.exists(spm):
        w(d + "/tiny_spm_model", b"\1" + open(spm, "rb").read())
    for m in ("tiny-qwen2", "tiny-spm", "mini"):
        cfg = os.path.join(shared, "models", m, "config.json")
        if os.path.exists(cfg):
            w(d + "/config_" + m, b"\2" + open(cfg, "rb").read())


def main():
    out = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    shared = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "..", "shared")
    imatrix_seeds(out)
    tokenizer_seeds(out, shared)
    kld_seeds(out)
    hf_parse_seeds(out, shared)


if __name__ == "__main__":
    main()
