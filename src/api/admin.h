// Kiln's admin API: operations the AWS tools do not cover (status, sandboxes, dead
// letters, access keys), for the `kiln` operator CLI. Served on the same endpoint as
// the Lambda API, signed with SigV4 for service "kiln" with a root account's key:
//   POST /admin/<Action>   body: JSON arguments   →   200 JSON result, or a Lambda-style
//   error (x-amzn-ErrorType + {"message"}).
// Components register their actions before serving.
#pragma once

#include <functional>
#include <map>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "api/sigv4.h"
#include "common/status.h"

namespace kiln::api {

class Frontend;

class AdminApi {
 public:
  // Runs on the frontend's control pool; may block briefly.
  using Action = std::function<StatusOr<nlohmann::json>(const nlohmann::json& args, const Principal& caller)>;

  // Registers POST /admin/<name>. Call before serving.
  void add_action(const std::string& name, Action action);
  // Serves the admin API through `frontend` (service "kiln"). `frontend` must outlive
  // nothing here; the AdminApi must outlive the frontend's serving.
  void attach(Frontend& frontend, std::string root_account);

  // Runs an action by name (tests; the HTTP path calls this).
  StatusOr<nlohmann::json> run(const std::string& name, const nlohmann::json& args, const Principal& caller) const;

 private:
  std::map<std::string, Action> actions_;  // written before serving only
  std::string root_account_;
};

}  // namespace kiln::api
