"""The README's model table, generated from the registry: `keras-resnets list --markdown`."""

import inspect

from keras_resnets.models import densenet, highway, registry, resnet
from keras_resnets.utils import count_macs, count_params


def _configurations(name):
    """(label, kwargs) rows for a registry name: one per depth the family defines."""
    tables = {
        "cifar_resnet": [{"depth": d} for d in resnet.CIFAR_DEPTHS],
        "cifar_plain": [{"depth": d} for d in resnet.CIFAR_DEPTHS],
        "cifar_preact_resnet": [{"depth": d} for d in resnet.CIFAR_PREACT_DEPTHS],
        "cifar_densenet": [{"depth": d, "growth_rate": k}
                           for d, ks in densenet.CIFAR_DEPTHS.items() for k in ks],
        "cifar_densenet_bc": [{"depth": d} for d in densenet.CIFAR_BC_DEPTHS],
        "cifar_highway": [{"depth": d} for d in highway.DEPTHS],
    }
    return tables.get(name, [{}])


def rows(names=None):
    """Yield dicts: name, kwargs, params, macs, input size, default-ness."""
    for name in names or registry.list_models():
        builder = registry.get_builder(name)
        for kwargs in _configurations(name):
            model = builder(**kwargs)
            yield {
                "name": name,
                "kwargs": kwargs,
                "params": count_params(model),
                "macs": count_macs(model),
                "input": "x".join(str(d) for d in model.input_shape[1:3]),
                "summary": (inspect.getdoc(builder) or "").splitlines()[0],
            }


def markdown(names=None):
    lines = [
        "| `build(...)` | input | params | multiply-adds |",
        "| --- | --- | ---: | ---: |",
    ]
    for row in rows(names):
        args = "".join(f", {k}={v!r}" for k, v in row["kwargs"].items())
        macs = row["macs"]
        macs_text = f"{macs / 1e9:.2f} G" if macs >= 1e9 else f"{macs / 1e6:.1f} M"
        lines.append(
            f"| `{row['name']!r}{args}` | {row['input']} | {row['params']:,} | {macs_text} |"
        )
    return "\n".join(lines)


START, END = "<!-- model-table:start -->", "<!-- model-table:end -->"


def update_readme(path="README.md"):
    """Rewrite the table between the model-table markers of `path`; return True if changed."""
    from pathlib import Path

    path = Path(path)
    text = path.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{markdown()}\n{END}{tail}"
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":
    # python -m keras_resnets.model_table [README.md]: regenerate the README's model table.
    import sys

    changed = update_readme(*(sys.argv[1:2] or ["README.md"]))
    print("README model table", "updated" if changed else "already up to date")
