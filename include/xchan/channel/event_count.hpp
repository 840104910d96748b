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
// W must not miss N: either N sees W counted in `waiters` (then bumps `epoch`, and W's
// futex wait on the *old* key returns at once), or W's re-check sees C. That is a
// store-then-load on each side, so each side needs store-load ordering; two ways:
//  - Fencing::kSymmetric: prepare_wait adds W to `waiters` and notify reads it, both with
//    seq_cst read-modify-writes on that one word, so the two are totally ordered (either
//    N's RMW comes second and sees W, or W's comes second and reads from N's, which makes
//    N's publication of C visible to W's re-check). Costs N one locked instruction, which
//    on x86 waits for N's stores (the message just written) to leave its store buffer.
//    Works between processes.
//  - Fencing::kProcessLocal: N only reads `waiters` after a compiler barrier; W's
//    prepare_wait runs membarrier(2) after counting itself, which makes every running
//    thread of the process pass a full barrier: either N's read comes after that point
//    and sees W, or N's store of C came before it and W's re-check sees it. The fast path
//    (nobody parked) then costs N no locked instruction; each park costs W a syscall.
//    Only for threads of one process.
// No standalone fences (which ThreadSanitizer cannot model). The key must be read before
// W re-checks C: reading it again inside wait() would be the classic lost wake-up
// (tests/cpp/channel).
#pragma once

#include <cstdint>
#include <type_traits>

#include "xchan/channel/deadline.hpp"
#include "xchan/channel/process_barrier.hpp"
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

/// How waiters and notifiers of one word order themselves (see Protocol above). Every
/// user of a word must use the same one.
enum class Fencing : std::uint8_t {
  kSymmetric,     // locked RMW on both sides; any processes
  kProcessLocal,  // membarrier(2) when parking, nothing when notifying; one process
};

/// Fencing::kProcessLocal if this process can use it, else kSymmetric.
[[nodiscard]] inline Fencing best_process_local_fencing() noexcept {
  return platform::process_barrier_available() ? Fencing::kProcessLocal : Fencing::kSymmetric;
}

/// A view over an EventCountWord. Every member may be called from any thread.
class EventCount {
 public:
  using Key = std::uint32_t;

  explicit EventCount(EventCountWord& word, Fencing fencing = Fencing::kSymmetric) noexcept
      : word_(&word), fencing_(fencing) {}

  /// Announces the caller as a waiter and returns the key to wait on. The caller must
  /// then re-check its condition and call either cancel_wait() or wait(key, ...).
  [[nodiscard]] Key prepare_wait() noexcept {
    // SYNC POINT eventcount-register (seq_cst RMW): pairs with notify()'s RMW on the same
    // word, or (kProcessLocal) the heavy barrier below pairs with notify()'s light one
    // (see Protocol above).
    core::atomic_fetch_add(word_->waiters, 1U, std::memory_order_seq_cst);
    if (fencing_ == Fencing::kProcessLocal) platform::heavy_barrier();
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

  /// Wakes up to `count` parked waiters if there are any; when nobody waits it costs
  /// one locked RMW (kSymmetric) or one plain load (kProcessLocal). Never blocks.
  void notify(int count) noexcept {
    // SYNC POINT eventcount-register: reading `waiters` through a seq_cst RMW orders it
    // after the caller's publication of its condition (kSymmetric); with kProcessLocal,
    // prepare_wait()'s heavy barrier supplies that order. The line stays in the
    // notifier's cache while nobody waits.
    std::uint32_t waiting = 0;
    if (fencing_ == Fencing::kProcessLocal) {
      platform::light_barrier();
      waiting = core::atomic_load(word_->waiters, std::memory_order_relaxed);
    } else {
      waiting = core::atomic_fetch_add(word_->waiters, 0U, std::memory_order_seq_cst);
    }
    if (waiting != 0U) wake(count);
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
  Fencing fencing_;
};

}  // namespace xchan
