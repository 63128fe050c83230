"""The README's model table, generated from the registry: `keras-resnets list --markdown`."""

import inspect
import warnings

# The registry and the accounting import Keras: they are imported where used, so that
# `python -m keras_resnets.model_table` can start Keras quietly first.


def _registry():
    from keras_resnets.models import registry

    return registry


def _configurations(name):
    """Builder-argument rows for a registry name, from its registry facts."""
    return _registry().get_info(name).table_configs


def rows(names=None, *, progress=False):
    """Yield dicts: name, kwargs, params, macs, input size, default-ness. `progress` shows a
    bar on stderr (building the largest models takes seconds each)."""
    from tqdm import tqdm

    from keras_resnets.accounting import count_macs, count_params

    registry = _registry()
    configs = [(n, kw) for n in names or registry.list_models() for kw in _configurations(n)]
    # disable=None: a bar on a terminal only, never `\r` updates filling a log file.
    bar = tqdm(
        configs, desc="building", unit="model", leave=False, disable=None if progress else True
    )
    for name, kwargs in bar:
        builder = registry.get_builder(name)
        # Keras's NumPy backend (`list --markdown`) runs the layers on placeholder values to
        # infer shapes and count operations; they overflow in the deepest nets, harmlessly:
        # only the shapes count here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            model = builder(**kwargs)
            row = {
                "name": name,
                "kwargs": kwargs,
                "params": count_params(model),
                "macs": count_macs(model),
                "input": "x".join(str(d) for d in model.input_shape[1:3]),
                "summary": (inspect.getdoc(builder) or "").splitlines()[0],
            }
        yield row


def markdown(names=None, *, progress=False):
    lines = [
        "| `build(...)` | input | params | multiply-adds |",
        "| --- | --- | ---: | ---: |",
    ]
    for row in rows(names, progress=progress):
        args = "".join(f", {k}={v!r}" for k, v in row["kwargs"].items())
        macs = row["macs"]
        macs_text = f"{macs / 1e9:.2f} G" if macs >= 1e9 else f"{macs / 1e6:.1f} M"
        lines.append(
            f"| `{row['name']!r}{args}` | {row['input']} | {row['params']:,} | {macs_text} |"
        )
    return "\n".join(lines)


def weights_markdown(names=None):
    """The pretrained weights of each model, from the registry's `Weights` entries."""
    lines = [
        "| `build(...)` | `weights=` | source | layout | top-1 | licence |",
        "| --- | --- | --- | --- | ---: | --- |",
    ]
    registry = _registry()
    for name in names or registry.list_models():
        for w in sorted(registry.get_info(name).weights, key=lambda w: -w.top1):
            call = (
                f"`{name!r}"
                + "".join(f", {k}={v!r}" for k, v in w.layout.items() if k == "depth")
                + "`"
            )
            layout = ", ".join(f"`{k}={v!r}`" for k, v in w.layout.items() if k != "depth")
            if w.url.startswith("package:"):  # shipped: the file, and how it was trained
                url = f"keras_resnets/weights/{w.url[len('package:') :]}"
                source = (
                    f"{w.source}, {w.meta['epochs']} epochs, {w.meta['precision']}, "
                    f"{w.meta['machine']}"
                )
            else:
                url, source = w.url, w.source
            lines.append(
                f"| {call} | `{w.tag!r}` | [{source}]({url}) | {layout or 'default'} | "
                f"{w.top1:.2f}% | {w.license} |"
            )
    return "\n".join(lines)


TABLES = {
    "model-table": markdown,
    "weights-table": weights_markdown,
}


def update_readme(path="README.md", tables=None):
    """Rewrite each generated table (or those named in `tables`) between its markers in
    `path`; return True if anything changed."""
    from pathlib import Path

    path = Path(path)
    text = original = path.read_text()
    for marker, make in TABLES.items():
        if tables is not None and marker not in tables:
            continue
        start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
        if start not in text:
            continue
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{make()}\n{end}{tail}"
    if text != original:
        path.write_text(text)
    return text != original


if __name__ == "__main__":
    # python -m keras_resnets.model_table [README.md] [--weights-only]: regenerate the
    # README's tables (--weights-only: the weights table, which builds no model).
    import sys

    from keras_resnets import machine

    machine.start_keras(tf_logs="--tf-logs" in sys.argv)
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    only = ["weights-table"] if "--weights-only" in sys.argv else None
    changed = update_readme(*(args[:1] or ["README.md"]), tables=only)
    print("README tables", "updated" if changed else "already up to date")
