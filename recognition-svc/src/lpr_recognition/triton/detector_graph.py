"""The served plate detector: the wheel's YOLOv8-seg graph cut down to what we use.

The ``platedet`` wheel ships a segmentation model exported for one 640 x 640 input,
with two outputs: ``output0`` (decoded boxes, score and 32 mask coefficients per anchor)
and ``output1`` (160 x 160 mask prototypes). The pipeline uses only the boxes and the
score, yet the mask branches cost about a third of the detector's CPU time (45 of
139 ms per image for the INT8 copy on one core).

The served copy ends at the head's raw per-anchor tensor instead: 64 box-distance
logits (4 sides x 16 bins) and one plate logit for every anchor of the three strides,
before the anchor decoding. Every node that only feeds the mask outputs is dropped,
and, since what is left is fully convolutional, the input's height and width are left
free: the client letterboxes to the image's own aspect ratio (sides a multiple of 32)
instead of a padded square and decodes the boxes itself
(``lpr_recognition.inference.plate_detector.decode_detections``). Of the thousands of
anchors only the ``TOP_ANCHORS`` with the highest plate logits are returned, with
their indices: what the client keeps (a score of at least 0.25, at most 10 plates
after NMS) is among them, and the answer shrinks from 0.65 MB to 39 KB for a
640 x 384 input.

``with_image_input`` then puts the input's preparation into the graph: the served
copies take the letterboxed BGR image as it is, ``uint8`` [1, height, width, 3], and
turn it into the RGB, channel-first, [0, 1] tensor themselves. That halves what
crosses to the server compared with FP16 and saves the client and the CPU server a
float conversion of every pixel each.
"""

from __future__ import annotations

from typing import Any

# The head's concatenation of the three strides' box and class maps, [1, 65, anchors].
HEAD_TENSOR = "/model.22/Concat_4_output_0"
SERVED_OUTPUT = "predictions"
SERVED_ANCHORS = "anchors"
# Anchors returned per image, the best plate logits first.
TOP_ANCHORS = 300
# Prefix of the nodes added after the head; int8.py keeps every /model.22/ node but
# the convolutions in float.
_ADDED = "/model.22/served/"
INPUT_HEIGHT, INPUT_WIDTH = "height", "width"
# The graph's float input, fed by the preparation nodes ``with_image_input`` adds.
FLOAT_INPUT = "images_rgb"


def _needed_nodes(graph: Any, output: str) -> tuple[list[Any], set[str]]:
    """Nodes (in graph order) that ``output`` depends on, and every tensor they read."""
    producers = {name: node for node in graph.node for name in node.output}
    tensors: set[str] = set()
    kept: set[int] = set()
    pending = [output]
    while pending:
        name = pending.pop()
        if name in tensors:
            continue
        tensors.add(name)
        node = producers.get(name)
        if node is not None and id(node) not in kept:
            kept.add(id(node))
            pending.extend(source for source in node.input if source)
    return [node for node in graph.node if id(node) in kept], tensors


def _top_anchors(head: str) -> tuple[list[Any], list[Any]]:
    """Initializers and nodes that keep the ``TOP_ANCHORS`` columns of ``head`` by plate logit.

    Returns:
        The constants and the nodes writing ``SERVED_OUTPUT`` [1, 65, k] and
        ``SERVED_ANCHORS`` [k] (int64), k = min(TOP_ANCHORS, anchors), best first.
    """
    from onnx import TensorProto, helper

    def name(part: str) -> str:
        return f"{_ADDED}{part}"

    constants = [
        helper.make_tensor(name("logit_row"), TensorProto.INT64, [1], [4 * 16]),
        helper.make_tensor(name("flat"), TensorProto.INT64, [1], [-1]),
        helper.make_tensor(name("top"), TensorProto.INT64, [1], [TOP_ANCHORS]),
    ]
    nodes = [
        helper.make_node(
            "Gather", [head, name("logit_row")], [name("logits")], name("Gather"), axis=1
        ),
        helper.make_node(
            "Reshape", [name("logits"), name("flat")], [name("scores")], name("Reshape")
        ),
        helper.make_node("Shape", [name("scores")], [name("count")], name("Shape")),
        helper.make_node("Min", [name("count"), name("top")], [name("k")], name("Min")),
        helper.make_node(
            "TopK",
            [name("scores"), name("k")],
            [name("best"), SERVED_ANCHORS],
            name("TopK"),
            axis=0,
        ),
        helper.make_node(
            "Gather", [head, SERVED_ANCHORS], [SERVED_OUTPUT], name("GatherTop"), axis=2
        ),
    ]
    return constants, nodes


def served_detector(model_bytes: bytes) -> bytes:
    """Return the detector graph that ends at the raw head's best anchors, any input size.

    Args:
        model_bytes: The wheel's serialized ONNX model (any float precision).

    Raises:
        ValueError: The graph has no ``HEAD_TENSOR`` (another export of the model).
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    if not any(HEAD_TENSOR in node.output for node in graph.node):
        raise ValueError(f"the detector graph has no tensor {HEAD_TENSOR}")
    element_type = graph.output[0].type.tensor_type.elem_type
    nodes, tensors = _needed_nodes(graph, HEAD_TENSOR)
    initializers = [tensor for tensor in graph.initializer if tensor.name in tensors]
    constants, top_nodes = _top_anchors(HEAD_TENSOR)
    del graph.node[:]
    graph.node.extend([*nodes, *top_nodes])
    del graph.initializer[:]
    graph.initializer.extend([*initializers, *constants])
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info(SERVED_OUTPUT, element_type, [1, 65, "top"]),
            helper.make_tensor_value_info(SERVED_ANCHORS, TensorProto.INT64, ["top"]),
        ]
    )
    # Shapes recorded for the 640 x 640 export would contradict other input sizes.
    del graph.value_info[:]
    dims = graph.input[0].type.tensor_type.shape.dim
    for dim, name in ((dims[2], INPUT_HEIGHT), (dims[3], INPUT_WIDTH)):
        dim.Clear()
        dim.dim_param = name
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def with_image_input(model_bytes: bytes) -> bytes:
    """Return the detector graph taking a letterboxed ``uint8`` BGR image [1, H, W, 3].

    The nodes added in front transpose it to channels first, reverse the channels to
    RGB, convert to the graph's float type and scale to [0, 1]: what the float input
    expected before, computed in the graph.

    Args:
        model_bytes: A detector graph with one float input [1, 3, H, W].
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    (graph_input,) = graph.input
    name = graph_input.name
    float_type = graph_input.type.tensor_type.elem_type
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    for node in graph.node:
        for index, source in enumerate(node.input):
            if source == name:
                node.input[index] = FLOAT_INPUT
    scale = helper.make_tensor(f"{FLOAT_INPUT}_scale", float_type, [], [1.0 / 255.0])
    order = helper.make_tensor(f"{FLOAT_INPUT}_order", TensorProto.INT64, [3], [2, 1, 0])
    graph.initializer.extend([scale, order])
    preparation = [
        helper.make_node("Transpose", [name], [f"{name}_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Gather", [f"{name}_nchw", order.name], [f"{name}_rgb_uint8"], axis=1),
        helper.make_node("Cast", [f"{name}_rgb_uint8"], [f"{name}_float"], to=float_type),
        helper.make_node("Mul", [f"{name}_float", scale.name], [FLOAT_INPUT]),
    ]
    nodes = [*preparation, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:]
    graph.input.append(
        helper.make_tensor_value_info(name, TensorProto.UINT8, [dims[0], dims[2], dims[3], 3])
    )
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())
