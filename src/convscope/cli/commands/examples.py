"""``convscope examples``: the dataset images each channel of a layer responds to most."""

from __future__ import annotations

import argparse

from ..common import (
    add_compute_arguments,
    add_data_arguments,
    add_model_argument,
    add_out_argument,
    add_output_argument,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "examples",
        help="top-activating dataset examples of a layer's channels, with activation maps",
        description="Stream a dataset once through the model and keep, for each channel of LAYER, the K images "
        "whose maximum activation is highest. Writes one grid per channel (the images with the "
        "activation map overlaid, and the receptive-field crops around the maximum) and a "
        "summary grid. With --shard I/N it ranks only the I-th of N pieces and saves a partial "
        "result; --merge combines partial results into the full one.",
    )
    add_model_argument(p)
    add_output_argument(p)
    add_data_arguments(p)
    p.add_argument("--layer", "-l", required=True, help="qualified module name, e.g. conv_2_2")
    p.add_argument("--k", type=int, default=9, help="examples per channel (default 9)")
    p.add_argument("--channels", "-c", help="channels, e.g. 0-15 (default: all)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--shard", metavar="I/N", help="rank only shard I of N and write DIR/partial-I-of-N.npz")
    p.add_argument("--merge", nargs="+", metavar="NPZ", help="merge these partial results instead of ranking")
    add_out_argument(p, "convscope-examples", "folder for the grids, examples.npz (or a shard's partial result)")
    add_compute_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from ...data import load_splits
    from ...errors import ConvscopeError
    from ...features import TopExamples, example_images, merge, receptive_field, top_examples
    from ...i18n import text
    from ...render import save_png
    from ...render.features import examples_grid
    from ..common import engine_from_args, load_model_from_args, progress_bar
    from .features import parse_units

    if args.k < 1:
        raise ConvscopeError("--k must be at least 1")
    model = load_model_from_args(args)
    data = load_splits(args.data, progress=not args.no_progress)[args.split]
    out = Path(args.out)
    if args.merge:
        result = merge([TopExamples.load(p) for p in args.merge])
    else:
        ds = data
        if args.shard:
            try:
                i, n = (int(v) for v in args.shard.split("/"))
            except ValueError:
                raise ConvscopeError(f"--shard wants I/N, e.g. 0/4, not {args.shard!r}") from None
            ds = data.shard(i, n)
        with progress_bar(args, f"examples {args.layer}", "img") as bar, engine_from_args(args) as engine:
            result = top_examples(
                model,
                ds,
                args.layer,
                k=args.k,
                channels=parse_units(args.channels),
                batch_size=args.batch_size,
                progress=bar,
                engine=engine,
            )
        if args.shard:
            path = result.save(out / f"partial-{i}-of-{n}.npz")
            print(f"wrote {path} ({result.seen} images); combine the shards with --merge")
            return 0
    if result.layer != args.layer:
        raise ConvscopeError(f"the partial results are for layer {result.layer}, not {args.layer}")
    rf = receptive_field(model, result.layer)
    images = example_images(result, data, model)
    heats = np.stack([[rf.to_input(m) for m in row] for row in result.maps])
    vmax = np.maximum(result.values.max(1), 1e-8)
    crops = example_images(result, data, model, rf=rf)
    for row, c in enumerate(result.channels):
        save_png(
            examples_grid(images[row : row + 1], heats[row : row + 1], vmax[row : row + 1]),
            out / f"channel_{int(c):04d}.png",
        )
        save_png(examples_grid(crops[row : row + 1]), out / f"channel_{int(c):04d}_crops.png")
    save_png(examples_grid(images, heats, vmax, min_size=48, pad=2), out / "examples.png")
    result.save(out / "examples.npz")
    print(
        f"{result.layer}: {len(result.channels)} channels, top {result.k} of {result.seen} images; "
        f"receptive field {rf.size[0]}x{rf.size[1]} px, stride {rf.stride[0]:g}"
    )
    for row in np.flatnonzero(result.constant):
        value = f"{float(result.maximum[row]):g}"
        print(text("server.examples.constant", channel=int(result.channels[row]), value=value, seen=result.seen))
    print(f"wrote {out / 'examples.png'}, {out / 'examples.npz'} and channel_*.png")
    return 0
