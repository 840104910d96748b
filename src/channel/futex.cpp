// futex(2) wrappers. FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a
// wait that is interrupted and restarted never drifts.
#include "xchan/channel/futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>

namespace xchan::platform {

FutexResult futex_wait(const std::uint32_t* word, std::uint32_t expected, Deadline deadline) noexcept {
  timespec ts{};
  const timespec* timeout = nullptr;
  if (!deadline.is_never()) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        deadline.time_point().time_since_epoch())
                        .count();
    if (ns <= 0) return FutexResult::kTimeout;
    ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    timeout = &ts;
  }
  const long rc = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, timeout, nullptr,
                          FUTEX_BITSET_MATCH_ANY);
  if (rc == 0) return FutexResult::kWoken;
  switch (errno) {
    case EAGAIN: return FutexResult::kValueChanged;
    case ETIMEDOUT: return FutexResult::kTimeout;
    case EINTR: return FutexResult::kInterrupted;
    default: return FutexResult::kWoken;  // treat like a spurious wake-up; caller re-checks
  }
}

int futex_wake(const std::uint32_t* word, int count) noexcept {
  const long rc = syscall(SYS_futex, word, FUTEX_WAKE, count, nullptr, nullptr, 0);
  return rc < 0 ? 0 : static_cast<int>(rc);
}

}  // namespace xchan::platform
