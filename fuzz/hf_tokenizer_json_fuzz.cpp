// libFuzzer target for the tokenizer.json reader (byte-level BPE, as the converter loads it):
// the first byte picks the architecture and vocabulary size given by config.json, the rest is
// tokenizer.json. The reader takes a folder, so the input is written to a private tmpfs folder
// (/dev/shm, or $TMPDIR) each run. Any text must convert or give a non-empty one-line error,
// never crash, throw or read out of bounds; what converts must give one token per vocabulary id.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>

#include "formats/hf_config.h"
#include "formats/hf_tokenizer.h"

namespace {

namespace fs = std::filesystem;

// A private folder in tmpfs, removed at exit.
struct WorkDir {
  std::string path;
  WorkDir() {
    std::error_code ec;
    fs::path base =
        fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    path = (base / ("qforge-fuzz-tokjson-" + std::to_string(::getpid()))).string();
    fs::create_directories(path);
  }
  ~WorkDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

const std::string& work_dir() {
  static const WorkDir dir;
  return dir.path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string path = work_dir() + "/tokenizer.json";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size > 1 && std::fwrite(data + 1, 1, size - 1, f) != size - 1) std::abort();
  std::fclose(f);
  qforge::HfConfig cfg;
  cfg.arch = data[0] & 1 ? "llama" : "qwen2";  // llama folders prefer tokenizer.model (absent)
  cfg.hf_architecture = data[0] & 1 ? "LlamaForCausalLM" : "Qwen2ForCausalLM";
  cfg.vocab_size = 256 + 32u * (data[0] >> 1);  // 256 .. 4320
  auto kvs = qforge::load_hf_tokenizer(work_dir(), cfg);
  if (!kvs.ok()) {
    const auto& m = kvs.error().message;
    if (m.empty() || m.find('\n') != std::string::npos) std::abort();
    return 0;
  }
  bool have_tokens = false;
  for (const auto& [key, value] : *kvs) {
    (void)value.to_display();
    if (key == "tokenizer.ggml.tokens") {
      const auto* a = value.as_array();
      if (!a || a->items.size() != cfg.vocab_size) std::abort();
      have_tokens = true;
    }
  }
  if (!have_tokens) std::abort();
  return 0;
}
