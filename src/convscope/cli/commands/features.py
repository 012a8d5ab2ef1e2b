"""``convscope features``: what the channels of a layer look for, by activation maximisation."""

from __future__ import annotations

import argparse

from ..common import (
    add_device_argument,
    add_model_argument,
    add_out_argument,
    add_output_argument,
    add_progress_argument,
    add_split_argument,
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
    p.add_argument(
        "--data",
        "-d",
        default="auto",
        metavar="DATA",
        help="dataset whose images find the constant (dead) channels, which are marked instead of optimised: "
        "a name (digits, mnist, ...), auto (mnist for a 1x28x28 model, else none) or none (default auto)",
    )
    add_split_argument(p)
    add_out_argument(p, "convscope-features", "folder for grid.png and one PNG per channel")
    add_device_argument(p)
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ...features import kernels, resolve_layer, visualize
    from ...render import save_png
    from ...render.features import constant_card, feature_grid, kernel_grid, upscale
    from ..common import load_model_from_args, progress_bar

    model = load_model_from_args(args)
    units = parse_units(args.channels)
    layer = None if args.objective == "logit" else args.layer
    if layer is not None:
        resolve_layer(model.net, layer)  # an unknown layer fails before any data is read
    dead = dead_channels(args, model, layer, units)
    live = [u for u in units if u not in dead]
    vis = None
    if live:
        with progress_bar(args, f"features {args.layer or 'logits'}", "step") as bar:
            vis = visualize(
                model,
                layer,
                live,
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
    pictures = dict(zip(vis.units, vis.images)) if vis else {}
    for u, image in pictures.items():
        save_png(upscale(image, 128)[0], out / f"{prefix}_{u:04d}.png")
    size = upscale(next(iter(pictures.values())), 128)[0].shape[:2] if pictures else (128, 128)
    for u in units:
        if u in dead:
            save_png(constant_card(*size, dead.values[u]), out / f"{prefix}_{u:04d}.png")
    save_png(feature_grid([pictures.get(u) for u in units]), out / "grid.png")
    written = [out / "grid.png"]
    if args.kernels and layer is not None:
        k = kernels(model, layer, units)
        save_png(kernel_grid(k.weight, k.scale, k.as_image), out / "kernels.png")
        written.append(out / "kernels.png")
        print(f"kernels of {k.layer}: values in [-{k.scale:.3g}, {k.scale:.3g}]")
    objective = dict(zip(vis.units, vis.values)) if vis else {}
    for u in units:
        if u in dead:
            print(
                f"{prefix} {u}: constant (dead): {dead.values[u]:g} on all {dead.seen} images of {dead.data} {args.split}; not optimised"
            )
        else:
            print(f"{prefix} {u}: objective {objective[u]:.4g}")
    print(f"wrote {', '.join(map(str, written))} and {len(units)} {prefix}_*.png")
    return 0


def dead_channels(args: argparse.Namespace, model, layer: str | None, units: list[int]):
    """The requested channels that hold one value on every image of ``--data`` (a
    :class:`~convscope.features.ConstantChannels`, empty for class logits or ``--data none``)."""
    from ...data import load_splits
    from ...features import ConstantChannels, constant_channels
    from ..common import progress_bar

    name = str(args.data).lower()
    if name == "auto":
        name = "mnist" if tuple(model.input_shape) == (1, 28, 28) else "none"
    if layer is None or name in ("", "none"):
        return ConstantChannels(layer or "", {}, 0, "")
    splits = load_splits(name if str(args.data).lower() == "auto" else args.data, progress=not args.no_progress)
    with progress_bar(args, f"dead channels of {layer} on {name} {args.split}", "img") as bar:
        return constant_channels(model, splits[args.split], layer, units, progress=bar)
