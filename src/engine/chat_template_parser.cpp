// Chat template lexer and parser: source -> segments (text, {{ }}, {% %}) with Jinja's
// whitespace rules as transformers configures them (trim_blocks, lstrip_blocks, one trailing
// newline dropped), then each tag's tokens -> expression/statement trees by Jinja2's grammar.
#include "engine/chat_template_parser.h"

#include <charconv>
#include <cstring>

namespace qforge::tmpl {

namespace {

enum class SegKind : uint8_t { Text, Var, Block };
struct Segment {
  SegKind kind;
  std::string text;
  int line;
};

bool is_inline_space(char c) {
  return c == ' ' || c == '\t' || c == '\f' || c == '\v' || c == '\r';
}
bool is_space(char c) {
  return is_inline_space(c) || c == '\n';
}

// Line number of a byte offset; offsets are asked for in increasing order, so counting resumes
// from the previous answer.
class LineCounter {
 public:
  explicit LineCounter(std::string_view src) : src_(src) {}
  int at(size_t pos) {
    if (pos < pos_) pos_ = 0, line_ = 1;
    for (; pos_ < pos && pos_ < src_.size(); ++pos_) line_ += src_[pos_] == '\n';
    return line_;
  }

 private:
  std::string_view src_;
  size_t pos_ = 0;
  int line_ = 1;
};

// Finds the end of a {{ }} or {% %} tag starting at `from`, skipping string literals. Returns
// the index of the closing "}}"/"%}" or npos.
size_t find_tag_end(std::string_view src, size_t from, char close) {
  for (size_t i = from; i + 1 < src.size(); ++i) {
    const char c = src[i];
    if (c == '\'' || c == '"') {
      for (++i; i < src.size() && src[i] != c; ++i)
        if (src[i] == '\\') ++i;
      if (i >= src.size()) return std::string_view::npos;
      continue;
    }
    if (c == close && src[i + 1] == '}') return i;
  }
  return std::string_view::npos;
}

// Text before a tag, with the tag's left whitespace control applied.
std::string_view strip_before(std::string_view text, char sign, bool is_var, bool line_starting) {
  if (sign == '-') {
    size_t e = text.size();
    while (e > 0 && is_space(text[e - 1])) --e;
    return text.substr(0, e);
  }
  if (sign == '+' || is_var) return text;
  const size_t nl = text.rfind('\n');
  const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
  if (l_pos == 0 && !line_starting) return text;
  if (l_pos == text.size()) return text;
  for (size_t i = l_pos; i < text.size(); ++i)
    if (!is_inline_space(text[i])) return text;
  return text.substr(0, l_pos);
}

class Segmenter {
 public:
  explicit Segmenter(std::string_view src) : src_(src), lines_(src) {}

  Result<std::vector<Segment>> run() {
    while (pos_ < src_.size()) {
      const size_t p = next_tag(pos_);
      if (p == std::string_view::npos) {
        push_text(src_.substr(pos_), pos_);
        break;
      }
      const char kind = src_[p + 1];
      size_t body = p + 2;
      char sign = 0;
      if (body < src_.size() && (src_[body] == '-' || src_[body] == '+')) sign = src_[body++];
      push_text(strip_before(src_.substr(pos_, p - pos_), sign, kind == '{', line_starting_), pos_);
      if (kind == '#') {
        QF_CHECK(comment(p, body));
      } else {
        QF_CHECK(tag(p, body, kind));
      }
    }
    return std::move(segs_);
  }

