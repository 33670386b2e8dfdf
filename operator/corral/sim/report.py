"""The HTML report of `corral simulate`: one self-contained page, its figures PNGs drawn with
matplotlib and embedded (no files beside it, no network)."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from corral.sim.results import SIZE_CLASSES, RunResult, comparison_table, size_class

if TYPE_CHECKING:
    from matplotlib.figure import Figure

INSTALL_HINT = "the report needs matplotlib: pip install 'corral[sim]' (or matplotlib>=3.8)"


class MissingMatplotlib(RuntimeError):
    """matplotlib is not installed (it is an optional dependency)."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingMatplotlib(INSTALL_HINT) from None
    return plt


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _hours(values: Sequence[float]) -> list[float]:
    return [v / 3600.0 for v in values]


def figures(results: Sequence[RunResult]) -> list[tuple[str, str, str]]:
    """(title, caption, base64 PNG) of every figure, the policies overlaid where several ran."""
    plt = _pyplot()
    out: list[tuple[str, str, str]] = []

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    for result in results:
        s = result.series
        share = [a / c if c else 0.0 for a, c in zip(s.allocated, s.capacity, strict=True)]
        top.plot(_hours(s.time), share, label=result.policy, linewidth=1)
        bottom.plot(_hours(s.time), s.queued, label=result.policy, linewidth=1)
    top.set_ylabel("allocated / capacity")
    top.set_ylim(0, 1.02)
    top.axvline(results[0].arrival_end / 3600.0, color="grey", linestyle=":", linewidth=1)
    bottom.set_ylabel("jobs waiting")
    bottom.set_xlabel("hours")
    top.legend(loc="lower right", fontsize=8)
    out.append(
        (
            "Utilisation over time",
            "Share of the fleet's devices held by workers, and the number of jobs waiting for "
            "placement. The dotted line is the last arrival: utilisation figures are measured "
            "before it.",
            _png(fig),
        )
    )

    classes = [
        name
        for name, _, _ in SIZE_CLASSES
        if any(size_class(job.devices) == name for r in results for job in r.jobs)
    ]
    if classes:  # none for an inference-only run
        fig, axes = plt.subplots(
            1, len(classes), figsize=(2.8 * len(classes) + 0.5, 3.2), sharey=True
        )
        axes = list(axes) if len(classes) > 1 else [axes]
        for axis, name in zip(axes, classes, strict=True):
            for result in results:
                delays = sorted(
                    job.queue_delay / 60.0
                    for job in result.jobs
                    if job.queue_delay is not None and size_class(job.devices) == name
                )
                if delays:
                    shares = [(i + 1) / len(delays) for i in range(len(delays))]
                    axis.step(
                        [max(d, 0.01) for d in delays], shares, where="post", label=result.policy
                    )
            axis.set_xscale("log")
            axis.set_title(f"{name} devices", fontsize=9)
            axis.set_xlabel("minutes (log)")
        axes[0].set_ylabel("share of jobs placed within")
        axes[-1].legend(fontsize=7, loc="lower right")
        out.append(
            (
                "Queueing delay by job size",
                "Cumulative share of jobs placed within a given wait after submission, by job size "
                "(devices). A wait of zero is drawn at 0.01 min.",
                _png(fig),
            )
        )

    fig, axis = plt.subplots(figsize=(9, 3))
    for result in results:
        s = result.series
        axis.plot(_hours(s.time), s.fragmentation, label=result.policy, linewidth=1)
    axis.set_ylabel("fragmentation")
    axis.set_xlabel("hours")
    axis.set_ylim(0, 1.02)
    axis.legend(fontsize=8)
    out.append(
        (
            "Fragmentation",
            "1 - free devices on wholly free hosts / free devices, over all pools (the GPUPool "
            "status figure): the share of free devices a gang of whole-host workers cannot use.",
            _png(fig),
        )
    )

    namespaces = sorted({key[0] for r in results for key in r.chargeback.by("namespace")})
    if namespaces:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
        width = 0.8 / len(results)
        for position, result in enumerate(results):
            charges = result.chargeback.by("namespace")
            xs = [i + position * width for i in range(len(namespaces))]
            left.bar(xs, [charges[(n,)].cost if (n,) in charges else 0 for n in namespaces],
                     width, label=result.policy)  # fmt: skip
            right.bar(xs, [charges[(n,)].carbon_grams / 1000 if (n,) in charges else 0
                           for n in namespaces], width, label=result.policy)  # fmt: skip
        for axis in (left, right):
            axis.set_xticks([i + 0.4 - width / 2 for i in range(len(namespaces))], namespaces)
            axis.tick_params(axis="x", labelrotation=30, labelsize=8)
        left.set_ylabel(f"cost ({results[0].currency})")
        right.set_ylabel("carbon (kg CO2e)")
        left.legend(fontsize=7)
        out.append(
            (
                "Cost and carbon by namespace",
                "Device-hours priced at each pool's price for the node's capacity type, and their "
                "energy (board watts x utilisation x PUE) at the pool's carbon intensity, hour by "
                "hour (docs/economics.md).",
                _png(fig),
            )
        )

    if any(r.losses or any(r.series.spot_up) for r in results):
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True)
        for result in results:
            top.plot(
                _hours(result.series.time), result.series.spot_up, label=result.policy, linewidth=1
            )
            running, total = [], 0.0
            for _, lost in sorted(result.losses):
                total += lost / 3600.0
                running.append(total)
            bottom.step(_hours([t for t, _ in sorted(result.losses)]), running, where="post",
                        label=result.policy)  # fmt: skip
        top.set_ylabel("spot hosts up")
        bottom.set_ylabel("lost device-hours\n(cumulative)")
        bottom.set_xlabel("hours")
        bottom.legend(fontsize=8)
        out.append(
            (
                "Interruptions and lost work",
                "Spot hosts available (from the spot trace), and the device-time of work thrown "
                "away because an attempt ended (reclaim or failure) after its last checkpoint.",
                _png(fig),
            )
        )

    keys = sorted({service.key for r in results for service in r.services})
    if keys:
        fig, axes = plt.subplots(
            len(keys), 1, figsize=(9, 2.8 * len(keys) + 0.4), sharex=True, squeeze=False
        )
        for axis, key in zip([row[0] for row in axes], keys, strict=True):
            rate_axis = axis.twinx()
            for position, result in enumerate(results):
                service = next((s for s in result.services if s.key == key), None)
                if service is None:
                    continue
                hours = _hours(service.samples_time)
                if position == 0:
                    rate_axis.plot(hours, service.samples_rate, color="0.7", linewidth=0.8)
                line = axis.step(hours, service.samples_replicas, where="post", linewidth=1.2,
                                 label=f"{result.policy} replicas")  # fmt: skip
                axis.step(hours, service.samples_desired, where="post", linewidth=0.8,
                          linestyle="--", color=line[0].get_color(),
                          label=f"{result.policy} desired")  # fmt: skip
            axis.set_title(key, fontsize=9)
            axis.set_ylabel("replicas")
            axis.set_ylim(bottom=0)
            rate_axis.set_ylabel("requests/s (grey)")
            rate_axis.set_ylim(bottom=0)
            axis.legend(fontsize=7, loc="lower right")
        axes[-1][0].set_xlabel("hours")
        out.append(
            (
                "Inference: replicas and load",
                "Per InferenceService: replicas placed (solid) and the autoscaler's desired count "
                "(dashed) at each autoscaler tick, and the request rate over the last minute "
                "(grey, right axis). Desired above placed is a scale-up waiting for room.",
                _png(fig),
            )
        )
    return out


