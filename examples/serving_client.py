"""Classify images with a keras_resnets model running in TensorFlow Serving, over REST.

    python examples/serving_client.py \
        --url http://localhost:8501/v1/models/cifar_resnet20:predict \
        --images cat.png ship.jpg [--bytes] [--size 32] \
        [--metadata saved_models/cifar_resnet20/1]

Without `--bytes` the client decodes the images itself (Pillow) and sends raw RGB pixel values
0..255 to the `serving_default` signature; the images must then have the model's input size
(or pass `--size` to resize them here). With `--bytes` it sends the files themselves,
base64-encoded, to the `serving_bytes` signature, which decodes and resizes them in the graph.
Clients never normalise: the model's preprocessing runs inside the server.

The signatures' names, inputs and dtypes are those the export wrote into its metadata file
(`<version>/assets.extra/keras_resnets.json`, `inputs`); `--metadata` reads them from there
(and the model's input size, to resize pixels to), so the client follows the export.
Without it the client uses `DEFAULT_INPUTS`, which tests/test_export.py checks against the
export's metadata.

Only the standard library is needed to post requests; Pillow only to send pixels.
"""

import argparse
import base64
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

# The export's signature inputs, as its metadata file lists them (less the shapes, which
# depend on the model): the first float32 one takes pixels, the first string one files.
DEFAULT_INPUTS = (
    {"signature": "serving_default", "name": "images", "dtype": "float32"},
    {"signature": "serving_uint8", "name": "images", "dtype": "uint8"},
    {"signature": "serving_bytes", "name": "image_bytes", "dtype": "string"},
)
METADATA_FILE = Path("assets.extra") / "keras_resnets.json"


def read_metadata(path):
    """The export's metadata: `path` is the JSON file, a version folder, or a model folder
    (then its highest version)."""
    path = Path(path)
    if path.is_dir() and not (path / METADATA_FILE).exists():
        versions = sorted(
            (int(p.name) for p in path.iterdir() if p.name.isdecimal() and p.is_dir()),
        )
        if versions:
            path = path / str(versions[-1])
    if path.is_dir():
        path = path / METADATA_FILE
    return json.loads(path.read_text())


def choose_input(inputs, *, use_bytes):
    """The `{signature, name, dtype, ...}` entry of `inputs` that takes encoded files
    (`use_bytes`) or float32 pixels."""
    dtype = "string" if use_bytes else "float32"
    for entry in inputs:
        if entry["dtype"] == dtype:
            return entry
    raise ValueError(
        f"The export has no signature taking {dtype} inputs. Its inputs: "
        f"{[(e['signature'], e['name'], e['dtype']) for e in inputs]}"
    )


def build_request(
    images_or_paths, *, use_bytes, signature_name=None, image_size=None, metadata=None
):
    """Build the JSON body of a TF Serving REST `:predict` request, in the "instances" form.

    Args:
        images_or_paths: image files (str or Path), encoded image files as `bytes`, or pixel
            arrays `[height, width, 3]` with values 0..255 (NumPy arrays or nested lists).
        use_bytes: send encoded files to `serving_bytes` (True) or pixels to
            `serving_default` (False).
        signature_name: overrides the signature chosen by `use_bytes`.
        image_size: `(height, width)` or an int: resize pixels before sending them. Defaults
            to `None` (send as they are, or, with `metadata`, resize image files to the
            model's size). Ignored with `use_bytes`, where the server resizes.
        metadata: the export's metadata (`read_metadata`), whose `inputs` name the
            signatures. Defaults to `None`: `DEFAULT_INPUTS`.

    Returns:
        A dict: `{"signature_name": ..., "instances": [{"images": [[[r, g, b], ...]]}, ...]}`
        or `{"signature_name": ..., "instances": [{"image_bytes": {"b64": "..."}}, ...]}`.

    Example:
    >>> body = build_request(["cat.png"], use_bytes=True)
    >>> post("http://localhost:8501/v1/models/cifar_resnet20:predict", body)
    """
    if isinstance(images_or_paths, (str, Path, bytes)):
        images_or_paths = [images_or_paths]
    images_or_paths = list(images_or_paths)  # a 4-D pixel array becomes a list of images
    if not images_or_paths:
        raise ValueError("`images_or_paths` must name at least one image. Received: []")
    entry = choose_input(
        metadata["inputs"] if metadata else DEFAULT_INPUTS, use_bytes=bool(use_bytes)
    )
    if metadata and image_size is None and not use_bytes:
        height, width = entry["shape"][1:3]
        paths = all(isinstance(item, (str, Path, bytes)) for item in images_or_paths)
        image_size = (height, width) if paths and None not in (height, width) else None
    if use_bytes:
        values = [
            {"b64": base64.b64encode(_encoded(item)).decode("ascii")} for item in images_or_paths
        ]
    else:
        values = [_pixels(item, image_size) for item in images_or_paths]
        sizes = {(len(v), len(v[0])) for v in values}
        if len(sizes) > 1:
            raise ValueError(
                "Pixel requests need images of one size (a batch is one tensor); pass "
                f"image_size (--size) or use_bytes (--bytes). Received sizes: {sorted(sizes)}"
            )
    return {
        "signature_name": signature_name or entry["signature"],
        "instances": [{entry["name"]: value} for value in values],
    }


