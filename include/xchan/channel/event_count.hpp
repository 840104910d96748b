// An eventcount: lets a thread sleep until "something may have changed" without a lock,
// and lets the notifier skip the wake-up syscall when nobody sleeps.
//
// Design: the word pair lives in (possibly shared) memory. `epoch` is the futex word; it
// changes on every notify that finds waiters. `waiters` counts threads between
// prepare_wait() and the end of wait()/cancel_wait().
//
// Protocol (a waiter W and a notifier N racing on a condition C):
//   W: key = prepare_wait();  if (C) { cancel_wait(); ... } else wait(key, deadline);
//   N: make C true;  notify();
// prepare_wait increments `waiters` and then reads `epoch`; notify publishes C, then reads
// `waiters`. Both sides put a seq_cst fence between their write and their read (Dekker),
// so either W sees C, or N sees W counted and bumps `epoch` — after which W's futex wait
// on the *old* key returns at once. The key must be read before W re-checks C: reading it
// again inside wait() would be the classic lost wake-up (tests/cpp/channel).
#pragma once

#include <cstdint>
#include <type_traits>

#include "xchan/channel/deadline.hpp"
#include "xchan/core/atomic_field.hpp"
#include "xchan/core/status.hpp"

namespace xchan {

/// Shared state; zero-initialized is valid.
struct EventCountWord {
  std::uint32_t epoch;    // futex word
  std::uint32_t waiters;  // threads preparing to park or parked
};
static_assert(std::is_standard_layout_v<EventCountWord>);
static_assert(std::is_trivially_copyable_v<EventCountWord>);

/// A view over an EventCountWord. Every member may be called from any thread.
class EventCount {
 public:
  using Key = std::uint32_t;

  explicit EventCount(EventCountWord& word) noexcept : word_(&word) {}

  /// Announces the caller as a waiter and returns the key to wait on. The caller must
  /// then re-check its condition and call either cancel_wait() or wait(key, ...).
  [[nodiscard]] Key prepare_wait() noexcept {
    core::atomic_fetch_add(word_->waiters, 1U, std::memory_order_seq_cst);
    // SYNC POINT eventcount-dekker (seq_cst fence): pairs with notify()'s fence; orders
    // our waiter registration before the caller's re-check of its condition.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return core::atomic_load(word_->epoch, std::memory_order_acquire);
  }

  /// Withdraws a prepare_wait() whose condition turned out true. Never blocks.
  void cancel_wait() noexcept {
    core::atomic_fetch_sub(word_->waiters, 1U, std::memory_order_relaxed);
  }

  /// Parks until a notify() after prepare_wait() (returns kOk at once if one already
  /// happened), `deadline` (kTimeout), or a signal handler runs (kInterrupted). May return
  /// kOk spuriously; callers re-check their condition. Blocks.
  [[nodiscard]] Status wait(Key key, Deadline deadline) noexcept;

  /// Wakes up to `count` parked waiters if there are any; costs a fence and a load when
  /// nobody waits. Never blocks.
  void notify(int count) noexcept {
    // SYNC POINT eventcount-dekker (seq_cst fence): pairs with prepare_wait()'s fence;
    // orders the caller's publication of its condition before our read of `waiters`.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (core::atomic_load(word_->waiters, std::memory_order_relaxed) != 0U) wake(count);
  }
  void notify_all() noexcept { notify(kAll); }

  /// Threads currently preparing to park or parked (for statistics).
  [[nodiscard]] std::uint32_t waiters() const noexcept {
    return core::atomic_load(word_->waiters, std::memory_order_relaxed);
  }

  static constexpr int kAll = 0x7fffffff;

 private:
  void wake(int count) noexcept;

  EventCountWord* word_;
};

}  // namespace xchan
