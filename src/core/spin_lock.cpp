// The contended path of SpinLock, kept out of line so lock() inlines to one compare-and-swap.
#include "xchan/core/spin_lock.hpp"

#include <sched.h>

#include <chrono>

namespace xchan::core {

void SpinLock::lock_slow() noexcept {
  // Spin on a plain load so waiters share the line instead of bouncing it; yield after a
  // while because on 2 cores the holder may be preempted by the very thread spinning here.
  // A holder that keeps the lock for kAskAfter (critical sections are one memcpy: far
  // shorter unless it was descheduled, stopped, or died) is asked about, then every
  // kAskAfter again.
  constexpr int kSpinsBeforeYield = 64;
  constexpr auto kAskAfter = std::chrono::milliseconds(50);
  auto ask_at = std::chrono::steady_clock::time_point::max();
  for (;;) {
    std::uint32_t holder = 0;
    for (int i = 0; (holder = atomic_load(word_->state, std::memory_order_relaxed)) != 0U; ++i) {
      if (i < kSpinsBeforeYield) {
        cpu_relax();
        continue;
      }
      sched_yield();
      if (recovery_ == nullptr || i % 16 != 0) continue;  // the clock (vDSO) only now and then: a yield costs more
      const auto now = std::chrono::steady_clock::now();
      if (ask_at == std::chrono::steady_clock::time_point::max()) {
        ask_at = now + kAskAfter;
      } else if (now >= ask_at) {
        recovery_->holder_gone(recovery_->context, holder);
        ask_at = now + kAskAfter;
      }
    }
    if (try_acquire()) return;
  }
}

}  // namespace xchan::core
