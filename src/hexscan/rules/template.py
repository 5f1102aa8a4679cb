"""HEX-TPL: Jinja2 chat templates that escape the template language (SSTI, CVE-2024-34359)."""

from hexscan.model.severity import Severity
from hexscan.rules._rule import Rule

_REFS = (
    "https://nvd.nist.gov/vuln/detail/CVE-2024-34359",
    "https://github.com/advisories/GHSA-56xg-wfcc-g829",
    "https://cwe.mitre.org/data/definitions/1336.html",
    "https://jinja.palletsprojects.com/en/stable/sandbox/",
)

INTERNALS_ACCESS = Rule(
    id="HEX-TPL-001",
    title="Chat template reaches Python internals",
    type="template_injection",
    severity=Severity.CRITICAL,
    cwe=("CWE-1336", "CWE-94"),
    summary="The template reads dunder or private attributes (__class__, __globals__, "
            "__subclasses__ ...).",
    doc=(
        "Chat templates are Jinja2 programs that run every time a prompt is formatted. In an "
        "unsandboxed environment (llama-cpp-python before 0.2.72, CVE-2024-34359, and every "
        "other tool that renders tokenizer_config.json or GGUF templates with a plain "
        "jinja2.Environment) attribute chains such as ''.__class__.__mro__[1].__subclasses__() "
        "or cycler.__init__.__globals__ reach the os module and give the model's author code "
        "execution. No legitimate chat template touches dunder or private attributes. hex "
        "finds them in the parsed template, including access through |attr, getattr, "
        "subscripts, format strings and names built from pieces; it never renders the "
        "template."
    ),
    remediation=(
        "Do not use the template. Render chat templates only with "
        "jinja2.sandbox.ImmutableSandboxedEnvironment (as transformers does) and upgrade "
        "llama-cpp-python to 0.2.72 or later."
    ),
    references=_REFS,
)

DANGEROUS_NAME = Rule(
    id="HEX-TPL-002",
    title="Chat template names code-execution primitives",
    type="template_injection",
    severity=Severity.HIGH,
    cwe=("CWE-1336", "CWE-78"),
    summary="The template uses os, subprocess, eval, exec, popen, system, __import__ or "
            "similar.",
    doc=(
        "A chat template formats messages; it has no reason to mention the os or subprocess "
        "modules, eval or exec, popen or system, import machinery or the process "
        "environment. These names appear in templates only as the last step of an "
        "injection payload that reached Python objects, or in the hope that a renderer "
        "exposes them as globals."
    ),
    remediation=(
        "Do not use the template; render chat templates only in a sandboxed Jinja2 "
        "environment."
    ),
    references=_REFS,
)

SSTI_GADGET = Rule(
    id="HEX-TPL-003",
    title="Chat template uses an SSTI gadget object",
    type="template_injection",
    severity=Severity.MEDIUM,
    cwe=("CWE-1336",),
    summary="The template refers to cycler, joiner, lipsum, self, config, request or similar "
            "objects.",
    doc=(
        "Jinja2's default globals (cycler, joiner, lipsum, namespace) and the objects web "
        "frameworks inject (config, request, self, url_for, session) are the usual starting "
        "points of template-injection payloads because their __init__ / __globals__ lead "
        "to Python modules. A chat template does not need them; the finding is HIGH when "
        "the template also reads attributes of the object. namespace() is used "
        "legitimately (Llama 3, Qwen templates) and is reported only when combined with "
        "internal attribute access."
    ),
    remediation=(
        "Review the template; replace the gadget with plain template logic or reject the "
        "model."
    ),
    references=_REFS,
)

OBFUSCATED_NAME = Rule(
    id="HEX-TPL-004",
    title="Chat template builds a dangerous name from pieces",
    type="template_injection",
    severity=Severity.HIGH,
    cwe=("CWE-1336", "CWE-116"),
    summary="A string assembled with ~, +, join, format, replace, chr() or escapes spells an "
            "internal or dangerous name.",
    doc=(
        "Filters that look for __class__ in the template text are defeated by building the "
        "name at run time: '_'*2 ~ 'class' ~ '_'*2, ['__gl','obals__']|join, "
        "'%c'|format(95), chr(95), '\\x5f\\x5f...' escapes or values stored with set. hex "
        "folds these constant expressions itself, without rendering, and reports the name "
        "that results. Such obfuscation has no benign purpose in a chat template."
    ),
    remediation="Do not use the template; treat the model as malicious.",
    references=_REFS,
)

