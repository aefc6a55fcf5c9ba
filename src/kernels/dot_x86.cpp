// The SIMD half of the one dispatch point: register_simd_codecs() swaps the variants of an ISA
// level (and of the levels below it, for types the level has no variant of) into a copy of the
// scalar reference table. A variant's vec_dot is taken only when it expects the activation
// format that the reference codec declares, so both always agree on vec_dot_type. Quantizers
// are never replaced (weight encoders search; only matmul uses the fast activation encoders).
#include "kernels/simd_variants.h"

namespace qforge {

std::span<const SimdVariant> simd_variants(Isa isa) {
  switch (isa) {
    case Isa::Avx512:
      return simd_variants_avx512();
    case Isa::Avx2:
      return simd_variants_avx2();
    case Isa::Generic:
      break;
  }
  return {};
}

const SimdVariant* find_simd_variant(Isa isa, Type t, Type vdt) {
  for (int level = static_cast<int>(isa); level > 0; --level)
    for (const auto& v : simd_variants(static_cast<Isa>(level)))
      if (v.type == t && v.vec_dot_type == vdt) return &v;
  return nullptr;
}

QuantizeFn simd_activation_quantizer(Isa isa, Type vdt) {
  for (int level = static_cast<int>(isa); level > 0; --level)
    for (const auto& v : simd_variants(static_cast<Isa>(level)))
      if (v.type == vdt && v.quantize_activations) return v.quantize_activations;
  return nullptr;
}

void register_simd_codecs(CodecTable& table, int isa_level) {
  const Isa isa = static_cast<Isa>(isa_level);
  for (Codec& c : table) {
    if (!c.dequantize) continue;  // no reference codec: nothing to accelerate
    if (const SimdVariant* v = find_simd_variant(isa, c.type, c.vec_dot_type))
      if (v->vec_dot && c.vec_dot) c.vec_dot = v->vec_dot;
    // The decoder does not depend on the activation format: the best level that has one.
    bool found = false;
    for (int level = isa_level; level > 0 && !found; --level)
      for (const auto& v : simd_variants(static_cast<Isa>(level)))
        if (v.type == c.type && v.dequantize) {
          c.dequantize = v.dequantize;
          found = true;
          break;
        }
  }
}

}  // namespace qforge
