// The one CPU dispatch point. active_isa() is detected once (cpuid) and can be forced with the
// environment variable QFORGE_FORCE_ISA=generic|avx2|avx512 (a forced level above what the CPU
// supports falls back to the best supported one, with a warning).
#pragma once

#include <string_view>

namespace qforge {

enum class Isa : int { Generic = 0, Avx2 = 1, Avx512 = 2 };

Isa detected_isa();
Isa active_isa();
std::string_view isa_name(Isa isa);

}  // namespace qforge
