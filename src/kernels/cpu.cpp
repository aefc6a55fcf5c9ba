#include "kernels/cpu.h"

#include <cpuid.h>

#include <cstdlib>
#include <string>

#include "core/log.h"

namespace qforge {

Isa detected_isa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
      return Isa::Avx512;
    // F16C through cpuid (leaf 1, ECX bit 29): not every compiler's __builtin_cpu_supports
    // knows the name.
    unsigned a = 0, b = 0, c = 0, d = 0;
    const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c)
      return Isa::Avx2;
    return Isa::Generic;
  }();
  return isa;
}

Isa active_isa() {
  static const Isa isa = [] {
    Isa best = detected_isa();
    const char* env = std::getenv("QFORGE_FORCE_ISA");
    if (!env || !*env) return best;
    std::string s = env;
    Isa want = best;
    if (s == "generic") want = Isa::Generic;
    else if (s == "avx2") want = Isa::Avx2;
    else if (s == "avx512") want = Isa::Avx512;
    else log_warn("cpu.force_isa", "unknown QFORGE_FORCE_ISA value ignored", {{"value", s}});
    if (static_cast<int>(want) > static_cast<int>(best)) {
      log_warn("cpu.force_isa", "forced ISA not supported by this CPU; using the best supported",
               {{"forced", s}, {"using", std::string(isa_name(best))}});
      want = best;
    }
    return want;
  }();
  return isa;
}

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::Generic: return "generic";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "generic";
}

}  // namespace qforge