DYNAMIC_ATTRIBUTE = Rule(
    id="HEX-TPL-005",
    title="Chat template reads an attribute whose name is computed",
    type="template_injection",
    severity=Severity.HIGH,
    cwe=("CWE-1336",),
    summary="|attr(), getattr, map(attribute=) or a subscript uses a name computed at run time "
            "that hex cannot resolve statically.",
    doc=(
        "Reading an attribute whose name comes from a variable or a computation is how "
        "payloads hide the dunder names they need from static analysis. Legitimate chat "
        "templates index messages with literal keys ('role', 'content') or with loop "
        "variables over data; the |attr filter, getattr or a subscript with a name built at "
        "run time (from a context variable, keyword formatting, reject/select, a loop that "
        "accumulates characters) are not needed to format a conversation. In a plain "
        "jinja2.Environment x[name] falls back to getattr(x, name), so a computed string key "
        "is a computed attribute name. hex folds what it can (format, %, ~, join, replace, "
        "slicing, case filters, set values and blocks, macros, loops over constant lists, "
        "dict and namespace keywords); what stays unknown is reported here."
    ),
    remediation=(
        "Review where the attribute name comes from; render the template only in a "
        "sandboxed environment."
    ),
    references=_REFS,
)

RESOURCE_ABUSE = Rule(
    id="HEX-TPL-006",
    title="Chat template can exhaust memory or CPU",
    type="denial_of_service",
    severity=Severity.MEDIUM,
    cwe=("CWE-400", "CWE-1333"),
    summary="range() with a huge bound, huge string repetition or exponentiation.",
    doc=(
        "A template runs inside the inference server for every request. range(10**9), "
        "'x' * 10**9 or deep powers make each prompt consume unbounded memory or time, a "
        "denial of service against whoever serves the model. Jinja2's sandbox caps range at "
        "100,000 items; hex reports constant bounds above that."
    ),
    remediation="Remove the oversized loop or repetition from the template.",
    references=_REFS,
)

UNPARSEABLE = Rule(
    id="HEX-TPL-007",
    title="Chat template does not parse",
    type="malformed_file",
    severity=Severity.MEDIUM,
    cwe=("CWE-20",),
    summary="The template is not valid Jinja2, so it could not be analysed.",
    doc=(
        "hex analyses the syntax tree that Jinja2's own parser builds. A template that does "
        "not parse fails when a runtime formats a prompt, and different Jinja "
        "implementations (Python Jinja2, llama.cpp's minja, other ports) disagree on edge "
        "cases, so a template broken for Python Jinja2 may still run elsewhere. hex "
        "reports it instead of passing it unanalysed; known payload strings in the raw text "
        "are still reported."
    ),
    remediation="Fix or replace the template with the publisher's original.",
    references=_REFS,
)

TEMPLATE_LOADS = Rule(
    id="HEX-TPL-008",
    title="Chat template includes or imports other templates",
    type="template_injection",
    severity=Severity.MEDIUM,
    cwe=("CWE-1336", "CWE-22"),
    summary="{% include %}, {% import %}, {% from %} or {% extends %} in a chat template.",
    doc=(
        "A chat template is self-contained. Loading another template makes the output "
        "depend on files the renderer's loader can reach (with a filesystem loader, any "
        "readable file: path traversal and local file disclosure), and hides the code that "
        "runs from whoever reviews the template."
    ),
    remediation="Inline the needed template code or reject the template.",
    references=_REFS,
)

TEMPLATE_LIMIT = Rule(
    id="HEX-TPL-009",
    title="Chat template analysis stopped at a limit",
    type="resource_limit",
    severity=Severity.MEDIUM,
    cwe=("CWE-400",),
    summary="The template is larger or more deeply nested than hex analyses.",
    doc=(
        "hex bounds the size of a template, the number of syntax-tree nodes and the nesting "
        "depth it walks, so that a hostile template cannot exhaust the scanner. The part "
        "past the bound was not analysed, which is reported rather than passed as clean. "
        "Real chat templates are at most a few tens of kilobytes."
    ),
    remediation="Review the template by other means before using the model.",
    references=_REFS,
)
