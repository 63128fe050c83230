"""Results JSON -> markdown tables and a PNG chart of the ratios."""

import json
from pathlib import Path

from keras_resnets.machine import cpu_kind


def _fmt(value, digits=2):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _groups(results, kind):
    """The finished groups of `kind` (failed ones are listed apart, by `_failed`)."""
    return [g for g in results.get("groups", []) if g.get("kind") == kind and not g.get("error")]


def _failed(results):
    return [g for g in results.get("groups", []) if g.get("error")]


def goals(results):
    """The project's three measurable goals, each with its measured value and verdict."""
    rows = []
    names = {
        "torch": "PyTorch eager channels_last",
        "keras_plain": "a plain keras.layers model",
        "keras_app": "keras.applications",
    }
    for g in _groups(results, "throughput"):
        if g.get("jit_compile") and not g.get("xla_default"):  # goals: the default settings
            continue
        train = g.get("results", {}).get("train", {})
        precision = g.get("precision", "float32")
        for peer, name in names.items():
            if peer in train and (g["model"] == "cifar_resnet20" or peer == "keras_app"):
                value = train[peer]["ours_speedup"]
                rows.append(
                    (
                        f"{g['model']} training ({precision}, batch {g['batch_size']}, "
                        f"{g['input_size']}px) >= 1.0x {name}",
                        f"{value:.2f}x",
                        value >= 1.0,
                    )
                )
    for g in _groups(results, "memory"):
        ratios = g.get("memory_efficient_vs_plain") or {}
        if g["model"].startswith("cifar_densenet_bc100") and ratios:
            step_time, how = ratios["step_time"], "sequential processes"
            # Prefer the interleaved step-time ratio of a throughput group, where there is one.
            for t in _groups(results, "throughput"):
                train = t.get("results", {}).get("train", {})
                if (
                    t["model"] == g["model"]
                    and t["batch_size"] == g["batch_size"]
                    and "keras_resnets memory_efficient" in train
                ):
                    step_time = train["keras_resnets memory_efficient"]["ours_speedup"]
                    how = "interleaved"
            met = ratios["step_increase"] <= 0.5 and step_time <= 1.3
            rows.append(
                (
                    f"DenseNet-BC-100 memory-efficient <= 0.5x plain training memory at <= 1.3x "
                    f"step time (batch {g['batch_size']})",
                    f"memory {ratios['step_increase']:.2f}x (step increase), "
                    f"{ratios['peak_rss']:.2f}x (peak RSS); step time {step_time:.2f}x ({how})",
                    met,
                )
            )
    for g in _groups(results, "bf16"):
        speedup = g.get("train_step_bf16_speedup", {}).get("keras_resnets")
        if speedup is not None:
            rows.append(
                (
                    f"bfloat16 trains >= 2x faster than float32 ({g['model']})",
                    f"{speedup:.2f}x",
                    speedup >= 2.0,
                )
            )
    return rows


