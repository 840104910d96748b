// Round-trip latency (ping-pong of a 64 B message) with both sides awake (spinning) and
// with the receiver parked in the kernel, against a raw futex ping-pong and a mutex +
// condvar queue in the same binary. Reports p50 and p99 of per-round-trip samples.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "baselines.hpp"
#include "xchan/channel/ends.hpp"
#include "xchan/channel/futex.hpp"
#include "xchan/core/spsc_byte_ring.hpp"

namespace xchan::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kBytes = 64;

/// Times each round trip of `ping` (which must send and wait for the echo) while `echo`
/// runs the other side `max_iterations` times on its own thread.
template <class Ping, class Echo>
void measure_round_trips(benchmark::State& state, Ping ping, Echo echo) {
  const auto rounds = static_cast<std::uint64_t>(state.max_iterations);
  std::thread peer([&] {
    for (std::uint64_t i = 0; i < rounds; ++i) echo();
  });
  std::vector<double> samples;
  samples.reserve(rounds);
  for (auto _ : state) {
    const auto t0 = Clock::now();
    ping();
    samples.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count());
  }
  peer.join();
  std::sort(samples.begin(), samples.end());
  state.counters["p50_ns"] = samples[samples.size() / 2];
  state.counters["p99_ns"] = samples[samples.size() * 99 / 100];
}

struct RingPair {
  RingPair() : req_data(8192), rep_data(8192) {
    auto req_bytes = std::as_writable_bytes(std::span<std::uint64_t>(req_data));
    auto rep_bytes = std::as_writable_bytes(std::span<std::uint64_t>(rep_data));
    ok = core::SpscByteRing::init(req_h, req_bytes, 1024) == Status::kOk &&
         core::SpscByteRing::init(rep_h, rep_bytes, 1024) == Status::kOk &&
         req.attach(req_h, req_bytes) == Status::kOk && rep.attach(rep_h, rep_bytes) == Status::kOk;
  }
  core::RingHeader req_h{}, rep_h{};
  std::vector<std::uint64_t> req_data, rep_data;
  core::SpscByteRing req, rep;
  bool ok = false;
};

void spin_push(core::SpscByteRing& ring, std::span<const std::byte> msg) {
  while (ring.try_push(msg) != Status::kOk) core::cpu_relax();
}
void spin_pop(core::SpscByteRing& ring, std::span<std::byte> buf) {
  std::size_t n = 0;
  while (ring.try_pop(buf, n) != Status::kOk) core::cpu_relax();
}

void BM_RoundTripSpscRingSpinning(benchmark::State& state) {
  RingPair rings;
  std::array<std::byte, kBytes> a{}, b{};
  measure_round_trips(state,
      [&] { spin_push(rings.req, a); spin_pop(rings.rep, a); },
      [&] { spin_pop(rings.req, b); spin_push(rings.rep, b); });
}

struct ChannelPair {
  explicit ChannelPair(std::uint32_t spin) {
    ChannelConfig c;
    c.capacity = 64;
    c.max_bytes = 64 << 10;
    c.spin_iterations = spin;
    ok = make_channel(c, req_tx, req_rx) == Status::kOk && make_channel(c, rep_tx, rep_rx) == Status::kOk;
  }
  Sender req_tx, rep_tx;
  Receiver req_rx, rep_rx;
  bool ok = false;
};

void channel_round_trips(benchmark::State& state, std::uint32_t spin) {
  ChannelPair ch(spin);
  std::array<std::byte, kBytes> a{}, b{};
  auto copy_into = [](std::array<std::byte, kBytes>& dst) {
    return [&dst](std::span<const std::byte> in) { std::memcpy(dst.data(), in.data(), in.size()); };
  };
  measure_round_trips(state,
      [&] {
        (void)ch.req_tx.send(a, Deadline::never());
        (void)ch.rep_rx.recv_with(copy_into(a), Deadline::never());
      },
      [&] {
        (void)ch.req_rx.recv_with(copy_into(b), Deadline::never());
        (void)ch.rep_tx.send(b, Deadline::never());
      });
}

// Both sides spin before parking (the default policy); neither needs to park here.
void BM_RoundTripChannelAwake(benchmark::State& state) { channel_round_trips(state, 1 << 14); }

// No spinning: every receive parks in the kernel and every send wakes it.
void BM_RoundTripChannelParked(benchmark::State& state) { channel_round_trips(state, 0); }

// The floor for a parked receiver: two threads alternating on two futex words.
void BM_RoundTripRawFutex(benchmark::State& state) {
  std::uint32_t ping_word = 0;
  std::uint32_t pong_word = 0;
  auto signal = [](std::uint32_t& w) {
    core::atomic_store(w, 1U, std::memory_order_release);
    platform::futex_wake(&w, 1);
  };
  auto await = [](std::uint32_t& w) {
    while (core::atomic_load(w, std::memory_order_acquire) == 0U) {
      platform::futex_wait(&w, 0U, Deadline::never());
    }
    core::atomic_store(w, 0U, std::memory_order_relaxed);
  };
  measure_round_trips(state,
      [&] { signal(ping_word); await(pong_word); },
      [&] { await(ping_word); signal(pong_word); });
}

void BM_RoundTripMutexCondvar(benchmark::State& state) {
  MutexQueue req(64), rep(64);
  std::array<std::byte, kBytes> a{}, b{};
  measure_round_trips(state,
      [&] { req.push(a.data(), a.size()); (void)rep.pop(a.data()); },
      [&] { (void)req.pop(b.data()); rep.push(b.data(), b.size()); });
}

BENCHMARK(BM_RoundTripSpscRingSpinning)->UseRealTime();
BENCHMARK(BM_RoundTripChannelAwake)->UseRealTime();
BENCHMARK(BM_RoundTripChannelParked)->UseRealTime();
BENCHMARK(BM_RoundTripRawFutex)->UseRealTime();
BENCHMARK(BM_RoundTripMutexCondvar)->UseRealTime();

}  // namespace
}  // namespace xchan::bench
