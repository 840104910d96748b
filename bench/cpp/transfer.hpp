// The harness shared by the throughput cases: P producer threads each push K messages,
// C consumer threads each pop K*P/C, per benchmark iteration; threads are started inside
// the timed region (tens of microseconds against tens of milliseconds of transfer).
#pragma once

#include <benchmark/benchmark.h>
#include <sched.h>

#include <cstddef>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "xchan/core/atomic_field.hpp"

namespace xchan::bench {

/// Spin politely, then yield: with more threads than the 2 cores, a pure spin would burn
/// the time slice of the thread it waits for.
class Backoff {
 public:
  void pause() noexcept {
    if (++spins_ < 128) {
      core::cpu_relax();
    } else {
      sched_yield();
    }
  }
  void reset() noexcept { spins_ = 0; }

 private:
  int spins_ = 0;
};

/// Runs the transfer and reports items/s and bytes/s. push(buf) and pop(buf) move one
/// message each (they spin or block as the queue under test does) and return false on an
/// error, which stops the run and marks the benchmark failed instead of hanging it.
template <class Push, class Pop>
void run_transfer(benchmark::State& state, unsigned producers, unsigned consumers,
                  std::uint64_t per_producer, std::size_t message_bytes, Push push, Pop pop) {
  const std::uint64_t total = per_producer * producers;
  const std::uint64_t quota = total / consumers;
  std::atomic<bool> failed{false};
  for (auto _ : state) {
    std::vector<std::thread> threads;
    for (unsigned p = 0; p < producers; ++p) {
      threads.emplace_back([&] {
        std::vector<std::byte> buf(message_bytes, std::byte{0x5a});
        for (std::uint64_t i = 0; i < per_producer && !failed.load(std::memory_order_relaxed); ++i) {
          if (!push(buf)) failed = true;
        }
      });
    }
    for (unsigned c = 0; c < consumers; ++c) {
      threads.emplace_back([&] {
        std::vector<std::byte> buf(message_bytes);
        for (std::uint64_t i = 0; i < quota && !failed.load(std::memory_order_relaxed); ++i) {
          if (!pop(buf)) failed = true;
        }
        benchmark::DoNotOptimize(buf.data());
      });
    }
    for (auto& t : threads) t.join();
    if (failed) {
      state.SkipWithError("a transfer failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * quota * consumers));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * quota * consumers * message_bytes));
}

/// Messages per iteration so that one iteration moves ~64 MiB or 200k messages, whichever
/// is fewer.
constexpr std::uint64_t messages_for(std::size_t bytes) {
  const std::uint64_t by_bytes = (std::uint64_t{64} << 20) / bytes;
  return by_bytes < 200'000 ? (by_bytes < 64 ? 64 : by_bytes) : 200'000;
}

/// Same memory footprint for every queue under test at one message size.
constexpr std::size_t footprint_for(std::size_t bytes) {
  return bytes <= 4096 ? std::size_t{256} << 10 : std::size_t{4} << 20;
}

}  // namespace xchan::bench
