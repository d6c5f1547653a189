// The seam between the frontend and the asynchronous invocation queue: the frontend
// hands over an event; the sink answers once the event is durable (or refused).
#pragma once

#include <functional>
#include <string>

#include "common/status.h"

namespace kiln::api {

struct AsyncEvent {
  std::string request_id;    // identifies the event (x-amzn-RequestId of the 202)
  std::string account_id;
  std::string function_arn;  // unqualified ARN
  std::string qualifier;     // "$LATEST", a version or an alias as invoked ("" = $LATEST)
  std::string payload;
  int64_t received_epoch_ms = 0;
};

class AsyncSink {
 public:
  virtual ~AsyncSink() = default;
  // Makes the event durable (committed and synced), then calls done(Ok). On a store
  // error or a full disk, calls done(error) and keeps nothing. `done` runs on any
  // thread; must not block the caller.
  virtual void enqueue(AsyncEvent event, std::function<void(Status)> done) = 0;
};

}  // namespace kiln::api
