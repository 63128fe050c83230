"""The benchmark harness's pieces at tiny sizes: structure only, never speed.

Speed goals are measured by `python -m benchmarks` and reported in docs/benchmarks.md; they
never go in unit tests (the machine is shared and noisy).
"""

import json
import sys
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `pytest` (unlike `python -m pytest`) does not add the cwd
    sys.path.insert(0, str(ROOT))

from benchmarks import __main__ as cli  # noqa: E402
from benchmarks import (  # noqa: E402
    baselines,
    bf16,
    machine,
    memory,
    report,
    throughput,
    time_to_accuracy,  # noqa: E402
)
from keras_resnets.utils import count_macs, count_params  # noqa: E402

TF = keras.backend.backend() == "tensorflow"


def test_parse_model():
    assert baselines.parse_model("resnet50") == ("resnet50", {})
    assert baselines.parse_model("cifar_resnet20") == ("cifar_resnet", {"depth": 20})
    assert baselines.parse_model("cifar_densenet_bc100") == ("cifar_densenet_bc", {"depth": 100})
    with pytest.raises(ValueError, match="Received: 'nonet7'"):
        baselines.parse_model("nonet7")


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_plain_keras_baseline_is_the_same_network(shortcut):
    """The baseline must do the same work as ours, or the ratio means nothing."""
    ours = baselines.ours("cifar_resnet20", input_shape=(32, 32, 3), classes=10, shortcut=shortcut)
    plain = baselines.plain_keras_cifar_resnet(20, shortcut=shortcut)
    assert count_params(plain) == count_params(ours)
    assert count_macs(plain) == count_macs(ours)


def test_torch_baseline_is_the_same_network():
    torch = pytest.importorskip("torch")
    ours = baselines.ours("cifar_resnet20", input_shape=(32, 32, 3), classes=10, shortcut="B")
    model = baselines.torch_cifar_resnet(20, shortcut="B")
    assert sum(p.numel() for p in model.parameters()) == count_params(ours)
    out = model(torch.zeros(2, 3, 32, 32))
    assert tuple(out.shape) == (2, 10)


def test_unfused_highway_peer_is_the_same_network():
    """The `unfused` peer differs from ours only in how TensorFlow runs the gate's mix."""
    import numpy as np

    from keras_resnets.layers import HighwayUnit

    assert "unfused" in baselines.peers_for("highway5")
    assert "unfused" not in baselines.peers_for("cifar_resnet20")
    ours = baselines.ours("highway5", input_shape=(32, 32, 3), classes=10)
    peer = baselines.unfused(ours)
    units = [layer for layer in peer.layers if isinstance(layer, HighwayUnit)]
    assert len(units) == 5 and not any(unit.fused for unit in units)
    assert all(layer.fused for layer in ours.layers if isinstance(layer, HighwayUnit))
    assert count_params(peer) == count_params(ours) and count_macs(peer) == count_macs(ours)
    peer.set_weights(ours.get_weights())
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(peer(images, training=True)),
        keras.ops.convert_to_numpy(ours(images, training=True)),
        rtol=1e-4,
        atol=1e-5,
    )


@pytest.mark.slow  # out of the default run, which must stay about 10 min on 2 AVX2 cores
def test_throughput_tiny():
    peers = ["keras_plain"] + (["torch"] if baselines.torch_available() else [])
    contenders = throughput.build_contenders(
        "cifar_resnet20", peers=peers, batch_size=2, input_size=32, classes=10
    )
    results = throughput.measure(
        contenders,
        batch_size=2,
        modes=("train",),
        steps=1,
        repeats=2,
        warmup_steps=1,
        fp32_peak_gflops=100.0,
    )
    assert set(results) == {"train"}
    for mode in results.values():
        assert set(mode) == {"keras_resnets", *peers}
        for s in mode.values():
            assert s["repeats"] == 2 and len(s["samples"]) == 2
            assert s["images_per_second"] > 0 and s["first_step_seconds"] > 0
            assert s["macs_per_image"] > 0 and s["mfu"] > 0
        assert mode["keras_resnets"]["ours_speedup"] == pytest.approx(1.0)


