// A point on the monotonic clock (CLOCK_MONOTONIC via steady_clock) at which a blocking
// call gives up. Immune to wall-clock changes.
#pragma once

#include <chrono>
#include <cmath>
#include <limits>

namespace xchan {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  /// Never expires.
  [[nodiscard]] static Deadline never() noexcept { return Deadline(Clock::time_point::max()); }
  /// Already expired: a blocking call tries once.
  [[nodiscard]] static Deadline now() noexcept { return Deadline(Clock::time_point::min()); }
  /// Expires `d` from now (d <= 0 means try once).
  template <class Rep, class Period>
  [[nodiscard]] static Deadline after(std::chrono::duration<Rep, Period> d) noexcept {
    if (d <= d.zero()) return now();
    const auto left = Clock::time_point::max() - Clock::now();
    if (d >= left) return never();
    return Deadline(Clock::now() + std::chrono::duration_cast<Clock::duration>(d));
  }
  /// From seconds as a double; the caller validated it (finite, >= 0) or it is +inf.
  [[nodiscard]] static Deadline after_seconds(double seconds) noexcept {
    if (std::isinf(seconds) && seconds > 0) return never();
    if (!(seconds > 0)) return now();
    if (seconds > 1e9) return never();  // ~31 years: treat as forever
    return after(std::chrono::duration<double>(seconds));
  }
  explicit Deadline(Clock::time_point at) noexcept : at_(at) {}

  [[nodiscard]] bool is_never() const noexcept { return at_ == Clock::time_point::max(); }
  /// True for now(): the caller tries once and does not wait at all.
  [[nodiscard]] bool is_now() const noexcept { return at_ == Clock::time_point::min(); }
  [[nodiscard]] bool expired() const noexcept { return !is_never() && Clock::now() >= at_; }
  [[nodiscard]] Clock::time_point time_point() const noexcept { return at_; }
  /// The earlier of two deadlines.
  [[nodiscard]] Deadline min(Deadline other) const noexcept {
    return other.at_ < at_ ? other : *this;
  }

 private:
  Clock::time_point at_;
};

}  // namespace xchan