 private:
  size_t next_tag(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string_view::npos; i = src_.find('{', i + 1))
      if (i + 1 < src_.size() && std::strchr("{%#", src_[i + 1]) && src_[i + 1] != '\0') return i;
    return std::string_view::npos;
  }
  void push_text(std::string_view t, size_t at) {
    if (!t.empty()) segs_.push_back({SegKind::Text, std::string(t), lines_.at(at)});
  }
  // After a tag's closing delimiter at `after`: '-' eats all whitespace, a block/comment eats
  // one newline (trim_blocks) unless marked '+'.
  void finish(size_t after, char end_sign, bool is_block) {
    size_t q = after;
    if (end_sign == '-') {
      while (q < src_.size() && is_space(src_[q])) ++q;
    } else if (is_block && end_sign != '+' && q < src_.size() && src_[q] == '\n') {
      ++q;
    }
    line_starting_ = q > 0 && q > after && src_[q - 1] == '\n';
    pos_ = q;
  }
  Status comment(size_t p, size_t body) {
    const size_t e = src_.find("#}", body);
    if (e == std::string_view::npos)
      return make_error("line ", lines_.at(p), ": missing end of comment tag");
    const char s = e > body && (src_[e - 1] == '-' || src_[e - 1] == '+') ? src_[e - 1] : 0;
    finish(e + 2, s, true);
    return {};
  }
  Status tag(size_t p, size_t body, char kind) {
    const char close = kind == '{' ? '}' : '%';
    const size_t e = find_tag_end(src_, body, close);
    if (e == std::string_view::npos)
      return make_error("line ", lines_.at(p), ": unexpected end of template, expected '", close,
                        "}'");
    char s = 0;
    size_t content_end = e;
    if (e > body && (src_[e - 1] == '-' || (kind == '%' && src_[e - 1] == '+'))) {
      s = src_[e - 1];
      --content_end;
    }
    const std::string_view content = src_.substr(body, content_end - body);
    segs_.push_back(
        {kind == '{' ? SegKind::Var : SegKind::Block, std::string(content), lines_.at(p)});
    finish(e + 2, s, kind == '%');
    if (kind == '%') return raw_block(content);
    return {};
  }
  // {% raw %}...{% endraw %}: the text between is data.
  Status raw_block(std::string_view content) {
    size_t a = 0, b = content.size();
    while (a < b && is_space(content[a])) ++a;
    while (b > a && is_space(content[b - 1])) --b;
    if (content.substr(a, b - a) != "raw") return {};
    segs_.pop_back();
    for (size_t i = src_.find("{%", pos_); i != std::string_view::npos;
         i = src_.find("{%", i + 2)) {
      size_t j = i + 2;
      const char sign = j < src_.size() && (src_[j] == '-' || src_[j] == '+') ? src_[j++] : 0;
      while (j < src_.size() && is_space(src_[j])) ++j;
      if (src_.compare(j, 6, "endraw") != 0) continue;
      const size_t e = find_tag_end(src_, j + 6, '%');
      if (e == std::string_view::npos) break;
      push_text(strip_before(src_.substr(pos_, i - pos_), sign, false, line_starting_), pos_);
      const char es = src_[e - 1] == '-' || src_[e - 1] == '+' ? src_[e - 1] : 0;
      finish(e + 2, es, true);
      return {};
    }
    return make_error("line ", lines_.at(pos_), ": missing end of raw directive");
  }

  std::string_view src_;
  LineCounter lines_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Segment> segs_;
};

// ---------------------------------------------------------------- expression tokens

enum class TK : uint8_t { Name, Int, Float, Str, Op, End };
struct Tok {
  TK k = TK::End;
  std::string s;
  int64_t i = 0;
  double f = 0;
};

bool is_ident(char c, bool first) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (!first && c >= '0' && c <= '9');
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A Python string literal's escapes (Jinja decodes them with "unicode-escape"); an unknown
// escape keeps its backslash.
Result<std::string> unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    char simple = 0;
    switch (c) {
      case 'n':
        simple = '\n';
        break;
      case 't':
        simple = '\t';
        break;
      case 'r':
        simple = '\r';
        break;
      case '\\':
        simple = '\\';
        break;
      case '\'':
        simple = '\'';
        break;
      case '"':
        simple = '"';
        break;
      case 'a':
        simple = '\a';
        break;
      case 'b':
        simple = '\b';
        break;
      case 'f':
        simple = '\f';
        break;
      case 'v':
        simple = '\v';
        break;
      default:
        break;
    }
    if (simple) {
      out += simple;
      continue;
    }
    if (c == '0') {
      out += '\0';
      continue;
    }
    if (c == '\n') continue;
    const int n = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
    if (n == 0) {
      out += '\\';
      out += c;
      continue;
    }
    uint32_t cp = 0;
    for (int k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return make_error("truncated \\", c, " escape");
      const char h = s[i + k];
      const int d = h >= '0' && h <= '9'   ? h - '0'
                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                           : -1;
      if (d < 0) return make_error("bad \\", c, " escape");
      cp = cp * 16 + static_cast<uint32_t>(d);
    }
    if (cp > 0x10FFFF) return make_error("escape out of range");
    append_utf8(cp, out);
    i += n;
  }
  return out;
}

