"""Chat-template SSTI analysis: parsed, never rendered (HEX-TPL-*).

Benign templates are written from the public shape of well-known model families; malicious
ones are built here, one technique each, with harmless payloads (``id``, ``echo``).
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
from conftest import run_hex

from hexscan.discover.artifact import Artifact
from hexscan.engine.limits import ResourceLimits
from hexscan.formats.identify import identify
from hexscan.model.finding import Finding
from hexscan.model.severity import Severity
from hexscan.parsers.jinja import analyze_template
from hexscan.scanners.base import ScanContext
from hexscan.scanners.template import (
    TemplateScanner,
    TemplateSource,
    judge_template,
    load_template_policy,
)

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}"
)
LLAMA31_TOOLS = """{{- bos_token }}
{%- if custom_tools is defined %}{%- set tools = custom_tools %}{%- endif %}
{%- if not tools_in_user_message is defined %}{%- set tools_in_user_message = true %}{%- endif %}
{%- if not date_string is defined %}{%- set date_string = strftime_now("%d %b %Y") %}{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}{%- set system_message = "" %}{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if builtin_tools is defined or tools is not none %}{{- "Environment: ipython\\n" }}{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\\n\\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {%- for t in tools %}{{- t | tojson(indent=4) }}{{- "\\n\\n" }}{%- endfor %}
{%- endif %}
{{- system_message }}{{- "<|eot_id|>" }}
{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+
        message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '{"name": "' + tool_call.name + '", "parameters": ' }}{{- tool_call.arguments |
        tojson }}
        {{- "}" }}{{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}{{- message.content }}{%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%-
        endif %}
"""
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant "
    "roles are supported!') }}{% endif %}{% endfor %}"
)
QWEN_TOOLS = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] }}
    {%- else %}{{- 'You are Qwen, a helpful assistant.' }}{%- endif %}
    {{- "\\n\\n# Tools\\n\\n<tools>" }}
    {%- for tool in tools %}{{- "\\n" }}{{- tool | tojson }}{%- endfor %}
    {{- "\\n</tools>\\n\\n<tool_call>\\n{\\"name\\":
        <function-name>}\\n</tool_call><|im_end|>\\n" }}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and
        not(message.content.startswith('<tool_response>') and
        message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}{%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if '</think>' in message.content %}
            {%- set reasoning_content =
        message.content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
        {%- endif %}
        {{- '<|im_start|>' + message.role }}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%-
        endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}{{- tool_call.name }}{{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}{{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}{{- '<|im_end|>\\n'
        }}{%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
"""
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
    "supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate') }}"
    "{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}"
    "{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + "
    "message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{'<start_of_turn>model\\n'}}{% endif %}"
)
PHI3 = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + "
    "message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + "
    "message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}"
    "{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"
)
DEEPSEEK = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}"
    "{% endif %}{% set ns = namespace(is_first=false, is_tool=false, system_prompt='') %}"
    "{%- for message in messages %}{%- if message['role'] == 'system' %}"
    "{% set ns.system_prompt = message['content'] %}{%- endif %}{%- endfor %}"
    "{{bos_token}}{{ns.system_prompt}}{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{{'<｜User｜>' + message['content']}}{%- endif %}"
    "{%- if message['role'] == 'assistant' and message['content'] is not none %}"
    "{% set content = message['content'] %}{% if '</think>' in content %}"
    "{% set content = content.split('</think>')[-1] %}{% endif %}"
    "{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}"
    "{% if add_generation_prompt %}{{'<｜Assistant｜><think>\\n'}}{% endif %}"
)
SMOL_GENERATION = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant<|im_end|>\\n' }}{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}{% generation %}"
    "{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endif %}{% if loop.index > 50 %}{% break %}{% endif %}{% endfor %}"
    "{{ messages | selectattr('role', 'equalto', 'system') | map(attribute='content') | join }}"
    "{% for part in (messages[-1]['content'] if messages[-1]['content'] is not string else []) %}"
    "{% if part['type'] == 'image' %}<image>{% endif %}{% endfor %}"
)
BENIGN = {"llama3": LLAMA3, "llama31-tools": LLAMA31_TOOLS, "mistral": MISTRAL,
          "qwen-tools": QWEN_TOOLS, "gemma": GEMMA, "phi3": PHI3, "deepseek": DEEPSEEK,
          "smol-generation": SMOL_GENERATION}


