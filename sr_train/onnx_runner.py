"""Run an ONNX super-resolution model with ONNX Runtime on the CPU (`sr-train predict --engine onnx`,
and the check of every ONNX export against Paddle)."""

from __future__ import annotations

import os

import numpy as np


class OnnxRunner:
    """Calls an ONNX model on float32 NCHW numpy batches with onnxruntime's CPU provider."""

    def __init__(self, path: str | os.PathLike, input_multiple: int = 1, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: ORT warns about unused initializers of folded graphs
        options.intra_op_num_threads = threads if threads is not None else threads_from_env()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.input_multiple = input_multiple

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, np.float32)})[0]


def threads_from_env() -> int:
    """OMP_NUM_THREADS when set (what Paddle's CPU kernels follow too), else 0 = onnxruntime's choice."""
    try:
        return max(int(os.environ.get("OMP_NUM_THREADS", "0")), 0)
    except ValueError:
        return 0
