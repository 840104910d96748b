// Peers measured in the same binary: a mutex + condition-variable bounded queue (what a
// straightforward implementation looks like) and fixed-size message types for Boost.
#pragma once

#include <array>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <deque>
#include <mutex>
#include <vector>

namespace xchan::bench {

/// A message of N bytes for the fixed-size Boost queues.
template <std::size_t N>
struct Msg {
  std::array<std::byte, N> bytes;
};

/// Bounded queue of byte messages guarded by one mutex and two condition variables.
class MutexQueue {
 public:
  explicit MutexQueue(std::size_t capacity) : capacity_(capacity) {}

  void push(const std::byte* data, std::size_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    not_full_.wait(lock, [&] { return items_.size() < capacity_; });
    items_.emplace_back(data, data + n);
    lock.unlock();
    not_empty_.notify_one();
  }

  std::size_t pop(std::byte* out) {
    std::unique_lock<std::mutex> lock(mutex_);
    not_empty_.wait(lock, [&] { return !items_.empty(); });
    std::vector<std::byte> item = std::move(items_.front());
    items_.pop_front();
    lock.unlock();
    not_full_.notify_one();
    std::memcpy(out, item.data(), item.size());
    return item.size();
  }

 private:
  std::mutex mutex_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<std::vector<std::byte>> items_;
  std::size_t capacity_;
};

}  // namespace xchan::bench