def judge(text: str, declared: bool = True) -> list[Finding]:
    return list(judge_template(TemplateSource(text, "file", declared), load_template_policy()))


def serious(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.effective_severity >= Severity.MEDIUM]


def rules_of(findings: list[Finding]) -> set[str]:
    return {f.rule.id for f in findings}


def worst(findings: list[Finding]) -> Severity:
    return max((f.effective_severity for f in findings), default=Severity.INFO)


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_real_templates_are_clean(name: str) -> None:
    view = analyze_template(BENIGN[name])
    assert view.error is None, view.error
    assert judge(BENIGN[name]) == []


@pytest.mark.parametrize(("template", "rule", "severity"), [
    # CVE-2024-34359 shape and its classic variants
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "HEX-TPL-001", Severity.CRITICAL),
    ("{{ lipsum.__globals__['os'].popen('id').read() }}", "HEX-TPL-001", Severity.CRITICAL),
    ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", "HEX-TPL-002", Severity.HIGH),
    ("{% for x in ().__class__.__base__.__subclasses__() %}{% if 'warning' in x.__name__ %}"
     "{{ x()._module.__builtins__['__import__']('os').popen('id') }}{% endif %}{% endfor %}",
     "HEX-TPL-001", Severity.CRITICAL),
    ("{{ self._TemplateReference__context }}", "HEX-TPL-001", Severity.CRITICAL),
    ("{{ messages._private }}", "HEX-TPL-001", Severity.MEDIUM),
    ("{{ x.mro() }}", "HEX-TPL-001", Severity.CRITICAL),
    ("{{ __builtins__ }}", "HEX-TPL-001", Severity.CRITICAL),
    # attribute access through filters, getattr, format strings, attribute arguments
    ("{{ ''|attr('__class__') }}", "HEX-TPL-001", Severity.CRITICAL),
    ("{{ getattr('', '__class__') }}", "HEX-TPL-001", Severity.CRITICAL),
    ("{{ '{0.__class__.__init__}'.format(messages) }}", "HEX-TPL-001", Severity.CRITICAL),
    ("{{ messages|map('attr', '__class__')|list }}", "HEX-TPL-001", Severity.CRITICAL),
    ("{{ messages|map(attribute='__class__.__name__')|list }}", "HEX-TPL-001",
     Severity.CRITICAL),
    ("{{ messages|selectattr('__class__')|list }}", "HEX-TPL-001", Severity.CRITICAL),
    ("{{ messages|sort(attribute='__init__')|list }}", "HEX-TPL-001", Severity.CRITICAL),
    # code-execution names
    ("{{ os.popen('id') }}", "HEX-TPL-002", Severity.HIGH),
    ("{{ x.system('id') }}", "HEX-TPL-002", Severity.HIGH),
    ("{{ eval('1') }}", "HEX-TPL-002", Severity.HIGH),
    ("{{ x['environ'] }}", "HEX-TPL-002", Severity.HIGH),
    # gadgets
    ("{{ cycler }}", "HEX-TPL-003", Severity.MEDIUM),
    ("{{ joiner.foo }}", "HEX-TPL-003", Severity.HIGH),
    ("{{ config.items() }}", "HEX-TPL-003", Severity.HIGH),
    ("{% set c = request %}{{ c.args }}", "HEX-TPL-003", Severity.HIGH),
    # names built from pieces (folded constants, aliasing, escapes)
    ("{{ x|attr('_' * 2 ~ 'class' ~ '_' * 2) }}", "HEX-TPL-004", Severity.HIGH),
    ("{{ x|attr(['__gl', 'obals__']|join) }}", "HEX-TPL-004", Severity.HIGH),
    ("{{ x|attr('%c%cclass%c%c'|format(95, 95, 95, 95)) }}", "HEX-TPL-004", Severity.HIGH),
    ("{{ x|attr('__ssalc__'|reverse) }}", "HEX-TPL-004", Severity.HIGH),
    ("{{ x|attr('__cl@ss__'|replace('@', 'a')) }}", "HEX-TPL-004", Severity.HIGH),
    ("{{ x|attr('%s%s' % ('__cla', 'ss__')) }}", "HEX-TPL-004", Severity.HIGH),
    ("{{ x['__CLASS__'.lower()] }}", "HEX-TPL-004", Severity.HIGH),
    ("{{ x[''.join([chr(95), chr(95), 'class', chr(95), chr(95)])] }}", "HEX-TPL-004",
     Severity.HIGH),
    ("{{ x['xx__class__yy'[2:-2]] }}", "HEX-TPL-004", Severity.HIGH),
    ("{% set a = '__cla' %}{% set b = a ~ 'ss__' %}{{ x|attr(b) }}", "HEX-TPL-001",
     Severity.CRITICAL),
    ("{% set a = '__cla' %}{% set b = a ~ 'ss__' %}{{ x|attr(b) }}", "HEX-TPL-004",
     Severity.HIGH),
    ("{{ x['\\x5f\\x5fclass\\x5f\\x5f'] }}", "HEX-TPL-004", Severity.HIGH),
    ("{{ x['\\u005f\\u005fglobals\\u005f\\u005f'] }}", "HEX-TPL-004", Severity.HIGH),
    ("{{ x|attr('o' ~ 's') }}", "HEX-TPL-004", Severity.HIGH),
    # a macro parameter takes the values its call sites pass
    ("{% macro m(n) %}{{ x|attr(n) }}{% endmacro %}{{ m('__class__') }}", "HEX-TPL-001",
     Severity.CRITICAL),
    # set blocks, macro output, loops over constants, dict keywords, namespace attributes
    ("{% set v %}__cla{{ 'ss__' }}{% endset %}{{ x|attr(v) }}", "HEX-TPL-001",
     Severity.CRITICAL),
    ("{% macro m() %}__cla{{ 'ss__' }}{% endmacro %}{{ x[m()] }}", "HEX-TPL-001",
     Severity.CRITICAL),
    ("{% macro m(a, b='ss__') %}{{ a }}{{ b }}{% endmacro %}{{ x|attr(m('__cla')) }}",
     "HEX-TPL-001", Severity.CRITICAL),
    ("{% for n in ['__cla' ~ 'ss__'] %}{{ x[n] }}{% endfor %}", "HEX-TPL-001",
     Severity.CRITICAL),
    ("{{ x|attr(dict(__cla=1, ss__=2)|join) }}", "HEX-TPL-001", Severity.CRITICAL),
    ("{{ x|attr({'__cla': 1, 'ss__': 2}|join) }}", "HEX-TPL-001", Severity.CRITICAL),
    ("{% set n = namespace(a='__cla', b='ss__') %}{{ x[n.a ~ n.b] }}", "HEX-TPL-001",
     Severity.CRITICAL),
    ("{% set a, b = '__cla', 'ss__' %}{{ x[a ~ b] }}", "HEX-TPL-001", Severity.CRITICAL),
    ("{{ x[['__CLA', 'SS__']|map('lower')|join] }}", "HEX-TPL-001", Severity.CRITICAL),
    ("{{ x[['__cla', 'q', 'ss__']|reject('eq', 'q')|join] }}", "HEX-TPL-001",
     Severity.CRITICAL),
    ("{{ x['%(a)s%(b)s'|format(a='__cla', b='ss__')] }}", "HEX-TPL-001", Severity.CRITICAL),
    ("{{ x['{a}{b}'.format(a='__cla', b='ss__')] }}", "HEX-TPL-001", Severity.CRITICAL),
    ("{{ x['__class__'|center(30)|trim] }}", "HEX-TPL-001", Severity.CRITICAL),
    # computed attribute names hex cannot fold: at least HIGH
    ("{{ x|attr(name) }}", "HEX-TPL-005", Severity.HIGH),
    ("{{ getattr(x, name) }}", "HEX-TPL-005", Severity.HIGH),
    ("{{ [x]|map(attribute=name)|first }}", "HEX-TPL-005", Severity.HIGH),
    ("{{ x[y ~ '__cla' ~ 'ss__'] }}", "HEX-TPL-005", Severity.HIGH),
    ("{{ x['%s' % y] }}", "HEX-TPL-005", Severity.HIGH),
    ("{% set ns = namespace(s='') %}{% for c in y %}{% set ns.s = ns.s ~ c %}{% endfor %}"
     "{{ x[ns.s] }}", "HEX-TPL-005", Severity.HIGH),
    ("{% set k %}{{ y }}{% endset %}{{ x[k] }}", "HEX-TPL-005", Severity.HIGH),
    ("{% macro m() %}{{ caller() }}{% endmacro %}{{ x[m()] }}", "HEX-TPL-005",
     Severity.HIGH),
    ("{{ x[y|lower] }}", "HEX-TPL-005", Severity.HIGH),
    # a name taken from the render context: tokenizer_config.json can set bos_token
    ("{{ namespace[bos_token][eos_token] }}", "HEX-TPL-005", Severity.HIGH),
    ("{% set k = bos_token %}{{ messages[k] }}", "HEX-TPL-005", Severity.HIGH),
    # dict members
    ("{% set d = {'a': '__cla' ~ 'ss__'} %}{{ x[d.a] }}", "HEX-TPL-001", Severity.CRITICAL),
    ("{% set d = {'a': '__cla' ~ 'ss__'} %}{{ x[d['a']] }}", "HEX-TPL-001", Severity.CRITICAL),
    ("{% set d = dict(a='__cla' ~ 'ss__') %}{{ x|attr(d.a) }}", "HEX-TPL-001",
     Severity.CRITICAL),
    # resource abuse
    ("{% for i in range(10**9) %}{% endfor %}", "HEX-TPL-006", Severity.MEDIUM),
    ("{{ 'a' * 10000000000 }}", "HEX-TPL-006", Severity.MEDIUM),
    ("{{ messages * 100000000000 }}", "HEX-TPL-006", Severity.MEDIUM),
    ("{{ 9 ** 999999 }}", "HEX-TPL-006", Severity.MEDIUM),
    # loading other templates
    ("{% include 'other.html' %}", "HEX-TPL-008", Severity.MEDIUM),
    ("{% extends 'base.html' %}", "HEX-TPL-008", Severity.MEDIUM),
    ("{% from 'macros.j2' import m %}{{ m() }}", "HEX-TPL-008", Severity.MEDIUM),
])
def test_each_technique_is_reported(template: str, rule: str, severity: Severity) -> None:
    found = [f for f in judge(template) if f.rule.id == rule]
    assert found, judge(template)
    assert max(f.effective_severity for f in found) == severity


