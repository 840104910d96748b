// MpmcByteRing: several producers and consumers; every message exactly once, intact, in
// per-producer order.
#include "xchan/core/mpmc_byte_ring.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "ring_fixture.hpp"

namespace xchan::core {
namespace {

struct OwnedMpmcRing {
  OwnedMpmcRing(std::size_t data_bytes, std::uint64_t max_records) : data(data_bytes / 8) {
    auto bytes = std::as_writable_bytes(std::span<std::uint64_t>(data));
    status = MpmcByteRing::init(header, bytes, max_records);
    if (status == Status::kOk) status = ring.attach(header, bytes);
  }
  MpmcRingHeader header{};
  std::vector<std::uint64_t> data;
  MpmcByteRing ring;
  Status status = Status::kInvalidArgument;
};

// Message layout: producer id (u32), sequence (u32), then a pattern seeded by both.
std::vector<std::byte> make_message(std::uint32_t producer, std::uint32_t seq) {
  std::vector<std::byte> msg(8 + (seq * 7 + producer) % 120);
  std::memcpy(msg.data(), &producer, 4);
  std::memcpy(msg.data() + 4, &seq, 4);
  test::fill_pattern(std::span(msg).subspan(8), (std::uint64_t{producer} << 32) | seq);
  return msg;
}

TEST(MpmcByteRingTest, SingleThreadedPushPopRoundTrips) {
  OwnedMpmcRing r(1024, 8);
  ASSERT_EQ(r.status, Status::kOk);
  ASSERT_EQ(r.ring.try_push(make_message(1, 2)), Status::kOk);
  std::vector<std::byte> out(512);
  std::size_t n = 0;
  ASSERT_EQ(r.ring.try_pop(out, n), Status::kOk);
  out.resize(n);
  EXPECT_EQ(out, make_message(1, 2));
  EXPECT_EQ(r.ring.try_pop(out, n), Status::kEmpty);
}

TEST(MpmcByteRingTest, ManyProducersManyConsumersDeliverExactlyOnceInProducerOrder) {
  OwnedMpmcRing r(8192, 128);
  constexpr std::uint32_t kProducers = 3;
  constexpr std::uint32_t kConsumers = 3;
  constexpr std::uint32_t kPerProducer = 40'000;
  std::vector<std::vector<std::uint8_t>> seen(kProducers, std::vector<std::uint8_t>(kPerProducer));
  std::atomic<std::uint64_t> consumed{0};
  std::atomic<bool> failed{false};

  std::vector<std::jthread> threads;
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (std::uint32_t i = 0; i < kPerProducer; ++i) {
        const auto msg = make_message(p, i);
        while (r.ring.try_push(msg) != Status::kOk) std::this_thread::yield();
      }
    });
  }
  for (std::uint32_t c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&] {
      // Per-producer order as seen by this consumer must be increasing.
      std::vector<std::int64_t> last(kProducers, -1);
      std::vector<std::byte> buf(4096);
      while (consumed.load(std::memory_order_relaxed) < std::uint64_t{kProducers} * kPerProducer) {
        std::size_t n = 0;
        if (r.ring.try_pop(buf, n) != Status::kOk) {
          std::this_thread::yield();
          continue;
        }
        std::uint32_t p = 0;
        std::uint32_t seq = 0;
        std::memcpy(&p, buf.data(), 4);
        std::memcpy(&seq, buf.data() + 4, 4);
        const auto expected = make_message(p < kProducers ? p : 0, seq);
        if (p >= kProducers || seq >= kPerProducer || n != expected.size() ||
            std::memcmp(buf.data(), expected.data(), n) != 0 || seq <= last[p]) {
          failed = true;
        } else {
          last[p] = seq;
          ++seen[p][seq];  // each slot written by exactly one consumer if delivered once
        }
        consumed.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(failed.load());
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    for (std::uint32_t i = 0; i < kPerProducer; ++i) ASSERT_EQ(seen[p][i], 1) << p << "/" << i;
  }
}

}  // namespace
}  // namespace xchan::core
