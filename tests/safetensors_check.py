#!/usr/bin/env python3
"""safetensors_check.py: an independent reader of the safetensors format (standard
library only), used by tests/test_safetensors.c and tests/test_checkpoint.c to
confirm that files autodidact writes are what other tools (Hugging Face's
safetensors, PyTorch loaders) accept.

Usage: safetensors_check.py FILE      (FILE.json: parse it strictly, print "ok json")
Checks: 8-byte little-endian header length, header padded to a multiple of 8,
valid UTF-8 JSON object without duplicate keys, string-only __metadata__, known
dtypes, shape product * dtype size == end - begin, tensors tiling the data
section exactly, every tensor naturally aligned. Prints one line per tensor,
"name dtype d0,d1,... checksum" (checksum = sum of the tensor's bytes mod 2^32),
sorted by name, then "ok N". Exits 1 with a message on the first problem."""
import json
import struct
import sys

SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
         "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}


def fail(msg):
    print("error: " + msg)
    sys.exit(1)


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        fail("duplicate key in header")
    return dict(pairs)


def main(path):
    with open(path, "rb") as f:
        blob = f.read()
    if path.endswith(".json"):
        json.loads(blob.decode("utf-8"), object_pairs_hook=no_duplicates)
        print("ok json")
        return
    if len(blob) < 8:
        fail("file too short")
    (n,) = struct.unpack("<Q", blob[:8])
    if n % 8:
        fail("header length %d is not a multiple of 8" % n)
    if 8 + n > len(blob):
        fail("header length past end of file")
    header = json.loads(blob[8:8 + n].decode("utf-8"), object_pairs_hook=no_duplicates)
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        fail("metadata values must be strings")
    spans = []
    for name, info in header.items():
        dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in SIZES:
            fail("unknown dtype %s" % dtype)
        numel = 1
        for d in shape:
            if not isinstance(d, int) or d < 0:
                fail("bad shape of %s" % name)
            numel *= d
        if numel * SIZES[dtype] != end - begin:
            fail("size of %s does not match its offsets" % name)
        if (8 + n + begin) % SIZES[dtype]:
            fail("%s is not aligned" % name)
        spans.append((begin, end, name))
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            fail("gap or overlap at %s" % name)
        pos = end
    if pos != len(data):
        fail("data section not covered exactly")
    for name in sorted(header):
        info = header[name]
        begin, end = info["data_offsets"]
        shape = ",".join(str(d) for d in info["shape"])
        print("%s %s %s %d" % (name, info["dtype"], shape, sum(data[begin:end]) % 2**32))
    print("ok %d" % len(header))


if __name__ == "__main__":
    main(sys.argv[1])
