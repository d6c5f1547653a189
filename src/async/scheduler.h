// Which queued event runs next: round-robin across functions, a bounded number of
// events in flight per function (never more than its reserved concurrency) and in total, each event no earlier than its due time.
// In memory only (the store keeps what must survive); not thread-safe: the owner
// guards it with its own lock.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

namespace kiln::async {

class Scheduler {
 public:
  // A function's own concurrency (its reserved concurrency), or nullopt when it has
  // none. Called under the owner's lock on every take: must be cheap and not block.
  using LaneLimit = std::function<std::optional<uint64_t>(const std::string& function_key)>;

  // Requires max_total >= 1 and max_per_function >= 1. A function with a lane limit runs
  // at most that many events at once (at least one: a limit of 0 still lets one event
  // through at a time, to be throttled and expire by age as Lambda's do).
  Scheduler(size_t max_total, size_t max_per_function, LaneLimit lane_limit = nullptr);

  // Queues event `id` of `function_key` to run at or after due_ms. An id is queued or
  // running at most once at a time.
  void add(int64_t id, const std::string& function_key, int64_t due_ms);
  // The next event due at now_ms whose function and the total have room, taking turns
  // among functions; it counts as running until finished(id). nullopt when none.
  std::optional<int64_t> take(int64_t now_ms);
  // Releases the slot of a running event.
  void finished(int64_t id);
  // Earliest due time among queued events of functions with room (nullopt: none, or
  // every queued event waits for a slot rather than for time).
  std::optional<int64_t> next_due_ms() const;

  size_t queued() const { return queued_; }
  size_t running() const { return running_.size(); }

 private:
  struct Entry {
    int64_t due_ms;
    int64_t id;
    bool operator>(const Entry& o) const { return due_ms != o.due_ms ? due_ms > o.due_ms : id > o.id; }
  };
  struct Lane {  // one function's events
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> queued;
    size_t running = 0;
  };

  size_t lane_cap(const std::string& key) const;

  size_t max_total_;
  size_t max_per_function_;
  LaneLimit lane_limit_;
  std::map<std::string, Lane> lanes_;
  std::deque<std::string> turn_;  // functions with queued events, in round-robin order
  std::unordered_map<int64_t, std::string> running_;  // id -> function key
  size_t queued_ = 0;
};

}  // namespace kiln::async
