#!/usr/bin/env python3
"""Cases for tests/data/chat_template_cases.json: real templates (../shared/arch/tokenizers) on
conversations beyond hf-chat.json, and one case per template-language feature. Regenerate:
  python3 scripts/chat_template_cases.py /tmp/cases.json
  python3 scripts/chat_template_oracle.py /tmp/cases.json > tests/data/chat_template_cases.json
"""
import json
qwen = json.load(open('../shared/arch/tokenizers/qwen3/tokenizer_config.json'))['chat_template']
gemma = json.load(open('../shared/arch/tokenizers/gemma3/tokenizer_config.json'))['chat_template']
llama = json.load(open('../shared/arch/tokenizers/llama3/tokenizer_config.json'))['chat_template']
def conv(msgs, agp=True, bos='<bos>', eos='<eos>', **extra):
    v = dict(messages=msgs, tools=None, documents=None, add_generation_prompt=agp, bos_token=bos, eos_token=eos)
    v.update(extra); return v
U = lambda c: {"role": "user", "content": c}
A = lambda c: {"role": "assistant", "content": c}
S = lambda c: {"role": "system", "content": c}
cases = []
def add(name, t, v): cases.append({"name": name, "template": t, "vars": v})
# real templates, conversations beyond hf-chat.json
add("gemma3: two user turns in a row (the template's own error)", gemma, conv([U("a"), U("b")]))
add("gemma3: assistant first", gemma, conv([A("hi")]))
add("gemma3: system then assistant", gemma, conv([S("sys"), A("x")]))
add("gemma3: content list with image and text", gemma, conv([{"role":"user","content":[{"type":"image"},{"type":"text","text":"  describe  "}]}]))
add("gemma3: content is a number (invalid type)", gemma, conv([{"role":"user","content":5}]))
add("gemma3: system with list content", gemma, conv([{"role":"system","content":[{"type":"text","text":"S"}]}, U("q")], False))
add("gemma3: untrimmed contents", gemma, conv([U("  spaced \n"), A("\tok  "), U("x")]))
add("gemma3: empty messages", gemma, conv([]))
add("qwen3: reasoning in the last assistant turn", qwen, conv([U("q"), A("<think>\nplan\n</think>\n\nanswer")], False))
add("qwen3: reasoning in an earlier assistant turn", qwen, conv([U("q"), A("<think>x</think>a1"), U("q2")]))
add("qwen3: reasoning_content key", qwen, conv([U("q"), {"role":"assistant","content":"ans","reasoning_content":"because"}], False))
add("qwen3: tools and tool calls", qwen, conv([S("be brief"), U("lights?"), {"role":"assistant","content":"","tool_calls":[{"type":"function","function":{"name":"lights","arguments":{"room":"kitchen","on":True,"level":0.5}}}]}, {"role":"tool","content":"{\"ok\": true}"}, {"role":"tool","content":"done"}], True, tools=[{"type":"function","function":{"name":"lights","description":"Switch lights \u00e9","parameters":{"type":"object","properties":{"room":{"type":"string"}},"required":["room"]}}}]))
add("qwen3: tool call with string arguments", qwen, conv([U("x"), {"role":"assistant","content":"calling","tool_calls":[{"name":"f","arguments":"{\"a\": 1}"}]}], False))
add("qwen3: enable_thinking false", qwen, conv([U("hi")], True, enable_thinking=False))
add("qwen3: system not first", qwen, conv([U("a"), S("late system"), U("b")]))
add("qwen3: tool response user message", qwen, conv([U("<tool_response>r</tool_response>"), U("real")]))
add("llama3: whitespace trimmed, no bos", llama, conv([U("  hi  \n"), A("yo")], True, bos=""))
add("llama3: empty messages", llama, conv([]))
# language features
F = [
 ("whitespace control", "a  {%- if true -%}  b  {%- endif -%}  c\n  {{- ' d ' -}}  e", {}),
 ("trim_blocks and lstrip_blocks", "x\n  {% if true %}\n    y\n  {% endif %}\nz\n", {}),
 ("plus disables lstrip", "x\n  {%+ if true %}y{% endif +%}\nz", {}),
 ("comments", "a {# note #}\n  {#- strip -#}  b\n{# trailing #}\nc", {}),
 ("raw", "{% raw %}{{ not a var }}{% endraw %}!", {}),
 ("loop variables", "{% for x in xs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.length }}:{{ loop.first }}{{ loop.last }}{{ loop.previtem }}{{ loop.nextitem }} {% endfor %}", {"xs": ["a","b","c"]}),
 ("loop cycle and else", "{% for x in xs %}{{ loop.cycle('o','e') }}{% else %}empty{% endfor %}|{% for x in [] %}x{% else %}none{% endfor %}", {"xs": [1,2,3]}),
 ("loop filter", "{% for x in xs if x > 1 %}{{ x }}{{ loop.length }}{% endfor %}", {"xs": [1,2,3,0,5]}),
 ("break continue", "{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", {"xs": [1,2,3,4,5]}),
 ("unpacking items", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in d|items %}{{ k }}{% endfor %}", {"d": {"b": 1, "a": [1, 2]}}),
 ("scoping: set inside loop does not leak", "{% set x = 1 %}{% for i in [1,2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}", {}),
 ("namespace", "{% set ns = namespace(n=0, s='') %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }}", {}),
 ("slicing", "{{ xs[1:] }}{{ xs[::-1] }}{{ xs[-2:] }}{{ xs[:-1] }}{{ s[::-1] }}{{ s[1:3] }}{{ xs[5:] }}", {"xs": [1,2,3,4], "s": "h\u00e9llo"}),
 ("indexing", "{{ xs[0] }}{{ xs[-1] }}{{ d['k'] }}{{ d.k }}{{ s[1] }}{{ xs.1 }}", {"xs": [1,2,3], "d": {"k": "v"}, "s": "ab"}),
 ("string methods", "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.strip(' x') }}|{{ s.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a b c'.split(' ', 1) }}|{{ s.replace('x', 'Y') }}|{{ s.upper() }}|{{ 'Hello World'.lower() }}|{{ s.startswith(' x') }}{{ s.endswith(('q', 'x ')) }}|{{ 'hello world'.title() }}|{{ 'hELLO'.capitalize() }}|{{ '-'.join(['a','b']) }}|{{ 'abcabc'.find('c') }}{{ 'abc'.count('b') }}", {"s": "  x hello x  "}),
 ("filters: trim length tojson", "{{ '  a  '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ [1,2,3]|length }}|{{ 'h\u00e9'|length }}|{{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ [1, 'a', none, true, 1.5]|tojson }}|{{ 'q\"\\n\u00e9'|tojson }}|{{ d|tojson(sort_keys=true) }}", {"d": {"z": 1, "a": [1, {"b": None}], "e": {}}}),
 ("filters: join default first last list", "{{ xs|join(', ') }}|{{ xs|join }}|{{ undefined_var|default('dflt') }}|{{ ''|default('e', true) }}|{{ xs|first }}|{{ xs|last }}|{{ 'ab'|list }}|{{ xs|reverse|list }}", {"xs": ["a","b","c"]}),
 ("filters: map select selectattr", "{{ ms|map(attribute='role')|join(',') }}|{{ ms|selectattr('role','equalto','user')|map(attribute='content')|join }}|{{ ms|rejectattr('role','equalto','user')|list|length }}|{{ [1,2,3,4]|select('odd')|list }}|{{ [1,2,3]|reject('even')|list }}|{{ ['a','B']|map('upper')|list }}", {"ms": [{"role":"user","content":"u1"},{"role":"assistant","content":"a1"},{"role":"user","content":"u2"}]}),
 ("filters: upper lower title capitalize replace indent", "{{ 'ab'|upper }}{{ 'AB'|lower }}{{ 'ab cd'|title }}{{ 'aB'|capitalize }}{{ 'aaa'|replace('a','b',2) }}|{{ 'l1\nl2\n\nl3'|indent(2) }}|{{ 'l1\nl2'|indent(2, true) }}", {}),
 ("filters: int float abs round sort unique string", "{{ '42'|int + 1 }}{{ 'x'|int }}{{ '2.5'|float }}{{ -3|abs }}{{ 2.567|round(2) }}{{ 2.5|round }}{{ [3,1,2]|sort }}{{ ['b','A','a']|sort }}{{ [1,2,1,3]|unique|list }}{{ 12|string ~ 'x' }}{{ [3,1]|max }}{{ [3,1]|min }}{{ [1,2]|sum }}", {}),
 ("tests", "{{ x is defined }}{{ y is defined }}{{ y is undefined }}{{ n is none }}{{ s is string }}{{ 1 is number }}{{ 1 is integer }}{{ 1.0 is float }}{{ true is boolean }}{{ false is false }}{{ true is true }}{{ d is mapping }}{{ xs is iterable }}{{ s is iterable }}{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ s is equalto 'str' }}{{ x is not none }}{{ xs is sequence }}{{ 'ab' is lower }}", {"x": 1, "n": None, "s": "str", "d": {}, "xs": [1]}),
 ("operators", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 'a' ~ 1 ~ none }} {{ 'ab' * 2 }} {{ [1] + [2] }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'b' in 'abc' }} {{ 1 not in [1] }} {{ 'k' in {'k': 1} }} {{ not 1 == 2 }} {{ 0 or 'x' }} {{ 1 and 'y' }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 10 / 4 }} {{ 1.0 }} {{ 3 - 5 }}", {}),
 ("conditional expression", "{{ 'y' if t else 'n' }}{{ 'y' if f else 'n' }}[{{ 'y' if f }}]", {"t": True, "f": False}),
 ("macros", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('a') }} {{ greet('b', '?') }} {{ greet(name='c', punct='.') }}", {}),
 ("macro scoping", "{% set g = 'G' %}{% macro m() %}{{ g }}{{ i }}{% endmacro %}{% for i in [1] %}{{ m() }}{% endfor %}", {}),
 ("set block and filter block", "{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}]{% filter upper %}shout {{ x }}{% endfilter %}", {}),
 ("string escapes and concat", "{{ 'a\\tb\\n' ~ \"q'uote\" ~ '\\u00e9\\x41' ~ 'adj' 'acent' }}", {}),
 ("printing values", "{{ none }} {{ true }} {{ [1, 'a', none, [true]] }} {{ {'k': 'v'} }} {{ (1, 2) }} {{ (1,) }} {{ 1.5 }} {{ 100000000000000000.0 }} {{ 0.0001 }} {{ 0.00001 }} {{ undefined_thing }}|", {}),
 ("dict methods", "{{ d.get('a') }}{{ d.get('zz') }}{{ d.get('zz', 'dflt') }}{{ d.keys()|list }}{{ d.values()|list }}", {"d": {"a": 1, "b": 2}}),
 ("raise_exception", "{% if x %}{{ raise_exception('Bad thing: ' ~ x) }}{% endif %}ok", {"x": "boom"}),
 ("undefined attribute of undefined is an error", "{{ nothing.attr }}", {}),
 ("calling an undefined function", "{{ no_such_fn(1) }}", {}),
 ("unknown filter", "{{ 1|no_such_filter }}", {}),
 ("syntax error: unclosed if", "{% if true %}x", {}),
 ("syntax error: bad expression", "{{ 1 + }}", {}),
 ("string + int is an error", "{{ 'a' + 1 }}", {}),
 ("elif chain", "{% for x in [1,2,3,4] %}{% if x == 1 %}one{% elif x == 2 %}two{% elif x == 3 %}three{% else %}other{% endif %} {% endfor %}", {}),
 ("crlf source and trailing newline", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\n", {}),
 ("nested loops and loop of outer", "{% for a in [1,2] %}{% set outer = loop %}{% for b in ['x','y'] %}{{ outer.index }}{{ b }}{{ loop.index }} {% endfor %}{% endfor %}", {}),
 ("is string else", "{{ 'a' if x is string else 'b' }}", {"x": 3}),
 ("strftime_now exists", "{{ strftime_now('%Y') is string }}", {}),
]
for n, t, v in F: add(n, t, v)
import sys
json.dump(cases, open(sys.argv[1], 'w'), ensure_ascii=False, indent=1)