def post(url, body, *, timeout=60.0):
    """POST `body` as JSON to a TF Serving REST URL and return the decoded JSON response.

    Raises:
        RuntimeError: TF Serving answered with an error; its message (for a bad request,
            the signature's own check, e.g. the expected image shape) is included.
    """
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", "replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except (ValueError, AttributeError):
            pass
        raise RuntimeError(f"TF Serving answered HTTP {error.code}: {detail}") from None


def format_predictions(response, labels, *, top=3):
    """One line per image: its label, then the `top` classes with their probabilities."""
    lines = []
    for label, prediction in zip(labels, response["predictions"]):
        probabilities = prediction["probabilities"]
        ranked = sorted(range(len(probabilities)), key=lambda i: -probabilities[i])[:top]
        best = prediction.get("class_names", prediction["classes"])
        others = ", ".join(f"{i}: {probabilities[i]:.3f}" for i in ranked)
        lines.append(f"{label}: {best} (class {prediction['classes']}; top {top}: {others})")
    return "\n".join(lines)


def _encoded(item):
    if isinstance(item, bytes):
        return item
    if isinstance(item, (str, Path)):
        return Path(item).read_bytes()
    # A pixel array: send it as a (lossless) PNG.
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(_as_uint8(item)).save(buffer, format="PNG")
    return buffer.getvalue()


def _pixels(item, image_size):
    if isinstance(item, (str, Path, bytes)):
        import io

        from PIL import Image

        source = io.BytesIO(item) if isinstance(item, bytes) else Path(item)
        with Image.open(source) as image:
            image = image.convert("RGB")
            if image_size is not None:
                height, width = (
                    (image_size, image_size) if isinstance(image_size, int) else image_size
                )
                image = image.resize((width, height), Image.BILINEAR)
            width, height = image.size
            # Raw bytes rather than `getdata()`, deprecated in Pillow 12 (and gone in 14).
            data = image.tobytes()
        row_bytes = width * 3
        return [
            [
                list(data[row * row_bytes + 3 * col : row * row_bytes + 3 * col + 3])
                for col in range(width)
            ]
            for row in range(height)
        ]
    if image_size is not None:
        raise ValueError("image_size only resizes image files; resize pixel arrays beforehand.")
    return item.tolist() if hasattr(item, "tolist") else item


def _as_uint8(pixels):
    import numpy as np

    return np.clip(np.rint(np.asarray(pixels, dtype="float32")), 0, 255).astype("uint8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url", required=True, help="e.g. http://localhost:8501/v1/models/cifar_resnet20:predict"
    )
    parser.add_argument("--images", nargs="+", required=True, help="image files")
    parser.add_argument(
        "--bytes",
        action="store_true",
        dest="use_bytes",
        help="send the encoded files to `serving_bytes` (server decodes)",
    )
    parser.add_argument(
        "--size",
        type=int,
        nargs="+",
        metavar=("HEIGHT", "WIDTH"),
        help="resize pixels to this size before sending (without --bytes)",
    )
    parser.add_argument("--signature", help="signature name (default: by --bytes)")
    parser.add_argument(
        "--metadata",
        help="the export's model folder (then its highest version), a version folder, or its "
        "assets.extra/keras_resnets.json: "
        "signature names and the model's input size from there",
    )
    parser.add_argument(
        "--print-request", action="store_true", help="print the JSON body and exit without posting"
    )
    args = parser.parse_args(argv)
    if args.size is not None and len(args.size) > 2:
        parser.error(f"--size takes HEIGHT [WIDTH]. Received: --size {args.size}")

    size = None if args.size is None else tuple(args.size) * (2 if len(args.size) == 1 else 1)
    try:
        metadata = read_metadata(args.metadata) if args.metadata else None
    except (OSError, ValueError) as error:
        print(f"error: cannot read the export's metadata {args.metadata}: {error}", file=sys.stderr)
        return 2
    try:
        body = build_request(
            args.images,
            use_bytes=args.use_bytes,
            signature_name=args.signature,
            image_size=size,
            metadata=metadata,
        )
    except (OSError, ValueError) as error:  # a missing or unreadable image: one line
        message = (
            f"cannot read image {error.filename}: {error.strerror}"
            if getattr(error, "filename", None) and error.strerror
            else str(error)
        )
        print(f"error: {message}", file=sys.stderr)
        return 2
    if args.print_request:
        print(json.dumps(body))
        return 0
    try:
        response = post(args.url, body)
    except (RuntimeError, urllib.error.URLError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(format_predictions(response, args.images))
    return 0


if __name__ == "__main__":
    sys.exit(main())
