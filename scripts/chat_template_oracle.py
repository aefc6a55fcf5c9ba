#!/usr/bin/env python3
"""Renders chat templates the way Hugging Face transformers' apply_chat_template does (jinja2's
ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, raise_exception,
strftime_now, tojson as json.dumps(ensure_ascii=False); transformers' {% generation %}
extension is left out), for pinning qforge's own renderer in
tests/engine/chat_template_test.cpp. A development tool: needs jinja2 (the pyenv python has
3.1.6); tests never run it.

Usage: chat_template_oracle.py CASES.json  ->  prints each case with "rendered" or "error".
CASES.json: [{"template": "...", "vars": {...}}, ...]
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


def render(template, variables):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(template).render(**variables)


def main():
    cases = json.load(open(sys.argv[1], encoding="utf-8"))
    out = []
    for c in cases:
        r = dict(c)
        try:
            r["rendered"] = render(c["template"], c["vars"])
        except Exception as e:  # the template's own error, or a syntax error
            r["error"] = f"{type(e).__name__}: {e}"
        out.append(r)
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    print()


if __name__ == "__main__":
    main()
