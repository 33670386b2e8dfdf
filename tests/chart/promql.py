"""The metric names a PromQL expression reads — enough of PromQL's grammar to tell a metric from
a function, a keyword, a label, a duration or a Grafana variable."""

from __future__ import annotations

import re

KEYWORDS = frozenset(
    [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
    ]
)
# Label lists after these are not metrics: `sum by (le) (...)`, `... on (pod) group_left (node)`.
LABEL_LIST_AFTER = frozenset(["by", "without", "on", "ignoring", "group_left", "group_right"])
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_TOKEN = re.compile(
    r"(?:[0-9]+(?:ms|s|m|h|d|w|y))+|[0-9.]+(?:e[+-]?[0-9]+)?|[A-Za-z_:][A-Za-z0-9_:]*|\(|\)"
)
# Aggregations may put `by (...)` / `without (...)` between their name and their argument.
AGGREGATIONS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ]
)


def metric_names(expression: str) -> set[str]:
    text = _STRING.sub('""', expression)
    text = _VARIABLE.sub("1", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    tokens = _TOKEN.findall(text)
    names: set[str] = set()
    skip_label_list = False
    depth_of_label_list = 0
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if depth_of_label_list:
            depth_of_label_list += {"(": 1, ")": -1}.get(token, 0)
            continue
        if skip_label_list:
            skip_label_list = False
            if token == "(":
                depth_of_label_list = 1
                continue
        if token in ("(", ")") or token[0].isdigit() or token.startswith("."):
            continue
        if token in KEYWORDS:
            skip_label_list = token in LABEL_LIST_AFTER
            continue
        if following == "(" or (token in AGGREGATIONS and following in ("by", "without")):
            continue  # a function or an aggregation
        names.add(token)
    return names


def label_values_metric(query: str) -> set[str]:
    """Grafana's `label_values(metric, label)` and `query_result(expr)` variable queries."""
    match = re.fullmatch(r"\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,.*\)\s*", query)
    if match:
        return {match[1]}
    match = re.fullmatch(r"\s*(?:query_result|label_values)\((.*)\)\s*", query)
    return metric_names(match[1]) if match else set()