def test_namespace_is_fine_but_not_its_internals() -> None:
    assert judge("{% set ns = namespace(found=false) %}{% set ns.found = true %}"
                 "{{ ns.found }}") == []
    assert worst(judge("{{ namespace.__init__.__globals__ }}")) is Severity.CRITICAL


def test_ordinary_words_are_not_names_of_danger() -> None:
    benign = ("{{ message['system'] }}{{ message.system }}{{ tool['os'] if false else '' }}"
              "{{ 'system' }}{{ message['class'] }}{{ message.content.split('os')[0] }}")
    findings = judge(benign)
    assert "HEX-TPL-001" not in rules_of(findings)
    assert {f.evidence.get("name") for f in findings} <= {"os"}


def test_data_keys_are_not_computed_names() -> None:
    """Loop variables over data, integer arithmetic and choices between constants index
    messages in real templates: none of them is a computed attribute name."""
    benign = (
        "{%- for message in messages %}{%- for key in ['role', 'content'] %}"
        "{{ message[key] }}{%- endfor %}{%- for key in message %}{{ message[key] }}"
        "{%- endfor %}{{ messages[loop.index0 - 1]['role'] }}{{ messages[loop.index0 + 1] }}"
        "{%- set field = 'content' if message.role != 'tool' else 'output' %}"
        "{{ message[field] }}{%- set index = (messages|length - 1) - loop.index0 %}"
        "{{ messages[index].role }}{%- endfor %}"
        "{%- macro render(message, key='content') %}{{ message[key] }}{%- endmacro %}"
        "{{ render(messages[0]) }}{{ render(messages[0], 'role') }}"
        "{%- for tool in tools %}{%- for name in tool.parameters.properties %}"
        "{{ tool.parameters.properties[name]['type'] }}{%- endfor %}{%- endfor %}"
    )
    assert serious(judge(benign)) == []


