#!/usr/bin/env python3
"""A stand-in for `helm template`, for the tests of machines without a `helm` binary.

It renders with Helm's own engine: the PyPI package helm-python-sdk binds libhelm_c, Helm v4's
Go SDK behind a C ABI (`Chart.load`, `Chart.render`, `values_from_yaml`). Only what gitgate
runs is understood:

    helm template RELEASE CHART [--namespace NS] [--include-crds] [--values FILE]...
                  [--repository-cache DIR] [--repository-config FILE] [--registry-config FILE]

    helm lint CHART [--namespace NS] [--values FILE]... [--strict] [--kube-version V]

and the output is helm's: each document after a `# Source: <chart>/<path>` comment, CRDs first
with --include-crds, NOTES.txt and partials left out, a template that renders invalid YAML an
error naming it; lint's findings one a line as `[SEVERITY] path: message`, exit 1 when
one is an error (or, with --strict, a warning). Exits 1 with `Error: ...` on standard error,
as helm does.
"""

import sys


def fail(message):
    sys.stderr.write("Error: " + message + "\n")
    sys.exit(1)


def merge(base, override):
    """Helm's coalescing of values files: maps merge, everything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def documents(text):
    """The non-empty YAML documents of a rendered template."""
    docs, current = [], []
    for line in text.splitlines():
        if line.rstrip() == "---" or line.startswith("--- "):
            docs.append("\n".join(current))
            current = []
        else:
            current.append(line)
    docs.append("\n".join(current))
    kept = []
    for doc in docs:
        meaningful = [l for l in doc.splitlines() if l.strip() and not l.lstrip().startswith("#")]
        if meaningful:
            kept.append(doc.strip("\n") + "\n")
    return kept


def read_values(helm, values_files):
    """The values files merged in order, as helm merges them."""
    values = {}
    for path in values_files:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            fail("open %s: %s" % (path, e.strerror))
        try:
            parsed = helm.values_from_yaml(text) if text.strip() else {}
        except helm.HelmError as e:
            fail("failed to parse %s: %s" % (path, e))
        values = merge(values, parsed or {})
    return values


def lint(helm, args):
    """`helm lint` through the SDK's lint (schema validation and rendering included)."""
    positional, values_files = [], []
    namespace, strict, kube_version = "default", False, None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--namespace", "-n"):
            namespace = args[i + 1]
            i += 2
        elif arg in ("--values", "-f"):
            values_files.append(args[i + 1])
            i += 2
        elif arg == "--kube-version":
            kube_version = args[i + 1]
            i += 2
        elif arg == "--strict":
            strict = True
            i += 1
        elif arg.startswith("-"):
            fail("the stand-in does not know the flag " + arg)
        else:
            positional.append(arg)
            i += 1
    if len(positional) != 1:
        fail("expected CHART, got %r" % positional)
    values = read_values(helm, values_files)
    try:
        report = helm.lint(
            positional[0], values, strict=strict, namespace=namespace, kube_version=kube_version
        )
    except helm.HelmError as e:
        fail(str(e))
    names = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}
    sys.stdout.write("==> Linting %s\n" % positional[0])
    failed = bool(report.get("errors"))
    for m in report.get("messages") or []:
        severity = m.get("severity", 0)
        sys.stdout.write(
            "[%s] %s: %s\n" % (names.get(severity, "UNKNOWN"), m.get("path"), m.get("error"))
        )
        if severity >= 3 or (strict and severity >= 2):
            failed = True
    for e in report.get("errors") or []:
        sys.stdout.write("[ERROR] %s\n" % e)
    sys.stdout.flush()
    if failed:
        fail("1 chart(s) linted, 1 chart(s) failed")
    sys.stdout.write("\n1 chart(s) linted, 0 chart(s) failed\n")


def main(argv):
    try:
        import helm_python as helm
    except ImportError:
        fail("the stand-in needs the Python package helm-python-sdk (pip install helm-python-sdk)")
    if argv and argv[0] == "lint":
        lint(helm, argv[1:])
        return
    if not argv or argv[0] != "template":
        fail("the stand-in only runs `helm template` and `helm lint`")
    positional, values_files = [], []
    namespace, include_crds = "default", False
    args = argv[1:]
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--namespace", "-n"):
            namespace = args[i + 1]
            i += 2
        elif arg in ("--values", "-f"):
            values_files.append(args[i + 1])
            i += 2
        elif arg in ("--repository-cache", "--repository-config", "--registry-config"):
            i += 2
        elif arg == "--include-crds":
            include_crds = True
            i += 1
        elif arg.startswith("-"):
            fail("the stand-in does not know the flag " + arg)
        else:
            positional.append(arg)
            i += 1
    if len(positional) != 2:
        fail("expected RELEASE and CHART, got %r" % positional)
    release, chart_path = positional
    values = read_values(helm, values_files)
    try:
        chart = helm.Chart.load(chart_path)
        rendered = chart.render(
            values=values, name=release, namespace=namespace, is_install=True
        )
        crds = chart.crds if include_crds else []
        name = chart.name
    except helm.HelmError as e:
        fail(str(e))
    out = []
    for crd in crds:
        source = "%s/%s" % (name, crd.get("filename") or crd.get("name"))
        for doc in documents(crd.get("data", "")):
            out.append("---\n# Source: %s\n%s" % (source, doc))
    for path in sorted(rendered):
        base = path.rsplit("/", 1)[-1]
        if base == "NOTES.txt" or base.startswith("_"):
            continue
        for doc in documents(rendered[path]):
            try:
                helm.values_from_yaml(doc)
            except helm.HelmError as e:
                fail("YAML parse error on %s: %s" % (path, e))
            out.append("---\n# Source: %s\n%s" % (path, doc))
    sys.stdout.write("".join(out))


if __name__ == "__main__":
    main(sys.argv[1:])
