"""Protobuf schemas that identification tells apart by field numbers and wire types.

Protobuf has no magic bytes, so a message is only identified as a schema when every
top-level field it carries is a field of that schema with the schema's wire type. A looser
test (one telling field) once read MediaPipe graph configs as TF GraphDefs and SavedModel
fingerprints as ONNX models, and then reported the real files as "malformed".

The field tables are the published ``.proto`` definitions: ``onnx/onnx.proto``
(ModelProto), ``tensorflow/core/framework/graph.proto`` and ``node_def.proto``,
``tensorflow/core/protobuf/fingerprint.proto`` and MediaPipe's
``mediapipe/framework/calculator.proto`` (CalculatorGraphConfig and its Node), as the
descriptors shipped in those packages declare them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from hexscan.parsers.protowire import LEN, VARINT, Field, WireError, iter_fields

Schema = Mapping[int, int]

#: onnx.ModelProto: ir_version, producer_name/version, domain, model_version, doc_string,
#: graph, opset_import, metadata_props, training_info, functions.
ONNX_MODEL: Schema = {1: VARINT, 2: LEN, 3: LEN, 4: LEN, 5: VARINT, 6: LEN, 7: LEN,
                      8: LEN, 14: LEN, 20: LEN, 25: LEN}
#: tensorflow.GraphDef: node, library, version (deprecated), versions.
TF_GRAPHDEF: Schema = {1: LEN, 2: LEN, 3: VARINT, 4: LEN}
#: tensorflow.NodeDef: name, op, input, device, attr, experimental_debug_info,
#: experimental_type.
TF_NODEDEF: Schema = {1: LEN, 2: LEN, 3: LEN, 4: LEN, 5: LEN, 6: LEN, 7: LEN}
#: tensorflow.FingerprintDef (``fingerprint.pb`` of a SavedModel): five uint64 hashes
#: (saved_model_checksum, graph_def_program_hash, signature_def_hash,
#: saved_object_graph_hash, checkpoint_hash), the VersionDef and the uuid string.
TF_FINGERPRINT: Schema = {1: VARINT, 2: VARINT, 3: VARINT, 4: VARINT, 5: VARINT, 6: LEN,
                          7: LEN}
#: The hashes a fingerprint carries; proto3 drops a zero one, so not all five need be there.
_FINGERPRINT_HASHES = frozenset({1, 2, 3, 4, 5})
#: mediapipe.CalculatorGraphConfig (``.binarypb`` graphs): node 1, packet_factory 6,
#: packet_generator 7, num_threads 8, status_handler 9, input_stream 10, max_queue_size 11,
#: input/output_stream_handler 12/13, executor 14, output_stream 15, input/output side
#: packets 16/17, profiler_config 18, package 19, type 20, report_deadlock 21,
#: runtime_info 22, options 1001, graph_options 1002.
MEDIAPIPE_GRAPH: Schema = {1: LEN, 6: LEN, 7: LEN, 8: VARINT, 9: LEN, 10: LEN, 11: VARINT,
                           12: LEN, 13: LEN, 14: LEN, 15: LEN, 16: LEN, 17: LEN, 18: LEN,
                           19: LEN, 20: LEN, 21: VARINT, 22: LEN, 1001: LEN, 1002: LEN}
#: mediapipe.CalculatorGraphConfig.Node: name 1, calculator 2, streams and side packets
#: 3-6, options 7, node_options 8, source_layer 9, buffer_size_hint 10, stream handlers
#: 11/12, input_stream_info 13, executor 14, profiler_config 15, max_in_flight 16,
#: option_value 17, external_input 1005.
MEDIAPIPE_NODE: Schema = {1: LEN, 2: LEN, 3: LEN, 4: LEN, 5: LEN, 6: LEN, 7: LEN, 8: LEN,
                          9: VARINT, 10: VARINT, 11: LEN, 12: LEN, 13: LEN, 14: LEN, 15: LEN,
                          16: VARINT, 17: LEN, 1005: LEN}
#: How many nodes of a graph config are checked (the head may hold hundreds).
_NODES_CHECKED = 64


def fits(fields: list[Field], schema: Schema) -> bool:
    """Every field is one of the schema's, with the schema's wire type."""
    return all(schema.get(f.number) == f.wire_type for f in fields)


def sub_fields(head: bytes, field: Field) -> list[Field] | None:
    """The fields of an embedded message held in ``head`` (None: not a message)."""
    end = field.start + field.length
    try:
        return list(iter_fields(head, field.start, min(end, len(head)), end > len(head)))
    except WireError:
        return None


def is_onnx_model(fields: list[Field]) -> bool:
    """An ONNX ModelProto: the schema's fields only, with its graph and ir_version."""
    shape = {(f.number, f.wire_type) for f in fields}
    return fits(fields, ONNX_MODEL) and (7, LEN) in shape and (1, VARINT) in shape


def is_tf_fingerprint(fields: list[Field], named: bool) -> bool:
    """A SavedModel fingerprint: its hashes only. Named ``fingerprint.pb``, one hash is
    enough; by content alone three are wanted (a lone varint fits many schemas)."""
    hashes = {f.number for f in fields} & _FINGERPRINT_HASHES
    return bool(fields) and fits(fields, TF_FINGERPRINT) and len(hashes) >= (1 if named else 3)


def is_tf_graphdef(head: bytes, fields: list[Field]) -> bool:
    """A GraphDef: the schema's top-level fields, and a first node that is a NodeDef."""
    if not fits(fields, TF_GRAPHDEF):
        return False
    node = next((f for f in fields if f.number == 1), None)
    if node is None:
        return False
    sub = sub_fields(head, node)
    return sub is not None and fits(sub, TF_NODEDEF) and any(f.number == 2 for f in sub)


def is_mediapipe_graph(head: bytes, fields: list[Field]) -> bool:
    """A CalculatorGraphConfig: the schema's fields, and nodes that name a calculator."""
    if not fields or not fits(fields, MEDIAPIPE_GRAPH):
        return False
    nodes = [f for f in fields if f.number == 1][:_NODES_CHECKED]
    if not nodes:
        return any(f.number in (10, 15, 20) for f in fields)
    for node in nodes:
        sub = sub_fields(head, node)
        if sub is None or not fits(sub, MEDIAPIPE_NODE):
            return False
        if not any(f.number == 2 for f in sub) and node.start + node.length <= len(head):
            return False
    return True


def mediapipe_only(head: bytes, fields: list[Field]) -> bool:
    """A graph config that uses a field GraphDef does not have: no name needed to tell.

    Without the name, the content alone must be strong evidence: at least one node, and every
    node checked names its calculator with a C++ class name. A few fields that happen to fit
    the schema (random weights in a torch storage do) are not a graph.
    """
    if not (is_mediapipe_graph(head, fields) and not fits(fields, TF_GRAPHDEF)):
        return False
    nodes = [f for f in fields if f.number == 1][:_NODES_CHECKED]
    return bool(nodes) and all(_names_a_calculator(head, node) for node in nodes)


def _names_a_calculator(head: bytes, node: Field) -> bool:
    sub = sub_fields(head, node) or []
    names = [head[f.start:f.start + f.length] for f in sub if f.number == 2 and f.wire_type == LEN]
    return any(_CALCULATOR.fullmatch(name) for name in names)


_CALCULATOR = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*")