def test_nested_macro_calls_are_folded_within_a_budget() -> None:
    """Macros are folded per call; calls that double at each level stop at the budget."""
    levels = ["{% macro m0() %}__cla{% endmacro %}"]
    levels += [f"{{% macro m{i}() %}}{{{{ m{i - 1}() }}}}{{{{ m{i - 1}() }}}}{{% endmacro %}}"
               for i in range(1, 40)]
    view = analyze_template("".join(levels) + "{{ x[m39()] }}")
    assert view.error is None
    assert view.limit is not None and "folding steps" in view.limit


def test_small_ranges_and_repetitions_are_fine() -> None:
    assert judge("{% for i in range(10) %}{{ '-' * 20 }}{% endfor %}{{ 2 ** 10 }}") == []


def test_unparseable_template_is_a_finding_not_a_crash() -> None:
    findings = judge("{{ unclosed_bracket")
    assert rules_of(findings) == {"HEX-TPL-007"}
    assert worst(findings) is Severity.MEDIUM


def test_unparseable_template_with_payload_fragments() -> None:
    findings = judge("{{ ''.__class__.__mro__[1].__subclasses__() ")
    assert {"HEX-TPL-007", "HEX-TPL-001"} <= rules_of(findings)


def test_sniffed_text_reports_no_syntax_error() -> None:
    assert judge("a {{ b", declared=False) == []