Result<std::vector<Tok>> lex(std::string_view s) {
  static const char* kOps2[] = {"//", "**", "==", "!=", "<=", ">="};
  std::vector<Tok> toks;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (is_space(c)) {
      ++i;
    } else if (is_ident(c, true)) {
      size_t j = i;
      while (j < s.size() && is_ident(s[j], false)) ++j;
      toks.push_back({TK::Name, std::string(s.substr(i, j - i))});
      i = j;
    } else if (c >= '0' && c <= '9') {
      size_t j = i;
      bool is_float = false;
      while (j < s.size() && ((s[j] >= '0' && s[j] <= '9') || s[j] == '_')) ++j;
      if (j + 1 < s.size() && s[j] == '.' && s[j + 1] >= '0' && s[j + 1] <= '9') {
        is_float = true;
        for (++j; j < s.size() && ((s[j] >= '0' && s[j] <= '9') || s[j] == '_');) ++j;
      }
      if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
        size_t k = j + 1;
        if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
        if (k < s.size() && s[k] >= '0' && s[k] <= '9') {
          is_float = true;
          for (j = k; j < s.size() && s[j] >= '0' && s[j] <= '9';) ++j;
        }
      }
      std::string num;
      for (size_t k = i; k < j; ++k)
        if (s[k] != '_') num += s[k];
      Tok t{is_float ? TK::Float : TK::Int, num};
      if (is_float) {
        t.f = std::strtod(num.c_str(), nullptr);
      } else {
        const auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), t.i);
        if (ec != std::errc() || end != num.data() + num.size())
          return make_error("integer literal too large: ", num);
      }
      toks.push_back(std::move(t));
      i = j;
    } else if (c == '\'' || c == '"') {
      size_t j = i + 1;
      while (j < s.size() && s[j] != c) j += s[j] == '\\' ? 2 : 1;
      if (j >= s.size()) return make_error("unterminated string literal");
      QF_TRY(std::string v, unescape(s.substr(i + 1, j - i - 1)));
      toks.push_back({TK::Str, std::move(v)});
      i = j + 1;
    } else {
      std::string op(1, c);
      for (const char* o : kOps2)
        if (s.compare(i, 2, o) == 0) op = o;
      if (op.size() == 1 && !std::strchr("+-*/%~|.,:()[]{}<>=", c))
        return make_error("unexpected character '", op, "'");
      toks.push_back({TK::Op, op});
      i += op.size();
    }
  }
  toks.push_back({TK::End, ""});
  return toks;
}

// ---------------------------------------------------------------- parser

class Parser {
 public:
  Parser(std::vector<Segment> segs, int max_depth)
      : segs_(std::move(segs)), max_depth_(max_depth) {}

  Result<Body> parse_template() {
    std::string end;
    QF_TRY(Body body, parse_body({}, &end));
    return body;
  }

 private:
  struct DepthGuard {
    int& d;
    explicit DepthGuard(int& x) : d(x) { ++d; }
    ~DepthGuard() { --d; }
  };
  Error err(const std::string& msg) const { return make_error("line ", line_, ": ", msg); }
  Status enter() const {
    if (depth_ > max_depth_) return err("template nesting too deep");
    return {};
  }

