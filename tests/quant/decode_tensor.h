// Decoding a stored tensor back to floats, for the quantizer tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/types.h"
#include "formats/gguf.h"
#include "kernels/codec.h"

namespace qforge::test {

// The tensor's values through its type's codec; a type without a codec fails the test.
inline std::vector<float> decode(const GgufFile& f, const GgufTensorInfo& t) {
  std::vector<float> out(t.n_elements());
  const Codec* c = find_codec(t.type);
  EXPECT_NE(c, nullptr) << type_name(t.type);
  if (c) c->dequantize(f.tensor_data(t).data(), out.data(), static_cast<int64_t>(out.size()));
  return out;
}

}  // namespace qforge::test
