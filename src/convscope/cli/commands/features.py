"""``convscope features``: what the channels of a layer look for, by activation maximisation."""

from __future__ import annotations

import argparse

from ..common import (
    add_device_argument,
    add_model_argument,
    add_out_argument,
    add_output_argument,
    add_progress_argument,
)


def parse_units(text: str | None, count: int | None = None) -> list[int] | None:
    """'0-15', '3', '0,4,8-11' -> a list of ints; None -> None (all)."""
    from ...errors import ConvscopeError

    if text is None:
        return None
    units: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(p) for p in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                units.extend(range(lo, hi + 1))
            elif part:
                units.append(int(part))
    except ValueError:
        raise ConvscopeError(f"cannot read channels {text!r}: use e.g. 0-15 or 0,3,5-7") from None
    if not units:
        raise ConvscopeError(f"no channels in {text!r}")
    return units


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "features",
        help="activation maximisation: the picture each channel of a layer responds to most",
        description="Optimise one picture per channel of LAYER (or per class with --objective logit) by gradient "
        "ascent, through random jitter / scale / rotation, and write a grid PNG and one PNG per "
        "channel. With --kernels, also the layer's kernels.",
    )
    add_model_argument(p)
    add_output_argument(p)
    p.add_argument(
        "--layer",
        "-l",
        help="qualified module name, e.g. conv_2_2 or layer4.1.conv2 (not needed for --objective logit)",
    )
    p.add_argument(
        "--channels", "-c", default="0-15", help="channels (or classes): e.g. 0-15, 3, 0,4,8-11 (default 0-15)"
    )
    p.add_argument(
        "--objective",
        default="channel",
        choices=["channel", "neuron", "logit"],
        help="channel: mean activation; neuron: the centre unit; logit: a class score (default channel)",
    )
    p.add_argument("--steps", type=int, default=256, help="Adam steps (default 256)")
    p.add_argument(
        "--param",
        default="fft",
        choices=["fft", "pixel"],
        help="image parameterisation: Fourier + decorrelated colour, or plain pixels (default fft)",
    )
    p.add_argument("--lr", type=float, default=0.05, help="Adam learning rate (default 0.05)")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same pictures")
    p.add_argument("--transforms", default="standard", choices=["standard", "none"], help="robustness transforms")
    p.add_argument("--l2", type=float, default=0.0, help="weight of the L2 penalty (distance from grey)")
    p.add_argument("--tv", type=float, default=0.0, help="weight of the total-variation penalty")
    p.add_argument("--batch-size", type=int, help="channels optimised together (default: all)")
    p.add_argument("--kernels", action="store_true", help="also write the layer's kernels (kernels.png)")
    add_out_argument(p, "convscope-features", "folder for grid.png and one PNG per channel")
    add_device_argument(p)
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ...features import kernels, visualize
    from ...render import save_png
    from ...render.features import feature_grid, kernel_grid, upscale
    from ..common import load_model_from_args, progress_bar

    model = load_model_from_args(args)
    units = parse_units(args.channels)
    layer = None if args.objective == "logit" else args.layer
    with progress_bar(args, f"features {args.layer or 'logits'}", "step") as bar:
        vis = visualize(
            model,
            layer,
            units,
            objective=args.objective,
            steps=args.steps,
            param=args.param,
            lr=args.lr,
            seed=args.seed,
            transforms=args.transforms,
            l2=args.l2,
            tv=args.tv,
            batch_size=args.batch_size,
            progress=bar,
        )
    out = Path(args.out)
    prefix = "class" if args.objective == "logit" else "channel"
    for u, image in zip(vis.units, vis.images):
        save_png(upscale(image, 128)[0], out / f"{prefix}_{u:04d}.png")
    save_png(feature_grid(vis.images), out / "grid.png")
    written = [out / "grid.png"]
    if args.kernels and layer is not None:
        k = kernels(model, layer, units)
        save_png(kernel_grid(k.weight, k.scale, k.as_image), out / "kernels.png")
        written.append(out / "kernels.png")
        print(f"kernels of {k.layer}: values in [-{k.scale:.3g}, {k.scale:.3g}]")
    for u, v in zip(vis.units, vis.values):
        print(f"{prefix} {u}: objective {v:.4g}")
    print(f"wrote {', '.join(map(str, written))} and {len(vis.units)} {prefix}_*.png")
    return 0
