// A test-and-test-and-set lock over one 32-bit word that may live in shared memory.
// It serializes the producers (or the consumers) of one ring; critical sections are a
// bounded memcpy, so spinning is cheaper than parking. After a short spin it yields the
// CPU so that a preempted holder can run (this machine class has 2 cores).
//
// The word holds its holder's nonzero id (1 unless the caller names itself). In a segment
// shared by processes a holder may die holding it: a waiter that has waited a while asks
// its LockRecovery whether the holder it sees is gone, and that frees the word if so.
#pragma once

#include <cstdint>

#include "xchan/core/atomic_field.hpp"

namespace xchan::core {

/// The lock's state word: 0 free, else the holder's id. Lives inside a shared header.
struct SpinLockWord {
  std::uint32_t state;
};

/// What a waiter does about a holder that may be dead: holder_gone(context, holder) checks
/// whether the holder with that id is gone and, if so, frees the word (compare-and-swap
/// from `holder` to 0) and returns true. Runs without the lock being waited for, but
/// possibly holding the ring's other side lock (a repair holds both); may make system
/// calls. It must not wait for a lock itself.
struct LockRecovery {
  bool (*holder_gone)(void* context, std::uint32_t holder) noexcept = nullptr;
  void* context = nullptr;
};

/// A view over a SpinLockWord; satisfies Lockable (usable with std::lock_guard).
/// Any thread may call any member. lock() is blocking but never parks in the kernel.
class SpinLock {
 public:
  /// A view that takes the lock as `owner` (nonzero), asking `recovery` (if any) about
  /// holders that keep it for long (see LockRecovery).
  explicit SpinLock(SpinLockWord& word, std::uint32_t owner = 1, const LockRecovery* recovery = nullptr) noexcept
      : word_(&word), owner_(owner), recovery_(recovery) {}

  /// Acquires the lock; returns when held. Not reentrant.
  void lock() noexcept {
    // SYNC POINT lock-acquire (acquire): pairs with unlock()'s release, so the previous
    // holder's ring writes (tail, cached copies) are visible to the new holder.
    if (try_acquire()) return;
    lock_slow();
  }

  /// Acquires the lock if free; never waits.
  [[nodiscard]] bool try_lock() noexcept {
    return atomic_load(word_->state, std::memory_order_relaxed) == 0U && try_acquire();
  }

  /// Releases the lock. Only the holder may call it.
  void unlock() noexcept {
    // SYNC POINT lock-release (release): pairs with lock()'s acquire.
    atomic_store(word_->state, 0U, std::memory_order_release);
  }

 private:
  // A compare-and-swap rather than an exchange: a failed attempt must leave the holder's
  // id in the word for recovery to read.
  bool try_acquire() noexcept {
    std::uint32_t expected = 0;
    return atomic_compare_exchange(word_->state, expected, owner_, std::memory_order_acquire);
  }
  void lock_slow() noexcept;

  SpinLockWord* word_;
  std::uint32_t owner_;
  const LockRecovery* recovery_;
};

}  // namespace xchan::core
