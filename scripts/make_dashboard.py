#!/usr/bin/env python3
"""Writes dashboards/bamboo-agents.json, the Grafana dashboard for bamboo-otel metrics.

The panels and their PromQL live here, readable; the JSON is generated (python3 scripts/make_dashboard.py) and
committed. tests/dashboard.rs runs every query of the JSON against VictoriaMetrics with a known stream.
Metric names are the Prometheus names of the OTLP metrics (Prometheus' OTLP receiver and VictoriaMetrics'
-opentelemetry.usePrometheusNaming agree on them).
"""
import json
import pathlib

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'service_name=~"$service"'
RI = "$__rate_interval"

panels = []
y = 0


def row(title):
    global y
    panels.append({"type": "row", "title": title, "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                   "id": len(panels) + 1, "panels": []})
    y += 1


def panel(title, kind, targets, w=12, h=8, x=0, unit=None, description=""):
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "id": len(panels) + 1,
        "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "targets": [
            {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + i),
             "instant": kind in ("stat", "bargauge", "table"), "range": kind == "timeseries"}
            for i, (expr, legend) in enumerate(targets)
        ],
        "fieldConfig": {"defaults": {"unit": unit or "short"}, "overrides": []},
        "options": {},
    }
    if kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]}}
    panels.append(p)


def next_row(h=8):
    global y
    y += h


row("Tokens")
panel("Tokens per second by model and type", "timeseries",
      [(f'sum by (gen_ai_request_model, gen_ai_token_type) (rate(gen_ai_client_token_usage_sum{{{SEL}}}[{RI}]))',
        "{{gen_ai_request_model}} {{gen_ai_token_type}}")], unit="short",
      description="Input and output tokens reported by the model provider, per LLM round and forwarded request.")
panel("Tokens in range by model and type", "bargauge",
      [(f'sum by (gen_ai_request_model, gen_ai_token_type) (increase(gen_ai_client_token_usage_sum{{{SEL}}}[$__range]))',
        "{{gen_ai_request_model}} {{gen_ai_token_type}}")], x=12)
next_row()

row("Latency")
panel("LLM round latency (p50, p95, p99)", "timeseries",
      [(f'histogram_quantile({q}, sum by (le) (rate(gen_ai_client_operation_duration_seconds_bucket{{{SEL}, gen_ai_operation_name="chat", bamboo_forward_endpoint=""}}[{RI}])))',
        f"p{int(q * 100)}") for q in (0.5, 0.95, 0.99)], unit="s",
      description="Duration of agent rounds (gen_ai.client.operation.duration without a forward endpoint).")
panel("Forwarded request latency p95 by endpoint", "timeseries",
      [(f'histogram_quantile(0.95, sum by (le, bamboo_forward_endpoint) (rate(gen_ai_client_operation_duration_seconds_bucket{{{SEL}, bamboo_forward_endpoint!=""}}[{RI}])))',
        "{{bamboo_forward_endpoint}}")], x=12, unit="s")
next_row()

row("Errors")
panel("Round error and cancellation rate", "timeseries",
      [(f'sum(rate(bamboo_rounds_total{{{SEL}, bamboo_round_status="error"}}[{RI}])) / sum(rate(bamboo_rounds_total{{{SEL}}}[{RI}]))', "errors"),
       (f'sum(rate(bamboo_rounds_total{{{SEL}, bamboo_round_status="cancelled"}}[{RI}])) / sum(rate(bamboo_rounds_total{{{SEL}}}[{RI}])) or vector(0)', "cancelled")],
      unit="percentunit")
panel("Sessions by status", "bargauge",
      [(f'sum by (bamboo_session_status) (increase(bamboo_sessions_total{{{SEL}}}[$__range]))', "{{bamboo_session_status}}")],
      x=12, description="Session runs ended, by final status (a resumed session counts once per run).")
next_row()

row("Tools")
panel("Tool calls by tool", "bargauge",
      [(f'sum by (gen_ai_tool_name) (increase(bamboo_tool_calls_total{{{SEL}}}[$__range]))', "{{gen_ai_tool_name}}")], w=8)
panel("Tool failure rate by tool", "bargauge",
      # Tools that never failed show 0, not a gap: the failures side falls back to zero per tool.
      [(f'(sum by (gen_ai_tool_name) (increase(bamboo_tool_calls_total{{{SEL}, bamboo_tool_success="false"}}[$__range])) or 0 * sum by (gen_ai_tool_name) (increase(bamboo_tool_calls_total{{{SEL}}}[$__range]))) / sum by (gen_ai_tool_name) (increase(bamboo_tool_calls_total{{{SEL}}}[$__range]))',
        "{{gen_ai_tool_name}}")], w=8, x=8, unit="percentunit")
panel("Tool latency p95 by tool", "timeseries",
      [(f'histogram_quantile(0.95, sum by (le, gen_ai_tool_name) (rate(gen_ai_execute_tool_duration_seconds_bucket{{{SEL}}}[{RI}])))',
        "{{gen_ai_tool_name}}")], w=8, x=16, unit="s")
next_row()

