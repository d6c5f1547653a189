// Initializations ahead of traffic (a new or updated configuration's first sandbox),
// bounded and in order: at most `max_running` run at once, the rest wait in FIFO order.
// One that finds no host memory waits for room instead of failing: it goes back to the
// head of the queue and is retried when an initialization ends or room_changed() is
// called. A job that has waited longer than `max_wait` in total is given up (its
// give_up runs) so that a host that stays full never keeps a function Pending forever.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>

namespace kiln::worker {

class InitQueue {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // How a started job ends. Call exactly one of them, exactly once, on any thread,
  // synchronously from start or later.
  struct Outcome {
    std::function<void()> finished;  // done, whatever the result: the slot frees
    std::function<void()> no_room;   // nothing started: wait for room at the head
  };
  struct Job {
    std::function<void(Outcome)> start;
    std::function<void()> give_up;  // waited too long; runs instead of start, once
  };

  // Requires max_running >= 1. `clock` is injected so that tests control waiting.
  InitQueue(size_t max_running, std::chrono::steady_clock::duration max_wait,
            Clock clock = [] { return std::chrono::steady_clock::now(); });
  InitQueue(const InitQueue&) = delete;
  InitQueue& operator=(const InitQueue&) = delete;

  // Queues a job at the tail; it may start at once, on this thread.
  void submit(Job job);
  // Room may have appeared (a sandbox went idle or away): retries a head that waits for
  // room. Then gives up every queued job that has waited longer than max_wait. Call it
  // periodically (the server's reaper tick does).
  void room_changed();

  size_t running() const;
  size_t waiting() const;

 private:
  struct Queued {
    Job job;
    std::chrono::steady_clock::time_point since;
  };
  void pump();
  void ended(std::optional<Queued> back_to_head);

  const size_t max_running_;
  const std::chrono::steady_clock::duration max_wait_;
  Clock clock_;
  mutable std::mutex mu_;
  std::deque<Queued> queue_;  // guarded by mu_
  size_t running_ = 0;        // guarded by mu_
  bool head_needs_room_ = false;  // guarded by mu_: retried on the next end or room_changed
  bool pumping_ = false;      // guarded by mu_: one thread starts jobs at a time
  bool again_ = false;        // guarded by mu_: something changed while pumping
};

}  // namespace kiln::worker
