#!/usr/bin/env python3
"""Writes the reference files tests/io/independent_files_test.cpp reads, with nothing but json and
struct, so the C++ readers are checked against a writer that shares no code with them.

Run from anywhere: python3 tests/data/make_test_files.py. The output is deterministic; the files are
committed next to this script.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, dtype, shape, raw bytes), laid out in list order."""
    header = {"__metadata__": metadata}
    data = b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    # No padding, and keys in insertion order: both are legal, and neither is what flashjit writes.
    text = json.dumps(header).encode("utf-8")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def write_npy(path, major, dict_text, raw, alignment):
    prefix = 10 if major == 1 else 12
    header = dict_text.encode("latin1")
    pad = (alignment - (prefix + len(header) + 1) % alignment) % alignment
    header += b" " * pad + b"\n"
    length = struct.pack("<H", len(header)) if major == 1 else struct.pack("<I", len(header))
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY" + bytes([major, 0]) + length + header + raw)


def main():
    f32 = [0.5, -1.25, 3.0, 0.1, -7.75, 1e-3]
    f64 = [0.1, -2.5, 1e300, -0.0]
    # IEEE half bits: 1, -2, 65504 (largest finite), 2^-24 (smallest subnormal), 0.333251953125.
    f16_bits = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x3555]
    # bfloat16 bits: 1, 3.140625, -123.5.
    bf16_bits = [0x3F80, 0x4049, 0xC2F7]
    write_safetensors(
        os.path.join(HERE, "reference.safetensors"),
        [
            ("f64_vector", "F64", [4], struct.pack("<4d", *f64)),
            ("f32_matrix", "F32", [2, 3], struct.pack("<6f", *f32)),
            ("f16_values", "F16", [5], struct.pack("<5H", *f16_bits)),
            ("bf16_values", "BF16", [3], struct.pack("<3H", *bf16_bits)),
            ("scalar", "F32", [], struct.pack("<f", 7.0)),
            ("empty", "F32", [0, 3], b""),
        ],
        {"format": "pt", "writer": "make_test_files.py"},
    )
    # As numpy >= 1.9 writes version 1.0: single quotes, trailing comma, 64-byte alignment.
    write_npy(os.path.join(HERE, "reference_f4_v1.npy"), 1,
              "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", struct.pack("<6f", *f32), 64)
    write_npy(os.path.join(HERE, "reference_f8_v2.npy"), 2,
              "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", struct.pack("<4d", *f64), 64)
    # Version 3.0, a scalar, double quotes, other key order, no trailing comma, old 16-byte alignment.
    write_npy(os.path.join(HERE, "reference_f8_v3_scalar.npy"), 3,
              '{"shape": (), "fortran_order": False, "descr": "<f8"}', struct.pack("<d", -0.375), 16)


if __name__ == "__main__":
    main()
