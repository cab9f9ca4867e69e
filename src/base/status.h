// Status and Result<T>: the one error convention of Vigil (see STYLE.md "Errors").
#pragma once

#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace vigil {

// Error codes shared by every module. Modules add detail in the message, never new
// conventions: a caller branches on the code and shows the message to a person.
enum class Errc : int {
  kOk = 0,
  kInvalidArgument,  // bad input from a caller or a file (config, request, frame)
  kNotFound,
  kAlreadyExists,
  kCorruption,  // stored data fails its checksum or structure check
  kIoError,     // an OS call failed (errno in the message)
  kTimeout,
  kUnavailable,        // peer down, no leader, not enough voters
  kNotLeader,          // this node cannot serve the request; retry at the leader
  kAborted,            // the operation was superseded (term changed, node stopped)
  kResourceExhausted,  // a limit was hit (queue, size, in-flight bytes)
  kPermissionDenied,
  kOutOfRange,
  kInternal,  // a broken invariant that was survived
};

std::string_view errc_name(Errc code);

// Status is cheap when OK (one null pointer) and carries a code and a message otherwise.
// Thread-compatible value type.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Errc code, std::string message);

  static Status ok_status() { return Status(); }

  bool ok() const { return rep_ == nullptr; }
  Errc code() const { return rep_ ? rep_->code : Errc::kOk; }
  const std::string& message() const;
  // "code: message", or "OK".
  std::string to_string() const;

  // Returns a copy with "context: " in front of the message; OK stays OK.
  Status with_context(std::string_view context) const;

 private:
  struct Rep {
    Errc code;
    std::string message;
  };
  std::shared_ptr<const Rep> rep_;
};

template <class T>
using Result = std::expected<T, Status>;

// `return err(Errc::kCorruption, "...")` from a function returning Result<T> or Status.
struct ErrorValue {
  Status status;
  template <class T>
  operator Result<T>() const {  // NOLINT(google-explicit-constructor)
    return std::unexpected(status);
  }
  operator Status() const { return status; }  // NOLINT(google-explicit-constructor)
};
inline ErrorValue err(Errc code, std::string message) {
  return ErrorValue{Status(code, std::move(message))};
}

}  // namespace vigil

#define VIGIL_CONCAT_INNER(a, b) a##b
#define VIGIL_CONCAT(a, b) VIGIL_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` (a Status) is not OK.
#define RETURN_IF_ERROR(expr)                                           \
  do {                                                                  \
    ::vigil::Status vigil_status_ = (expr);                             \
    if (!vigil_status_.ok()) return ::vigil::ErrorValue{vigil_status_}; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, f())`: unwraps a Result or returns its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(VIGIL_CONCAT(vigil_res_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)        \
  auto tmp = (expr);                                 \
  if (!tmp) return ::vigil::ErrorValue{tmp.error()}; \
  lhs = std::move(*tmp)
