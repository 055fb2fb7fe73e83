"""The machine a benchmark ran on, printed with every benchmark's table: timings on an Intel
Xeon with AVX-512 and on an AMD EPYC differ, and so do OpenBLAS's kernels."""

from activeprop.calibration import describe_machine

VECTOR_FLAGS = ("sse", "avx", "fma", "amx", "f16c")


def machine() -> str:
    """CPU model, its vector-instruction flags, core count and BLAS (library, kernel,
    version) in one line."""
    import numpy  # noqa: F401 - loads the BLAS that threadpoolctl reports

    info = describe_machine()
    flags = " ".join(f for f in info["flags"] if f.startswith(VECTOR_FLAGS)) or "unknown"
    return (f"CPU: {info['cpu']}, {info['cores']} cores; flags: {flags}; "
            f"BLAS: {', '.join(info['blas']) or 'unknown'}")