  // --- token stream of the current tag
  const Tok& cur() const { return toks_[tp_]; }
  const Tok& peek(size_t n = 1) const { return toks_[std::min(tp_ + n, toks_.size() - 1)]; }
  bool is_op(const char* op) const { return cur().k == TK::Op && cur().s == op; }
  bool is_name(const char* n) const { return cur().k == TK::Name && cur().s == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    ++tp_;
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    ++tp_;
    return true;
  }
  Status expect_op(const char* op) {
    if (skip_op(op)) return {};
    return err(cat("expected '", op, "', got '", describe(cur()), "'"));
  }
  Result<std::string> expect_name() {
    if (cur().k != TK::Name) return err(cat("expected a name, got '", describe(cur()), "'"));
    return toks_[tp_++].s;
  }
  Status expect_end() {
    if (cur().k == TK::End) return {};
    return err(cat("expected end of tag, got '", describe(cur()), "'"));
  }
  static std::string describe(const Tok& t) { return t.k == TK::End ? "end of tag" : t.s; }
  ExprP node(EK k) {
    auto e = std::make_unique<Expr>();
    e->k = k;
    e->line = line_;
    return e;
  }

  // --- statements
  Result<Body> parse_body(std::vector<std::string_view> ends, std::string* which);
  Result<NodeP> parse_stmt(const std::string& kw);
  Result<NodeP> parse_if();
  Result<NodeP> parse_for();
  Result<NodeP> parse_set();
  Result<NodeP> parse_macro();
  Result<NodeP> parse_filter_block();
  Status load_tag(const Segment& s) {
    line_ = s.line;
    auto t = lex(s.text);
    if (!t.ok()) return err(t.error().message);
    toks_ = std::move(*t);
    tp_ = 0;
    return {};
  }

  // --- expressions (Jinja2's precedence, loosest first)
  Result<ExprP> parse_expression(bool with_cond = true);
  Result<ExprP> parse_tuple(bool with_cond, bool explicit_parens = false);
  Result<ExprP> parse_or();
  Result<ExprP> parse_and();
  Result<ExprP> parse_not();
  Result<ExprP> parse_compare();
  Result<ExprP> parse_binary(int level);
  Result<ExprP> parse_unary(bool with_filter);
  Result<ExprP> parse_primary();
  Result<ExprP> parse_postfix(ExprP e);
  Result<ExprP> parse_filter_expr(ExprP e);
  Result<ExprP> parse_subscript(ExprP e);
  Status parse_call_args(Expr& e);

  std::vector<Segment> segs_;
  size_t sp_ = 0;
  std::vector<Tok> toks_;
  size_t tp_ = 0;
  int line_ = 1;
  int depth_ = 0;
  int max_depth_;
};

Result<Body> Parser::parse_body(std::vector<std::string_view> ends, std::string* which) {
  DepthGuard g(depth_);
  QF_CHECK(enter());
  Body body;
  while (sp_ < segs_.size()) {
    const Segment& s = segs_[sp_++];
    if (s.kind == SegKind::Text) {
      auto n = std::make_unique<Node>();
      n->k = SK::Text;
      n->text = s.text;
      n->line = s.line;
      body.push_back(std::move(n));
      continue;
    }
    QF_CHECK(load_tag(s));
    if (s.kind == SegKind::Var) {
      auto n = std::make_unique<Node>();
      n->k = SK::Output;
      n->line = s.line;
      QF_TRY(ExprP e, parse_tuple(true));
      QF_CHECK(expect_end());
      n->exprs.push_back(std::move(e));
      body.push_back(std::move(n));
      continue;
    }
    QF_TRY(std::string kw, expect_name());
    for (std::string_view e : ends)
      if (kw == e) {
        *which = kw;
        return body;
      }
    QF_TRY(NodeP n, parse_stmt(kw));
    body.push_back(std::move(n));
  }
  if (!ends.empty()) {
    std::string want;
    for (std::string_view e : ends) want += (want.empty() ? "'" : " or '") + std::string(e) + "'";
    return make_error("line ", line_, ": unexpected end of template, expected ", want);
  }
  return body;
}

