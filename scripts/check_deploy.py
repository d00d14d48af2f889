#!/usr/bin/env python3
"""Checks the files in deploy/ as far as this machine allows (no collector, Alloy or Docker engine runs here):
every YAML parses; each OpenTelemetry Collector config has receivers, processors and exporters that its pipelines
use and only those, with known component types; the Alloy config's blocks balance and every reference names a
declared component; docker-compose mounts only files that exist. Exits non-zero with one line per problem."""
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
problems = []

# Component types these configs may use (collector-contrib names), so a typo is caught.
KNOWN = {
    "receivers": {"otlp"},
    "processors": {"batch", "memory_limiter", "tail_sampling", "attributes", "resource", "filter"},
    "exporters": {"otlp", "otlphttp", "loadbalancing", "prometheusremotewrite", "debug", "jaeger_storage_exporter"},
}


def load(path):
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        problems.append(f"{path.relative_to(ROOT)}: not valid YAML: {e}")
        return None


def check_collector(path):
    cfg = load(path)
    if cfg is None:
        return
    rel = path.relative_to(ROOT)
    pipelines = (cfg.get("service") or {}).get("pipelines") or {}
    if not pipelines:
        problems.append(f"{rel}: no service.pipelines")
    used = {"receivers": set(), "processors": set(), "exporters": set()}
    for name, p in pipelines.items():
        if name.split("/")[0] not in ("traces", "metrics", "logs"):
            problems.append(f"{rel}: pipeline {name}: unknown signal")
        if not p.get("receivers") or not p.get("exporters"):
            problems.append(f"{rel}: pipeline {name}: needs receivers and exporters")
        for kind in used:
            for comp in p.get(kind) or []:
                used[kind].add(comp)
                if comp not in (cfg.get(kind) or {}):
                    problems.append(f"{rel}: pipeline {name} uses {kind[:-1]} {comp}, which is not defined")
    for kind, known in KNOWN.items():
        for comp in cfg.get(kind) or {}:
            if comp.split("/")[0] not in known:
                problems.append(f"{rel}: {kind[:-1]} {comp}: unknown type")
            if comp not in used[kind]:
                problems.append(f"{rel}: {kind[:-1]} {comp} is defined but no pipeline uses it")
    lb = (cfg.get("exporters") or {}).get("loadbalancing")
    if lb is not None and lb.get("routing_key") != "traceID":
        problems.append(f"{rel}: the load-balancing exporter must route by traceID")


def check_alloy(path):
    text = path.read_text()
    rel = path.relative_to(ROOT)
    # Strings first: a URL's // is not a comment.
    code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    code = re.sub(r"//.*", "", code)
    depth = 0
    for ch in code:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            problems.append(f"{rel}: unbalanced braces")
            return
    if depth:
        problems.append(f"{rel}: unbalanced braces")
    declared = set(re.findall(r'^([a-z_]+(?:\.[a-z_]+)+)\s+"([A-Za-z0-9_]+)"\s*\{', text, re.M))
    if not declared:
        problems.append(f"{rel}: no components")
    names = {f"{kind}.{label}" for kind, label in declared}
    for ref in re.findall(r"\b((?:otelcol|prometheus)\.[a-z_.]+\.[A-Za-z0-9_]+)\.(?:input|receiver)\b", code):
        if ref not in names:
            problems.append(f"{rel}: reference to {ref}, which is not declared")
    if "routing_key = \"traceID\"" not in text:
        problems.append(f"{rel}: the load-balancing exporter must route by traceID")


def backends_prometheus_flags():
    """The PROMETHEUS_FLAGS array of scripts/backends.sh: what the tests run Prometheus with."""
    text = (ROOT / "scripts" / "backends.sh").read_text()
    m = re.search(r"^PROMETHEUS_FLAGS=\(\n(.*?)^\)", text, re.M | re.S)
    return [line.strip() for line in m.group(1).splitlines() if line.strip()] if m else None


def collector_release():
    """The collector release servers/otelcol builds (the contrib modules' version)."""
    m = re.search(r"opentelemetry-collector-contrib/\S+ v(\d+\.\d+\.\d+)", (ROOT / "servers/otelcol/go.mod").read_text())
    return m.group(1) if m else None


def check_compose(path):
    cfg = load(path)
    if cfg is None:
        return
    rel = path.relative_to(ROOT)
    services = cfg.get("services") or {}
    # The stack users start must be the one the tests run: same configs, flags and collector release.
    flags = backends_prometheus_flags()
    prom = [a for a in (services.get("prometheus") or {}).get("command") or [] if not a.startswith("--config.file")]
    if flags is None or prom != flags:
        problems.append(f"{rel}: prometheus flags {prom} differ from scripts/backends.sh PROMETHEUS_FLAGS {flags}")
    release = collector_release()
    for name, svc in services.items():
        image = svc.get("image", "")
        if image.startswith("otel/opentelemetry-collector") and release and not image.endswith(":" + release):
            problems.append(f"{rel}: service {name} runs {image}, the tests build collector {release}")
    mounted = {v.split(":")[0] for svc in services.values() for v in svc.get("volumes") or []}
    for f in ("./collector-gateway.yaml", "./collector-sampling.yaml", "./jaeger.yaml", "./prometheus.yml"):
        if f not in mounted:
            problems.append(f"{rel}: does not mount {f}, the file the tests run")
    for name, svc in (cfg.get("services") or {}).items():
        if "image" not in svc:
            problems.append(f"{rel}: service {name} has no image")
        for vol in svc.get("volumes") or []:
            host = vol.split(":")[0]
            if host.startswith((".", "/")) and not (path.parent / host).exists():
                problems.append(f"{rel}: service {name} mounts {host}, which does not exist")
        for dep in svc.get("depends_on") or []:
            if dep not in cfg["services"]:
                problems.append(f"{rel}: service {name} depends on unknown service {dep}")


for p in sorted(DEPLOY.rglob("*.y*ml")):
    if p.name.startswith("collector-") or p.name == "jaeger.yaml":
        check_collector(p)
    elif p.name == "docker-compose.yml":
        check_compose(p)
    else:
        load(p)
for p in sorted(DEPLOY.rglob("*.alloy")):
    check_alloy(p)

for line in problems:
    print(line, file=sys.stderr)
print(f"deploy/: {'ok' if not problems else f'{len(problems)} problems'}")
sys.exit(1 if problems else 0)
