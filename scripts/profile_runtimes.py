"""Where an exported model's time goes: per operator type, from each runtime's own profiler.

    python scripts/profile_runtimes.py udnie.onnx udnie.xml --size 1024 --runs 3

An ``.onnx`` file runs on ONNX Runtime with ``enable_profiling`` (its JSON trace, summed by node
``op_name``); an ``.xml`` file on OpenVINO's CPU plugin (float32 pinned unless --hint) with
``PERF_COUNT`` (``get_profiling_info``, summed by ``node_type``). The input is a val-like random
photo of --size x --size; the first run warms up and is not counted. Prints one Markdown table per
model: operator type, node count, milliseconds per run and share of the total.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np


def profile_onnx(path: Path, batch: np.ndarray, runs: int) -> tuple[dict[str, list[float]], float]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_profiling = True
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = os.path.join(tmp, "profile")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        session.run(None, {"image": batch})
        start = time.perf_counter()
        for _ in range(runs):
            session.run(None, {"image": batch})
        wall = (time.perf_counter() - start) / runs
        trace = json.loads(Path(session.end_profiling()).read_text())
    runs_seen = [e for e in trace if e.get("cat") == "Session" and e["name"] == "model_run"]
    skip_until = runs_seen[0]["ts"] + runs_seen[0]["dur"] if runs_seen else 0  # the warm-up run
    by_type: dict[str, list[float]] = defaultdict(list)
    for event in trace:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= skip_until:
            by_type[event["args"]["op_name"]].append(event["dur"] / 1000 / runs)
    return by_type, wall * 1000


def profile_openvino(path: Path, batch: np.ndarray, runs: int, hint: str) -> tuple[dict[str, list[float]], float]:
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape(list(batch.shape))
    compiled = core.compile_model(model, "CPU", {"PERF_COUNT": True, "PERFORMANCE_HINT": "LATENCY",
                                                 "INFERENCE_PRECISION_HINT": hint})
    request = compiled.create_infer_request()
    request.infer({0: batch})
    totals: dict[str, list[float]] = defaultdict(list)
    start = time.perf_counter()
    for _ in range(runs):
        request.infer({0: batch})
        for info in request.get_profiling_info():
            if info.status == info.Status.EXECUTED:
                totals[f"{info.node_type} ({info.exec_type})"].append(info.real_time.total_seconds() * 1000 / runs)
    wall = (time.perf_counter() - start) / runs
    return totals, wall * 1000


def table(name: str, by_type: dict[str, list[float]], wall_ms: float, runs: int) -> str:
    total = sum(sum(times) for times in by_type.values())
    lines = [f"{name}: {wall_ms:.0f} ms a run (wall), {total:.0f} ms in operators", "",
             "| operator | nodes | ms | share |", "|---|---:|---:|---:|"]
    for op, times in sorted(by_type.items(), key=lambda item: -sum(item[1])):
        lines.append(f"| {op} | {len(times) // runs} | {sum(times):.1f} | {sum(times) / total:.0%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path, help=".onnx (ONNX Runtime) or .xml (OpenVINO) files")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hint", default="f32", help="OpenVINO's inference precision hint (default f32)")
    args = parser.parse_args()
    batch = np.random.default_rng(0).uniform(0, 255, (1, args.size, args.size, 3)).astype(np.float32)
    for path in args.models:
        if path.suffix == ".onnx":
            by_type, wall = profile_onnx(path, batch, args.runs)
        else:
            by_type, wall = profile_openvino(path, batch, args.runs, args.hint)
        print(table(f"{path.name} at {args.size}x{args.size}", by_type, wall, args.runs) + "\n")


if __name__ == "__main__":
    main()
