#include "worker/preparer.h"

#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "worker/worker.h"

namespace kiln::worker {

namespace {

// The runtime's error type and document, in the terms of LastUpdateStatusReasonCode.
Status as_update_failure(const Status& s) {
  std::string code = "InternalError";
  if (s.type() == "Runtime.InitError" || s.type() == "Runtime.ExitError") code = "FunctionError.RuntimeInitError";
  if (s.type() == "Runtime.InitTimeout") code = "FunctionError.InitTimeout";
  if (s.type() == "Runtime.InvalidEntrypoint") code = "FunctionError.InvalidEntryPoint";
  // The message may be the runtime's own error document: any bytes, any depth. The
  // reason is stored and shown, so it is valid UTF-8 and never re-dumps deep input.
  std::string reason = s.message();
  auto doc = json_text::parse_bounded(s.message());
  if (doc.is_object() && doc.contains("errorMessage")) {
    const auto& type = doc["errorType"];
    const auto& message = doc["errorMessage"];
    reason = (type.is_string() ? type.get<std::string>() : std::string("Runtime.Unknown")) + ": " +
             (message.is_string() ? message.get<std::string>() : json_text::dump(message));
  }
  reason = json_text::valid_utf8(reason);
  return {400, code, reason};
}

}  // namespace

registry::Preparer make_preparer(placement::PlacementService& placement, assignment::AssignmentService& assignment) {
  return [&placement, &assignment](const registry::FunctionVersionPtr& f, std::function<void(Status)> done) {
    auto* w = dynamic_cast<Worker*>(placement.pick());
    if (!w) return done({400, "InsufficientCapacity", "No worker has room for a new execution environment."});
    if (!make_room(*w, assignment, f->sandbox_key(), f->memory_mb)) {
      return done({400, "InsufficientCapacity", "The host has no memory left for a new execution environment."});
    }
    w->create(
        f, [&assignment](const std::shared_ptr<Environment>& env) { assignment.remove(env); },
        [&assignment, done](StatusOr<std::shared_ptr<Environment>> env) {
          if (!env.ok() && env.status().http_status() == 429) {
            return done({400, "InsufficientCapacity", env.status().message()});
          }
          if (!env.ok()) return done(as_update_failure(env.status()));
          auto e = *env;
          assignment.add_warming(e);  // an invoke of a new function may take it before it is ready
          e->await_init([&assignment, e, done](Status s) {
            // Idle if no invoke took it; a failed one is retired (or, if an invoke took
            // it, that invoke reports the init error and releases it).
            assignment.finish_warming(e, s.ok());
            done(s.ok() ? s : as_update_failure(s));
          });
        });
  };
}

}  // namespace kiln::worker
