// libFuzzer target: the gates file parser (toml++ plus qforge's key/value checks). Any input
// must give a GateSpec or one error line, never a crash or an exception.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pipeline/gates.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = qforge::parse_gates(text, "fuzz.toml");
  if (r.ok()) {
    qforge::GateMeasures m;
    m.kld_mean = 0.01;
    m.checksum = "verified";
    auto out = qforge::evaluate_gates(*r, m);
    (void)qforge::gate_junit_xml(out, "fuzz", 0);
  } else if (r.error().message.find('\n') != std::string::npos) {
    __builtin_trap();  // errors are one line
  }
  return 0;
}