row("Forwarded requests")
panel("Forwarded requests by endpoint and status code", "timeseries",
      [(f'sum by (bamboo_forward_endpoint, http_response_status_code) (rate(bamboo_forward_requests_total{{{SEL}}}[{RI}]))',
        "{{bamboo_forward_endpoint}} {{http_response_status_code}}")], w=24, unit="reqps")
next_row()

row("Cost")
panel("Cost per second by model", "timeseries",
      [(f'sum by (gen_ai_request_model) (rate(bamboo_cost_total{{{SEL}}}[{RI}]))', "{{gen_ai_request_model}}")],
      w=8, unit="currencyUSD",
      description="bamboo.cost: rounds and forwarded requests priced by the price table (USD). Models without a price count in bamboo_otel.cost.unpriced instead.")
panel("Cost in range by model", "bargauge",
      [(f'sum by (gen_ai_request_model) (increase(bamboo_cost_total{{{SEL}}}[$__range]))', "{{gen_ai_request_model}}")],
      w=8, x=8, unit="currencyUSD")
panel("Cost per session (p50, p95)", "timeseries",
      [(f'histogram_quantile({q}, sum by (le) (rate(bamboo_session_cost_bucket{{{SEL}}}[{RI}])))', f"p{int(q * 100)}")
       for q in (0.5, 0.95)], w=8, x=16, unit="currencyUSD",
      description="bamboo.session.cost: what each session run's priced rounds cost.")
next_row()
panel("Cache savings in range by model", "bargauge",
      [(f'sum by (gen_ai_request_model) (increase(bamboo_cost_cache_savings_total{{{SEL}}}[$__range]))', "{{gen_ai_request_model}}")],
      w=8, unit="currencyUSD",
      description="What prompt-cache reads would have cost at the input price, minus what they cost.")
panel("Cache share of input tokens by model", "bargauge",
      [(f'sum by (gen_ai_request_model) (increase(bamboo_usage_tokens_total{{{SEL}, gen_ai_token_type="cache_read"}}[$__range])) / sum by (gen_ai_request_model) (increase(bamboo_usage_tokens_total{{{SEL}, gen_ai_token_type="input"}}[$__range]))',
        "{{gen_ai_request_model}}")], w=8, x=8, unit="percentunit",
      description="Cache reads are part of the input tokens (where the provider reports them).")
panel("Reasoning tokens in range by model", "bargauge",
      [(f'sum by (gen_ai_request_model) (increase(bamboo_usage_tokens_total{{{SEL}, gen_ai_token_type="reasoning"}}[$__range]))',
        "{{gen_ai_request_model}}")], w=8, x=16,
      description="Reasoning tokens are part of the output tokens.")
next_row()

row("Bridge health")
panel("Events received by kind", "timeseries",
      [(f'sum by (kind) (rate(bamboo_otel_events_total{{{SEL}}}[{RI}]))', "{{kind}}")], w=8, unit="short")
panel("Rejected, dropped, incomplete", "timeseries",
      [(f'sum by (reason) (rate(bamboo_otel_events_rejected_total{{{SEL}}}[{RI}])) or vector(0)', "rejected {{reason}}"),
       (f'sum by (reason) (rate(bamboo_otel_spans_dropped_total{{{SEL}}}[{RI}])) or vector(0)', "spans dropped {{reason}}"),
       (f'sum(rate(bamboo_otel_spans_incomplete_total{{{SEL}}}[{RI}])) or vector(0)', "incomplete spans")],
      w=8, x=8, description="Every drop is counted with its reason; incomplete spans are sessions, rounds or requests seen without their start or completion.")
panel("Export failures and upstream drops", "timeseries",
      [(f'sum by (signal, reason) (rate(bamboo_otel_export_failures_total{{{SEL}}}[{RI}])) or vector(0)', "export {{signal}} {{reason}}"),
       (f'sum by (reason) (rate(bamboo_metrics_dropped_total{{{SEL}}}[{RI}])) or vector(0)', "upstream dropped {{reason}}")],
      w=8, x=16, description="bamboo.metrics.dropped is Bamboo's own metrics channel losing events before they reach the bridge.")
next_row()

dashboard = {
    "title": "Bamboo agents",
    "uid": "bamboo-agents",
    "description": "Sessions, LLM rounds, tool calls and forwarded requests of Bamboo agents, from bamboo-otel.",
    "tags": ["bamboo", "genai", "opentelemetry"],
    "schemaVersion": 39,
    "version": 1,
    "editable": True,
    "time": {"from": "now-6h", "to": "now"},
    "refresh": "30s",
    "links": [],
    "templating": {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0},
        {"name": "service", "label": "Service", "type": "query", "datasource": DS,
         "query": {"query": "label_values(bamboo_otel_events_total, service_name)", "refId": "service"},
         "definition": "label_values(bamboo_otel_events_total, service_name)",
         "includeAll": True, "multi": True, "allValue": ".*", "current": {}, "refresh": 2, "hide": 0},
    ]},
    "panels": panels,
}

out = pathlib.Path(__file__).resolve().parent.parent / "dashboards" / "bamboo-agents.json"
out.write_text(json.dumps(dashboard, indent=2) + "\n")
print(f"wrote {out} ({sum(1 for p in panels if p['type'] != 'row')} panels)")
