// Linux futex wait/wake on a 32-bit word. Shared (not FUTEX_PRIVATE) so that the same
// word works when it lives in memory mapped by several processes.
#pragma once

#include <cstdint>

#include "xchan/channel/deadline.hpp"

namespace xchan::platform {

enum class FutexResult : std::uint8_t { kWoken, kValueChanged, kTimeout, kInterrupted };

/// Parks the calling thread while *word == expected, until woken, `deadline` passes
/// (absolute, CLOCK_MONOTONIC) or a signal handler runs. May return kWoken spuriously.
/// Any thread; blocks.
FutexResult futex_wait(const std::uint32_t* word, std::uint32_t expected, Deadline deadline) noexcept;

/// Wakes up to `count` threads parked on `word`; returns how many were woken. Any thread.
int futex_wake(const std::uint32_t* word, int count) noexcept;

}  // namespace xchan::platform
