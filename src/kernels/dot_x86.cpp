// The SIMD half of the one dispatch point: register_simd_codecs() swaps the variants of an ISA
// level (and of the levels below it, for types the level has no variant of) into a copy of the
// scalar reference table. A variant's vec_dot is taken only when it expects the activation
// format that the reference codec declares, so both always agree on vec_dot_type. Block-format
// quantizers are never replaced (weight encoders search; only matmul uses the fast activation
// encoders); the float formats' encoders are, by variants that give the same bytes.
#include "kernels/simd_variants.h"

namespace qforge {

std::span<const SimdVariant> simd_variants(Isa isa) {
  switch (isa) {
    case Isa::Avx512Bf16:
      return simd_variants_avx512_bf16();
    case Isa::Avx512Vnni:
      return simd_variants_avx512_vnni();
    case Isa::Avx512:
      return simd_variants_avx512();
    case Isa::Avx2:
      return simd_variants_avx2();
    case Isa::Generic:
      break;
  }
  return {};
}

namespace {

// The first non-null `field` of a variant of type t (and activation format vdt, when given) at
// `isa` or the highest level below it that has one.
template <class Fn>
Fn best_of(Isa isa, Type t, Fn SimdVariant::*field, const Type* vdt = nullptr) {
  for (int level = static_cast<int>(isa); level > 0; --level)
    for (const auto& v : simd_variants(static_cast<Isa>(level)))
      if (v.type == t && (!vdt || v.vec_dot_type == *vdt) && v.*field) return v.*field;
  return nullptr;
}

}  // namespace

QuantizeFn simd_activation_quantizer(Isa isa, Type vdt) {
  return best_of(isa, vdt, &SimdVariant::quantize_activations);
}
QuantizeFn simd_converter(Isa isa, Type t) {
  return best_of(isa, t, &SimdVariant::convert);
}

void register_simd_codecs(CodecTable& table, int isa_level) {
  const Isa isa = static_cast<Isa>(isa_level);
  for (Codec& c : table) {
    if (!c.dequantize) continue;  // no reference codec: nothing to accelerate
    if (c.vec_dot)
      if (VecDotFn dot = best_of(isa, c.type, &SimdVariant::vec_dot, &c.vec_dot_type))
        c.vec_dot = dot;
    // The decoder and a float format's encoder do not depend on the activation format.
    if (DequantizeFn dq = best_of(isa, c.type, &SimdVariant::dequantize)) c.dequantize = dq;
    if (QuantizeFn cv = simd_converter(isa, c.type)) c.quantize = cv;
  }
}

}  // namespace qforge
