#!/usr/bin/python3
"""Draws the JSON of `flashjit bench --json` (Debian's python3-matplotlib).

Usage: plot.py BENCH.json OUT.png

OUT.png           GFLOP/s (from the median time) of every suite shape, one bar per engine (ONNX Runtime
                  when the run had --peer), one panel per part (attention core, whole layer), with the
                  FMA peak measured in the same run as a dashed line.
OUT_scaling.png   the N sweep: time and peak extra memory against N, one colour per engine, solid for
                  the flash path and dashed for the standard path, one row per part.
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ENGINE_ORDER = ["jit", "jit-standard", "fallback", "fallback-standard", "reference", "reference-standard",
                "onnxruntime"]
COLOURS = {"jit": "tab:blue", "fallback": "tab:orange", "reference": "tab:gray", "onnxruntime": "tab:red"}
PART_TITLES = {"core": "attention core (Q, K, V given)", "layer": "whole layer (with projections)",
               "backward": "layer backward (all gradients, after a forward)"}


def engine_colour(engine):
    return COLOURS.get(engine.split("-")[0], "black")


def is_standard(record):
    return record.get("path") == "standard"


def ordered(engines):
    known = [e for e in ENGINE_ORDER if e in engines]
    return known + sorted(set(engines) - set(known))


def title(report):
    machine, config = report["machine"], report["config"]
    return (f"{machine['cpu']} ({machine['llvm_cpu']}), {config['threads']} threads, {config['dtype']}, "
            f"batch {config['batch']}")


def plot_throughput(report, out_path):
    config = report["config"]
    times = [r for r in report["results"] if r["kind"] == "time" and r["series"] == "suite"]
    shapes = config["shapes"]
    parts = [p for p in config["parts"] if any(r["part"] == p for r in times)] or config["parts"]
    fig, axes = plt.subplots(len(parts), 1, figsize=(12, 4.5 * len(parts)), squeeze=False)
    peak = report.get("peak")
    for axis, part in zip(axes[:, 0], parts):
        records = [r for r in times if r["part"] == part]
        engines = ordered({r["engine"] for r in records})
        width = 0.8 / max(1, len(engines))
        for i, engine in enumerate(engines):
            xs, ys = [], []
            for j, shape in enumerate(shapes):
                match = [r for r in records if r["engine"] == engine and shape_text(r) == shape]
                if match:
                    xs.append(j - 0.4 + width * (i + 0.5))
                    ys.append(match[0]["gflops"])
            bars = axis.bar(xs, ys, width, label=engine, color=engine_colour(engine),
                            hatch="//" if engine.endswith("-standard") else None, edgecolor="white")
            if engine == "jit" and peak:
                for bar, value in zip(bars, ys):
                    axis.annotate(f"{100 * value / peak['gflops']:.0f}%", (bar.get_x() + bar.get_width() / 2, value),
                                  ha="center", va="bottom", fontsize=8)
        top = max([r["gflops"] for r in records] + [peak["gflops"] if peak else 0])
        if peak:
            axis.axhline(peak["gflops"], color="black", linestyle="--", linewidth=1,
                         label=f"FMA peak {peak['gflops']:.0f} GFLOP/s ({peak['isa']}, {peak['threads']} threads)")
        # Headroom above the peak line keeps the legend off the bars.
        axis.set_ylim(0, top * 1.35)
        axis.set_xticks(range(len(shapes)), shapes)
        axis.set_xlabel("shape C:H:S (N = S² tokens)")
        axis.set_ylabel("GFLOP/s (median)")
        axis.set_title(PART_TITLES.get(part, part))
        axis.legend(fontsize=8, ncol=4, loc="upper center")
        axis.grid(axis="y", alpha=0.3)
    fig.suptitle(title(report))
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)


def shape_text(record):
    return f"{record['channels']}:{record['heads']}:{record['spatial']}" + (":causal" if record["causal"] else "")


def in_sweep(record, sweep, batch):
    return (record["channels"] == sweep["channels"] and record["heads"] == sweep["heads"] and not record["causal"]
            and record["batch"] == batch)


def draw_series(axis, records, value, ylabel):
    for engine in ordered({r["engine"] for r in records}):
        points = sorted((r["N"], value(r)) for r in records if r["engine"] == engine and value(r) > 0)
        if points:
            axis.plot([n for n, _ in points], [v for _, v in points], marker="o", label=engine,
                      color=engine_colour(engine), linestyle="--" if engine.endswith("-standard") else "-")
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xlabel("N (tokens)")
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)


def plot_scaling(report, out_path):
    config = report["config"]
    sweep = config["sweep"]
    if not sweep["spatial"]:
        return False
    results = [r for r in report["results"] if r["kind"] in ("time", "memory")
               and in_sweep(r, sweep, config["batch"])]
    parts = config["parts"]
    fig, axes = plt.subplots(len(parts), 2, figsize=(12, 4.5 * len(parts)), squeeze=False)
    for row, part in enumerate(parts):
        label = PART_TITLES.get(part, part)
        times = [r for r in results if r["kind"] == "time" and r["part"] == part]
        draw_series(axes[row, 0], times, lambda r: r["ms_median"], "time, ms (median)")
        axes[row, 0].set_title(f"{label}: time")
        memory = [r for r in results if r["kind"] == "memory" and r["part"] == part]
        draw_series(axes[row, 1], memory, lambda r: r["peak_extra_bytes"] / 2**20, "peak extra memory, MiB")
        axes[row, 1].set_title(f"{label}: peak extra memory")
    fig.suptitle(f"{sweep['channels']}:{sweep['heads']}, N = S² for S in {sweep['spatial']} - {title(report)}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return True


def scaling_path(out_path):
    stem, ext = os.path.splitext(out_path)
    return f"{stem}_scaling{ext or '.png'}"


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        report = json.load(f)
    plot_throughput(report, argv[2])
    print(f"wrote {argv[2]}")
    if plot_scaling(report, scaling_path(argv[2])):
        print(f"wrote {scaling_path(argv[2])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
