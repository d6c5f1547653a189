// A subset of the CloudWatch Logs API (JSON 1.1, X-Amz-Target: Logs_20140328.<Op>) over
// the function logs Kiln keeps: DescribeLogGroups, DescribeLogStreams, GetLogEvents,
// FilterLogEvents, DeleteLogGroup, PutRetentionPolicy, DeleteRetentionPolicy. Log
// groups are /aws/lambda/<function> of the caller's account only. `aws logs tail
// --follow`, `aws logs filter-log-events` and boto3's paginators work unchanged.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
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
  // `threads` serve queries (attach); 0 = 2.
  LogsService(worker::LogStore& store, std::string region, unsigned threads = 2);
  // Waits for the queries in progress.
  ~LogsService();

  // Runs one operation for `account`. Blocking (reads files); thread-safe. Errors carry
  // the CloudWatch Logs error type (InvalidParameterException, ResourceNotFoundException,
  // UnknownOperationException) and HTTP 400.
  StatusOr<nlohmann::json> call(std::string_view operation, const nlohmann::json& input, const std::string& account);

  // Serves the API through `frontend` as service "logs"; the file work runs on the
  // service's own pool, never on the frontend's control pool, so that log queries do
  // not delay control operations. The service must outlive the frontend's serving.
  void attach(api::Frontend& frontend);
  // Runs blocking work on the logs pool (attach's handler does).
  void post(std::function<void()> work);
  // Bytes of log files read by queries so far (tests, metrics).
  uint64_t bytes_read() const { return bytes_read_.load(std::memory_order_relaxed); }

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
  std::atomic<uint64_t> bytes_read_{0};
  std::unique_ptr<boost::asio::thread_pool> pool_;
};

// Errors of the Logs API model.
inline Status InvalidParameter(std::string m) { return {400, "InvalidParameterException", std::move(m)}; }
inline Status LogResourceNotFound(std::string m) { return {400, "ResourceNotFoundException", std::move(m)}; }

}  // namespace kiln::logs
