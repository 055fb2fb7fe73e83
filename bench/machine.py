"""The machine a benchmark ran on, printed with every benchmark's table: timings on an Intel
Xeon with AVX-512 and on an AMD EPYC differ, and so do OpenBLAS's kernels."""

import os
import platform


def machine() -> str:
    """CPU model, core count and BLAS (library and kernel) in one line."""
    import numpy  # noqa: F401 - loads the BLAS that threadpoolctl reports
    import threadpoolctl

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    blas = [f"{i['internal_api']} {i.get('architecture')}" for i in
            threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    return f"CPU: {cpu}, {os.cpu_count()} cores; BLAS: {', '.join(blas)}"