Result<NodeP> Parser::parse_stmt(const std::string& kw) {
  if (kw == "if") return parse_if();
  if (kw == "for") return parse_for();
  if (kw == "set") return parse_set();
  if (kw == "macro") return parse_macro();
  if (kw == "filter") return parse_filter_block();
  auto n = std::make_unique<Node>();
  n->line = line_;
  if (kw == "break" || kw == "continue") {
    n->k = kw == "break" ? SK::Break : SK::Continue;
    QF_CHECK(expect_end());
    return n;
  }
  if (kw == "generation") {
    n->k = SK::Scope;
    QF_CHECK(expect_end());
    std::string end;
    QF_TRY(Body b, parse_body({"endgeneration"}, &end));
    QF_CHECK(expect_end());
    n->bodies.push_back(std::move(b));
    return n;
  }
  return err(cat("unknown or unsupported tag '", kw, "'"));
}

Result<NodeP> Parser::parse_if() {
  auto n = std::make_unique<Node>();
  n->k = SK::If;
  n->line = line_;
  std::string end = "elif";
  while (end == "elif") {
    QF_TRY(ExprP c, parse_tuple(true));
    QF_CHECK(expect_end());
    QF_TRY(Body b, parse_body({"elif", "else", "endif"}, &end));
    n->exprs.push_back(std::move(c));
    n->bodies.push_back(std::move(b));
  }
  if (end == "else") {
    QF_CHECK(expect_end());
    QF_TRY(Body b, parse_body({"endif"}, &end));
    n->bodies.push_back(std::move(b));
  }
  QF_CHECK(expect_end());
  return n;
}

Result<NodeP> Parser::parse_for() {
  auto n = std::make_unique<Node>();
  n->k = SK::For;
  n->line = line_;
  const bool paren = skip_op("(");
  do {
    QF_TRY(std::string t, expect_name());
    n->targets.push_back(std::move(t));
  } while (skip_op(","));
  if (paren) QF_CHECK(expect_op(")"));
  if (!skip_name("in")) return err("expected 'in' in for loop");
  QF_TRY(ExprP iter, parse_tuple(false));
  n->exprs.push_back(std::move(iter));
  if (skip_name("if")) {
    QF_TRY(ExprP f, parse_expression());
    n->exprs.push_back(std::move(f));
  }
  if (is_name("recursive")) return err("recursive for loops are not supported");
  QF_CHECK(expect_end());
  std::string end;
  QF_TRY(Body b, parse_body({"else", "endfor"}, &end));
  n->bodies.push_back(std::move(b));
  if (end == "else") {
    QF_CHECK(expect_end());
    QF_TRY(Body e, parse_body({"endfor"}, &end));
    n->bodies.push_back(std::move(e));
  }
  QF_CHECK(expect_end());
  return n;
}

Result<NodeP> Parser::parse_set() {
  auto n = std::make_unique<Node>();
  n->line = line_;
  QF_TRY(n->text, expect_name());
  if (skip_op(".")) {
    QF_TRY(n->attr, expect_name());
  }
  if (skip_op("=")) {
    n->k = SK::Set;
    QF_TRY(ExprP e, parse_tuple(true));
    QF_CHECK(expect_end());
    n->exprs.push_back(std::move(e));
    return n;
  }
  if (!n->attr.empty()) return err("expected '=' after a namespace attribute");
  n->k = SK::SetBlock;
  QF_CHECK(expect_end());
  std::string end;
  QF_TRY(Body b, parse_body({"endset"}, &end));
  QF_CHECK(expect_end());
  n->bodies.push_back(std::move(b));
  return n;
}

Result<NodeP> Parser::parse_macro() {
  auto n = std::make_unique<Node>();
  n->k = SK::Macro;
  n->line = line_;
  QF_TRY(n->text, expect_name());
  QF_CHECK(expect_op("("));
  while (!skip_op(")")) {
    if (!n->targets.empty()) QF_CHECK(expect_op(","));
    if (skip_op(")")) break;
    QF_TRY(std::string p, expect_name());
    n->targets.push_back(std::move(p));
    ExprP def;
    if (skip_op("=")) {
      QF_TRY(def, parse_expression());
    }
    n->exprs.push_back(std::move(def));
  }
  QF_CHECK(expect_end());
  std::string end;
  QF_TRY(Body b, parse_body({"endmacro"}, &end));
  if (cur().k == TK::Name) ++tp_;  // {% endmacro name %}
  QF_CHECK(expect_end());
  n->bodies.push_back(std::move(b));
  return n;
}