def test_matmul_tiny():
    result = machine.matmul_gflops(size=32, repeats=1, frameworks=[keras.backend.backend()])
    by_dtype = result["results"][keras.backend.backend()]
    assert set(by_dtype) == {"float32", "bfloat16"}
    assert all(d["gflops"] > 0 for d in by_dtype.values())


def test_memory_worker_tiny(capsys):
    result = memory.worker(
        "cifar_resnet20", variant="plain", batch_size=2, input_size=32, classes=10, steps=1
    )
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(line.split(" ", 1)[1])["variant"] == "plain"
    for key in (
        "rss_before_mb",
        "peak_first_mb",
        "peak_steady_mb",
        "maxrss_mb",
        "step_seconds_median",
    ):
        assert result[key] > 0, key
    assert "step_increase_mb" in result  # may be slightly negative for a tiny model
    assert result["peak_steady_mb"] >= result["rss_before_mb"] * 0.5


@pytest.mark.slow  # two more traced training steps: 20 s of CPU
@pytest.mark.skipif(not TF, reason="runs a mixed_bfloat16 step; checked on TensorFlow")
def test_bf16_tiny():
    result = bf16.run(
        "cifar_resnet20",
        batch_size=2,
        steps=1,
        repeats=1,
        warmup_steps=1,
        matmul_size=32,
        matmul_repeats=1,
        torch_too=False,
    )
    assert set(result["results"]) == {"keras_resnets", "keras_resnets bf16"}
    assert result["train_step_bf16_speedup"]["keras_resnets"] > 0
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


def _fake_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.csv").write_text(
        "epoch,accuracy,loss,val_accuracy,val_loss,wall_time\n"
        "0,0.3,2.0,0.40,1.8,60.0\n1,0.5,1.5,0.62,1.2,120.5\n2,0.6,1.1,0.70,1.0,181.0\n"
    )
    (run / "run.json").write_text(
        json.dumps({"model": "cifar_resnet", "model_kwargs": {"depth": 20}})
    )
    return run


def test_time_to_accuracy_reads_a_run(tmp_path):
    result = time_to_accuracy.from_history(_fake_run(tmp_path), 0.6)
    assert result["reached"] and result["epoch"] == 2
    assert result["wall_time_seconds"] == pytest.approx(120.5)
    assert result["model"] == "cifar_resnet"
    missed = time_to_accuracy.from_history(tmp_path / "run", 0.9)
    assert not missed["reached"] and missed["best_val_accuracy"] == pytest.approx(0.7)


def test_report_structure(tmp_path):
    results = {
        "date": "2026-01-01 00:00",
        "command": "python -m benchmarks run",
        "quick": True,
        "machine": machine.describe(),
        "fp32_peak_gflops": 50.0,
        "matmul": {
            "kind": "matmul",
            "size": 32,
            "repeats": 1,
            "results": {"tensorflow": {"float32": {"gflops": 50.0}, "bfloat16": {"gflops": 10.0}}},
        },
        "groups": [
            {
                "kind": "throughput",
                "model": "cifar_resnet20",
                "batch_size": 2,
                "input_size": 32,
                "results": {
                    "train": {
                        name: {
                            "images_per_second": 10.0,
                            "step_seconds_median": 0.2,
                            "ours_speedup": speedup,
                            "mfu": 0.1,
                            "first_step_seconds": 3.0,
                            "repeats": 2,
                        }
                        for name, speedup in (("keras_resnets", 1.0), ("torch", 1.2))
                    }
                },
            },
            {
                "kind": "memory",
                "model": "cifar_densenet_bc100",
                "batch_size": 64,
                "input_size": 32,
                "results": {
                    v: {
                        "model_name": "m",
                        "params": 1,
                        "rss_before_mb": 500.0,
                        "peak_steady_mb": peak,
                        "step_increase_mb": peak - 500.0,
                        "step_seconds_median": 1.0,
                        "first_step_seconds": 2.0,
                    }
                    for v, peak in (("plain", 1500.0), ("memory_efficient", 900.0))
                },
                "memory_efficient_vs_plain": {
                    "peak_rss": 0.6,
                    "step_increase": 0.4,
                    "step_time": 1.2,
                },
            },
            time_to_accuracy.from_history(_fake_run(tmp_path), 0.6),
        ],
    }
    paths = report.write(results, tmp_path / "out")
    saved = json.loads(paths["json"].read_text())
    assert saved["groups"][0]["results"]["train"]["torch"]["ours_speedup"] == 1.2
    text = paths["markdown"].read_text()
    for heading in (
        "# Benchmarks",
        "## Project goals",
        "## Machine limit",
        "## Throughput",
        "## Peak training memory",
        "## Time to accuracy",
    ):
        assert heading in text, heading
    assert "| cifar_resnet20 | float32 | 2 | 32 | train | torch |" in text
    assert paths["chart"].stat().st_size > 0
    goals = report.goals(results)
    assert [ok for _, _, ok in goals] == [True, True]


