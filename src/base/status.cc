// Status implementation.
#include "base/status.h"

namespace vigil {

std::string_view errc_name(Errc code) {
  switch (code) {
    case Errc::kOk: return "OK";
    case Errc::kInvalidArgument: return "invalid argument";
    case Errc::kNotFound: return "not found";
    case Errc::kAlreadyExists: return "already exists";
    case Errc::kCorruption: return "corruption";
    case Errc::kIoError: return "I/O error";
    case Errc::kTimeout: return "timeout";
    case Errc::kUnavailable: return "unavailable";
    case Errc::kNotLeader: return "not leader";
    case Errc::kAborted: return "aborted";
    case Errc::kResourceExhausted: return "resource exhausted";
    case Errc::kPermissionDenied: return "permission denied";
    case Errc::kOutOfRange: return "out of range";
    case Errc::kInternal: return "internal error";
  }
  return "unknown";
}

Status::Status(Errc code, std::string message) {
  if (code != Errc::kOk) {
    rep_ = std::make_shared<const Rep>(Rep{code, std::move(message)});
  }
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->message : kEmpty;
}

std::string Status::to_string() const {
  if (ok()) return "OK";
  std::string out(errc_name(rep_->code));
  if (!rep_->message.empty()) {
    out += ": ";
    out += rep_->message;
  }
  return out;
}

Status Status::with_context(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += rep_->message;
  return Status(rep_->code, std::move(msg));
}

}  // namespace vigil