def services_table(summaries: Sequence[dict[str, Any]]) -> str:
    """Per policy and service: the SLO figures, what the service cost, and how training's
    queueing moved with it."""
    rows = []
    for data in summaries:
        effect = data.get("inferenceEffect") or {}
        for key, service in (data.get("inference") or {}).items():
            attainment = service["sloAttainment"]
            rows.append(
                [
                    data["policy"],
                    key,
                    "-" if attainment is None else f"{attainment * 100:.1f} %",
                    _fmt(service["p95LatencySeconds"], 2),
                    _fmt(service["replicaHours"], 2),
                    _fmt(service["cost"], 2),
                    f"{service['scaleUps']} / {service['scaleDowns']}",
                    f"{service['unplacedScaleUps']} ({_fmt(service['unplacedReplicaHours'], 2)} h)",
                    _effect(effect.get("meanSeconds")),
                    _effect(effect.get("p95Seconds")),
                ]
            )
    return _table(
        rows,
        [
            "policy",
            "service",
            "minutes meeting SLO",
            "p95 latency s",
            "replica-h",
            "cost",
            "scale ups / downs",
            "unplaced (replica-h)",
            "training mean queue s: with / without",
            "p95: with / without",
        ],
    )


def _effect(pair: dict[str, Any] | None) -> str:
    if not pair:
        return "-"
    return f"{_fmt(pair['with'])} / {_fmt(pair['without'])}"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1em 0; } figcaption { font-size: 0.85em; color: #555; max-width: 900px; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
"""


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def render(
    results: Sequence[RunResult],
    summaries: Sequence[dict[str, Any]],
    inputs: dict[str, Any],
    comparison: dict[str, Any] | None = None,
) -> str:
    """The report page for one run, or several policies on the same input."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>corral simulate</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>corral simulate</h1>",
        "<p>"
        + "; ".join(f"<b>{html.escape(k)}</b> {html.escape(str(v))}" for k, v in inputs.items())
        + "</p>",
    ]
    rows = []
    for data in summaries:
        q, e = data["queueing"], data["economics"]
        rows.append(
            [
                data["policy"],
                _fmt(data["jobs"]["submitted"]),
                _fmt(data["jobs"]["finished"]),
                _fmt(q["meanSeconds"]),
                _fmt(q["p95Seconds"]),
                f"{data['utilisation'] * 100:.1f} %",
                _fmt(data["meanFragmentation"], 3),
                _fmt(e["deviceHours"]),
                f"{_fmt(e['cost'], 0)} {e['currency']}",
                _fmt(e["energyKWh"], 0),
                _fmt(e["carbonKg"], 0),
                _fmt(data["lostDeviceHours"]),
                f"{data['deadlines']['missed']}/{data['deadlines']['jobs']}",
                _fmt(data["simulation"]["eventsPerSecond"]),
            ]
        )
    parts.append("<h2>Summary</h2>")
    parts.append(
        _table(
            rows,
            [
                "policy",
                "jobs",
                "finished",
                "mean queue s",
                "p95 queue s",
                "utilisation",
                "fragmentation",
                "device-h",
                "cost",
                "kWh",
                "kg CO2e",
                "lost device-h",
                "deadlines missed",
                "events/s",
            ],
        )
    )
    if any(data.get("inference") for data in summaries):
        parts.append("<h2>Inference</h2>")
        parts.append(
            "<p>Minutes meeting SLO: the share of minutes (with requests) in which every "
            "objective's percentile of the requests arriving that minute was within its target. "
            "Training queueing with and without the inference load: the same workload run again "
            "without the services.</p>"
        )
        parts.append(services_table(summaries))
    if comparison is not None:
        parts.append("<h2>Policies compared</h2>")
        parts.append(f"<pre>{html.escape(comparison_table(comparison))}</pre>")
    for data in summaries[:1]:
        e = data["economics"]
        parts.append(f"<h2>Chargeback ({html.escape(data['policy'])})</h2>")
        for title, key in (
            ("namespace", "byNamespace"),
            ("team", "byTeam"),
            ("pool / capacity type", "byPool"),
        ):
            rows = [
                [
                    name,
                    _fmt(v["deviceHours"]),
                    _fmt(v["cost"], 2),
                    _fmt(v["energyKWh"]),
                    _fmt(v["carbonKg"], 2),
                ]
                for name, v in e[key].items()
            ]
            parts.append(
                _table(rows, [title, "device-h", f"cost {e['currency']}", "kWh", "kg CO2e"])
            )
    for title, caption, png in figures(results):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(
            f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{png}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    notes = [note for data in summaries for note in data.get("notes", [])]
    if notes:
        parts.append(
            "<h2>Notes</h2><ul>"
            + "".join(f"<li>{html.escape(n)}</li>" for n in dict.fromkeys(notes))
            + "</ul>"
        )
    parts.append("<h2>summary.json</h2>")
    parts.append(f"<pre>{html.escape(json.dumps(list(summaries), indent=1))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
