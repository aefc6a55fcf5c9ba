#!/usr/bin/env python3
"""Builds a critical-prompt set the way ../shared/data/critical-prompts.jsonl was made: for each
prompt, the F16 model's greedy continuation (max_tokens tokens) is recorded as "f16_greedy" and
its first whitespace-separated word becomes "expected".

  python3 scripts/make_critical_prompts.py QFORGE F16.gguf PROMPTS.txt OUT.jsonl [MAX_TOKENS]

PROMPTS.txt: one prompt per line. data/critical-prompts-mini.jsonl was made with
  qforge convert models/mini /tmp/mini-f16.gguf --outtype f16
  python3 scripts/make_critical_prompts.py build/qforge /tmp/mini-f16.gguf \\
      data/critical-prompts-mini.txt data/critical-prompts-mini.jsonl 16
(qforge's own greedy continuation: the shared set used llama.cpp's, and qforge's F16 continuations
on refmodel match those, see tests/eval/critical_prompts_test.cpp).
"""
import json
import subprocess
import sys


def main():
    qforge, model, prompts_path, out_path = sys.argv[1:5]
    max_tokens = int(sys.argv[5]) if len(sys.argv) > 5 else 16
    prompts = [l.rstrip("\n") for l in open(prompts_path, encoding="utf-8") if l.strip()]
    lines = []
    for p in prompts:
        r = subprocess.run([qforge, "generate", model, "-p", p, "-n", str(max_tokens), "--json",
                            "-t", "2"], check=True, capture_output=True, text=True)
        text = json.loads(r.stdout)["text"]
        words = text.split()
        if not words:
            sys.exit(f"{p!r}: empty continuation, pick another prompt")
        lines.append({"prompt": p, "expected": words[0], "max_tokens": max_tokens,
                      "f16_greedy": text})
    with open(out_path, "w", encoding="utf-8") as f:
        for l in lines:
            f.write(json.dumps(l, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
