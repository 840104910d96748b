// Throughput between threads at 64 B / 4 KiB / 1 MiB: the xchan SPSC ring, the xchan
// blocking channel (single and batched), boost::lockfree::spsc_queue and a mutex+condvar
// queue; and the MPMC path against boost::lockfree::queue. Same byte footprint per size.
#include <benchmark/benchmark.h>

#include <boost/lockfree/queue.hpp>
#include <boost/lockfree/spsc_queue.hpp>
#include <cstring>
#include <memory>

#include "baselines.hpp"
#include "transfer.hpp"
#include "xchan/channel/ends.hpp"
#include "xchan/core/mpmc_byte_ring.hpp"

namespace xchan::bench {
namespace {

/// Ring memory owned by a benchmark.
template <class Header>
struct Storage {
  explicit Storage(std::size_t bytes) : data(bytes / 8) {}
  std::span<std::byte> bytes() { return std::as_writable_bytes(std::span<std::uint64_t>(data)); }
  Header header{};
  std::vector<std::uint64_t> data;
};

template <std::size_t N>
void BM_XchanSpscRing(benchmark::State& state) {
  auto owned_mem = std::make_unique<Storage<core::RingHeader>>(footprint_for(N));
  auto owned_ring = std::make_unique<core::SpscByteRing>();
  auto& mem = *owned_mem;
  auto& ring = *owned_ring;
  if (core::SpscByteRing::init(mem.header, mem.bytes(), 1 << 30) != Status::kOk ||
      ring.attach(mem.header, mem.bytes()) != Status::kOk) {
    state.SkipWithError("ring set-up failed");
    return;
  }
  run_transfer(state, 1, 1, messages_for(N), N,
      [&](std::vector<std::byte>& buf) {
        Backoff b;
        while (ring.try_push(buf) != Status::kOk) b.pause();
        return true;
      },
      [&](std::vector<std::byte>& buf) {
        Backoff b;
        std::size_t n = 0;
        while (ring.try_pop(buf, n) != Status::kOk) b.pause();
        return true;
      });
}

template <std::size_t N>
void BM_BoostSpscQueue(benchmark::State& state) {
  boost::lockfree::spsc_queue<Msg<N>> queue(footprint_for(N) / N);
  run_transfer(state, 1, 1, messages_for(N), N,
      [&](std::vector<std::byte>& buf) {
        Backoff b;
        while (!queue.push(*reinterpret_cast<const Msg<N>*>(buf.data()))) b.pause();
        return true;
      },
      [&](std::vector<std::byte>& buf) {
        Backoff b;
        while (!queue.pop(*reinterpret_cast<Msg<N>*>(buf.data()))) b.pause();
        return true;
      });
}

template <std::size_t N>
void BM_MutexCondvarQueue(benchmark::State& state) {
  MutexQueue queue(footprint_for(N) / N);
  run_transfer(state, 1, 1, messages_for(N), N,
      [&](std::vector<std::byte>& buf) {
        queue.push(buf.data(), buf.size());
        return true;
      },
      [&](std::vector<std::byte>& buf) { return queue.pop(buf.data()) == buf.size(); });
}

ChannelConfig channel_config(std::size_t bytes) {
  ChannelConfig c;
  c.capacity = std::uint64_t{1} << 30;  // bounded by bytes, like the other queues
  c.max_bytes = bytes;
  return c;
}

template <std::size_t N>
void BM_XchanChannel(benchmark::State& state) {
  Sender tx;
  Receiver rx;
  if (make_channel(channel_config(footprint_for(N)), tx, rx) != Status::kOk) {
    state.SkipWithError("channel set-up failed");
    return;
  }
  run_transfer(state, 1, 1, messages_for(N), N,
      [&](std::vector<std::byte>& buf) { return tx.send(buf, Deadline::never()) == Status::kOk; },
      [&](std::vector<std::byte>& buf) {
        // The same copy as the ring's try_pop, so that the two differ only in the channel.
        return rx.recv_with(
                   [&](std::span<const std::byte> in) { core::copy_from_ring(buf.data(), in.data(), in.size()); },
                   Deadline::never()) == Status::kOk;
      });
}

// Batches of 64: send_many / recv_many (one lock, one publish, one wake-up per batch).
void BM_XchanChannelBatched(benchmark::State& state) {
  constexpr std::size_t kBatch = 64;
  constexpr std::size_t kBytes = 64;
  Sender tx;
  Receiver rx;
  if (make_channel(channel_config(footprint_for(kBytes)), tx, rx) != Status::kOk) {
    state.SkipWithError("channel set-up failed");
    return;
  }
  run_transfer(state, 1, 1, messages_for(kBytes) / kBatch, kBytes * kBatch,
      [&](std::vector<std::byte>& buf) {
        std::array<std::span<const std::byte>, kBatch> views;
        for (std::size_t i = 0; i < kBatch; ++i) views[i] = std::span(buf).subspan(i * kBytes, kBytes);
        std::size_t sent = 0;
        return tx.send_many(views, Deadline::never(), sent) == Status::kOk;
      },
      [&](std::vector<std::byte>& buf) {
        for (std::size_t got_total = 0; got_total < kBatch;) {
          std::size_t got = 0;
          const Status s = rx.recv_many_with(kBatch - got_total,
              [&](std::span<const std::byte> in) {
                std::memcpy(buf.data() + (got_total++) * kBytes, in.data(), in.size());
              },
              Deadline::never(), got);
          if (s != Status::kOk) return false;
        }
        return true;
      });
  // Report messages, not batches.
  state.counters["msgs_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations() * (messages_for(kBytes) / kBatch) * kBatch),
      benchmark::Counter::kIsRate);
}

void BM_XchanMpmcRing(benchmark::State& state) {
  constexpr std::size_t kBytes = 64;
  const auto producers = static_cast<unsigned>(state.range(0));
  const auto consumers = static_cast<unsigned>(state.range(1));
  Storage<core::MpmcRingHeader> mem(footprint_for(kBytes));
  core::MpmcByteRing ring;
  if (core::MpmcByteRing::init(mem.header, mem.bytes(), 1 << 30) != Status::kOk ||
      ring.attach(mem.header, mem.bytes()) != Status::kOk) {
    state.SkipWithError("ring set-up failed");
    return;
  }
  run_transfer(state, producers, consumers, messages_for(kBytes) / producers, kBytes,
      [&](std::vector<std::byte>& buf) {
        Backoff b;
        while (ring.try_push(buf) != Status::kOk) b.pause();
        return true;
      },
      [&](std::vector<std::byte>& buf) {
        Backoff b;
        std::size_t n = 0;
        while (ring.try_pop(buf, n) != Status::kOk) b.pause();
        return true;
      });
}

void BM_BoostLockfreeQueue(benchmark::State& state) {
  constexpr std::size_t kBytes = 64;
  const auto producers = static_cast<unsigned>(state.range(0));
  const auto consumers = static_cast<unsigned>(state.range(1));
  boost::lockfree::queue<Msg<kBytes>> queue(footprint_for(kBytes) / kBytes);
  run_transfer(state, producers, consumers, messages_for(kBytes) / producers, kBytes,
      [&](std::vector<std::byte>& buf) {
        Backoff b;
        while (!queue.bounded_push(*reinterpret_cast<const Msg<kBytes>*>(buf.data()))) b.pause();
        return true;
      },
      [&](std::vector<std::byte>& buf) {
        Backoff b;
        while (!queue.pop(*reinterpret_cast<Msg<kBytes>*>(buf.data()))) b.pause();
        return true;
      });
}

constexpr std::size_t k64 = 64;
constexpr std::size_t k4K = 4096;
constexpr std::size_t k1M = std::size_t{1} << 20;

BENCHMARK(BM_XchanSpscRing<k64>)->UseManualTime();
BENCHMARK(BM_BoostSpscQueue<k64>)->UseManualTime();
BENCHMARK(BM_XchanChannel<k64>)->UseManualTime();
BENCHMARK(BM_XchanChannelBatched)->UseManualTime();
BENCHMARK(BM_MutexCondvarQueue<k64>)->UseManualTime();
BENCHMARK(BM_XchanSpscRing<k4K>)->UseManualTime();
BENCHMARK(BM_BoostSpscQueue<k4K>)->UseManualTime();
BENCHMARK(BM_XchanChannel<k4K>)->UseManualTime();
BENCHMARK(BM_MutexCondvarQueue<k4K>)->UseManualTime();
BENCHMARK(BM_XchanSpscRing<k1M>)->UseManualTime();
BENCHMARK(BM_BoostSpscQueue<k1M>)->UseManualTime();
BENCHMARK(BM_XchanChannel<k1M>)->UseManualTime();
BENCHMARK(BM_MutexCondvarQueue<k1M>)->UseManualTime();
BENCHMARK(BM_XchanMpmcRing)->Args({1, 1})->Args({2, 2})->UseManualTime();
BENCHMARK(BM_BoostLockfreeQueue)->Args({1, 1})->Args({2, 2})->UseManualTime();

}  // namespace
}  // namespace xchan::bench
