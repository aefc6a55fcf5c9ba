// Reference codecs of the plain float types F32, F16 and BF16. "Quantizing" is a conversion
// with round-to-nearest-even (core/fp16.h, bit-identical to ggml's F16C / bf16 conversions);
// the imatrix and ggml_compatible options do not apply. vec_dot takes F32 activations and
// accumulates in double, so it is the most accurate oracle for the SIMD variants.
#include <cstring>

#include "core/fp16.h"
#include "kernels/codec.h"

namespace qforge {
namespace {

void quantize_f32(const float* src, void* dst, int64_t nrows, int64_t n, const QuantizeOptions&) {
  std::memcpy(dst, src, static_cast<size_t>(nrows * n) * sizeof(float));
}
void dequantize_f32(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
void vec_dot_f32(int64_t n, float* out, const void* w, const void* x) {
  const auto* a = static_cast<const float*>(w);
  const auto* b = static_cast<const float*>(x);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  *out = static_cast<float>(s);
}

void quantize_f16(const float* src, void* dst, int64_t nrows, int64_t n, const QuantizeOptions&) {
  auto* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < nrows * n; ++i) d[i] = f32_to_fp16(src[i]);
}
void dequantize_f16(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(s[i]);
}
void vec_dot_f16(int64_t n, float* out, const void* w, const void* x) {
  const auto* a = static_cast<const uint16_t*>(w);
  const auto* b = static_cast<const float*>(x);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(fp16_to_f32(a[i])) * b[i];
  *out = static_cast<float>(s);
}

void quantize_bf16(const float* src, void* dst, int64_t nrows, int64_t n, const QuantizeOptions&) {
  auto* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < nrows * n; ++i) d[i] = f32_to_bf16(src[i]);
}
void dequantize_bf16(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
}
void vec_dot_bf16(int64_t n, float* out, const void* w, const void* x) {
  const auto* a = static_cast<const uint16_t*>(w);
  const auto* b = static_cast<const float*>(x);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(bf16_to_f32(a[i])) * b[i];
  *out = static_cast<float>(s);
}

}  // namespace

void register_float_codecs(CodecTable& table) {
  table[static_cast<size_t>(Type::F32)] =
      Codec{Type::F32, quantize_f32, dequantize_f32, Type::F32, vec_dot_f32};
  table[static_cast<size_t>(Type::F16)] =
      Codec{Type::F16, quantize_f16, dequantize_f16, Type::F32, vec_dot_f16};
  table[static_cast<size_t>(Type::BF16)] =
      Codec{Type::BF16, quantize_bf16, dequantize_bf16, Type::F32, vec_dot_bf16};
}

}  // namespace qforge
