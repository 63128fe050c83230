"""`python -m benchmarks inference`: its section of benchmarks.md, and (slow) a real run."""

import json

import pytest

from benchmarks import inference


def _result(median_tf=10.0, median_onnx=2.0):
    rows = {
        key: {
            "batch1_median_ms": median_onnx,
            "batch1_p99_ms": 3.0,
            "batch1_calls": 4,
            "batch32_images_per_second": 100.0,
            "batch32_calls": 1,
            "size_mb": 1.0,
            "max_abs_diff_vs_keras": 0.0,
        }
        for key in inference.FORMATS
    }
    rows["saved_model"]["batch1_median_ms"] = median_tf
    return {
        "kind": "inference",
        "date": "2026-01-01 00:00",
        "command": "python -m benchmarks x",
        "machine": {
            "cpu": {"model": "AMD EPYC", "flags": ["avx2"]},
            "cpu_count": 2,
            "tensorflow": "2.21.0",
        },
        "models": [
            {
                "model": "cifar_resnet20",
                "input_shape": [32, 32, 3],
                "threads": 2,
                "rounds": 1,
                "export_seconds": 1.0,
                "results": rows,
                "fastest_batch1": "onnx",
                "speedup_vs_saved_model": median_tf / median_onnx,
            }
        ],
    }


def test_section_is_appended_then_replaced(tmp_path):
    md = tmp_path / "benchmarks.md"
    md.write_text("# Benchmarks\n\nother groups\n")
    inference.write(_result(), tmp_path)
    first = md.read_text()
    assert first.startswith("# Benchmarks\n\nother groups\n")
    assert "| cifar_resnet20 32x32 | ONNX Runtime | 1.00 | 2.00 | 3.00 | 100 | 5.00x |" in first
    assert "5.00x the SavedModel (goal 1.5x: met)" in first
    md.write_text(first + "\nnotes after the section\n")
    inference.write(_result(median_tf=2.5), tmp_path)
    second = md.read_text()
    assert second.count(inference.BEGIN) == 1 and second.count(inference.END) == 1
    assert "1.25x the SavedModel (goal 1.5x: NOT met)" in second
    assert second.endswith("notes after the section\n")
    assert json.loads((tmp_path / "inference.json").read_text())["models"][0]["model"] == (
        "cifar_resnet20"
    )


@pytest.mark.slow
def test_measure_runs_every_format():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("ai_edge_litert")
    result = inference.measure("cifar_resnet20", rounds=1, calls=(3, 1))
    assert sorted(result["results"]) == sorted(inference.FORMATS)
    for key, row in result["results"].items():
        assert row["batch1_calls"] == 3 and row["batch1_median_ms"] > 0
        # float32 formats compute Keras's function; int8 weights move the probabilities of
        # this untrained net by a few thousandths (0.002 measured), as in test_export_formats.
        assert row["max_abs_diff_vs_keras"] < (0.05 if "int8" in key else 1e-3), key
