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
//  - Fencing::kAdaptive (what channels use in one process): kProcessLocal while notifies
//    find nobody parked, kSymmetric while threads keep parking. A membarrier interrupts
//    every CPU running one of our threads; when the peer of a ping-pong is running, that
//    can cost the parking thread more than the futex round trip itself (a VM exit per
//    interrupted CPU; docs/performance.md, "Parking without membarrier"). So
//    the first park also switches the word to symmetric notifies (`mode`: light ->
//    switching -> symmetric, by CAS, with that park's heavy barrier in between), and
//    later parks that see `symmetric` skip the barrier. Notifiers use the RMW unless the
//    mode is light, and after kQuietNotifies notifies in a row found nobody waiting they
//    switch it back to light (CAS). Why no wake-up is lost across a switch:
//     * W sees `symmetric`: the switcher set `switching`, ran a heavy barrier, then set
//       `symmetric`. A light notifier read `light` before the barrier's point on its CPU,
//       so its store of C (earlier) was visible by then, before W's re-check.
//     * N sees `light` after a switch back, W saw `symmetric`: W's locked RMW on
//       `waiters` preceded its read of the mode, which preceded the switch back becoming
//       visible, which preceded N's read of the mode and (loads stay in order) N's read
//       of `waiters`: N sees W.
//     * W sees anything but `symmetric`: W runs the heavy barrier, the kProcessLocal
//       argument; a notifier that reads a non-light mode uses the RMW, the kSymmetric one.
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
  std::uint32_t mode;     // kAdaptive only: kLight, kSwitching or kSymmetricNow
  std::uint32_t quiet;    // kAdaptive only: symmetric notifies in a row that found nobody
};
static_assert(std::is_standard_layout_v<EventCountWord>);
static_assert(std::is_trivially_copyable_v<EventCountWord>);

/// How waiters and notifiers of one word order themselves (see Protocol above). Every
/// user of a word must use the same one.
enum class Fencing : std::uint8_t {
  kSymmetric,     // locked RMW on both sides; any processes
  kProcessLocal,  // membarrier(2) when parking, nothing when notifying; one process
  kAdaptive,      // kProcessLocal, or kSymmetric while threads keep parking; one process
};

/// Fencing::kAdaptive if this process can use membarrier(2), else kSymmetric.
[[nodiscard]] inline Fencing best_process_local_fencing() noexcept {
  return platform::process_barrier_available() ? Fencing::kAdaptive : Fencing::kSymmetric;
}

/// True for the fencings that need membarrier(2) (usable by threads of one process only).
[[nodiscard]] constexpr bool is_process_local(Fencing f) noexcept { return f != Fencing::kSymmetric; }

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
    // word, or (kProcessLocal, kAdaptive unless symmetric now) the heavy barrier below
    // pairs with notify()'s light one (see Protocol above).
    core::atomic_fetch_add(word_->waiters, 1U, std::memory_order_seq_cst);
    if (fencing_ == Fencing::kProcessLocal) {
      platform::heavy_barrier();
    } else if (fencing_ == Fencing::kAdaptive) {
      const std::uint32_t mode = core::atomic_load(word_->mode, std::memory_order_seq_cst);
      if (mode != kSymmetricNow) {
        std::uint32_t expected = kLight;
        const bool switching = mode == kLight && core::atomic_compare_exchange(word_->mode, expected, kSwitching, std::memory_order_seq_cst);
        platform::heavy_barrier();
        if (switching) core::atomic_store(word_->mode, kSymmetricNow, std::memory_order_seq_cst);
      }
    }
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
  /// one locked RMW (kSymmetric, kAdaptive while threads park) or one plain load
  /// (kProcessLocal, kAdaptive otherwise). Never blocks.
  void notify(int count) noexcept {
    // SYNC POINT eventcount-register: reading `waiters` through a seq_cst RMW orders it
    // after the caller's publication of its condition (kSymmetric); with kProcessLocal,
    // prepare_wait()'s heavy barrier supplies that order. The line stays in the
    // notifier's cache while nobody waits.
    std::uint32_t waiting = 0;
    // The compiler keeps the caller's publication of its condition before the loads below
    // (the heavy barrier's argument needs it before the read of `mode` too).
    if (fencing_ != Fencing::kSymmetric) platform::light_barrier();
    const std::uint32_t mode =
        fencing_ == Fencing::kAdaptive ? core::atomic_load(word_->mode, std::memory_order_acquire) : kLight;
    if (fencing_ == Fencing::kProcessLocal || (fencing_ == Fencing::kAdaptive && mode == kLight)) {
      waiting = core::atomic_load(word_->waiters, std::memory_order_relaxed);
    } else {
      waiting = core::atomic_fetch_add(word_->waiters, 0U, std::memory_order_seq_cst);
      if (mode == kSymmetricNow) count_quiet(waiting);
    }
    if (waiting != 0U) wake(count);
  }
  void notify_all() noexcept { notify(kAll); }

  /// Threads currently preparing to park or parked (for statistics).
  [[nodiscard]] std::uint32_t waiters() const noexcept {
    return core::atomic_load(word_->waiters, std::memory_order_relaxed);
  }

  static constexpr int kAll = 0x7fffffff;
  /// kAdaptive: symmetric notifies in a row that find nobody waiting before notifies go
  /// back to the light protocol.
  static constexpr std::uint32_t kQuietNotifies = 256;
  /// kAdaptive: whether notifies currently use the RMW (for tests and statistics).
  [[nodiscard]] bool notifies_fence() const noexcept {
    return fencing_ == Fencing::kSymmetric ||
           (fencing_ == Fencing::kAdaptive && core::atomic_load(word_->mode, std::memory_order_relaxed) != kLight);
  }

 private:
  static constexpr std::uint32_t kLight = 0;
  static constexpr std::uint32_t kSwitching = 1;
  static constexpr std::uint32_t kSymmetricNow = 2;

  void wake(int count) noexcept;
  /// kAdaptive, symmetric: counts notifies that found nobody; switches back to light.
  void count_quiet(std::uint32_t waiting) noexcept {
    // Relaxed: a heuristic; concurrent notifiers may lose counts, which only delays it.
    if (waiting != 0U) {
      if (core::atomic_load(word_->quiet, std::memory_order_relaxed) != 0U) {
        core::atomic_store(word_->quiet, 0U, std::memory_order_relaxed);
      }
      return;
    }
    const std::uint32_t quiet = core::atomic_load(word_->quiet, std::memory_order_relaxed) + 1;
    if (quiet < kQuietNotifies) {
      core::atomic_store(word_->quiet, quiet, std::memory_order_relaxed);
      return;
    }
    core::atomic_store(word_->quiet, 0U, std::memory_order_relaxed);
    std::uint32_t expected = kSymmetricNow;
    (void)core::atomic_compare_exchange(word_->mode, expected, kLight, std::memory_order_seq_cst);
  }

  EventCountWord* word_;
  Fencing fencing_;
};

}  // namespace xchan