def test_cli_time_to_accuracy_and_report(tmp_path, capsys):
    run = _fake_run(tmp_path)
    out = tmp_path / "docs"
    assert (
        cli.main(["time-to-accuracy", "--target", "0.6", "--run", str(run), "--out", str(out)]) == 0
    )
    saved = json.loads((out / "benchmarks.json").read_text())
    assert saved["groups"][0]["epoch"] == 2
    assert "python -m benchmarks time-to-accuracy" in saved["command"]
    assert cli.main(["report", "--out", str(out)]) == 0
    assert cli.main(["time-to-accuracy", "--target", "0.6"]) == 2  # needs --run or --train


def test_the_package_cli_has_no_benchmark_command(tmp_path, capsys):
    """The harness is outside the package: `keras-resnets benchmark` is an unknown command
    (one `error:` line), and `python -m benchmarks` is the way in."""
    from keras_resnets import cli as package_cli

    with pytest.raises(SystemExit) as raised:
        package_cli.main(
            ["benchmark", "time-to-accuracy", "--target", "0.5", "--run", str(_fake_run(tmp_path))]
        )
    assert raised.value.code == 2
    assert capsys.readouterr().err.startswith("error: argument command: invalid choice")


def test_time_to_accuracy_trains_through_the_library_api(tmp_path, monkeypatch):
    """`--train KEY=VALUE ...` are keras_resnets.training.train's arguments, JSON-parsed."""
    from keras_resnets import training

    seen = []
    run = _fake_run(tmp_path)
    monkeypatch.setattr(training, "run", lambda config: seen.append(config))
    out = tmp_path / "docs"
    argv = ["time-to-accuracy", "--target", "0.6", "--out", str(out), "--train"]
    argv += [f"out={run}", "epochs=2", 'model_kwargs={"depth": 20}', "data=../shared/cifar10"]
    assert cli.main(argv) == 0
    (config,) = seen
    assert (config.out, config.epochs, config.model_kwargs) == (str(run), 2, {"depth": 20})
    assert config.data == "../shared/cifar10"
    saved = json.loads((out / "benchmarks.json").read_text())
    assert saved["groups"][0]["epoch"] == 2
    assert saved["groups"][0]["train_kwargs"]["model_kwargs"] == {"depth": 20}


