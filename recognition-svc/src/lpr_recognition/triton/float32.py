"""Convert an FP16 ONNX model to FP32, for CPUs where FP16 kernels are missing or slow.

onnxruntime on a CPU runs an FP16 graph through casts around most operators, which
makes the plate detector about twice as slow as an FP32 copy. The conversion rewrites
every FP16 tensor (weights, constants, declared inputs and outputs, intermediate
types) and every ``Cast`` to FP16 as FP32.

Only the few fields of the ONNX protobuf schema that the conversion touches are
declared here (field numbers from onnx.proto); protobuf keeps every other field as
unknown bytes and writes it back unchanged, so no ``onnx`` dependency is needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf import (  # type: ignore[import-untyped]
    descriptor_pb2,
    descriptor_pool,
    message_factory,
)

FLOAT = 1
FLOAT16 = 10

_T = descriptor_pb2.FieldDescriptorProto


def _message(
    file: descriptor_pb2.FileDescriptorProto,
    name: str,
    fields: list[tuple[str, int, int, int, str]],
) -> None:
    message = file.message_type.add(name=name)
    for field_name, number, label, kind, type_name in fields:
        field = message.field.add(name=field_name, number=number, label=label, type=kind)
        if type_name:
            field.type_name = f".onnx_subset.{type_name}"


def _schema() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(
        name="onnx_subset.proto", package="onnx_subset", syntax="proto2"
    )
    opt, rep = _T.LABEL_OPTIONAL, _T.LABEL_REPEATED
    msg, i32, i64, byt, s = (
        _T.TYPE_MESSAGE,
        _T.TYPE_INT32,
        _T.TYPE_INT64,
        _T.TYPE_BYTES,
        _T.TYPE_STRING,
    )
    _message(file, "Model", [("graph", 7, opt, msg, "Graph")])
    _message(
        file,
        "Graph",
        [
            ("node", 1, rep, msg, "Node"),
            ("initializer", 5, rep, msg, "Tensor"),
            ("input", 11, rep, msg, "ValueInfo"),
            ("output", 12, rep, msg, "ValueInfo"),
            ("value_info", 13, rep, msg, "ValueInfo"),
        ],
    )
    _message(
        file,
        "Node",
        [("op_type", 4, opt, s, ""), ("attribute", 5, rep, msg, "Attribute")],
    )
    _message(
        file,
        "Attribute",
        [
            ("name", 1, opt, s, ""),
            ("i", 3, opt, i64, ""),
            ("t", 5, opt, msg, "Tensor"),
            ("g", 6, opt, msg, "Graph"),
            ("tensors", 10, rep, msg, "Tensor"),
            ("graphs", 11, rep, msg, "Graph"),
        ],
    )
    _message(
        file,
        "Tensor",
        [
            ("data_type", 2, opt, i32, ""),
            ("int32_data", 5, rep, i32, ""),
            ("raw_data", 9, opt, byt, ""),
        ],
    )
    _message(file, "ValueInfo", [("type", 2, opt, msg, "Type")])
    _message(file, "Type", [("tensor_type", 1, opt, msg, "TensorType")])
    _message(file, "TensorType", [("elem_type", 1, opt, i32, "")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"onnx_subset.{name}"))
        for name in ("Model",)
    }


def _convert_tensor(tensor: Any) -> None:
    if tensor.data_type != FLOAT16:
        return
    if tensor.raw_data:
        values = np.frombuffer(tensor.raw_data, dtype="<f2")
    else:
        # Without raw data, FP16 values are stored as their bit patterns in int32_data.
        values = np.asarray(tensor.int32_data, dtype=np.uint16).view("<f2")
        del tensor.int32_data[:]
    tensor.raw_data = values.astype("<f4").tobytes()
    tensor.data_type = FLOAT


def _convert_value_info(value_info: Any) -> None:
    if value_info.type.tensor_type.elem_type == FLOAT16:
        value_info.type.tensor_type.elem_type = FLOAT


def _convert_graph(graph: Any) -> int:
    changed = 0
    for tensor in graph.initializer:
        changed += tensor.data_type == FLOAT16
        _convert_tensor(tensor)
    for value_info in [*graph.input, *graph.output, *graph.value_info]:
        _convert_value_info(value_info)
    for node in graph.node:
        for attribute in node.attribute:
            if node.op_type == "Cast" and attribute.name == "to" and attribute.i == FLOAT16:
                attribute.i = FLOAT
                changed += 1
            if attribute.HasField("t"):
                changed += attribute.t.data_type == FLOAT16
                _convert_tensor(attribute.t)
            for tensor in attribute.tensors:
                _convert_tensor(tensor)
            if attribute.HasField("g"):
                changed += _convert_graph(attribute.g)
            for subgraph in attribute.graphs:
                changed += _convert_graph(subgraph)
    return changed


def float16_to_float32(model_bytes: bytes) -> bytes:
    """Return the serialized model with every FP16 tensor and type made FP32.

    Args:
        model_bytes: A serialized ONNX ``ModelProto``.
    """
    model = _schema()["Model"]()
    model.ParseFromString(model_bytes)
    _convert_graph(model.graph)
    return bytes(model.SerializeToString())