def test_limits_are_findings() -> None:
    policy = load_template_policy()
    big = "x" * (policy.limits["max_template_bytes"] + 10)
    assert "HEX-TPL-009" in rules_of(judge(big))
    deep = "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"
    assert "HEX-TPL-009" in rules_of(judge(deep))
    truncated = TemplateSource("{{ x }}", "gguf:tokenizer.chat_template", True, complete=False)
    assert "HEX-TPL-009" in rules_of(list(judge_template(truncated, policy)))


def test_folding_is_bounded() -> None:
    findings = judge("{{ ('%9999999999s' % 'a') ~ ('{:>99999999}'.format('a')) ~ "
                     "('ab' * 99999999)|replace('a', 'aaaaaaaaaaaaaaaa') }}")
    assert "HEX-TPL-006" in rules_of(findings)


# ---------------------------------------------------------------------------- sources


def _scan(name: str, data: bytes) -> list[Finding]:
    ident = identify(name, data[:65536], len(data))
    art = Artifact(name, name, None, len(data), lambda: io.BytesIO(data))
    return list(TemplateScanner().scan(art, ScanContext(ident, ResourceLimits())))


EVIL = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"


@pytest.mark.parametrize(("name", "payload"), [
    ("tokenizer_config.json", {"chat_template": EVIL}),
    ("tokenizer_config.json", {"chat_template": [{"name": "default", "template": LLAMA3},
                                                 {"name": "tool_use", "template": EVIL}]}),
    ("chat_template.json", {"chat_template": EVIL}),
    ("processor_config.json", {"processor": {"chat_template": EVIL}}),
    ("odd-name.json", {"custom_chat_template": EVIL}),
    ("odd-name.json", {"prompt_template": EVIL}),
    ("odd-name.json", {"anything": ["text", EVIL]}),
])
def test_json_sources(name: str, payload: dict[str, Any]) -> None:
    found = _scan(name, json.dumps(payload).encode())
    assert worst(found) is Severity.CRITICAL, found


