#include "async/scheduler.h"

#include <algorithm>
#include <cassert>

namespace kiln::async {

Scheduler::Scheduler(size_t max_total, size_t max_per_function, LaneLimit lane_limit)
    : max_total_(max_total), max_per_function_(max_per_function), lane_limit_(std::move(lane_limit)) {
  assert(max_total >= 1 && max_per_function >= 1 && "scheduler needs room for one event");
}

size_t Scheduler::lane_cap(const std::string& key) const {
  if (!lane_limit_) return max_per_function_;
  auto limit = lane_limit_(key);
  if (!limit) return max_per_function_;
  return static_cast<size_t>(std::clamp<uint64_t>(*limit, 1, max_per_function_));
}

void Scheduler::add(int64_t id, const std::string& function_key, int64_t due_ms) {
  Lane& lane = lanes_[function_key];
  if (lane.queued.empty()) turn_.push_back(function_key);
  lane.queued.push({due_ms, id});
  ++queued_;
}

std::optional<int64_t> Scheduler::take(int64_t now_ms) {
  if (running_.size() >= max_total_) return std::nullopt;
  for (size_t n = turn_.size(); n > 0; --n) {
    std::string key = std::move(turn_.front());
    turn_.pop_front();
    Lane& lane = lanes_[key];
    if (lane.running >= lane_cap(key) || lane.queued.top().due_ms > now_ms) {
      turn_.push_back(std::move(key));
      continue;
    }
    int64_t id = lane.queued.top().id;
    lane.queued.pop();
    --queued_;
    ++lane.running;
    running_[id] = key;
    if (!lane.queued.empty()) turn_.push_back(std::move(key));  // its next turn comes after the others
    return id;
  }
  return std::nullopt;
}

void Scheduler::finished(int64_t id) {
  auto it = running_.find(id);
  if (it == running_.end()) return;
  auto lane = lanes_.find(it->second);
  running_.erase(it);
  if (lane == lanes_.end()) return;
  --lane->second.running;
  if (lane->second.running == 0 && lane->second.queued.empty()) lanes_.erase(lane);
}

std::optional<int64_t> Scheduler::next_due_ms() const {
  if (running_.size() >= max_total_) return std::nullopt;
  std::optional<int64_t> best;
  for (const auto& key : turn_) {
    const Lane& lane = lanes_.at(key);
    if (lane.running >= lane_cap(key)) continue;
    int64_t due = lane.queued.top().due_ms;
    if (!best || due < *best) best = due;
  }
  return best;
}

}  // namespace kiln::async