Result<NodeP> Parser::parse_filter_block() {
  auto n = std::make_unique<Node>();
  n->k = SK::FilterBlock;
  n->line = line_;
  ExprP chain;
  do {
    auto f = node(EK::Filter);
    QF_TRY(f->name, expect_name());
    f->a.push_back(std::move(chain));
    if (is_op("(")) QF_CHECK(parse_call_args(*f));
    chain = std::move(f);
  } while (skip_op("|"));
  QF_CHECK(expect_end());
  std::string end;
  QF_TRY(Body b, parse_body({"endfilter"}, &end));
  QF_CHECK(expect_end());
  n->exprs.push_back(std::move(chain));
  n->bodies.push_back(std::move(b));
  return n;
}

Result<ExprP> Parser::parse_expression(bool with_cond) {
  DepthGuard g(depth_);
  QF_CHECK(enter());
  if (!with_cond) return parse_or();
  QF_TRY(ExprP e, parse_or());
  while (skip_name("if")) {
    auto c = node(EK::Cond);
    QF_TRY(ExprP test, parse_or());
    ExprP other;
    if (skip_name("else")) {
      QF_TRY(other, parse_expression(true));
    }
    c->a.push_back(std::move(e));
    c->a.push_back(std::move(test));
    c->a.push_back(std::move(other));
    e = std::move(c);
  }
  return e;
}

// `a, b` without parentheses is a tuple in {{ }}, set and for; a single item stays itself.
Result<ExprP> Parser::parse_tuple(bool with_cond, bool explicit_parens) {
  std::vector<ExprP> items;
  bool comma = false;
  while (true) {
    if (!items.empty()) {
      if (!skip_op(",")) break;
      comma = true;
    }
    if (cur().k == TK::End || is_op(")") || is_op("]") || is_op("}") ||
        (!with_cond && is_name("if")) || is_name("recursive"))
      break;
    QF_TRY(ExprP e, parse_expression(with_cond));
    items.push_back(std::move(e));
  }
  if (items.empty() && !explicit_parens)
    return err(cat("expected an expression, got '", describe(cur()), "'"));
  if (items.size() == 1 && !comma) return std::move(items[0]);
  auto t = node(EK::Tuple);
  t->a = std::move(items);
  return t;
}

Result<ExprP> Parser::parse_or() {
  QF_TRY(ExprP e, parse_and());
  while (skip_name("or")) {
    auto o = node(EK::Or);
    QF_TRY(ExprP r, parse_and());
    o->a.push_back(std::move(e));
    o->a.push_back(std::move(r));
    e = std::move(o);
  }
  return e;
}

Result<ExprP> Parser::parse_and() {
  QF_TRY(ExprP e, parse_not());
  while (skip_name("and")) {
    auto o = node(EK::And);
    QF_TRY(ExprP r, parse_not());
    o->a.push_back(std::move(e));
    o->a.push_back(std::move(r));
    e = std::move(o);
  }
  return e;
}

Result<ExprP> Parser::parse_not() {
  if (skip_name("not")) {
    DepthGuard g(depth_);
    QF_CHECK(enter());
    auto n = node(EK::Not);
    QF_TRY(ExprP e, parse_not());
    n->a.push_back(std::move(e));
    return n;
  }
  return parse_compare();
}

Result<ExprP> Parser::parse_compare() {
  QF_TRY(ExprP first, parse_binary(0));
  ExprP cmp;
  while (true) {
    std::string op;
    if (cur().k == TK::Op && (cur().s == "==" || cur().s == "!=" || cur().s == "<" ||
                              cur().s == ">" || cur().s == "<=" || cur().s == ">=")) {
      op = toks_[tp_++].s;
    } else if (skip_name("in")) {
      op = "in";
    } else if (is_name("not") && peek().k == TK::Name && peek().s == "in") {
      tp_ += 2;
      op = "not in";
    } else {
      break;
    }
    if (!cmp) {
      cmp = node(EK::Cmp);
      cmp->a.push_back(std::move(first));
    }
    QF_TRY(ExprP r, parse_binary(0));
    cmp->a.push_back(std::move(r));
    cmp->ops.push_back(op);
  }
  return cmp ? std::move(cmp) : std::move(first);
}

