"""Benchmark of the encoders alone: frames per second on a device, against one CPU thread.

Featurize cost = decode + frames x encoder cost; this measures the second term on any device
(``--device cuda`` on a GPU machine: float16 autocast and channels-last, exactly the featurize
path), so the capacity note (``bench/scale.py --gpu-frames-per-s``) can use a measured GPU rate
instead of an assumption.

In one process it prints:

1. the baseline: the encoder on the CPU with one torch thread (batch 32), frames/s;
2. the encoder on ``--device`` for each batch size: frames/s, ms per frame, and the ratio to the
   baseline (how many CPU threads one device is worth), with and without stage features.

Frames are random uint8 images at the encoder's input size (the runner resizes while decoding,
so the encoder sees exactly these); weights do not change the speed, but the default ``lite0``
uses its real offline weights, or ``--weights FILE``.

Usage: ``python bench/encode.py [--device cuda] [--encoder lite0] [--batches 32,128,256] [--seconds 5]
[--input-size N]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from common import machine, ratio  # bench/common.py


def _rate(encoder, batch: int, seconds: float, sync) -> float:
    """Frames per second of ``encoder.encode`` on random batches, timed for about ``seconds``."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(batch, encoder.input_size, encoder.input_size, 3), dtype=np.uint8)
    for _ in range(3):  # warm-up: cuDNN autotuning, allocator, first-call overheads
        encoder.encode(frames)
    sync()
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or done < 2 * batch:
        encoder.encode(frames)  # returns numpy arrays: the device work is finished
        done += batch
    return done / (time.perf_counter() - started)


def main() -> None:
    import torch

    from jungle.features.models.encoders import EncoderConfig, load_encoder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--encoder", default="lite0", help="registered alias or timm name")
    parser.add_argument("--weights", default=None, help="local weights file")
    parser.add_argument("--batches", default="32,128,256", help="batch sizes on the device")
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    parser.add_argument("--input-size", type=int, default=None, help="frame size (default: the encoder's own)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the device runs (default: all cores)")
    args = parser.parse_args()

    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu"
    print(f"encoder {args.encoder}; device {args.device} ({name}); torch {torch.__version__}; {machine()}", flush=True)

    torch.set_num_threads(1)
    size = {"input_size": args.input_size} if args.input_size else {}
    base_encoder = load_encoder(EncoderConfig(name=args.encoder, weights=args.weights, **size), device="cpu")
    baseline = _rate(base_encoder, 32, args.seconds, lambda: None)
    print(f"baseline: cpu, 1 torch thread, batch 32: {baseline:,.1f} frames/s "
          f"({1000 / baseline:.1f} ms/frame)", flush=True)
    del base_encoder

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    print("| stages | batch | frames/s | ms/frame | x one CPU thread |\n| --- | --- | --- | --- | --- |", flush=True)
    for stages in (None, "all"):
        encoder = load_encoder(EncoderConfig(name=args.encoder, weights=args.weights, stages=stages, **size),
                               device=args.device)
        for batch in (int(b) for b in args.batches.split(",")):
            rate = _rate(encoder, batch, args.seconds, sync)
            print(f"| {stages or 'none'} | {batch} | {rate:,.0f} | {1000 / rate:.3f} | {ratio(rate, baseline)} |",
                  flush=True)
        del encoder
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    if args.device.startswith("cuda"):
        print(f"peak GPU memory {torch.cuda.max_memory_allocated(args.device) / 2**20:,.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
