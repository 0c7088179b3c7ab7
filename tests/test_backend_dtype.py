"""``dtype: auto`` must not run bf16 by emulation on a CPU without bf16 instructions."""

from __future__ import annotations

from inference.backends import cpu_dtype

AVX2_ONLY = "flags\t\t: fpu sse sse2 avx avx2 fma f16c\n"
WITH_AMX = "flags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"


def test_auto_means_float32_without_fast_bf16(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(AVX2_ONLY)
    assert cpu_dtype("auto", cpuinfo) == "float32"
    assert cpu_dtype("bfloat16", cpuinfo) == "bfloat16"  # an explicit choice is kept


def test_auto_is_left_alone_with_fast_bf16(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(WITH_AMX)
    assert cpu_dtype("auto", cpuinfo) == "auto"
