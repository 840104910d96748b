// Atomic access to plain integer fields of structs that may live in shared memory.
// std::atomic<T> members would make those structs non-trivially-copyable; keeping plain
// fields and going through std::atomic_ref keeps them standard-layout and makes every
// access name its memory order at the call site.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace xchan::core {

/// Fields written by different sides live on separate lines of this size. 128 rather
/// than 64 because x86 prefetches adjacent line pairs, which would re-create false sharing.
inline constexpr std::size_t kCacheLine = 128;

static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic_ref<std::uint32_t>::is_always_lock_free);

template <class T>
[[nodiscard]] inline T atomic_load(const T& field, std::memory_order order) noexcept {
  // atomic_ref<const T> is C++26; a load never writes, so the cast is harmless.
  return std::atomic_ref<T>(const_cast<T&>(field)).load(order);
}

template <class T>
inline void atomic_store(T& field, T value, std::memory_order order) noexcept {
  std::atomic_ref<T>(field).store(value, order);
}

template <class T>
inline T atomic_fetch_add(T& field, T delta, std::memory_order order) noexcept {
  return std::atomic_ref<T>(field).fetch_add(delta, order);
}

template <class T>
inline T atomic_fetch_sub(T& field, T delta, std::memory_order order) noexcept {
  return std::atomic_ref<T>(field).fetch_sub(delta, order);
}

template <class T>
inline T atomic_fetch_or(T& field, T bits, std::memory_order order) noexcept {
  return std::atomic_ref<T>(field).fetch_or(bits, order);
}

template <class T>
inline T atomic_exchange(T& field, T value, std::memory_order order) noexcept {
  return std::atomic_ref<T>(field).exchange(value, order);
}

template <class T>
inline bool atomic_compare_exchange(T& field, T& expected, T desired, std::memory_order order) noexcept {
  return std::atomic_ref<T>(field).compare_exchange_strong(expected, desired, order,
                                                           std::memory_order_relaxed);
}

/// Tells the CPU that this is a spin-wait loop (cheaper for the sibling hyperthread).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace xchan::core
