// libFuzzer target for chat templates: any byte string (the template) must parse or give an
// error, and any parsed template must render or give an error — never crash, hang, leak or grow
// without bound (small limits keep each input fast). The input is split at the first NUL: the
// template, then a JSON value used as `messages` when it parses.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "engine/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  const std::string_view src = in.substr(0, nul);
  qforge::ChatTemplateLimits lim;
  lim.max_steps = 20000;
  lim.max_output = 1 << 16;
  auto t = qforge::ChatTemplate::parse(src, lim);
  if (!t.ok()) {
    if (t.error().message.empty()) std::abort();
    return 0;
  }
  nlohmann::ordered_json vars = qforge::chat_template_vars(
      {{"system", "Be brief."}, {"user", "Hi!"}, {"assistant", "Hello."}, {"user", "Bye"}}, true,
      "<s>", "</s>");
  if (nul != std::string_view::npos) {
    auto j = nlohmann::ordered_json::parse(in.substr(nul + 1), nullptr, false);
    if (!j.is_discarded()) vars["messages"] = std::move(j);
  }
  auto r = t->render(vars);
  if (!r.ok() && r.error().message.empty()) std::abort();
  if (r.ok() && r->size() > lim.max_output) std::abort();
  return 0;
}
