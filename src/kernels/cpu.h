// The one CPU dispatch point. active_isa() is detected once (cpuid) and can be forced with the
// environment variable QFORGE_FORCE_ISA=generic|avx2|avx512|avx512vnni|avx512bf16 (a forced
// level above what the CPU supports falls back to the best supported one, with a warning).
//
// The levels form one chain, each including the ones below it:
//   generic     the scalar reference kernels (the oracle)
//   avx2        AVX2 + FMA + F16C (the build's x86-64-v3 baseline)
//   avx512      AVX-512 F/BW/VL/DQ: float dots, the f16/bf16 decoders, the GEMM micro-kernels
//   avx512vnni  + VNNI (vpdpbusd): the integer block dots (Q8_0, Q4_K, Q6_K)
//   avx512bf16  + AVX512_BF16 (vcvtneps2bf16): the bf16 encoder
// (every CPU with AVX512_BF16 also has VNNI: Cooper Lake, Sapphire Rapids, Zen 4 and later).
// A kernel set without a variant at some level serves that level with its best lower one
// (kernels/simd_variants.h).
#pragma once

#include <optional>
#include <string_view>

namespace qforge {

enum class Isa : int { Generic = 0, Avx2 = 1, Avx512 = 2, Avx512Vnni = 3, Avx512Bf16 = 4 };
inline constexpr Isa kHighestIsa = Isa::Avx512Bf16;

Isa detected_isa();
Isa active_isa();
std::string_view isa_name(Isa isa);
// The level of a QFORGE_FORCE_ISA value (nullopt if it names none).
std::optional<Isa> parse_isa(std::string_view name);

}  // namespace qforge
