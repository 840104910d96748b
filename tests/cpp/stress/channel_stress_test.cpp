// Blocking channels under load: several producers and consumers, small capacities that
// force constant parking, every message checked for exactly-once delivery, intact bytes
// and per-producer order; consumers stop only by seeing kClosed after the last sender.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "ring_fixture.hpp"
#include "xchan/channel/ends.hpp"

namespace xchan {
namespace {

struct Params {
  std::uint32_t producers;
  std::uint32_t consumers;
  std::uint64_t capacity;
  std::uint64_t max_bytes;
  std::uint32_t spin;
  std::uint32_t per_producer;
  bool batched;
};

std::vector<std::byte> make_message(std::uint32_t producer, std::uint32_t seq) {
  std::vector<std::byte> msg(8 + (seq * 13 + producer * 5) % 300);
  std::memcpy(msg.data(), &producer, 4);
  std::memcpy(msg.data() + 4, &seq, 4);
  test::fill_pattern(std::span(msg).subspan(8), (std::uint64_t{producer} << 32) | seq);
  return msg;
}

class ChannelStressTest : public ::testing::TestWithParam<Params> {};

TEST_P(ChannelStressTest, EveryMessageArrivesOnceIntactInProducerOrder) {
  const Params prm = GetParam();
  ChannelConfig config;
  config.capacity = prm.capacity;
  config.max_bytes = prm.max_bytes;
  config.spin_iterations = prm.spin;
  Sender tx;
  Receiver rx;
  ASSERT_EQ(make_channel(config, tx, rx), Status::kOk);

  std::vector<std::vector<std::atomic<std::uint8_t>>> seen(prm.producers);
  for (auto& v : seen) v = std::vector<std::atomic<std::uint8_t>>(prm.per_producer);
  std::atomic<std::uint64_t> bad{0};
  std::atomic<std::uint64_t> received{0};

  std::vector<std::jthread> threads;
  for (std::uint32_t p = 0; p < prm.producers; ++p) {
    threads.emplace_back([&, p, mine = Sender(tx)]() mutable {
      if (prm.batched) {
        for (std::uint32_t i = 0; i < prm.per_producer; i += 16) {
          std::vector<std::vector<std::byte>> msgs;
          for (std::uint32_t j = i; j < std::min(i + 16, prm.per_producer); ++j) msgs.push_back(make_message(p, j));
          std::vector<std::span<const std::byte>> views(msgs.begin(), msgs.end());
          std::size_t sent = 0;
          const Status s = mine.send_many(views, Deadline::after(std::chrono::seconds(30)), sent);
          if (s != Status::kOk) {
            ADD_FAILURE() << "send_many returned " << to_string(s);
            ++bad;
          }
        }
      } else {
        for (std::uint32_t i = 0; i < prm.per_producer; ++i) {
          const Status s = mine.send(make_message(p, i), Deadline::after(std::chrono::seconds(30)));
          if (s != Status::kOk) {
            ADD_FAILURE() << "send returned " << to_string(s);
            ++bad;
          }
        }
      }
      mine.close();
    });
  }
  tx.close();  // only the producers' clones keep the channel open now

  for (std::uint32_t c = 0; c < prm.consumers; ++c) {
    threads.emplace_back([&, mine = Receiver(rx)]() mutable {
      std::vector<std::int64_t> last(prm.producers, -1);
      auto check = [&](std::span<const std::byte> in) {
        std::uint32_t p = 0;
        std::uint32_t seq = 0;
        if (in.size() < 8) {
          ++bad;
          return;
        }
        std::memcpy(&p, in.data(), 4);
        std::memcpy(&seq, in.data() + 4, 4);
        if (p >= prm.producers || seq >= prm.per_producer || seq <= last[p]) {
          ++bad;
          return;
        }
        const auto expected = make_message(p, seq);
        if (expected.size() != in.size() || std::memcmp(expected.data(), in.data(), in.size()) != 0) ++bad;
        last[p] = seq;
        seen[p][seq].fetch_add(1, std::memory_order_relaxed);
        received.fetch_add(1, std::memory_order_relaxed);
      };
      for (;;) {
        std::size_t got = 0;
        const Status s = mine.recv_many_with(prm.batched ? 32 : 1, check,
                                             Deadline::after(std::chrono::seconds(30)), got);
        if (s == Status::kClosed) break;
        if (s != Status::kOk) {
          ADD_FAILURE() << "recv returned " << to_string(s);
          ++bad;
          break;
        }
      }
    });
  }
  rx.close();
  for (auto& t : threads) t.join();

  EXPECT_EQ(bad.load(), 0U);
  EXPECT_EQ(received.load(), std::uint64_t{prm.producers} * prm.per_producer);
  for (std::uint32_t p = 0; p < prm.producers; ++p) {
    for (std::uint32_t i = 0; i < prm.per_producer; ++i) {
      ASSERT_EQ(seen[p][i].load(), 1) << "producer " << p << " message " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ChannelStressTest,
    ::testing::Values(
        Params{1, 1, 1024, 1 << 16, 4096, 100'000, false},  // SPSC, mostly spinning
        Params{1, 1, 2, 4096, 0, 20'000, false},            // SPSC, parks on every message
        Params{4, 1, 8, 4096, 16, 10'000, false},           // fan-in
        Params{1, 4, 8, 4096, 16, 40'000, false},           // fan-out
        Params{3, 3, 4, 8192, 0, 10'000, false},            // MPMC, always parking
        Params{3, 3, 64, 1 << 14, 64, 20'000, true}));      // MPMC batches

// A side with one end runs without its lock. Here a second sender and a second receiver
// keep opening and closing (each flipping its side to locked and back) while the first
// pair moves messages lock-free; nothing may be lost, duplicated or reordered.
TEST(ChannelSideTest, EndsOpeningAndClosingDuringLockFreeTrafficLoseNothing) {
  ChannelConfig config;
  config.capacity = 1024;  // rarely full: the senders spend their time in critical sections
  config.max_bytes = 1 << 22;
  config.spin_iterations = 64;
  Sender tx;
  Receiver rx;
  ASSERT_EQ(make_channel(config, tx, rx), Status::kOk);
  const std::shared_ptr<Channel> ch = tx.channel();
  constexpr std::uint32_t kMain = 40'000;
  constexpr std::uint32_t kRounds = 2'000;
  constexpr std::uint32_t kPerRound = 4;
  // Long critical sections (a 4 KiB copy each) and cheap checks widen the window a broken
  // hand-over would need: a new sender writing while the lock-free one is still inside.
  // Each message carries (producer, seq) at both ends, so overwritten or torn records show.
  constexpr std::size_t kSize = 4096;
  auto stamp = [](std::vector<std::byte>& msg, std::uint32_t producer, std::uint32_t seq) {
    std::memcpy(msg.data(), &producer, 4);
    std::memcpy(msg.data() + 4, &seq, 4);
    std::memcpy(msg.data() + kSize - 8, msg.data(), 8);
  };
  const auto deadline = [] { return Deadline::after(std::chrono::seconds(30)); };
  std::atomic<std::uint64_t> bad{0};
  std::jthread producer([&] {  // the first sender: lock-free while it is the only one
    std::vector<std::byte> msg(kSize, std::byte{0x5a});
    for (std::uint32_t i = 0; i < kMain; ++i) {
      stamp(msg, 0, i);
      if (tx.send(msg, deadline()) != Status::kOk) ++bad;
    }
    tx.close();
  });
  std::jthread visitor([&] {  // senders that come and go, opened from the channel itself
    std::vector<std::byte> msg(kSize, std::byte{0xa5});
    for (std::uint32_t r = 0; r < kRounds; ++r) {
      Sender extra(ch);
      for (std::uint32_t i = 0; i < kPerRound; ++i) {
        stamp(msg, 1, r * kPerRound + i);
        if (extra.send(msg, deadline()) != Status::kOk) ++bad;
      }
    }  // each closes: the producer's side may go back to lock-free
  });
  std::atomic<bool> stop_peeking{false};
  std::jthread peeker([&] {  // receivers that come and go; they take nothing
    while (!stop_peeking.load()) {
      Receiver extra(ch);
      std::this_thread::yield();
    }
  });

  std::vector<std::int64_t> last(2, -1);
  std::uint64_t received = 0;
  auto check = [&](std::span<const std::byte> in) {
    std::uint32_t p = 0;
    std::uint32_t seq = 0;
    if (in.size() != kSize || std::memcmp(in.data(), in.data() + kSize - 8, 8) != 0) {
      ++bad;
      return;
    }
    std::memcpy(&p, in.data(), 4);
    std::memcpy(&seq, in.data() + 4, 4);
    const auto fill = p == 0 ? std::byte{0x5a} : std::byte{0xa5};
    if (p > 1 || static_cast<std::int64_t>(seq) != last[p] + 1 || in[8] != fill || in[kSize / 2] != fill ||
        in[kSize - 9] != fill) {
      ++bad;
      return;
    }
    last[p] = seq;
    ++received;
  };
  // By count, not until kClosed: between two visitors after the producer is done, no
  // sender may be open for a moment.
  while (received < std::uint64_t{kMain} + kRounds * kPerRound && bad.load() == 0) {
    const Status s = rx.recv_with(check, deadline());
    if (s == Status::kClosed) {
      std::this_thread::yield();
    } else if (s != Status::kOk) {
      ADD_FAILURE() << "recv returned " << to_string(s);
      break;
    }
  }
  // On a failure, closing the last receiver makes the senders' waits end at once.
  stop_peeking = true;
  peeker.join();
  rx.close();
  producer.join();
  visitor.join();
  EXPECT_EQ(bad.load(), 0U);
  EXPECT_EQ(received, std::uint64_t{kMain} + kRounds * kPerRound);
  EXPECT_EQ(last[0], kMain - 1);
  EXPECT_EQ(last[1], kRounds * kPerRound - 1);
}

}  // namespace
}  // namespace xchan
