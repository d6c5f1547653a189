// A subset of the CloudWatch Logs API (JSON 1.1, X-Amz-Target: Logs_20140328.<Op>) over
// the function logs Kiln keeps: DescribeLogGroups, DescribeLogStreams, GetLogEvents,
// FilterLogEvents, DeleteLogGroup, PutRetentionPolicy, DeleteRetentionPolicy. Log
// groups are /aws/lambda/<function> of the caller's account only. `aws logs tail
// --follow`, `aws logs filter-log-events` and boto3's paginators work unchanged.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "worker/log_store.h"

namespace kiln::api {
class Frontend;
}

namespace kiln::logs {

class LogsService {
 public:
  // `store` must outlive the service.
  LogsService(worker::LogStore& store, std::string region) : store_(store), region_(std::move(region)) {}

  // Runs one operation for `account`. Blocking (reads files); thread-safe. Errors carry
  // the CloudWatch Logs error type (InvalidParameterException, ResourceNotFoundException,
  // UnknownOperationException) and HTTP 400.
  StatusOr<nlohmann::json> call(std::string_view operation, const nlohmann::json& input, const std::string& account);

  // Serves the API through `frontend` as service "logs"; the file work runs on the
  // frontend's control pool. The service must outlive the frontend's serving.
  void attach(api::Frontend& frontend);

 private:
  StatusOr<nlohmann::json> describe_log_groups(const nlohmann::json& in, const std::string& account);
  StatusOr<nlohmann::json> describe_log_streams(const nlohmann::json& in, const std::string& account);
  StatusOr<nlohmann::json> get_log_events(const nlohmann::json& in, const std::string& account);
  StatusOr<nlohmann::json> filter_log_events(const nlohmann::json& in, const std::string& account);
  StatusOr<nlohmann::json> delete_log_group(const nlohmann::json& in, const std::string& account);
  StatusOr<nlohmann::json> put_retention_policy(const nlohmann::json& in, const std::string& account, bool remove);
  // The function of the group named by logGroupName or logGroupIdentifier.
  StatusOr<std::string> group_function(const nlohmann::json& in, const std::string& account) const;
  nlohmann::json group_json(const std::string& account, const worker::LogGroupInfo& g) const;

  worker::LogStore& store_;
  const std::string region_;
};

// Errors of the Logs API model.
inline Status InvalidParameter(std::string m) { return {400, "InvalidParameterException", std::move(m)}; }
inline Status LogResourceNotFound(std::string m) { return {400, "ResourceNotFoundException", std::move(m)}; }

}  // namespace kiln::logs
