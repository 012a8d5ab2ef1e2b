"""Models the server shows, each loaded once, and their traces cached per image.

A trace of EfficientNet-Lite0 holds every intermediate tensor (tens of MB), so traces
live in a bounded least-recently-used cache keyed by (model, image) (:class:`convscope.lru.LRU`).
Loading and tracing are guarded by locks so concurrent requests for the same thing do
the work once.

A model that fails to load (a bad file, a factory that raises, a net that cannot run on the
input its preprocessing makes) is kept with its one-line ``error``: the page lists it and the
log says why, while the other models are served.

Image ids: ``sample-<k>`` (the model's built-in samples), ``upload-<hash>`` (uploads) and
whatever prefix a view registers with :meth:`Registry.add_image_source` (the dataset
view's ``data-<split>-<row>``).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import ConvscopeError, NotFound
from ..lru import LRU
from ..models import Model, load_model
from ..trace.fx_trace import prepare_graph
from .images import Sample, UploadStore, samples_for

if TYPE_CHECKING:
    from ..explain import Attribution

PixelSource = Callable[[str, str], Any]  # (model name, image id) -> pixels, as Model.preprocess takes them
WHY_KEEP = 24  # attributions (and their metrics) kept per trace: each holds input-sized maps
PNG_KEEP = 256  # display PNGs kept (samples and dataset images; uploads are never kept)
RESERVED = ("sample-", "upload-")
log = logging.getLogger("convscope.server")


def spec_name(spec: str) -> str:
    """A short display name for a model spec: zoo names as they are, files by stem (or folder)."""
    if ":" in spec and not Path(spec).exists():
        return spec.split("@", 1)[0].rsplit(":", 1)[-1]
    path = Path(spec)
    if path.suffix:
        # a generic file name (model.json, best.pt) is named by its folder; never a '/' (it goes in URLs)
        generic = path.stem in ("model", "best", "last", "checkpoint") and path.parent.name not in ("", ".")
        return (path.parent.name if generic else path.stem).replace("/", "-")
    return spec


def _why_cache() -> LRU:
    return LRU(WHY_KEEP)


@dataclass
class TraceEntry:
    """One traced image: the model, the input batch, the trace, per-layer numpy outputs, and
    what the views derive from them once per trace.

    ``attributions`` and ``attribution_metrics`` are keyed by (method, layer, class) and
    bounded: one image asked for many combinations (EfficientNet-Lite0 has 1,000 classes)
    would otherwise grow without limit.
    """

    model_name: str
    image_id: str
    model: Model
    x: torch.Tensor
    trace: Any
    _arrays: dict[str, np.ndarray] = field(default_factory=dict)
    overview: dict[str, Any] | None = None  # the overview's JSON (views.trace_json)
    attributions: LRU[tuple, tuple[Attribution, dict[str, Any]]] = field(default_factory=_why_cache)
    attribution_metrics: LRU[tuple, dict[str, Any]] = field(default_factory=_why_cache)
    _layouts: dict[str, str] | None = None

    @property
    def layouts(self) -> dict[str, str]:
        """Each 4-D record's layout, ``"BCHW"`` or channels-last ``"BHWC"`` (:mod:`convscope.trace.layout`)."""
        if self._layouts is None:
            from ..trace.layout import layouts

            self._layouts = layouts(self.trace)
        return self._layouts

    def record(self, layer: str):
        for rec in self.trace.layers:
            if rec.name == layer:
                return rec
        raise NotFound(f"model {self.model_name!r} has no layer {layer!r}")

    def array(self, layer: str) -> np.ndarray:
        """The layer's output for the (only) image as float32 numpy, without the batch axis; a
        channels-last (B, H, W, C) output as the map (C, H, W) it holds."""
        if layer not in self._arrays:
            out = self.record(layer).output
            if not isinstance(out, torch.Tensor):
                raise NotFound(f"layer {layer!r} has no tensor output")
            if self.layouts.get(layer) == "BHWC":
                out = out.permute(0, 3, 1, 2)
            a = np.ascontiguousarray(out.detach().float().cpu().numpy())
            self._arrays[layer] = a[0] if a.ndim >= 2 else a
        return self._arrays[layer]


class ModelEntry:
    """A model spec, loaded on first use."""

    def __init__(self, name: str, spec: str, loader: Callable[[str], Model]) -> None:
        self.name, self.spec = name, spec
        self._loader = loader
        self._model: Model | None = None
        self._samples: list[Sample] | None = None
        self._lock = threading.Lock()
        self.error: str | None = None  # why loading failed (then kept: it is not retried per request)

    @property
    def model(self) -> Model:
        with self._lock:
            if self.error is not None:
                raise ConvscopeError(f"model {self.name!r} failed to load: {self.error}")
            if self._model is None:
                try:
                    self._model = self._load()
                except Exception as exc:  # noqa: BLE001 - a user's factory or file can raise anything
                    self.error = _one_line(exc)
                    log.warning("model %r (%s) failed to load: %s", self.name, self.spec, self.error)
                    raise ConvscopeError(f"model {self.name!r} failed to load: {self.error}") from None
            return self._model

    def _load(self) -> Model:
        model = self._loader(self.spec)
        model.net.eval()
        c, h, w = model.input_shape
        try:  # one forward on the input its preprocessing makes: a size mismatch shows now, not per page
            with torch.no_grad():
                model.net(torch.zeros(1, c, h, w, device=model.device))
        except Exception as exc:  # noqa: BLE001
            raise ConvscopeError(
                f"it does not run on a {c}x{h}x{w} input ({_one_line(exc)}); "
                "give its input size with --input-size C,H,W"
            ) from None
        # fx tracing patches nn.Module.__call__ process-wide: do it now, once, before
        # any job can run this model in another thread (see trace.fx_trace.prepare_graph)
        prepare_graph(model.net)
        return model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def samples(self) -> list[Sample]:
        if self._samples is None:
            m = self.model
            self._samples = samples_for(m.preprocessing.channels, m.classes)
        return self._samples

    def sample(self, image_id: str) -> Sample:
        for s in self.samples:
            if s.id == image_id:
                return s
        raise NotFound(f"model {self.name!r} has no sample image {image_id!r}")


