"""The data-only boundary between the grader and a boxed student process.

A message is a frame: two 8-byte lengths, then strict JSON (NaN and Infinity refused as JSON tokens), then the
bytes of a safetensors file holding every tensor the JSON refers to. Nothing is ever unpickled. Values that are not
plain data (a tensor subclass, a model, a function) arrive as `Foreign`, which no check accepts as an answer.
"""
from __future__ import annotations

import base64
import json
import math
import struct

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

MAX_FRAME = 1 << 30  # bytes; a larger frame is refused, not read


class WireError(Exception):
    """A malformed or oversized message: the other side is broken or lying."""


class Foreign:
    """Something the child returned that is not plain data; only its type name crosses."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name} (not plain data)>"


def encode(value) -> tuple[object, dict[str, torch.Tensor]]:
    tensors: dict[str, torch.Tensor] = {}

    def walk(v):
        if v is None or type(v) in (bool, str, int):
            return v
        if type(v) is float:
            return v if math.isfinite(v) else {"$float": repr(v)}
        if type(v) is torch.Tensor:
            key = str(len(tensors))
            tensors[key] = v.detach().cpu().clone()  # one buffer per entry: safetensors refuses shared memory
            return {"$tensor": key, "device": v.device.type}
        if type(v) in (list, tuple):
            items = [walk(x) for x in v]
            return items if type(v) is list else {"$tuple": items}
        if type(v) is dict:
            return {"$dict": [[walk(k), walk(x)] for k, x in v.items()]}
        if type(v) is bytes:
            return {"$bytes": base64.b64encode(v).decode()}
        if type(v) in (set, frozenset):
            return {"$set": [walk(x) for x in v], "frozen": type(v) is frozenset}
        if type(v) is torch.dtype:
            return {"$dtype": str(v).removeprefix("torch.")}
        if type(v) is torch.Size:
            return {"$tuple": list(v)}
        return {"$foreign": type(v).__qualname__[:100]}

    return walk(value), tensors


def decode(tree, tensors: dict[str, torch.Tensor], device: str | None = None):
    """`device`: where tensors that lived on an accelerator in the child go (None: where they were)."""
    def walk(v):
        if v is None or type(v) in (bool, str, int, float):
            return v
        if type(v) is list:
            return [walk(x) for x in v]
        if type(v) is not dict or len(v) not in (1, 2):
            raise WireError(f"unexpected value {str(v)[:80]}")
        if "$tensor" in v:
            t = tensors[v["$tensor"]]
            where = v.get("device", "cpu")
            return t if where == "cpu" else t.to(device or where)
        if "$tuple" in v:
            return tuple(walk(x) for x in v["$tuple"])
        if "$dict" in v:
            return {walk(k): walk(x) for k, x in v["$dict"]}
        if "$bytes" in v:
            return base64.b64decode(v["$bytes"], validate=True)
        if "$set" in v:
            return (frozenset if v.get("frozen") else set)(walk(x) for x in v["$set"])
        if "$float" in v:
            if v["$float"] not in ("nan", "inf", "-inf"):
                raise WireError(f"bad float {v['$float']!r}")
            return float(v["$float"])
        if "$dtype" in v:
            dtype = getattr(torch, str(v["$dtype"]), None)
            if type(dtype) is not torch.dtype:
                raise WireError(f"bad dtype {v['$dtype']!r}")
            return dtype
        if "$foreign" in v:
            return Foreign(str(v["$foreign"]))
        raise WireError(f"unexpected value {str(v)[:80]}")
    return walk(tree)


def _refuse(token: str):
    raise WireError(f"JSON constant {token} refused")


def write_frame(stream, message: dict, value=None) -> None:
    tree, tensors = encode(value)
    head = json.dumps({**message, "value": tree}, allow_nan=False).encode()
    blob = save_tensors(tensors) if tensors else b""
    stream.write(struct.pack("<QQ", len(head), len(blob)) + head + blob)
    stream.flush()


def read_exactly(stream, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_lengths(stream) -> tuple[int, int]:
    head_len, blob_len = struct.unpack("<QQ", read_exactly(stream, 16))
    if head_len + blob_len > MAX_FRAME:
        raise WireError(f"a message of {head_len + blob_len} bytes is over the limit of {MAX_FRAME}")
    return head_len, blob_len


def read_raw_frame(stream) -> bytes:
    """One frame as its bytes, for a relay to pass on unchanged (gradebox.child's keeper)."""
    head_len, blob_len = read_lengths(stream)
    return struct.pack("<QQ", head_len, blob_len) + read_exactly(stream, head_len + blob_len)


def message_of(frame: bytes) -> dict:
    """The message of a raw frame, without its value."""
    head_len, _ = struct.unpack("<QQ", frame[:16])
    try:
        message = json.loads(frame[16:16 + head_len], parse_constant=_refuse)
    except (ValueError, UnicodeDecodeError) as err:
        raise WireError(f"malformed message: {err}") from None
    return message if type(message) is dict else {}


def read_frame(stream, device: str | None = None) -> tuple[dict, object]:
    head_len, blob_len = read_lengths(stream)
    try:
        message = json.loads(read_exactly(stream, head_len), parse_constant=_refuse)
        tensors = load_tensors(read_exactly(stream, blob_len)) if blob_len else {}
    except (ValueError, UnicodeDecodeError) as err:
        raise WireError(f"malformed message: {err}") from None
    if type(message) is not dict:
        raise WireError("a message must be a JSON object")
    return message, decode(message.pop("value", None), tensors, device)