def markdown(results):
    m = results.get("machine", {})
    cpu = m.get("cpu", {})
    lines = [
        "# Benchmarks",
        "",
        f"Measured {results.get('date', '?')} with `{results.get('command', '?')}`"
        + (
            " (quick mode: tiny sizes, numbers are only a smoke test)"
            if results.get("quick")
            else ""
        )
        + ".",
        "",
        f"Machine: {cpu.get('model', '?')}, {m.get('cpu_count', '?')} cores, "
        f"{m.get('memory_gb', '?')} GB; "
        f"CPU kind {cpu.get('kind') or cpu_kind(cpu.get('flags', []))}; TensorFlow's oneDNN "
        f"{ {True: 'on', False: 'off'}.get(m.get('onednn'), 'not recorded') }; "
        f"flags: {', '.join(cpu.get('flags', [])) or '-'}; "
        f"load average at start: {', '.join(f'{x:.1f}' for x in m.get('load_average', []))}. "
        f"Python {m.get('python')}, Keras {m.get('keras')} ({m.get('backend')} backend), "
        f"TensorFlow {m.get('tensorflow')}, PyTorch {m.get('torch') or 'not installed'}, "
        f"torchvision {m.get('torchvision') or 'not installed'}."
        + "".join(
            f" Earlier groups in this file ran with Python {e.get('python')}, Keras "
            f"{e.get('keras')} ({e.get('backend')} backend), TensorFlow {e.get('tensorflow')}, "
            f"PyTorch {e.get('torch') or 'not installed'}, torchvision "
            f"{e.get('torchvision') or 'not installed'}."
            for e in results.get("earlier_software", [])
        ),
        "",
        "Ratios matter, absolute times do not: the machine is a shared VM whose speed drifts. "
        "Every contender of a group ran in the same process, interleaved repeat by repeat; "
        "the medians are reported and warm-up is excluded (shown separately). "
        "See benchmarks/README.md for the methodology.",
        "",
    ]
    rows = goals(results)
    if rows:
        lines += ["## Project goals", "", "| goal | measured | met |", "| --- | --- | --- |"]
        lines += [f"| {g} | {v} | {'yes' if ok else 'no'} |" for g, v, ok in rows]
        lines.append("")

    matmul = results.get("matmul")
    if matmul:
        lines += [
            f"## Machine limit: {matmul['size']}x{matmul['size']} matmul "
            f"(median of {matmul['repeats']})",
            "",
            "| framework | float32 GFLOP/s | bfloat16 GFLOP/s | bf16 / fp32 |",
            "| --- | --- | --- | --- |",
        ]
        for framework, by_dtype in matmul["results"].items():
            fp32 = by_dtype.get("float32", {}).get("gflops")
            bf16 = by_dtype.get("bfloat16", {}).get("gflops")
            ratio = bf16 / fp32 if fp32 and bf16 else None
            lines.append(f"| {framework} | {_fmt(fp32, 1)} | {_fmt(bf16, 1)} | {_fmt(ratio)} |")
        if results.get("theoretical_fp32_gflops"):
            lines.append("")
            bf16_peak = results.get("bf16_peak_gflops")
            lines.append(
                f"Datasheet float32 peak (cores x 2 FMA x 16 or 8 lanes x 2 x base "
                f"clock): {results['theoretical_fp32_gflops']:.0f} GFLOP/s. Model FLOP "
                f"utilisation (MFU) below is against the measured matmul rate of the "
                f"group's precision: {results.get('fp32_peak_gflops', 0):.1f} GFLOP/s "
                f"in float32" + (f", {bf16_peak:.1f} in bfloat16." if bf16_peak else ".")
            )
        lines.append("")

    throughput = _groups(results, "throughput")
    if throughput:
        lines += [
            "## Throughput",
            "",
            "images/s is the median over repeats; `ours x` is how many times faster "
            "keras_resnets is than that contender (step time of the contender / ours); "
            "MFU = achieved FLOP/s / measured matmul peak, with FLOPs = 2 x "
            "multiply-adds (count_macs) per image, x3 for a training step. Our models "
            "normalise raw pixels inside (a Normalization layer, counted in our time); "
            "keras.applications models take preprocessed inputs and have no such layer.",
            "",
            "| model | precision | batch | input | mode | contender | images/s | step ms | "
            "ours x | MFU | first step s | repeats |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for g in throughput:
            for mode, by_label in g["results"].items():
                for label, s in by_label.items():
                    xla = " XLA" if g.get("jit_compile") else ""
                    lines.append(
                        f"| {g['model']} | {g.get('precision', 'float32')}{xla} | "
                        f"{g['batch_size']} | {g['input_size']} | {mode} | "
                        f"{label} | {_fmt(s['images_per_second'], 1)} | "
                        f"{_fmt(1e3 * s['step_seconds_median'], 0)} | "
                        f"{_fmt(s['ours_speedup'])} | "
                        f"{_fmt(100 * s['mfu'], 1) + '%' if s.get('mfu') else '-'} | "
                        f"{_fmt(s['first_step_seconds'], 1)} | {s['repeats']} |"
                    )
            if g.get("error"):
                lines.append(f"| {g['model']} | | | | | error: {g['error'][:80]} | | | | | | |")
        lines.append("")

    memory = _groups(results, "memory")
    if memory:
        lines += [
            "## Peak training memory (process RSS, each variant in a fresh process)",
            "",
            "`step increase` = peak RSS during training steps 2.. minus RSS after "
            "building and compiling (activations, gradients, workspace); `peak` is the "
            "whole process (TensorFlow runtime, weights, graph).",
            "",
            "| model | batch | variant | params | RSS before MB | peak MB | "
            "step increase MB | step s | first step s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        ratio_lines = []
        for g in memory:
            for variant, r in g["results"].items():
                if "error" in r:
                    lines.append(
                        f"| {g['model']} | {g['batch_size']} | {variant} | "
                        f"error: {r['error'][:80]!r} | | | | | |"
                    )
                    continue
                lines.append(
                    f"| {g['model']} ({r['model_name']}, {g['input_size']}px) | "
                    f"{g['batch_size']} | {variant} | {r['params']:,} | "
                    f"{_fmt(r['rss_before_mb'], 0)} | {_fmt(r['peak_steady_mb'], 0)} | "
                    f"{_fmt(r['step_increase_mb'], 0)} | {_fmt(r['step_seconds_median'])} | "
                    f"{_fmt(r['first_step_seconds'], 1)} |"
                )
            ratios = g.get("memory_efficient_vs_plain")
            if ratios:
                ratio_lines.append(
                    f"- {g['model']}, batch {g['batch_size']}: memory-efficient / plain: step "
                    f"increase {ratios['step_increase']:.2f}x, peak RSS "
                    f"{ratios['peak_rss']:.2f}x, step time {ratios['step_time']:.2f}x "
                    "(sequential processes, not interleaved)."
                )
        lines += [""] + ratio_lines + [""]

    for g in _groups(results, "bf16"):
        lines += [
            f"## bfloat16 vs float32 ({g['model']}, batch {g['batch_size']}, training step)",
            "",
            f"CPU bf16 hardware (AVX512_BF16 or AMX): "
            f"{'yes' if g['cpu'].get('bf16_hardware') else 'no'}.",
            "",
            "| contender | step s (median) | images/s | first step s | repeats |",
            "| --- | --- | --- | --- | --- |",
        ]
        for label, s in g["results"].items():
            lines.append(
                f"| {label} | {_fmt(s['step_seconds_median'])} | "
                f"{_fmt(s['images_per_second'], 1)} | "
                f"{_fmt(s['first_step_seconds'], 1)} | {s['repeats']} |"
            )
        lines.append("")
        speedups = ", ".join(f"{k} {v:.2f}x" for k, v in g["train_step_bf16_speedup"].items())
        mm = ", ".join(f"{k} {v:.2f}x" for k, v in g["matmul_bf16_speedup"].items())
        lines.append(f"bf16 / fp32 speed: training step {speedups or '-'}; matmul {mm or '-'}.")
        lines.append("")

    onednn = _groups(results, "onednn")
    for model in dict.fromkeys(g["model"] for g in onednn):
        by_precision = {g.get("precision", "float32"): g for g in onednn if g["model"] == model}
        precisions = list(by_precision)
        batch = next(iter(by_precision.values()))["batch_size"]
        lines += [
            f"## Where the training step's time goes ({model}, batch {batch}, oneDNN's own timing)",
            "",
            "ms per step, from ONEDNN_VERBOSE (which itself slows the step a little). "
            "TensorFlow runs independent ops at once on the cores (a convolution's "
            "input and weight gradients, say), so the primitives' times can add up to "
            "more than the step's wall time; the rest of the step is TensorFlow's own "
            "elementwise ops, the optimizer's updates and dispatch.",
            "",
            "| part | "
            + " | ".join(f"{p} ms" for p in precisions)
            + (" | float32 / bfloat16 |" if len(precisions) == 2 else " |"),
            "| --- |" + " --- |" * (len(precisions) + (len(precisions) == 2)),
        ]
        parts = list(
            dict.fromkeys(k for g in by_precision.values() for k in g["primitive_ms_per_step"])
        )
        rows = [
            (part, [g["primitive_ms_per_step"].get(part) for g in by_precision.values()])
            for part in parts
        ]
        rows += [
            ("sum of oneDNN primitives", [g["onednn_ms_per_step"] for g in by_precision.values()]),
            ("whole step (wall clock)", [g["step_ms"] for g in by_precision.values()]),
        ]
        for part, values in rows:
            cells = " | ".join(_fmt(v, 1) for v in values)
            ratio = ""
            if len(values) == 2:
                ratio = " | " + (
                    _fmt(values[0] / values[1]) + "x" if values[0] and values[1] else "-"
                )
            lines.append(f"| {part} | {cells}{ratio} |")
        lines.append("")

    for g in _groups(results, "pipeline"):
        train = g["train"]
        lines += [
            f"## Input pipeline cost ({g['model']}, {g.get('precision', 'float32')}, "
            f"batch {g['batch_size']}, real CIFAR-10)",
            "",
            "| feed | images/s |",
            "| --- | --- |",
            f"| the pipeline alone (shuffle, gather, pad-crop-flip; no model) | "
            f"{_fmt(g['pipeline_images_per_second'], 0)} |",
            f"| `fit`, fed by the pipeline | {_fmt(train['pipeline']['images_per_second'], 0)} |",
            f"| `fit`, fed one batch held in memory | "
            f"{_fmt(train['in_memory']['images_per_second'], 0)} |",
            "",
            f"The pipeline costs training {100 * g['pipeline_cost']:.1f}% of its "
            f"throughput (interleaved `fit` calls of {g['steps']} steps, median of "
            f"{g['repeats']}).",
            "",
        ]

    tta = _groups(results, "time_to_accuracy")
    if tta:
        lines += [
            "## Time to accuracy (CIFAR-10, from the run's history.csv)",
            "",
            "| run | model | target | reached at epoch | wall time | best | epochs |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for g in tta:
            wall = f"{g['wall_time_seconds'] / 60:.1f} min" if g["reached"] else "-"
            lines.append(
                f"| {g['run']} | {g.get('model', '?')} {g.get('model_kwargs', '')} "
                f"{g.get('recipe', '')} {g.get('mixed_precision') or 'float32'} | "
                f"{g['target']:.3f} | "
                f"{g['epoch'] or 'not reached'} | {wall} | "
                f"{g['best_val_accuracy']:.4f} | {g['epochs_run']} |"
            )
        lines.append("")

    failed = _failed(results)
    if failed:
        lines += ["## Failed or timed-out groups", ""]
        lines += [
            f"- {g.get('kind')} {g.get('model', '')}: {g['error'].strip().splitlines()[-1][:200]}"
            for g in failed
        ]
        lines.append("")
    if results.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in results["notes"]] + [""]
    if results.get("chart"):
        lines += [f"![ratios]({results['chart']})", ""]
    return "\n".join(lines)


def chart_rows(results):
    """(label, ratio) pairs for the chart: > 1 favours keras_resnets (or bf16 / remat)."""
    rows = []
    for g in _groups(results, "throughput"):
        for mode, by_label in g["results"].items():
            for label, s in by_label.items():
                precision = " bf16" if g.get("precision") == "bfloat16" else ""
                precision += " XLA" if g.get("jit_compile") else ""
                if label == "keras_resnets memory_efficient":
                    # Same sense as the memory rows: > 1 when the efficient variant is faster.
                    rows.append(
                        (
                            f"{g['model']} {mode} step time: plain / efficient (interleaved)",
                            1 / s["ours_speedup"],
                        )
                    )
                elif label != "keras_resnets":
                    rows.append(
                        (f"{g['model']}{precision} {mode}: ours vs {label}", s["ours_speedup"])
                    )
    for g in _groups(results, "memory"):
        r = g.get("memory_efficient_vs_plain")
        if r:
            saving = 1 / max(r["step_increase"], 1e-9)
            rows.append((f"{g['model']} memory: plain / efficient", saving))
            rows.append(
                (f"{g['model']} step time: plain / efficient (sequential)", 1 / r["step_time"])
            )
    for g in _groups(results, "pipeline"):
        train = g["train"]
        rows.append(
            (
                f"{g['model']} fit: pipeline / in-memory batch",
                train["pipeline"]["images_per_second"] / train["in_memory"]["images_per_second"],
            )
        )
    for g in _groups(results, "bf16"):
        for k, v in g["train_step_bf16_speedup"].items():
            rows.append((f"{g['model']} train: bf16 speed / fp32 ({k})", v))
        for k, v in g["matmul_bf16_speedup"].items():
            rows.append((f"matmul: bf16 speed / fp32 ({k})", v))
    return rows


def chart(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = chart_rows(results)
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(rows) + 1.2))
    labels = [r[0] for r in rows]
    values = [r[1] for r in rows]
    colors = ["tab:green" if v >= 1 else "tab:red" for v in values]
    ax.barh(range(len(rows)), values, color=colors)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.2f}x", va="center", fontsize=8)
    ax.set_xlabel(
        "ratio (> 1: keras_resnets faster; memory-efficient or bf16 side better)", fontsize=8
    )
    ax.set_title(f"keras_resnets benchmarks, {results.get('date', '')}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(results, out_dir, *, stem="benchmarks"):
    """Write `stem`.json, `stem`.md and `stem`.png into `out_dir`; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{stem}.png"
    if chart(results, png):
        results["chart"] = png.name
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(results, indent=2, default=str))
    md_path = out_dir / f"{stem}.md"
    text = markdown(results)
    contenders_json = out_dir / "contenders.json"
    if contenders_json.exists():
        from benchmarks import contenders

        text += "\n" + contenders.section(json.loads(contenders_json.read_text())) + "\n"
    # The inference section (benchmarks/inference.py) and the notes after it are written
    # into the page by their own command: keep them.
    from benchmarks.inference import BEGIN

    old = md_path.read_text() if md_path.exists() else ""
    if BEGIN in old:
        text += "\n" + old[old.index(BEGIN) :]
    md_path.write_text(text)
    return {"json": json_path, "markdown": md_path, "chart": png if png.exists() else None}
