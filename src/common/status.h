// Kiln's one error model: a Status carries the Lambda error type it maps to at the
// API edge and the HTTP status Lambda answers with, so that any layer can fail with
// the error a Lambda client expects without knowing about HTTP.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace kiln {

class Status {
 public:
  Status() = default;  // OK
  Status(int http_status, std::string type, std::string message)
      : http_status_(http_status), type_(std::move(type)), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return http_status_ == 0; }
  // HTTP status Lambda answers with (0 when ok).
  int http_status() const { return http_status_; }
  // Lambda error type, e.g. "ResourceNotFoundException".
  const std::string& type() const { return type_; }
  const std::string& message() const { return message_; }

 private:
  int http_status_ = 0;
  std::string type_;
  std::string message_;
};

// The errors of the Lambda API model (botocore lambda 2015-03-31), by name.
inline Status InvalidParameterValue(std::string m) { return {400, "InvalidParameterValueException", std::move(m)}; }
inline Status InvalidRequestContent(std::string m) { return {400, "InvalidRequestContentException", std::move(m)}; }
inline Status ResourceNotFound(std::string m) { return {404, "ResourceNotFoundException", std::move(m)}; }
inline Status ResourceConflict(std::string m) { return {409, "ResourceConflictException", std::move(m)}; }
inline Status PreconditionFailed(std::string m) { return {412, "PreconditionFailedException", std::move(m)}; }
inline Status RequestTooLarge(std::string m) { return {413, "RequestTooLargeException", std::move(m)}; }
inline Status TooManyRequests(std::string m) { return {429, "TooManyRequestsException", std::move(m)}; }
inline Status ServiceError(std::string m) { return {500, "ServiceException", std::move(m)}; }
inline Status CodeStorageExceeded(std::string m) { return {400, "CodeStorageExceededException", std::move(m)}; }

// A value or the Status that explains why there is none.
template <typename T>
class StatusOr {
 public:
  StatusOr(T value) : v_(std::move(value)) {}            // NOLINT: implicit by design
  StatusOr(Status status) : v_(std::move(status)) {      // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "StatusOr needs a value or an error");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace kiln
