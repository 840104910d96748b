// The parking and waking halves of EventCount (the syscall side, out of line).
#include "xchan/channel/event_count.hpp"

#include "xchan/channel/futex.hpp"

namespace xchan {

Status EventCount::wait(Key key, Deadline deadline) noexcept {
  Status result = Status::kOk;
  // Loop only over spurious futex returns: the epoch still equals the key.
  while (core::atomic_load(word_->epoch, std::memory_order_acquire) == key) {
    const platform::FutexResult r = platform::futex_wait(&word_->epoch, key, deadline);
    if (r == platform::FutexResult::kTimeout) {
      result = Status::kTimeout;
      break;
    }
    if (r == platform::FutexResult::kInterrupted) {
      result = Status::kInterrupted;
      break;
    }
  }
  core::atomic_fetch_sub(word_->waiters, 1U, std::memory_order_relaxed);
  return result;
}

void EventCount::wake(int count) noexcept {
  // Release: pairs with wait()'s acquire load of the epoch.
  core::atomic_fetch_add(word_->epoch, 1U, std::memory_order_release);
  platform::futex_wake(&word_->epoch, count);
}

}  // namespace xchan
