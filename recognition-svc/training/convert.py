"""Turn the PP-OCRv4 recognizer shipped in rapidocr_onnxruntime into a 37-class torch model.

onnx2torch cannot convert the graph as shipped: its weights live in ``Constant`` nodes
and most tensors have no shape. Both are fixed in the ONNX graph first. The final
6,625-way classifier is then cut to the CTC blank, digits and capital letters, keeping
the rows the base model learned for those characters, and the softmax is dropped so the
model outputs logits for CTC loss.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

# Output index 0 is the CTC blank; index i + 1 is PLATE_CHARACTERS[i].
PLATE_CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
INPUT_HEIGHT, INPUT_WIDTH = 48, 160
BASE_MODEL_NAME = "ch_PP-OCRv4_rec_infer.onnx"


def base_model_path() -> Path:
    """Locate the recognizer inside the installed rapidocr_onnxruntime wheel."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "models" / BASE_MODEL_NAME
        if candidate.exists():
            return candidate
    # The training venv does not install rapidocr; the workspace venv does.
    root = Path(__file__).resolve().parents[2]
    for candidate in sorted(
        root.glob(f".venv/lib/python3*/site-packages/rapidocr_onnxruntime/models/{BASE_MODEL_NAME}")
    ):
        return candidate
    raise FileNotFoundError(f"{BASE_MODEL_NAME} not found; run `uv sync` first")


def _dictionary(model: onnx.ModelProto) -> list[str]:
    """The base model's characters in output order (index i + 1), from its metadata."""
    for prop in model.metadata_props:
        if prop.key == "character":
            return [*prop.value.splitlines(), " "]
    raise ValueError("the model carries no character dictionary")


def plate_rows(dictionary: list[str]) -> list[int]:
    """Output rows of the base classifier to keep: blank, then each plate character."""
    rows = [0]
    for char in PLATE_CHARACTERS:
        # Capital letters exist in the dictionary; the digit or capital row is the one kept.
        rows.append(dictionary.index(char) + 1)
    return rows


def prepare_graph(path: Path) -> onnx.ModelProto:
    """Load the base ONNX, make it convertible and cut it to plate characters."""
    model = onnx.load(str(path))
    graph = model.graph
    rows = plate_rows(_dictionary(model))
    kept: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type == "Constant":
            value = next(a for a in node.attribute if a.name == "value")
            tensor = onnx.TensorProto()
            tensor.CopyFrom(value.t)
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
        else:
            kept.append(node)
    softmax = kept[-1]
    if softmax.op_type != "Softmax":
        raise ValueError("expected the graph to end with Softmax")
    logits_name = softmax.input[0]
    kept = kept[:-1]
    classifier = kept[-2]
    if classifier.op_type != "MatMul" or kept[-1].op_type != "Add":
        raise ValueError("expected the classifier MatMul + Add before the softmax")
    initializers = {t.name: t for t in graph.initializer}
    weight_name, bias_name = classifier.input[1], kept[-1].input[1]
    weight = numpy_helper.to_array(initializers[weight_name])[:, rows]
    bias = numpy_helper.to_array(initializers[bias_name])[rows]
    initializers[weight_name].CopyFrom(
        numpy_helper.from_array(weight.astype(np.float32), weight_name)
    )
    initializers[bias_name].CopyFrom(numpy_helper.from_array(bias.astype(np.float32), bias_name))
    del graph.node[:]
    graph.node.extend(kept)
    # Fixed height and width, dynamic batch: what the plate model is trained and served at.
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_param = "batch"
    dims[2].dim_value = INPUT_HEIGHT
    dims[3].dim_value = INPUT_WIDTH
    output = onnx.helper.make_tensor_value_info(
        logits_name, onnx.TensorProto.FLOAT, ["batch", INPUT_WIDTH // 8, len(rows)]
    )
    del graph.output[:]
    graph.output.append(output)
    del graph.value_info[:]
    del model.metadata_props[:]
    # onnx's own inference stops at the Reshapes whose shapes are computed from Shape
    # nodes; onnxruntime's symbolic inference resolves them, which onnx2torch needs.
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    model = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    onnx.checker.check_model(model)
    return model


def _stub_torchvision_if_broken() -> None:
    """Let onnx2torch import when the installed torchvision does not match torch.

    onnx2torch imports torchvision only for NMS and RoiAlign, which this graph lacks;
    pip can pair the CPU torch with a torchvision built for another torch.
    """
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError):
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        stub = types.ModuleType("torchvision")
        ops = types.ModuleType("torchvision.ops")
        ops.roi_align = None  # type: ignore[attr-defined]
        stub.ops = ops  # type: ignore[attr-defined]
        sys.modules["torchvision"] = stub
        sys.modules["torchvision.ops"] = ops


def base_torch_model(path: Path | None = None) -> torch.nn.Module:
    """The base recognizer as a torch module producing [batch, 20, 37] logits."""
    _stub_torchvision_if_broken()
    from onnx2torch import convert

    model = prepare_graph(path or base_model_path())
    module: torch.nn.Module = convert(model)
    return module


def make_trainable(module: torch.nn.Module) -> torch.nn.Module:
    """Turn the weights onnx2torch keeps as buffers (MatMul, LayerNorm) into parameters.

    Scalars (epsilons, scales) and integer shape constants stay fixed.
    """
    container = getattr(module, "initializers", None)
    if container is None:
        return module
    for name, buffer in list(container.named_buffers(recurse=False)):
        if buffer.is_floating_point() and buffer.numel() > 1:
            delattr(container, name)
            container.register_parameter(name, torch.nn.Parameter(buffer.detach().clone()))
    return module


def check_conversion(path: Path | None = None) -> float:
    """Largest difference between onnxruntime and torch logits on random input."""
    import onnxruntime as ort

    onnx_model = prepare_graph(path or base_model_path())
    session = ort.InferenceSession(
        onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    module = base_torch_model(path).eval()
    sample = (
        np.random.default_rng(0)
        .uniform(-1, 1, (2, 3, INPUT_HEIGHT, INPUT_WIDTH))
        .astype(np.float32)
    )
    expected = session.run(None, {"x": sample})[0]
    with torch.no_grad():
        actual = module(torch.from_numpy(sample)).numpy()
    return float(np.abs(expected - actual).max())


if __name__ == "__main__":
    print("max |onnxruntime - torch| =", check_conversion())
