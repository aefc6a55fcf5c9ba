#include "kernels/codec.h"

#include "kernels/cpu.h"

namespace qforge {
namespace {

CodecTable build_reference() {
  CodecTable t{};
  for (size_t i = 0; i < t.size(); ++i) t[i].type = static_cast<Type>(i);
  register_float_codecs(t);
  register_legacy_codecs(t);
  register_k_codecs(t);
  return t;
}

}  // namespace

const CodecTable& reference_codecs() {
  static const CodecTable table = build_reference();
  return table;
}

const Codec* find_codec(Type t) {
  static const CodecTable table = [] {
    CodecTable tab = reference_codecs();
    register_simd_codecs(tab, static_cast<int>(active_isa()));
    return tab;
  }();
  auto id = static_cast<size_t>(t);
  if (id >= table.size() || !table[id].dequantize) return nullptr;
  return &table[id];
}

Result<const Codec*> codec_for(Type t) {
  const Codec* c = find_codec(t);
  if (!c) return make_error("type ", type_name(t), " is not supported by qforge's codecs");
  return c;
}

}  // namespace qforge
