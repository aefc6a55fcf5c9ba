// qforge tokenize MODEL (--text T | --file F) [--no-bos] [--parse-special] [--json]: the token
// ids of a text under a GGUF model's vocabulary, as llama.cpp tokenizes it; for the files qforge
// converts, also HF transformers' ids (the GPT-4o pre-tokenizer follows HF where llama.cpp's
// regex engine differs, e.g. on combining marks). --parse-special matches added/control token
// texts such as <|im_start|> inside the text, as HF does.
// --json prints {"ids": [...], "pieces": [...]} where pieces are the vocabulary strings as stored
// in the GGUF ("Ġthe", "▁the", "<0x0A>"), JSON-escaped.
#include <cstdio>
#include <iterator>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "app/cli_util.h"
#include "app/commands.h"
#include "core/log.h"
#include "engine/tokenizer.h"
#include "formats/gguf.h"

namespace qforge {
namespace {

struct TokenizeArgs {
  std::string model;
  std::string text;
  std::string file;
  bool no_bos = false;
  bool parse_special = false;
  bool json = false;
};

void run_tokenize(const TokenizeArgs& a, bool have_text) {
  const OpenedInput model = open_input(a.model);
  std::string text;
  if (have_text) {
    text = a.text;
  } else {
    text = unwrap(open_input(a.file).read_text());
  }
  GgufFile f = unwrap(GgufFile::open(model));
  Tokenizer tok = unwrap(Tokenizer::from_gguf(f));
  const std::vector<int32_t> ids = tok.encode(text, !a.no_bos, a.parse_special);
  log_info("tokenize.done", "tokenized",
           {{"bytes", text.size()}, {"tokens", ids.size()}, {"vocab", tok.n_vocab()}});
  if (a.json) {
    nlohmann::json j;
    j["ids"] = ids;
    nlohmann::json pieces = nlohmann::json::array();
    for (int32_t id : ids) pieces.push_back(tok.token_text(id));
    j["pieces"] = std::move(pieces);
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  for (int32_t id : ids) {
    // The piece as stored, escaped like a JSON string so control bytes stay on one line.
    nlohmann::json piece = tok.token_text(id);
    std::printf("%6d -> %s\n", id,
                piece.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  auto* cmd = app.add_subcommand("tokenize",
                                 "Show the token ids of a text (as llama.cpp and HF tokenize it)");
  cmd->add_option("MODEL", a->model, "GGUF model (its tokenizer.ggml.* metadata is used)")
      ->required();
  auto* text_opt = cmd->add_option("--text", a->text, "Text to tokenize");
  auto* file_opt = cmd->add_option("--file", a->file, "File whose bytes to tokenize");
  text_opt->excludes(file_opt);
  file_opt->excludes(text_opt);
  cmd->add_flag("--no-bos", a->no_bos, "Do not add BOS/EOS even if the vocabulary asks for them");
  cmd->add_flag("--parse-special", a->parse_special,
                "Recognise control-token texts such as <s> in the input");
  cmd->add_flag("--json", a->json, "Print {\"ids\": [...], \"pieces\": [...]} on stdout");
  cmd->callback([a, text_opt, file_opt] {
    if (text_opt->count() == 0 && file_opt->count() == 0)
      throw CliError{"tokenize: one of --text or --file is required", 2};
    run_tokenize(*a, text_opt->count() > 0);
  });
}

}  // namespace qforge
