// The codec table: for every Type that qforge can encode/decode, the best implementation of
// quantize / dequantize / vec_dot for this CPU. It is indexed by the same Type as the trait
// table in core/types.h; callers iterate it instead of switching on types.
//
// Scalar reference implementations are the oracle: every SIMD variant is tested against them.
// QFORGE_FORCE_ISA (see cpu.h) picks the variant set for tests/benchmarks.
#pragma once

#include <array>
#include <cstdint>

#include "core/result.h"
#include "core/types.h"

namespace qforge {

struct QuantizeOptions {
  // Importance of each column (length n_per_row), e.g. from an imatrix; nullptr = none.
  const float* imatrix = nullptr;
  // Reproduce ggml's reference encoder choices exactly (byte-identical output) instead of
  // qforge's refined search (never worse in weighted error, usually better).
  bool ggml_compatible = false;
  // Q8_0 and Q4_0 without importance weights are plain round-to-nearest, byte-identical to
  // llama.cpp, unless this is set: then they get the refined search too (lower error).
  bool refine_round_to_nearest = false;
};

// Encodes nrows rows of n_per_row floats (row-major) into dst, row_size(type, n_per_row) bytes
// per row. Contract: n_per_row is a multiple of the block size; src values are finite.
using QuantizeFn = void (*)(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                            const QuantizeOptions& opt);
// Decodes n values (a multiple of the block size) from src.
using DequantizeFn = void (*)(const void* src, float* dst, int64_t n);
// *out = sum_i w[i] * x[i] over n values; w in the codec's type, x in its vec_dot_type.
using VecDotFn = void (*)(int64_t n, float* out, const void* w, const void* x);

struct Codec {
  Type type = Type::F32;
  QuantizeFn quantize = nullptr;
  DequantizeFn dequantize = nullptr;
  Type vec_dot_type = Type::F32;  // activations are converted to this type for vec_dot
  VecDotFn vec_dot = nullptr;
};

constexpr size_t kMaxTypeId = 31;
using CodecTable = std::array<Codec, kMaxTypeId>;

// The active table (built once, for the ISA chosen by cpu.h). nullptr if `t` has no codec.
const Codec* find_codec(Type t);
// As find_codec, with an error naming the type when it has none.
Result<const Codec*> codec_for(Type t);
// The scalar reference table (the oracle), regardless of ISA.
const CodecTable& reference_codecs();

// Registration hooks, one per implementation file (called once while building the tables).
void register_float_codecs(CodecTable& table);   // quants_float.cpp: F32, F16, BF16
void register_legacy_codecs(CodecTable& table);  // quants_legacy.cpp: Q4_0..Q8_0, IQ4_NL, IQ4_XS
void register_k_codecs(CodecTable& table);       // quants_k.cpp: Q2_K..Q6_K, Q8_K
// Replaces entries with SIMD variants for the given ISA level (dot_x86.cpp).
void register_simd_codecs(CodecTable& table, int isa_level);

}  // namespace qforge
