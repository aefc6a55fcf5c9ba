// Result<T>: value or Error, returned by every function that parses untrusted bytes or does I/O.
// Exceptions are used only at the CLI boundary (app/), which turns an Error into a one-line
// message and a non-zero exit code.
#pragma once

#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace qforge {

// Concatenates any streamable values into a string: cat("tensor ", name, " has ", n, " dims").
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

// A one-line, user-facing error message. By convention it starts with the thing it is about
// (a file path, "file: tensor 'x'", a command), e.g. "model.gguf: tensor 'blk.0.attn_q.weight':
// data past end of file".
struct Error {
  std::string message;
  const std::string& what() const { return message; }
};

template <class... Args>
Error make_error(const Args&... args) {
  return Error{cat(args...)};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT implicit
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT implicit

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }
  // Prefixes the error message with context ("while reading X: ").
  Result&& context(std::string_view prefix) && {
    if (!ok()) std::get<1>(v_).message = std::string(prefix) + std::get<1>(v_).message;
    return std::move(*this);
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT implicit
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }
  Result&& context(std::string_view prefix) && {
    if (!ok_) error_.message = std::string(prefix) + error_.message;
    return std::move(*this);
  }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;
inline Status ok_status() { return Status(); }

// Thrown only at the CLI boundary to carry an Error out of a command.
struct CliError {
  std::string message;
  int exit_code = 1;
};

}  // namespace qforge

// QF_TRY(var, expr): evaluates a Result expression; on error returns the Error from the caller.
#define QF_CONCAT_INNER(a, b) a##b
#define QF_CONCAT(a, b) QF_CONCAT_INNER(a, b)
#define QF_TRY(var, expr)                                    \
  auto QF_CONCAT(qf_res_, __LINE__) = (expr);                \
  if (!QF_CONCAT(qf_res_, __LINE__).ok())                    \
    return QF_CONCAT(qf_res_, __LINE__).error();             \
  var = std::move(QF_CONCAT(qf_res_, __LINE__)).value()
// QF_CHECK(status_expr): returns the Error of a failing Status (or Result).
#define QF_CHECK(expr)                                       \
  do {                                                       \
    auto qf_st_ = (expr);                                    \
    if (!qf_st_.ok()) return qf_st_.error();                 \
  } while (0)
