// Errors as values. GCC 12 (Debian 12) has no std::expected, so this is the small subset we use.
// An Error carries a closed error code (the protocol's), errno when the kernel said no, and a
// message that grows context as it travels up: "apply f1: netns pod-a: attach eth0: ...".
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace fl {

// The closed list of error codes. The protocol sends the string form; never reuse a name.
enum class Errc {
  invalid_request,    // malformed JSON, wrong type, missing field
  unknown_op,
  invalid_argument,   // a value out of range or unparsable
  unsupported_version,
  permission_denied,
  not_found,
  already_exists,
  resource_exhausted,  // slots, side bits, CIDR capacity
  kernel_unsupported,  // the kernel lacks a feature this fault needs
  kernel_error,        // the kernel refused a change (errno in the message)
  target_unavailable,  // netns/pid/interface not found
  internal,
  timeout,             // a wait ended before what it waited for
};

const char* errc_name(Errc c);

struct Error {
  Errc code = Errc::internal;
  std::string message;
  int sys_errno = 0;
  // The request field this error blames, as a path in the terms of whoever set it ("match.sport"
  // from validate, "fault.match.sport" from the protocol decoder); empty when no one field is at
  // fault. Data, so that faultctl can name the option without reading the message. Set with at().
  std::string field;

  static Error sys(Errc code, std::string what, int err) {
    return Error{code, what + ": " + std::strerror(err), err};
  }
  // Prefix context, keeping the code and the field: wrap("attach eth0") -> "attach eth0: <message>".
  Error wrap(const std::string& ctx) const& { return Error{code, ctx + ": " + message, sys_errno, field}; }
  Error wrap(const std::string& ctx) && {
    message = ctx + ": " + message;
    return std::move(*this);
  }
  // Blame a field: the message gets its path as context, "path: <message>", and the field becomes
  // path (or path.<field> when an inner step already blamed a member of it).
  Error at(const std::string& path) && {
    message = path + ": " + message;
    field = field.empty() ? path : path + "." + field;
    return std::move(*this);
  }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}
  Result(Error e) : v_(std::move(e)) {}
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
  Error&& take_error() { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : err_(std::move(e)), ok_(false) {}
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return err_; }
  Error&& take_error() { return std::move(err_); }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Error make_error(Errc c, std::string msg) { return Error{c, std::move(msg), 0, {}}; }
// An error about one field: message "field: msg", field set.
inline Error field_error(Errc c, const std::string& field, std::string msg) {
  return make_error(c, std::move(msg)).at(field);
}

}  // namespace fl

// Propagate an error with context: FL_TRY(st, "attach eth0");
#define FL_TRY_CTX(expr, ctx)                        \
  do {                                               \
    auto&& fl_try_r_ = (expr);                       \
    if (!fl_try_r_.ok()) return fl_try_r_.take_error().wrap(ctx); \
  } while (0)
// Propagate an error blaming a field: FL_TRY_AT(check_name(n), "sides[1].name");
#define FL_TRY_AT(expr, path)                        \
  do {                                               \
    auto&& fl_try_r_ = (expr);                       \
    if (!fl_try_r_.ok()) return fl_try_r_.take_error().at(path); \
  } while (0)
#define FL_TRY(expr)                                 \
  do {                                               \
    auto&& fl_try_r_ = (expr);                       \
    if (!fl_try_r_.ok()) return fl_try_r_.take_error(); \
  } while (0)
