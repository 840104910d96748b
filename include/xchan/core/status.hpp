// Result codes shared by every layer: full and empty are outcomes, not errors.
// The Python bindings map each code to exactly one exception type in one place.
#pragma once

#include <cstdint>

namespace xchan {

enum class Status : std::uint8_t {
  kOk = 0,
  kFull,             // no room right now (records or bytes); retry later
  kEmpty,            // nothing to take right now; retry later
  kClosed,           // the other side is gone (all senders or all receivers closed)
  kTimeout,          // a blocking call reached its deadline
  kInterrupted,      // a signal handler ran while parked (like EINTR)
  kTooLarge,         // the message can never fit this channel
  kInvalidArgument,  // a bad parameter (size, capacity, handle)
  kCorrupted,        // shared memory failed validation; the ring is not usable
  kNoMemory,         // an allocation or mapping failed
  kPeerDied,         // like kClosed, because a process that held ends of the other side died
};

/// Short, stable name of a status ("full", "closed", ...). Never returns null.
[[nodiscard]] const char* to_string(Status s) noexcept;

}  // namespace xchan
