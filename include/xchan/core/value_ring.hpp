// An in-process SPSC queue of C++ objects, built on SpscByteRing: each record holds one
// object constructed in place. For C++ users who pass typed values between threads; the
// channel layer and Python use bytes. Not for shared memory (T may own pointers).
#pragma once

#include <memory>
#include <bit>
#include <new>
#include <optional>
#include <utility>

#include "xchan/core/spsc_byte_ring.hpp"

namespace xchan::core {

/// Owns its memory. Producer-only and consumer-only members are marked; both are
/// wait-free. Objects still queued when the ring is destroyed are destroyed with it.
template <class T>
class ValueRing {
  static_assert(alignof(T) <= alignof(RecordWord), "records are 8-byte aligned");

 public:
  /// Room for `capacity` objects. Throws std::bad_alloc.
  explicit ValueRing(std::uint64_t capacity)
      : data_bytes_(SpscByteRing::data_bytes_for_payload(sizeof(T)) *
                    std::bit_ceil(capacity < 2 ? 2 : capacity)),
        data_(std::make_unique<std::byte[]>(data_bytes_)) {
    if (SpscByteRing::init(header_, {data_.get(), data_bytes_}, capacity) != Status::kOk ||
        ring_.attach(header_, {data_.get(), data_bytes_}) != Status::kOk) {
      throw std::bad_alloc();
    }
  }
  ValueRing(const ValueRing&) = delete;
  ValueRing& operator=(const ValueRing&) = delete;
  ~ValueRing() {
    while (try_pop()) {
    }
  }

  /// Producer only. Constructs a T in the ring; false (nothing constructed) when full.
  template <class... Args>
  [[nodiscard]] bool try_emplace(Args&&... args) noexcept(
      std::is_nothrow_constructible_v<T, Args...>) {
    SpscByteRing::Writer w(ring_);
    std::span<std::byte> out;
    if (w.try_reserve(sizeof(T), out) != Status::kOk) return false;
    ::new (static_cast<void*>(out.data())) T(std::forward<Args>(args)...);
    w.commit(sizeof(T));
    return true;
  }

  /// Consumer only. Moves the oldest object out (destroying the one in the ring).
  [[nodiscard]] std::optional<T> try_pop() noexcept(std::is_nothrow_move_constructible_v<T>) {
    SpscByteRing::Reader r(ring_);
    std::span<const std::byte> in;
    if (r.try_peek(in) != Status::kOk) return std::nullopt;
    T* slot = std::launder(reinterpret_cast<T*>(const_cast<std::byte*>(in.data())));
    std::optional<T> value(std::move(*slot));
    slot->~T();
    r.release();
    return value;
  }

  [[nodiscard]] std::uint64_t size_approx() const noexcept { return ring_.size_approx(); }

 private:
  RingHeader header_{};
  std::uint64_t data_bytes_;
  std::unique_ptr<std::byte[]> data_;  // new[] aligns to 16 >= alignof(RecordWord)
  SpscByteRing ring_;
};

}  // namespace xchan::core
