// A test-and-test-and-set lock over one 32-bit word that may live in shared memory.
// It serializes the producers (or the consumers) of one ring; critical sections are a
// bounded memcpy, so spinning is cheaper than parking. After a short spin it yields the
// CPU so that a preempted holder can run (this machine class has 2 cores).
#pragma once

#include <cstdint>

#include "xchan/core/atomic_field.hpp"

namespace xchan::core {

/// The lock's state word: 0 free, 1 held. Lives inside a shared header.
struct SpinLockWord {
  std::uint32_t state;
};

/// A view over a SpinLockWord; satisfies Lockable (usable with std::lock_guard).
/// Any thread may call any member. lock() is blocking but never parks in the kernel.
class SpinLock {
 public:
  explicit SpinLock(SpinLockWord& word) noexcept : word_(&word) {}

  /// Acquires the lock; returns when held. Not reentrant.
  void lock() noexcept {
    // SYNC POINT lock-acquire (acquire): pairs with unlock()'s release, so the previous
    // holder's ring writes (tail, cached copies) are visible to the new holder.
    if (atomic_exchange(word_->state, 1U, std::memory_order_acquire) == 0U) return;
    lock_slow();
  }

  /// Acquires the lock if free; never waits.
  [[nodiscard]] bool try_lock() noexcept {
    return atomic_load(word_->state, std::memory_order_relaxed) == 0U &&
           atomic_exchange(word_->state, 1U, std::memory_order_acquire) == 0U;
  }

  /// Releases the lock. Only the holder may call it.
  void unlock() noexcept {
    // SYNC POINT lock-release (release): pairs with lock()'s acquire.
    atomic_store(word_->state, 0U, std::memory_order_release);
  }

 private:
  void lock_slow() noexcept;

  SpinLockWord* word_;
};

}  // namespace xchan::core