def test_duplicate_chat_template_keys_are_all_analysed() -> None:
    data = ('{"chat_template": "' + EVIL.replace("'", "\\u0027") + '", "chat_template": "ok"}')
    assert worst(_scan("tokenizer_config.json", data.encode())) is Severity.CRITICAL


def test_benign_tokenizer_config_is_clean() -> None:
    config = {"bos_token": "<s>", "eos_token": "</s>", "chat_template": QWEN_TOOLS,
              "added_tokens_decoder": {"0": {"content": "<unk>", "special": True}},
              "model_max_length": 4096}
    assert _scan("tokenizer_config.json", json.dumps(config).encode()) == []


@pytest.mark.parametrize("name", ["chat_template.jinja", "x.j2", "x.jinja2", "x.template"])
def test_template_files(name: str) -> None:
    assert worst(_scan(name, EVIL.encode())) is Severity.CRITICAL
    assert _scan(name, PHI3.encode()) == []


def test_text_file_with_a_template_is_sniffed() -> None:
    text = f"chat_template: '{EVIL}'\n".encode()
    assert worst(_scan("model.yaml", text)) is Severity.CRITICAL
    assert _scan("notes.txt", b"nothing to see here {{ name }}") == []


# ---------------------------------------------------------------------------- robustness


def test_fuzzed_templates_never_raise() -> None:
    """A few thousand seeded mutations of real and hostile templates: findings, no exception."""
    rng = random.Random(1336)  # noqa: S311 - seeded fuzzing
    seeds = [*BENIGN.values(), EVIL, "{{ x|attr('_'*2~'class'~'_'*2) }}",
             "{% set a = '%c'|format(95) %}{{ x[a*2 ~ 'init' ~ a*2] }}"]
    tokens = ["{{", "}}", "{%", "%}", "(", ")", "[", "]", "'", '"', "|attr(", "~", "*", "**",
              "__class__", "range(", "set x =", "endfor", "\\x5f", "{#", "#}", ".", ","]
    policy = load_template_policy()
    for _ in range(3000):
        text = rng.choice(seeds)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randint(0, len(text))
            op = rng.random()
            if op < 0.4:
                text = text[:pos] + rng.choice(tokens) + text[pos:]
            elif op < 0.7:
                text = text[:pos] + text[pos + rng.randint(1, 8):]
            else:
                text = text[:pos] + chr(rng.randint(0, 0x2FF)) + text[pos + 1:]
        list(judge_template(TemplateSource(text, "file", True), policy))


def test_hostile_json_is_bounded() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert _scan("tokenizer_config.json", deep) == []
    many = json.dumps({f"k{i}_template": "{{ x }}" for i in range(5000)}).encode()
    _scan("odd.json", many)


# ---------------------------------------------------------------------------- end to end


def test_end_to_end_through_the_cli(tmp_path: Path) -> None:
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "tokenizer_config.json").write_text(
        json.dumps({"chat_template": LLAMA31_TOOLS}), encoding="utf-8")
    (tmp_path / "good" / "chat_template.jinja").write_text(GEMMA, encoding="utf-8")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "tokenizer_config.json").write_text(
        json.dumps({"chat_template": EVIL}), encoding="utf-8")
    (tmp_path / "bad" / "prompt.template").write_text(EVIL, encoding="utf-8")
    report = run_hex("scan", str(tmp_path), "--json", "--workers", "0").json()
    by_file: dict[str, set[str]] = {}
    for r in report["results"]:
        if r["severity"] in ("MEDIUM", "HIGH", "CRITICAL"):
            by_file.setdefault(Path(r["file_path"]).parent.name + "/" +
                               Path(r["file_path"]).name, set()).add(r["rule_id"])
    assert not any(k.startswith("good/") for k in by_file), by_file
    assert "HEX-TPL-001" in by_file["bad/tokenizer_config.json"]
    assert "HEX-TPL-001" in by_file["bad/prompt.template"]
    formats = {Path(f["path"]).name: f["format"] for f in report["files"]}
    assert formats["prompt.template"] == "chat-template"
