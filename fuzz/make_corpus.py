#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora (fuzz/corpus/{safetensors,npy}/) with the writers of
tests/data/make_test_files.py. Deterministic; the files are committed."""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "data"))
from make_test_files import write_npy, write_safetensors  # noqa: E402


def main():
    st = os.path.join(HERE, "corpus", "safetensors")
    npy = os.path.join(HERE, "corpus", "npy")
    write_safetensors(os.path.join(st, "empty_header.safetensors"), [], {})
    write_safetensors(os.path.join(st, "one_f32.safetensors"),
                      [("w", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4))], {"format": "pt"})
    write_safetensors(os.path.join(st, "mixed.safetensors"),
                      [("a", "F16", [2], struct.pack("<2H", 0x3C00, 0x7C00)),
                       ("b", "BF16", [1, 1], struct.pack("<H", 0x3F80)),
                       ("c", "F64", [], struct.pack("<d", -1.5)),
                       ("d", "F32", [0, 4], b"")], {"k": "v"})
    # data_offsets nested 3000 deep: error messages once dumped such values recursively.
    header = ('{"t":{"dtype":"F32","shape":[1],"data_offsets":' + "[" * 3000 + "]" * 3000 + "}}").encode()
    with open(os.path.join(st, "deep_offsets.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + bytes(4))
    write_npy(os.path.join(npy, "v1_f4.npy"), 1,
              "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", struct.pack("<4f", 1, 2, 3, 4), 64)
    write_npy(os.path.join(npy, "v2_f8_empty.npy"), 2,
              "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 3), }", b"", 64)
    write_npy(os.path.join(npy, "v3_scalar.npy"), 3,
              '{"descr": "<f8", "fortran_order": False, "shape": ()}', struct.pack("<d", 2.5), 16)


if __name__ == "__main__":
    main()
