#include "worker/init_queue.h"

#include <cassert>
#include <memory>
#include <vector>

namespace kiln::worker {

InitQueue::InitQueue(size_t max_running, std::chrono::steady_clock::duration max_wait, Clock clock)
    : max_running_(max_running), max_wait_(max_wait), clock_(std::move(clock)) {
  assert(max_running >= 1 && "an init queue needs room for one initialization");
}

void InitQueue::submit(Job job) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back({std::move(job), clock_()});
  }
  pump();
}

void InitQueue::room_changed() {
  std::vector<Job> expired;
  {
    std::lock_guard lock(mu_);
    head_needs_room_ = false;
    const auto now = clock_();
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (now - it->since < max_wait_) {
        ++it;
        continue;
      }
      expired.push_back(std::move(it->job));
      it = queue_.erase(it);
    }
  }
  for (auto& job : expired) job.give_up();
  pump();
}

size_t InitQueue::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

size_t InitQueue::waiting() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void InitQueue::ended(std::optional<Queued> back_to_head) {
  {
    std::lock_guard lock(mu_);
    --running_;
    // An end frees a slot, and an initialization that ended left a sandbox idle (or
    // none): either way the head may find room now. A job that found none waits at
    // the head until the next end or room_changed().
    head_needs_room_ = back_to_head.has_value();
    if (back_to_head) queue_.push_front(std::move(*back_to_head));
  }
  pump();
}

// Starts jobs while there are slots. Jobs start outside the lock, and may end (and so
// call pump again) before start returns: the thread already pumping picks that up
// instead of recursing.
void InitQueue::pump() {
  {
    std::lock_guard lock(mu_);
    if (pumping_) {
      again_ = true;
      return;
    }
    pumping_ = true;
  }
  for (;;) {
    Queued next;
    {
      std::lock_guard lock(mu_);
      if (running_ >= max_running_ || queue_.empty() || head_needs_room_) {
        if (!again_) {
          pumping_ = false;
          return;
        }
        again_ = false;
        continue;
      }
      next = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    auto once = std::make_shared<std::once_flag>();
    auto job = std::make_shared<Queued>(next);
    Outcome outcome{
        [this, once] { std::call_once(*once, [this] { ended(std::nullopt); }); },
        [this, once, job] { std::call_once(*once, [this, job] { ended(std::move(*job)); }); }};
    next.job.start(std::move(outcome));
  }
}

}  // namespace kiln::worker
