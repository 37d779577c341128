"""Where one inference tile's time goes: trunk, heads, and (with --trace) the op-type totals.

    python scripts/profile_inference.py [--tile 490] [--path exact|one_pass] [--trace]
        [--fusion-min-elements N] [--out profile.json]

Times the compiled tile function of ``isl predict`` (trunk + the target heads' statistics) for
the paper network on a random stack, its trunk alone and its heads alone on a fixed embedding,
and reports GMAC/s against a float32 4096^2 matmul timed in the same process. ``--trace`` adds
TensorFlow's profiler trace of one tile, summed by op name over the compute threads (op times
overlap: the executor runs two ops at once on two cores). See docs/inference_profile.md.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import isl  # noqa: F401  (sets the allocator before TensorFlow starts)


def _best(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _trace(fn: Callable[[], Any]) -> list[dict[str, Any]]:
    """Op-name totals (seconds, calls) of one call of ``fn`` from TensorFlow's profiler."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        fn()
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(Path(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0]).read_bytes())
    seconds: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith(("tf_Compute", "tf_numa")):
                continue
            for event in line.events:
                # TensorFlow ops are "node:OpType"; XLA's fused loops carry their own names.
                name = names.get(event.metadata_id, "?").rpartition(":")[2]
                seconds[name] += event.duration_ps / 1e12
                calls[name] += 1
    return [{"op": k, "seconds": v, "calls": calls[k]} for k, v in seconds.most_common(30)]


def main() -> None:
    """Parse the arguments, time the parts, print and optionally write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tile", type=int, default=490, help="tile side per phase (250 + 16k)")
    parser.add_argument("--path", choices=("exact", "one_pass"), default="exact")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trace", action="store_true", help="add the op-type totals of one tile")
    parser.add_argument(
        "--fusion-min-elements",
        type=int,
        default=None,
        help="override isl.model.layers.FUSION_MIN_ELEMENTS (0 fuses all)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args()

    import tensorflow as tf

    from isl.bench import matmul_peak_gmacs
    from isl.config.model import ModelConfig
    from isl.inference import stitching
    from isl.inference.exact import exact_tile_embedding
    from isl.model import build_model, layers
    from isl.model.plan import count_exact_tile_macs, count_macs, head_macs_per_pixel

    if args.fusion_min_elements is not None:
        layers.FUSION_MIN_ELEMENTS = args.fusion_min_elements
    config = ModelConfig()
    net = build_model(config, seed=0)
    heads = stitching._select_heads(net, None)
    exact = args.path == "exact"
    phases = (2, 2) if exact else (1, 1)
    side = args.tile + 8 if exact else args.tile
    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((1, side, side, config.input_depth), dtype=np.float32))
    tile = stitching._tile_fn(net, args.path, (side, side), phases, heads, True)
    if exact:
        trunk = tf.function(lambda x: exact_tile_embedding(net, x, phases), autograph=False)
    else:
        trunk = tf.function(lambda x: net.embed(x, training=False)[0], autograph=False)
    start = time.perf_counter()
    tile(x).numpy()
    first = time.perf_counter() - start
    embedding = trunk(x)
    rows, cols, depth = (int(d) for d in embedding.shape)
    flat = tf.reshape(embedding, [rows * cols, depth])
    head_fn = tf.function(lambda e: stitching._heads(net, e, heads, True), autograph=False)
    per_head = head_macs_per_pixel(config) // config.num_heads
    if exact:
        steps = (args.tile - 250) // 16 + 1
        macs = count_exact_tile_macs(config, (steps, steps), phases, heads=len(heads))
    else:
        macs = count_macs(config, (side, side), heads=False) + rows * cols * per_head * len(heads)
    peak = matmul_peak_gmacs()
    result = {
        "tile": args.tile,
        "path": args.path,
        "fusion_min_elements": layers.FUSION_MIN_ELEMENTS,
        "output_pixels": rows * cols,
        "counted_gmac": macs / 1e9,
        "first_call_seconds": first,
        "tile_seconds": _best(lambda: tile(x).numpy(), args.repeats),
        "trunk_seconds": _best(lambda: trunk(x).numpy(), args.repeats),
        "heads_seconds": _best(lambda: head_fn(flat).numpy(), args.repeats),
        "matmul_peak_gmacs": peak,
    }
    result["fraction_of_matmul_peak"] = macs / result["tile_seconds"] / 1e9 / peak
    result["heads_us_per_pixel"] = result["heads_seconds"] / (rows * cols) * 1e6
    if args.trace:
        result["ops"] = _trace(lambda: tile(x).numpy())
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
