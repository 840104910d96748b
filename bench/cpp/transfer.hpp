// The harness shared by the throughput cases: P producer threads and C consumer threads,
// started once per benchmark run and released together by a start flag, move
// iterations * K messages; the wall time of the whole transfer is reported per iteration
// through manual timing. Long-lived threads measure the steady state users see; starting
// threads every iteration measured start-up transients instead (a queue whose producer
// happened to run first began each 1 ms iteration full).
#pragma once

#include <benchmark/benchmark.h>
#include <sched.h>

#include <cstddef>
#include <atomic>
#include <chrono>
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

 private:
  int spins_ = 0;
};

/// Runs the transfer and reports items/s and bytes/s. push(buf) and pop(buf) move one
/// message each (they spin or block as the queue under test does) and return false on an
/// error, which stops the run and marks the benchmark failed instead of hanging it.
/// Register the benchmark with ->UseManualTime().
template <class Push, class Pop>
void run_transfer(benchmark::State& state, unsigned producers, unsigned consumers,
                  std::uint64_t per_producer, std::size_t message_bytes, Push push, Pop pop) {
  const auto iterations = static_cast<std::uint64_t>(state.max_iterations);
  const std::uint64_t per_thread = per_producer * iterations;
  const std::uint64_t quota = per_thread * producers / consumers;
  std::atomic<bool> failed{false};
  std::atomic<unsigned> ready{0};
  const unsigned everyone = producers + consumers;
  auto start_together = [&] {
    ready.fetch_add(1);
    while (ready.load() < everyone) std::this_thread::yield();
  };
  std::vector<std::thread> threads;
  for (unsigned p = 0; p < producers; ++p) {
    threads.emplace_back([&] {
      std::vector<std::byte> buf(message_bytes, std::byte{0x5a});
      start_together();
      for (std::uint64_t i = 0; i < per_thread && !failed.load(std::memory_order_relaxed); ++i) {
        if (!push(buf)) failed = true;
      }
    });
  }
  std::chrono::steady_clock::time_point start;
  for (unsigned c = 0; c < consumers; ++c) {
    threads.emplace_back([&, first = c == 0] {
      std::vector<std::byte> buf(message_bytes);
      start_together();
      if (first) start = std::chrono::steady_clock::now();
      for (std::uint64_t i = 0; i < quota && !failed.load(std::memory_order_relaxed); ++i) {
        if (!pop(buf)) failed = true;
      }
      benchmark::DoNotOptimize(buf.data());
    });
  }
  for (auto& t : threads) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (auto _ : state) state.SetIterationTime(seconds / static_cast<double>(iterations));
  if (failed) state.SkipWithError("a transfer failed");
  state.SetItemsProcessed(static_cast<std::int64_t>(iterations * per_producer * producers));
  state.SetBytesProcessed(static_cast<std::int64_t>(iterations * per_producer * producers * message_bytes));
}

/// Messages per iteration: ~4 MiB or 20k messages, whichever is fewer.
constexpr std::uint64_t messages_for(std::size_t bytes) {
  const std::uint64_t by_bytes = (std::uint64_t{4} << 20) / bytes;
  return by_bytes < 20'000 ? (by_bytes < 4 ? 4 : by_bytes) : 20'000;
}

/// Same memory footprint for every queue under test at one message size.
constexpr std::size_t footprint_for(std::size_t bytes) {
  return bytes <= 4096 ? std::size_t{256} << 10 : std::size_t{4} << 20;
}

}  // namespace xchan::bench
