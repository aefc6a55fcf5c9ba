// Writes a synthetic llama model of real size for speed measurements (issue #12): random
// weights with real tensor shapes, and a working vocabulary taken from a template GGUF and
// padded to the requested size, so that llama.cpp and qforge both load and run it.
//
//   synthetic_model_bench OUT.gguf [--vocab-from TEMPLATE.gguf] [--type F16|BF16|F32]
//                         [--shape LAYERS,HIDDEN,FFN,HEADS,KV_HEADS,VOCAB] [--force]
//
// Default shape: 16 layers, hidden 2048, ffn 8192, 32 heads / 8 KV heads, vocab 32000 (1.1 B
// parameters, 2.2 GB in F16). Default template: ../shared/reference/refmodel-f16.gguf (its
// tokens, merges and special ids; the padding tokens are plain unreachable strings).
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "../tests/quant/synthetic_gguf.h"
#include "core/types.h"
#include "formats/gguf.h"

namespace {

using namespace qforge;

// The template's tokenizer KVs, with tokens / scores / token types padded to `vocab` entries.
Result<std::vector<GgufKv>> padded_vocab(const std::string& path, uint64_t vocab) {
  QF_TRY(GgufFile f, GgufFile::open(path));
  std::vector<GgufKv> out;
  for (const auto& [key, value] : f.kvs()) {
    if (key.rfind("tokenizer.", 0) != 0) continue;
    const GgufArray* a = value.as_array();
    const bool per_token = key == "tokenizer.ggml.tokens" || key == "tokenizer.ggml.scores" ||
                           key == "tokenizer.ggml.token_type";
    if (!per_token || a == nullptr) {
      out.emplace_back(key, value);
      continue;
    }
    if (a->items.size() > vocab)
      return make_error(path, ": ", key, " has ", a->items.size(), " entries, more than vocab ",
                        vocab);
    std::vector<GgufValue> items = a->items;
    for (uint64_t i = items.size(); i < vocab; ++i) {
      if (key == "tokenizer.ggml.tokens")
        items.push_back(GgufValue::string("[synthetic-pad-" + std::to_string(i) + "]"));
      else if (key == "tokenizer.ggml.scores")
        items.push_back(GgufValue::f32(0.0f));
      else
        items.push_back(GgufValue::i32(1));  // normal
    }
    out.emplace_back(key, GgufValue::array(a->elem_type, std::move(items)));
  }
  return out;
}

std::vector<int> parse_shape(const std::string& s) {
  std::vector<int> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(std::atoi(item.c_str()));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out, vocab_from = "../shared/reference/refmodel-f16.gguf", type = "F16";
  std::vector<int> shape = {16, 2048, 8192, 32, 8, 32000};
  bool force = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "synthetic_model_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--vocab-from")
      vocab_from = next();
    else if (a == "--type")
      type = next();
    else if (a == "--shape")
      shape = parse_shape(next());
    else if (a == "--force")
      force = true;
    else if (a == "-h" || a == "--help") {
      std::printf(
          "usage: synthetic_model_bench OUT.gguf [--vocab-from GGUF] [--type F16|BF16|F32]"
          " [--shape LAYERS,HIDDEN,FFN,HEADS,KV_HEADS,VOCAB] [--force]\n");
      return 0;
    } else if (out.empty() && a[0] != '-')
      out = a;
    else {
      std::fprintf(stderr, "synthetic_model_bench: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (out.empty() || shape.size() != 6) {
    std::fprintf(stderr, "synthetic_model_bench: need OUT.gguf and a shape of 6 numbers\n");
    return 2;
  }
  test::SyntheticModel m;
  m.n_layer = shape[0];
  m.hidden = shape[1];
  m.ffn = shape[2];
  m.n_head = shape[3];
  m.n_head_kv = shape[4];
  m.vocab = shape[5];
  m.weight_type = type == "BF16" ? Type::BF16 : type == "F32" ? Type::F32 : Type::F16;
  auto kvs = padded_vocab(vocab_from, static_cast<uint64_t>(m.vocab));
  if (!kvs.ok()) {
    std::fprintf(stderr, "synthetic_model_bench: %s\n", kvs.error().message.c_str());
    return 1;
  }
  m.extra_kvs = std::move(*kvs);
  if (Status s = test::write_synthetic_gguf(out, m, force); !s.ok()) {
    std::fprintf(stderr, "synthetic_model_bench: %s\n", s.error().message.c_str());
    return 1;
  }
  std::printf("%s: %d layers, hidden %d, ffn %d, heads %d/%d, vocab %d, %s\n", out.c_str(),
              m.n_layer, m.hidden, m.ffn, m.n_head, m.n_head_kv, m.vocab, type.c_str());
  return 0;
}
