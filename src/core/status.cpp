// Names of the status codes, for messages and logs.
#include "xchan/core/status.hpp"

namespace xchan {

const char* to_string(Status s) noexcept {
  switch (s) {
    case Status::kOk: return "ok";
    case Status::kFull: return "full";
    case Status::kEmpty: return "empty";
    case Status::kClosed: return "closed";
    case Status::kTimeout: return "timeout";
    case Status::kInterrupted: return "interrupted";
    case Status::kTooLarge: return "too large";
    case Status::kInvalidArgument: return "invalid argument";
    case Status::kCorrupted: return "corrupted";
    case Status::kNoMemory: return "no memory";
    case Status::kPeerDied: return "peer died";
  }
  return "unknown";
}

}  // namespace xchan