// Levels: 0: + -   1: ~   2: * / // %   3: **
Result<ExprP> Parser::parse_binary(int level) {
  static const std::vector<std::vector<std::string>> kOps = {
      {"+", "-"}, {"~"}, {"*", "/", "//", "%"}, {"**"}};
  if (level == 4) return parse_unary(true);
  QF_TRY(ExprP e, parse_binary(level + 1));
  while (cur().k == TK::Op) {
    const auto& ops = kOps[static_cast<size_t>(level)];
    if (std::find(ops.begin(), ops.end(), cur().s) == ops.end()) break;
    auto b = node(EK::Bin);
    b->name = toks_[tp_++].s;
    QF_TRY(ExprP r, parse_binary(level + 1));
    b->a.push_back(std::move(e));
    b->a.push_back(std::move(r));
    e = std::move(b);
  }
  return e;
}

Result<ExprP> Parser::parse_unary(bool with_filter) {
  DepthGuard g(depth_);
  QF_CHECK(enter());
  ExprP e;
  if (is_op("-") || is_op("+")) {
    e = node(is_op("-") ? EK::Neg : EK::Pos);
    ++tp_;
    QF_TRY(ExprP x, parse_unary(false));
    e->a.push_back(std::move(x));
  } else {
    QF_TRY(e, parse_primary());
  }
  QF_TRY(e, parse_postfix(std::move(e)));
  if (with_filter) return parse_filter_expr(std::move(e));
  return e;
}

Result<ExprP> Parser::parse_primary() {
  const Tok t = cur();
  if (t.k == TK::Name) {
    ++tp_;
    auto e = node(EK::Lit);
    if (t.s == "true" || t.s == "True")
      e->lit = Value::boolean(true);
    else if (t.s == "false" || t.s == "False")
      e->lit = Value::boolean(false);
    else if (t.s == "none" || t.s == "None")
      e->lit = Value::none();
    else {
      e->k = EK::Name;
      e->name = t.s;
    }
    return e;
  }
  if (t.k == TK::Str) {
    auto e = node(EK::Lit);
    std::string s;
    while (cur().k == TK::Str) s += toks_[tp_++].s;  // adjacent literals concatenate
    e->lit = Value::str(std::move(s));
    return e;
  }
  if (t.k == TK::Int || t.k == TK::Float) {
    ++tp_;
    auto e = node(EK::Lit);
    e->lit = t.k == TK::Int ? Value::integer(t.i) : Value::number(t.f);
    return e;
  }
  if (skip_op("(")) {
    QF_TRY(ExprP e, parse_tuple(true, true));
    QF_CHECK(expect_op(")"));
    return e;
  }
  if (skip_op("[")) {
    auto e = node(EK::List);
    while (!skip_op("]")) {
      if (!e->a.empty()) QF_CHECK(expect_op(","));
      if (skip_op("]")) break;
      QF_TRY(ExprP x, parse_expression());
      e->a.push_back(std::move(x));
    }
    return e;
  }
  if (skip_op("{")) {
    auto e = node(EK::Dict);
    while (!skip_op("}")) {
      if (!e->a.empty()) QF_CHECK(expect_op(","));
      if (skip_op("}")) break;
      QF_TRY(ExprP k, parse_expression());
      QF_CHECK(expect_op(":"));
      QF_TRY(ExprP v, parse_expression());
      e->a.push_back(std::move(k));
      e->a.push_back(std::move(v));
    }
    return e;
  }
  return err(cat("unexpected '", describe(t), "'"));
}

