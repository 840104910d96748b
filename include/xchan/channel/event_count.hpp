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
// prepare_wait adds W to `waiters` and notify reads `waiters`, both with seq_cst
// read-modify-writes on that one word, so the two are totally ordered: either N's RMW
// comes second and sees W counted (then bumps `epoch`, and W's futex wait on the *old*
// key returns at once), or W's RMW comes second and reads from N's, which makes N's
// publication of C visible to W's re-check. No standalone fences (which ThreadSanitizer
// cannot model). The key must be read before W re-checks C: reading it again inside
// wait() would be the classic lost wake-up (tests/cpp/channel).
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
    // SYNC POINT eventcount-register (seq_cst RMW): pairs with notify()'s RMW on the same
    // word (see Protocol above).
    core::atomic_fetch_add(word_->waiters, 1U, std::memory_order_seq_cst);
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

  /// Wakes up to `count` parked waiters if there are any; costs one locked RMW when
  /// nobody waits. Never blocks.
  void notify(int count) noexcept {
    // SYNC POINT eventcount-register (seq_cst RMW): reading `waiters` through an RMW
    // orders it after the caller's publication of its condition. The line stays in the
    // notifier's cache while nobody waits, so this costs one locked instruction.
    if (core::atomic_fetch_add(word_->waiters, 0U, std::memory_order_seq_cst) != 0U) wake(count);
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
