// SIMD variants of the codec functions, per x86 ISA level (internal to kernels/).
// register_simd_codecs() (dot_x86.cpp) swaps them into a copy of the reference table; tests
// call them directly to compare each one with the scalar reference on the same data.
#pragma once

#include <span>

#include "kernels/codec.h"
#include "kernels/cpu.h"

namespace qforge {

struct SimdVariant {
  Type type;
  DequantizeFn dequantize;  // nullptr: keep the reference one
  Type vec_dot_type;        // the activation format vec_dot expects
  VecDotFn vec_dot;         // nullptr: keep the reference one
  // Activation formats only (Q8_0, Q8_K): round-to-nearest encoder of whole rows, the same
  // rounding as ggml's reference (scale from the largest magnitude), used for vec_dot inputs.
  QuantizeFn quantize_activations = nullptr;
  // Float formats only (F16, BF16): the row encoder, byte-identical to the reference one (a
  // conversion with one right answer, unlike the block formats' searches, which are never
  // replaced). nullptr: keep the reference one.
  QuantizeFn convert = nullptr;
};

// The variants of one level (generic: none). A type can appear once per vec_dot_type.
std::span<const SimdVariant> simd_variants(Isa isa);
std::span<const SimdVariant> simd_variants_avx2();         // dot_avx2.cpp
std::span<const SimdVariant> simd_variants_avx512();       // dot_avx512.cpp
std::span<const SimdVariant> simd_variants_avx512_vnni();  // dot_avx512.cpp
std::span<const SimdVariant> simd_variants_avx512_bf16();  // dot_avx512.cpp

// The fastest activation encoder for vec_dot_type `vdt` at `isa` (nullptr: use the codec's).
QuantizeFn simd_activation_quantizer(Isa isa, Type vdt);

// The best level's exact float encoder for type t at `isa` (nullptr: none).
QuantizeFn simd_converter(Isa isa, Type t);

}  // namespace qforge
