// The contended path of SpinLock, kept out of line so lock() inlines to one exchange.
#include "xchan/core/spin_lock.hpp"

#include <sched.h>

namespace xchan::core {

void SpinLock::lock_slow() noexcept {
  // Spin on a plain load so waiters share the line instead of bouncing it; yield after a
  // while because on 2 cores the holder may be preempted by the very thread spinning here.
  constexpr int kSpinsBeforeYield = 64;
  for (;;) {
    for (int i = 0; atomic_load(word_->state, std::memory_order_relaxed) != 0U; ++i) {
      if (i < kSpinsBeforeYield) {
        cpu_relax();
      } else {
        sched_yield();
      }
    }
    if (atomic_exchange(word_->state, 1U, std::memory_order_acquire) == 0U) return;
  }
}

}  // namespace xchan::core
