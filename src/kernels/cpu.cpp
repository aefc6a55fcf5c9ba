#include "kernels/cpu.h"

#include <cpuid.h>

#include <cstdlib>
#include <iterator>
#include <string>

#include "core/log.h"

namespace qforge {

Isa detected_isa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    // F16C through cpuid (leaf 1, ECX bit 29): not every compiler's __builtin_cpu_supports
    // knows the name.
    unsigned a = 0, b = 0, c = 0, d = 0;
    const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c))
      return Isa::Generic;
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")))
      return Isa::Avx2;
    if (!__builtin_cpu_supports("avx512vnni")) return Isa::Avx512;
    // AVX512_BF16: cpuid leaf 7 sub-leaf 1, EAX bit 5 (GCC 12's __builtin_cpu_supports
    // has "avx512bf16", older compilers do not).
    const bool bf16 = __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5)) != 0;
    return bf16 ? Isa::Avx512Bf16 : Isa::Avx512Vnni;
  }();
  return isa;
}

std::optional<Isa> parse_isa(std::string_view name) {
  for (int l = 0; l <= static_cast<int>(kHighestIsa); ++l)
    if (isa_name(static_cast<Isa>(l)) == name) return static_cast<Isa>(l);
  return std::nullopt;
}

Isa active_isa() {
  static const Isa isa = [] {
    Isa best = detected_isa();
    const char* env = std::getenv("QFORGE_FORCE_ISA");
    if (!env || !*env) return best;
    const std::string s = env;
    const std::optional<Isa> parsed = parse_isa(s);
    if (!parsed) {
      log_warn("cpu.force_isa", "unknown QFORGE_FORCE_ISA value ignored",
               {{"value", s}, {"known", "generic|avx2|avx512|avx512vnni|avx512bf16"}});
      return best;
    }
    if (static_cast<int>(*parsed) > static_cast<int>(best)) {
      log_warn("cpu.force_isa", "forced ISA not supported by this CPU; using the best supported",
               {{"forced", s}, {"using", std::string(isa_name(best))}});
      return best;
    }
    return *parsed;
  }();
  return isa;
}

std::string_view isa_name(Isa isa) {
  // Indexed by level; the names QFORGE_FORCE_ISA accepts.
  static constexpr std::string_view kNames[] = {"generic", "avx2", "avx512", "avx512vnni",
                                                "avx512bf16"};
  static_assert(std::size(kNames) == static_cast<size_t>(kHighestIsa) + 1);
  const int l = static_cast<int>(isa);
  return l >= 0 && l <= static_cast<int>(kHighestIsa) ? kNames[l] : kNames[0];
}

}  // namespace qforge
