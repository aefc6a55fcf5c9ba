// Dispatch of the vector ops: the table of each ISA level, and the active one.
#include "kernels/vec_ops.h"

namespace qforge {

const VecOps& vec_ops(Isa isa) {
  // AVX-512 has no table of its own yet: it runs the AVX2 one.
  return isa == Isa::Generic ? vec_ops_generic() : vec_ops_avx2();
}

const VecOps& vec_ops() {
  static const VecOps& ops = vec_ops(active_isa());
  return ops;
}

}  // namespace qforge
