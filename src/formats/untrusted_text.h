// Text taken from an input file (tensor names, token texts, architecture names) for use in a
// one-line error message: control bytes are escaped as \xHH so that a message stays one line,
// and long strings are cut (with "...") so that a hostile name cannot flood the terminal.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace qforge {

inline std::string printable(std::string_view s, size_t max_bytes = 200) {
  std::string r;
  const bool cut = s.size() > max_bytes;
  if (cut) s = s.substr(0, max_bytes);
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      r += buf;
    } else {
      r += static_cast<char>(c);
    }
  }
  if (cut) r += "...";
  return r;
}

}  // namespace qforge
