"""bake-model's fidelity gate: which runtime serves the baked model, everywhere.

int8 is 2-4x cheaper a photo than fp32, and only as good as its vectors' agreement with the
model's own (torch fp32): that depends on the model and on the CPU that quantizes and runs
it (VNNI/AMX kernels round differently from AVX2's). So the choice is measured once, on the
machine that bakes, and written beside the weights (``runtime.json``); the SageMaker image,
the local stack and the demo all serve what it says (``PHOTOCLUSTER_ENCODER_RUNTIME``
overrides it), and ``/ping`` reports it.

The gate: every picture of a generated set (the project's own photographs and their edits)
embedded by torch and by each ONNX runtime; ``onnx-int8`` when its cosine to torch is at
least :data:`INT8_MIN_COSINE` on every picture and :data:`INT8_MEDIAN_COSINE` at the median,
else ``onnx`` (fp32: the same arithmetic as torch) when it holds :data:`FP32_MIN_COSINE`,
else ``torch``; the file says why.
"""

from __future__ import annotations

import json
import platform
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from photocluster.config import OFFLINE_LAYOUT_WEIGHTS, EncoderRuntime

RUNTIME_FILE = "runtime.json"
INT8_MIN_COSINE = 0.99
INT8_MEDIAN_COSINE = 0.995
FP32_MIN_COSINE = 0.999
#: The generated set the gate embeds (a seed of its own: neither calibration nor evaluation).
GATE_SEED = 9


@dataclass(frozen=True)
class Agreement:
    """Cosine of one runtime's vectors to torch's, over the gate's pictures."""

    min: float
    median: float


@dataclass(frozen=True)
class RuntimeChoice:
    """What runtime.json holds: the runtime chosen, why, and the measurements."""

    runtime: EncoderRuntime
    reason: str
    agreement: dict[str, Agreement]
    pictures: int
    cpu: str
    cpu_flags: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def cosines(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1)
    return np.asarray((a64 * b64).sum(axis=1) / np.maximum(norms, 1e-12))


def decide(agreement: dict[str, Agreement]) -> tuple[EncoderRuntime, str]:
    """The runtime the measured agreement allows, and why (see the module docstring)."""
    int8 = agreement.get("onnx-int8")
    if int8 is not None and int8.min >= INT8_MIN_COSINE and int8.median >= INT8_MEDIAN_COSINE:
        return "onnx-int8", (
            f"int8 agrees with torch: min cosine {int8.min:.4f} >= {INT8_MIN_COSINE}, "
            f"median {int8.median:.4f} >= {INT8_MEDIAN_COSINE}"
        )
    why = (
        "no int8 export"
        if int8 is None
        else f"int8 misses the target (min {int8.min:.4f}, median {int8.median:.4f}; "
        f"needs {INT8_MIN_COSINE} and {INT8_MEDIAN_COSINE})"
    )
    fp32 = agreement.get("onnx")
    if fp32 is not None and fp32.min >= FP32_MIN_COSINE:
        return "onnx", f"{why}; onnx fp32 agrees with torch (min cosine {fp32.min:.5f})"
    return "torch", f"{why}; onnx fp32 does not agree with torch either"


def gate_pictures() -> list[Image.Image]:
    """The pictures the gate embeds: every group and singleton of a generated set."""
    from photocluster.quality import evalset

    samples = evalset.build(
        seed=GATE_SEED,
        groups=len(evalset.GROUP_SOURCES),
        per_group=4,
        singletons=len(evalset.SINGLETON_SOURCES),
    )
    return [sample.image.convert("RGB") for sample in samples]


def bake_served(model: str, dest: Path) -> RuntimeChoice:
    """bake-model's weights and exports, then the runtime that serves them."""
    from photocluster.embedder.loader import bake_model

    bake_model(model, dest)
    # torch loads EfficientNet-Lite0 by name, anything else from the weights saved in dest
    return choose_runtime(dest, model if model in OFFLINE_LAYOUT_WEIGHTS else str(dest))


def choose_runtime(
    folder: Path, source: str, pictures: Sequence[Image.Image] | None = None
) -> RuntimeChoice:
    """Measure each runtime of the model baked in ``folder`` against torch (``source``:
    what torch loads) and write the choice as ``runtime.json``."""
    from photocluster.embedder.loader import load_encoder

    shown = list(pictures) if pictures is not None else gate_pictures()
    reference = load_encoder(source, runtime="torch").embed(shown)
    agreement: dict[str, Agreement] = {}
    for runtime in ("onnx", "onnx-int8"):
        vectors = load_encoder(str(folder), runtime=runtime).embed(shown)
        found = cosines(reference, vectors)
        agreement[runtime] = Agreement(
            round(float(found.min()), 5), round(float(statistics.median(found)), 5)
        )
    chosen, reason = decide(agreement)
    choice = RuntimeChoice(chosen, reason, agreement, len(shown), *_cpu())
    (folder / RUNTIME_FILE).write_text(choice.to_json())
    return choice


def baked_runtime(source: str) -> EncoderRuntime | None:
    """The runtime bake-model chose for the model in ``source`` (None: not a folder it
    gated: a hub id, an offline model's name, a folder baked before the gate)."""
    path = Path(source) / RUNTIME_FILE
    try:
        runtime = json.loads(path.read_text())["runtime"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return runtime if runtime in ("torch", "onnx", "onnx-int8") else None


def _cpu() -> tuple[str, list[str]]:
    """This machine's CPU model and the flags that decide what int8 costs."""
    name, flags = platform.processor() or platform.machine(), set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    return name, [flag for flag in wanted if flag in flags]