class Registry:
    """The server's models (by name), uploads, and the LRU cache of traces."""

    def __init__(
        self,
        specs: Sequence[str],
        loader: Callable[[str], Model] | None = None,
        max_traces: int = 4,
        uploads: UploadStore | None = None,
    ) -> None:
        if not specs:
            raise ConvscopeError("the explorer needs at least one model")
        self._loader = loader or (lambda spec: load_model(spec))
        self.models: OrderedDict[str, ModelEntry] = OrderedDict()
        for spec in specs:
            name = spec_name(str(spec))
            while name in self.models:
                name += "'"
            self.models[name] = ModelEntry(name, str(spec), self._loader)
        self.uploads = uploads or UploadStore()
        self._sources: dict[str, PixelSource] = {}
        self._traces: LRU[tuple[str, str], TraceEntry] = LRU(max_traces)
        self._pngs: LRU[tuple[str, str], bytes] = LRU(PNG_KEEP)
        self._trace_lock = threading.Lock()

    def add_image_source(self, prefix: str, pixels: PixelSource) -> None:
        """Resolve image ids starting with ``prefix`` through ``pixels(model name, image id)``
        (the dataset view registers ``data-``); registering a prefix again replaces it."""
        if not prefix or any(prefix.startswith(r) or r.startswith(prefix) for r in RESERVED):
            raise ValueError(f"image id prefix {prefix!r} is empty or overlaps {', '.join(RESERVED)}")
        self._sources[prefix] = pixels

    def entry(self, name: str) -> ModelEntry:
        try:
            return self.models[name]
        except KeyError:
            raise NotFound(f"unknown model {name!r}; this server has {', '.join(self.models)}") from None

    def display_png(self, name: str, image_id: str) -> bytes:
        """The pixels the network sees for an image, as PNG bytes (cached for samples)."""
        from ..render import png_bytes

        def make() -> bytes:
            return png_bytes(self.entry(name).model.to_display(self.input_batch(name, image_id)[0]))

        if image_id.startswith("upload-"):
            return make()
        return self._pngs.get_or_make((name, image_id), make)

    def pixels(self, name: str, image_id: str):
        """The image as given, before the model's preprocessing (a PIL image or a pixel array):
        what the input checks (convscope.models.checks) and the inverted copy read."""
        source = next((f for prefix, f in self._sources.items() if image_id.startswith(prefix)), None)
        if image_id.startswith("upload-"):
            return self.uploads.get(image_id)
        if source is not None:
            return source(name, image_id)
        return self.entry(name).sample(image_id).pixels

    def input_batch(self, name: str, image_id: str) -> torch.Tensor:
        """The network input (1, C, H, W) for a sample or upload."""
        model = self.entry(name).model
        return model.batch(model.preprocess(self.pixels(name, image_id)))

    def load_all(self) -> None:
        """Load every model now (and build its graph), before the server takes requests. A model
        that fails is logged and kept with its error; only when none loads is it an error."""
        for entry in self.models.values():
            try:
                _ = entry.model  # loading is the point: a failure is kept on the entry
            except ConvscopeError:
                pass
        if all(e.error for e in self.models.values()):
            raise ConvscopeError(
                "no model could be loaded: " + "; ".join(f"{e.name}: {e.error}" for e in self.models.values())
            )

    @property
    def default(self) -> str:
        """The model the page opens first: the first that did not fail to load."""
        return next((n for n, e in self.models.items() if e.error is None), next(iter(self.models)))

    def describe(self) -> list[dict[str, Any]]:
        """What ``/api/models`` lists: each model's name, spec, whether it is loaded, its load error."""
        return [{"name": e.name, "spec": e.spec, "loaded": e.loaded, "error": e.error} for e in self.models.values()]

    def warm(self, name: str | None = None) -> TraceEntry | None:
        """Load a model (the default one) and trace its first sample, so the first page is quick."""
        entry = self.entry(name or self.default)
        samples = entry.samples
        return self.trace(entry.name, samples[0].id) if samples else None

    def trace(self, name: str, image_id: str) -> TraceEntry:
        """The (cached) trace of ``image_id`` through model ``name``."""
        return self._traces.get_or_make((name, image_id), lambda: self._run_trace(name, image_id))

    def _run_trace(self, name: str, image_id: str) -> TraceEntry:
        from ..trace import trace as run_trace

        with self._trace_lock:  # one forward pass at a time: CPU cores are few
            model = self.entry(name).model
            x = self.input_batch(name, image_id)
            with torch.no_grad():
                t = run_trace(model, x)
        return TraceEntry(name, image_id, model, x, t)


def _one_line(exc: BaseException) -> str:
    """An exception as one line: a ConvscopeError's own message, others with their type."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, ConvscopeError) else f"{type(exc).__name__}: {text}"[:500]