def test_memory_efficient_dense_block_updates_bn_statistics_once():
    """The benchmarked memory-efficient path must train the same model: recomputation must
    not update BatchNormalization's moving statistics a second time in the backward pass."""
    import numpy as np

    from keras_resnets.layers import DenseBlock

    x = np.random.default_rng(1).normal(1.0, 3.0, (4, 8, 8, 4)).astype("float32")
    moving = []
    for memory_efficient in (False, True):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((8, 8, 4))
        block = DenseBlock(2, 4, bottleneck=True, memory_efficient=memory_efficient, name="b")
        pooled = keras.layers.GlobalAveragePooling2D()(block(inputs))
        model = keras.Model(inputs, keras.layers.Dense(2)(pooled))
        model.compile("sgd", "mse")
        model.train_on_batch(x, np.zeros((4, 2), "float32"))
        moving.append(
            [keras.ops.convert_to_numpy(bn.moving_mean) for bn in block.bottleneck_bns + block.bns]
        )
    for plain, efficient in zip(*moving):
        np.testing.assert_allclose(efficient, plain, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # 20 s; the default run stays near 10 minutes on 2 cores; CI's slow step runs it
def test_pipeline_cost_tiny():
    """The pipeline group on the real CIFAR-10 copy: one short interleaved round."""
    from pathlib import Path

    from benchmarks import pipeline

    data = Path(__file__).resolve().parents[1].parent / "shared" / "cifar10"
    if not data.exists():
        pytest.skip(f"the shared CIFAR-10 copy is not at {data}")
    result = pipeline.run(
        "cifar_resnet20", batch_size=8, data=str(data), steps=2, repeats=1, warmup_steps=1
    )
    assert result["pipeline_images_per_second"] > 0
    assert set(result["train"]) == {"pipeline", "in_memory"}
    ratio = (
        result["train"]["pipeline"]["images_per_second"]
        / result["train"]["in_memory"]["images_per_second"]
    )
    assert result["pipeline_cost"] == pytest.approx(1 - ratio)
    text = report.markdown({"groups": [result]})
    assert "## Input pipeline cost" in text


def test_onednn_log_is_summed_inside_the_window():
    from benchmarks import onednn

    log = "\n".join(
        [
            "onednn_verbose,v1,primitive,info,template:timestamp,operation,engine,primitive",
            "onednn_verbose,v1,999.0,primitive,exec,cpu,convolution,brg:avx512,forward_training,"
            "src,attr,alg,mb2,5.0",  # before the window
            "onednn_verbose,v1,1000.5,primitive,exec,cpu,convolution,brg:avx512,forward_training,"
            "src,attr,alg,mb2,2.0",
            "onednn_verbose,v1,1001.0,primitive,exec,cpu,convolution,brg:avx512,forward_training,"
            "src,attr,alg,mb2,1.5",
            "onednn_verbose,v1,1001.5,primitive,create:cache_hit,cpu,reorder,jit,undef,s,a,b,c,0.1",
            "onednn_verbose,v1,1002.0,primitive,exec,cpu,batch_normalization,bnorm,backward,"
            "src,attr,alg,mb2,0.25",
            "ONEDNN_WINDOW {}",
            "onednn_verbose,v1,1003.0,primitive,exec,cpu,reorder,jit,undef,s,a,b,c,9.0",  # after
        ]
    )
    totals = onednn.parse(log, 1000.0, 1002.5)
    assert totals == {
        ("convolution", "forward_training"): 3.5,
        ("batch_normalization", "backward"): 0.25,
    }


@pytest.mark.slow  # 16 s; the default run stays near 10 minutes on 2 cores; CI's slow step runs it
def test_onednn_breakdown_tiny():
    from benchmarks import onednn

    result = onednn.run("cifar_resnet20", batch_size=2, steps=1, warmup_steps=1, timeout=300)
    assert result["step_ms"] > 0
    if not result["primitive_ms_per_step"]:
        pytest.skip("TensorFlow runs without oneDNN here")
    assert any(k.startswith("convolution") for k in result["primitive_ms_per_step"])
    assert result["onednn_ms_per_step"] > 0
    assert "## Where the training step's time goes" in report.markdown({"groups": [result]})


def test_merged_results_name_the_software_of_earlier_groups(monkeypatch):
    """A group merged into a file measured with other packages must not take their credit."""
    from benchmarks import machine as bench_machine

    earlier = {"python": "3.11.7", "keras": "3.15.1", "backend": "tensorflow"}
    earlier.update({"tensorflow": "2.21.0", "torch": "2.14.1+cu130", "torchvision": "0.29.1"})
    now = {**earlier, "torch": "2.13.0+cpu", "torchvision": None}
    results = {"machine": {**earlier, "cpu": {}}, "groups": []}
    monkeypatch.setattr(bench_machine, "describe", lambda: {**now, "cpu": {}})
    monkeypatch.setattr(bench_machine, "theoretical_fp32_gflops", lambda cpu: None)
    results = cli._header(results, "second command")
    assert results["earlier_software"] == [earlier]
    text = report.markdown(results)
    assert "PyTorch 2.13.0+cpu, torchvision not installed." in text
    assert "Earlier groups in this file ran with" in text and "torchvision 0.29.1." in text
    assert cli._header(results, "third command")["earlier_software"] == [earlier]  # once