Result<ExprP> Parser::parse_postfix(ExprP e) {
  while (true) {
    if (skip_op(".")) {
      auto a = node(EK::Attr);
      if (cur().k == TK::Int) {  // x.0 is x[0]
        a->k = EK::Item;
        a->a.push_back(std::move(e));
        auto idx = node(EK::Lit);
        idx->lit = Value::integer(toks_[tp_++].i);
        a->a.push_back(std::move(idx));
      } else {
        QF_TRY(a->name, expect_name());
        a->a.push_back(std::move(e));
      }
      e = std::move(a);
    } else if (is_op("[")) {
      QF_TRY(e, parse_subscript(std::move(e)));
    } else if (is_op("(")) {
      auto c = node(EK::Call);
      c->a.push_back(std::move(e));
      QF_CHECK(parse_call_args(*c));
      e = std::move(c);
    } else {
      return e;
    }
  }
}

Result<ExprP> Parser::parse_subscript(ExprP e) {
  QF_CHECK(expect_op("["));
  ExprP parts[3];
  int n = 0;
  bool slice = false;
  while (!is_op("]")) {
    if (skip_op(":")) {
      if (++n > 2) return err("too many ':' in a slice");
      slice = true;
      continue;
    }
    if (parts[n]) return err(cat("unexpected '", describe(cur()), "' in subscript"));
    QF_TRY(parts[n], parse_expression());
  }
  ++tp_;
  if (!slice) {
    if (!parts[0]) return err("empty subscript");
    auto it = node(EK::Item);
    it->a.push_back(std::move(e));
    it->a.push_back(std::move(parts[0]));
    return it;
  }
  auto s = node(EK::Slice);
  s->a.push_back(std::move(e));
  for (auto& p : parts) s->a.push_back(std::move(p));
  return s;
}

Status Parser::parse_call_args(Expr& e) {
  QF_CHECK(expect_op("("));
  bool first = true;
  while (!skip_op(")")) {
    if (!first) QF_CHECK(expect_op(","));
    first = false;
    if (skip_op(")")) break;
    if (is_op("*") || is_op("**")) return err("*args and **kwargs in calls are not supported");
    if (cur().k == TK::Name && peek().k == TK::Op && peek().s == "=") {
      std::string k = toks_[tp_].s;
      tp_ += 2;
      QF_TRY(ExprP v, parse_expression());
      e.kw.emplace_back(std::move(k), std::move(v));
    } else {
      if (!e.kw.empty()) return err("positional argument after a keyword argument");
      QF_TRY(ExprP v, parse_expression());
      e.a.push_back(std::move(v));
    }
  }
  return {};
}

Result<ExprP> Parser::parse_filter_expr(ExprP e) {
  while (true) {
    if (skip_op("|")) {
      auto f = node(EK::Filter);
      QF_TRY(f->name, expect_name());
      f->a.push_back(std::move(e));
      if (is_op("(")) QF_CHECK(parse_call_args(*f));
      e = std::move(f);
    } else if (skip_name("is")) {
      auto t = node(EK::Test);
      t->negated = skip_name("not");
      QF_TRY(t->name, expect_name());
      t->a.push_back(std::move(e));
      if (is_op("(")) {
        QF_CHECK(parse_call_args(*t));
      } else if ((cur().k == TK::Name || cur().k == TK::Str || cur().k == TK::Int ||
                  cur().k == TK::Float || is_op("(") || is_op("[") || is_op("{")) &&
                 !is_name("else") && !is_name("or") && !is_name("and")) {
        if (is_name("is")) return err("cannot chain tests with 'is'");
        QF_TRY(ExprP arg, parse_primary());
        QF_TRY(arg, parse_postfix(std::move(arg)));
        t->a.push_back(std::move(arg));
      }
      e = std::move(t);
    } else if (is_op("(")) {
      auto c = node(EK::Call);
      c->a.push_back(std::move(e));
      QF_CHECK(parse_call_args(*c));
      e = std::move(c);
    } else {
      return e;
    }
  }
}

}  // namespace

Result<Body> parse_template(std::string_view source, int max_depth) {
  // Jinja normalises every newline to "\n" and drops one trailing newline
  // (keep_trailing_newline=False).
  std::string src;
  src.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      src += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      src += source[i];
    }
  }
  if (!src.empty() && src.back() == '\n') src.pop_back();
  QF_TRY(std::vector<Segment> segs, Segmenter(src).run());
  return Parser(std::move(segs), max_depth).parse_template();
}

}  // namespace qforge::tmpl
