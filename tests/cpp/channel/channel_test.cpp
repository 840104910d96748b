// Channel with Sender/Receiver: every operation and edge, timeouts, disconnection and
// prompt wake-ups of parked peers.
#include "xchan/channel/ends.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <optional>
#include <chrono>
#include <thread>

#include "ring_fixture.hpp"

// Allocation failure on demand, to test what a receive into a vector does when the vector
// cannot grow: while a thread's `fail_allocations_from` is nonzero, its allocations of at
// least that many bytes throw std::bad_alloc. This replaces the global operator new of
// this test program only.
namespace {
thread_local std::size_t fail_allocations_from = 0;
}  // namespace

// Not inlined, new nor delete: GCC would then pair malloc() with operator delete, or
// operator new with free(), and warn.
[[gnu::noinline]] void* operator new(std::size_t n) {
  if (fail_allocations_from != 0 && n >= fail_allocations_from) throw std::bad_alloc();
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace xchan {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::matches_pattern;
using test::pattern;

struct Pair {
  explicit Pair(ChannelConfig config = {}) { status = make_channel(config, tx, rx); }
  Sender tx;
  Receiver rx;
  Status status;
};

ChannelConfig small(std::uint64_t capacity, std::uint64_t bytes = 4096) {
  ChannelConfig c;
  c.capacity = capacity;
  c.max_bytes = bytes;
  c.spin_iterations = 64;
  return c;
}

TEST(ChannelTest, BadConfigIsRejected) {
  Sender tx;
  Receiver rx;
  ChannelConfig c;
  c.capacity = 0;
  EXPECT_EQ(make_channel(c, tx, rx), Status::kInvalidArgument);
  c = {};
  c.max_bytes = std::uint64_t{1} << 50;
  EXPECT_EQ(make_channel(c, tx, rx), Status::kInvalidArgument);
  EXPECT_TRUE(tx.is_closed());
  EXPECT_TRUE(rx.is_closed());
}

TEST(ChannelTest, MaxBytesIsRoundedUpToAPowerOfTwo) {
  Pair p(small(8, 5000));
  ASSERT_EQ(p.status, Status::kOk);
  EXPECT_EQ(p.tx.channel()->stats().max_bytes, 8192U);
  EXPECT_EQ(p.tx.channel()->max_message(), max_message_for(5000));
  EXPECT_EQ(max_message_for(5000), 8192U / 2 - 8);
}

TEST(ChannelTest, SentMessageIsReceivedIntact) {
  Pair p(small(8));
  ASSERT_EQ(p.tx.try_send(pattern(100, 7)), Status::kOk);
  std::vector<std::byte> out;
  ASSERT_EQ(p.rx.try_recv(out), Status::kOk);
  EXPECT_EQ(out.size(), 100U);
  EXPECT_TRUE(matches_pattern(out, 7));
  EXPECT_EQ(p.rx.try_recv(out), Status::kEmpty);
}

TEST(ChannelTest, ZeroLengthAndMaximumLengthMessagesPass) {
  Pair p(small(8));
  const std::size_t max = p.tx.channel()->max_message();
  ASSERT_EQ(p.tx.try_send({}), Status::kOk);
  ASSERT_EQ(p.tx.try_send(pattern(max, 1)), Status::kOk);
  std::vector<std::byte> out;
  ASSERT_EQ(p.rx.try_recv(out), Status::kOk);
  EXPECT_TRUE(out.empty());
  ASSERT_EQ(p.rx.try_recv(out), Status::kOk);
  EXPECT_EQ(out.size(), max);
  EXPECT_TRUE(matches_pattern(out, 1));
}

TEST(ChannelTest, OversizeMessageIsTooLargeEvenWhenBlocking) {
  Pair p(small(8));
  const auto big = pattern(p.tx.channel()->max_message() + 1, 1);
  EXPECT_EQ(p.tx.try_send(big), Status::kTooLarge);
  const auto start = Clock::now();
  EXPECT_EQ(p.tx.send(big, Deadline::never()), Status::kTooLarge);  // never waits for it
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_EQ(p.tx.try_send(pattern(8, 1)), Status::kOk);  // channel still usable
}

TEST(ChannelTest, CapacityBoundsMessagesInFlight) {
  Pair p(small(3));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(p.tx.try_send(pattern(1, 1)), Status::kOk);
  EXPECT_EQ(p.tx.try_send(pattern(1, 1)), Status::kFull);
  EXPECT_FALSE(p.tx.channel()->writable(1));
}

TEST(ChannelTest, BytesBoundMessagesInFlight) {
  Pair p(small(1000, 4096));
  int sent = 0;
  while (p.tx.try_send(pattern(1000, 1)) == Status::kOk) ++sent;
  EXPECT_EQ(sent, 4);  // 4 x 1008-byte records in a 4096-byte buffer
}

// One 1000-byte message sent and taken, then 64-byte messages with nobody receiving: the
// ring wraps early at the first 256 KiB boundary and the room past its padding is held
// until the receiver passes it. The sender must get it back instead of failing (or
// blocking for good) with most of the channel empty.
constexpr std::uint64_t kBurstBytes = 1 << 20;  // four windows
ChannelConfig burst_config() { return small(1 << 20, kBurstBytes); }

void send_and_take_one(Pair& p) {
  ASSERT_EQ(p.tx.try_send(pattern(1000, 0)), Status::kOk);
  std::vector<std::byte> out;
  ASSERT_EQ(p.rx.try_recv(out), Status::kOk);
}

void expect_all_in_order(Receiver& rx, std::uint64_t n) {
  std::vector<std::byte> out;
  for (std::uint64_t i = 0; i < n; ++i) {
    ASSERT_EQ(rx.try_recv(out), Status::kOk) << i;
    ASSERT_TRUE(matches_pattern(out, i)) << i;
  }
  EXPECT_EQ(rx.try_recv(out), Status::kEmpty);
}

/// After a drain, sends 64-byte messages with send(tx, message) until it fails: they must
/// fill the whole buffer (one undo) and arrive in order.
template <class Send>
void expect_a_burst_to_fill_the_buffer(Send send) {
  Pair p(burst_config());
  send_and_take_one(p);
  std::uint64_t n = 0;
  while (send(p.tx, pattern(64, n)) == Status::kOk) ++n;
  EXPECT_GE(n * 72 + 2 * 72, kBurstBytes);
  EXPECT_EQ(p.tx.channel()->stats().wraps_undone, 1U);
  expect_all_in_order(p.rx, n);
}

TEST(ChannelTest, TrySendAfterADrainFillsTheWholeBuffer) {
  expect_a_burst_to_fill_the_buffer([](Sender& tx, std::span<const std::byte> m) { return tx.try_send(m); });
}

TEST(ChannelTest, BlockingSendAfterADrainTakesTheRoomBack) {
  expect_a_burst_to_fill_the_buffer(
      [](Sender& tx, std::span<const std::byte> m) { return tx.send(m, Deadline::after(100ms)); });
}

TEST(ChannelTest, RoomIsTakenBackFromAnIdleReceiverInAnotherThread) {
  // The receiver's thread holds its end (lock-free, one receiver) but does not receive
  // until the burst is in: taking the room back must wait out that side's user.
  Pair p(burst_config());
  send_and_take_one(p);
  std::atomic<bool> burst_sent{false};
  std::uint64_t n = 0;
  std::jthread receiver([&] {
    while (!burst_sent.load()) std::this_thread::sleep_for(1ms);
    expect_all_in_order(p.rx, n);
  });
  Status s = Status::kOk;
  while (n * 72 + 4 * 72 < kBurstBytes && (s = p.tx.send(pattern(64, n), Deadline::after(10s))) == Status::kOk) {
    ++n;
  }
  EXPECT_EQ(s, Status::kOk) << "after " << n;
  EXPECT_EQ(p.tx.channel()->stats().wraps_undone, 1U);
  burst_sent.store(true);
  receiver.join();
}

TEST(ChannelTest, TwoSendersBurstingAfterADrainFillTheBufferInOrder) {
  // Two sender threads (the producer side locks) burst with nobody receiving; whichever
  // finds the room held back takes it back, once, under the producer lock. Then every
  // message arrives, each sender's in its order.
  Pair p(burst_config());
  send_and_take_one(p);
  std::atomic<std::uint64_t> total{0};
  auto burst = [&](Sender tx, std::uint64_t id) {
    std::uint64_t seq = 0;
    while (tx.try_send(pattern(64, (id << 32) | seq)) == Status::kOk) ++seq;
    total += seq;
  };
  std::jthread a(burst, p.tx, 1);
  std::jthread b(burst, p.tx, 2);
  a.join();
  b.join();
  EXPECT_GE(total.load() * 72 + 2 * 72, kBurstBytes);
  EXPECT_EQ(p.tx.channel()->stats().wraps_undone, 1U);
  std::uint64_t next[3] = {0, 0, 0};
  std::vector<std::byte> out;
  for (std::uint64_t i = 0; i < total.load(); ++i) {
    ASSERT_EQ(p.rx.try_recv(out), Status::kOk) << i;
    bool matched = false;
    for (std::uint64_t id : {1, 2}) {
      if (matches_pattern(out, (id << 32) | next[id])) {
        ++next[id];
        matched = true;
        break;
      }
    }
    ASSERT_TRUE(matched) << "message " << i << " out of order or corrupt";
  }
  EXPECT_EQ(p.rx.try_recv(out), Status::kEmpty);
}

TEST(ChannelTest, RoomTakenBackWhileAReceiverComesAndGoesLosesNothing) {
  // A receiver that takes a few messages now and then, pausing longer than a sender waits
  // before taking room back: the undo races with receives and with receiver clones (the
  // side switching between lock-free and locked). Every message arrives once, in order.
  constexpr std::uint64_t kMessages = 60'000;
  Pair p(small(1 << 20, 512 * 1024));
  std::jthread receiver([&] {
    std::vector<std::byte> out;
    std::uint64_t got = 0;
    while (got < kMessages) {
      std::optional<Receiver> clone;
      if (got % 3 == 0) clone.emplace(p.rx);  // a second end: the side locks
      for (int i = 0; i < 7000 && got < kMessages; ++i) {
        Receiver& rx = clone && i % 2 == 0 ? *clone : p.rx;
        ASSERT_EQ(rx.recv(out, Deadline::after(10s)), Status::kOk) << got;
        ASSERT_TRUE(matches_pattern(out, got)) << got;
        ++got;
      }
      std::this_thread::sleep_for(5ms);
    }
  });
  for (std::uint64_t i = 0; i < kMessages; ++i) {
    ASSERT_EQ(p.tx.send(pattern(8 + i % 120, i), Deadline::after(10s)), Status::kOk);
  }
  receiver.join();
  RecordProperty("wraps_undone", static_cast<int>(p.tx.channel()->stats().wraps_undone));
}

TEST(ChannelTest, ZeroTimeoutTriesOnce) {
  Pair p(small(1));
  std::vector<std::byte> out;
  const auto start = Clock::now();
  EXPECT_EQ(p.rx.recv(out, Deadline::now()), Status::kTimeout);
  ASSERT_EQ(p.tx.send(pattern(4, 1), Deadline::now()), Status::kOk);
  EXPECT_EQ(p.tx.send(pattern(4, 1), Deadline::now()), Status::kTimeout);
  EXPECT_LT(Clock::now() - start, 100ms);
  EXPECT_EQ(p.rx.recv(out, Deadline::now()), Status::kOk);
}

TEST(DeadlineTest, KindsAreTellable) {
  EXPECT_TRUE(Deadline::now().is_now());
  EXPECT_TRUE(Deadline::now().expired());
  EXPECT_TRUE(Deadline::after(0ms).is_now());
  EXPECT_TRUE(Deadline::after_seconds(0.0).is_now());
  EXPECT_FALSE(Deadline::after(10s).is_now());
  EXPECT_FALSE(Deadline::after(10s).expired());
  EXPECT_TRUE(Deadline::never().is_never());
  EXPECT_FALSE(Deadline::never().is_now());
  EXPECT_FALSE(Deadline::never().expired());
}

TEST(ChannelTest, RecvTimesOutAfterItsTimeout) {
  Pair p(small(1));
  std::vector<std::byte> out;
  const auto start = Clock::now();
  EXPECT_EQ(p.rx.recv(out, Deadline::after(50ms)), Status::kTimeout);
  EXPECT_GE(Clock::now() - start, 50ms);
}

TEST(ChannelTest, SendTimesOutWhileFull) {
  Pair p(small(1));
  ASSERT_EQ(p.tx.try_send(pattern(4, 1)), Status::kOk);
  const auto start = Clock::now();
  EXPECT_EQ(p.tx.send(pattern(4, 2), Deadline::after(50ms)), Status::kTimeout);
  EXPECT_GE(Clock::now() - start, 50ms);
}

TEST(ChannelTest, ParkedReceiverWakesWhenAMessageArrives) {
  Pair p(small(4));
  std::jthread sender([&] {
    std::this_thread::sleep_for(30ms);
    ASSERT_EQ(p.tx.send(pattern(16, 3), Deadline::never()), Status::kOk);
  });
  std::vector<std::byte> out;
  EXPECT_EQ(p.rx.recv(out, Deadline::after(10s)), Status::kOk);
  EXPECT_TRUE(matches_pattern(out, 3));
  sender.join();
}

TEST(ChannelTest, ParkedSenderWakesWhenRoomAppears) {
  Pair p(small(1));
  ASSERT_EQ(p.tx.try_send(pattern(4, 1)), Status::kOk);
  std::jthread receiver([&] {
    std::this_thread::sleep_for(30ms);
    std::vector<std::byte> out;
    ASSERT_EQ(p.rx.try_recv(out), Status::kOk);
  });
  EXPECT_EQ(p.tx.send(pattern(4, 2), Deadline::after(10s)), Status::kOk);
  receiver.join();
  EXPECT_EQ(p.tx.channel()->stats().queued, 1U);
}

TEST(ChannelTest, ReceiversDrainThenSeeClosedWhenAllSendersAreGone) {
  Pair p(small(8));
  Sender second = p.tx;  // clone
  ASSERT_EQ(p.tx.try_send(pattern(4, 1)), Status::kOk);
  ASSERT_EQ(second.try_send(pattern(4, 2)), Status::kOk);
  p.tx.close();
  EXPECT_EQ(p.rx.channel()->senders(), 1U);
  second.close();
  std::vector<std::byte> out;
  EXPECT_EQ(p.rx.recv(out, Deadline::never()), Status::kOk);
  EXPECT_TRUE(matches_pattern(out, 1));
  EXPECT_EQ(p.rx.recv(out, Deadline::never()), Status::kOk);
  EXPECT_TRUE(matches_pattern(out, 2));
  EXPECT_EQ(p.rx.recv(out, Deadline::never()), Status::kClosed);
  EXPECT_EQ(p.rx.try_recv(out), Status::kClosed);
}

TEST(ChannelTest, SendFailsWithClosedWhenAllReceiversAreGone) {
  Pair p(small(8));
  p.rx.close();
  EXPECT_EQ(p.tx.try_send(pattern(4, 1)), Status::kClosed);
  EXPECT_EQ(p.tx.send(pattern(4, 1), Deadline::never()), Status::kClosed);
}

TEST(ChannelTest, ClosedHandleReportsClosed) {
  Pair p(small(8));
  p.tx.close();
  p.tx.close();  // idempotent
  EXPECT_TRUE(p.tx.is_closed());
  EXPECT_EQ(p.tx.try_send(pattern(4, 1)), Status::kClosed);
  p.rx.close();
  std::vector<std::byte> out;
  EXPECT_EQ(p.rx.try_recv(out), Status::kClosed);
}

TEST(ChannelTest, LastSenderClosingWakesParkedReceiverPromptly) {
  Pair p(small(8));
  std::jthread closer([&] {
    std::this_thread::sleep_for(30ms);
    p.tx.close();
  });
  const auto start = Clock::now();
  std::vector<std::byte> out;
  EXPECT_EQ(p.rx.recv(out, Deadline::after(10s)), Status::kClosed);
  EXPECT_LT(Clock::now() - start, 2s);
  closer.join();
}

TEST(ChannelTest, LastReceiverClosingWakesParkedSenderPromptly) {
  Pair p(small(1));
  ASSERT_EQ(p.tx.try_send(pattern(4, 1)), Status::kOk);
  std::jthread closer([&] {
    std::this_thread::sleep_for(30ms);
    p.rx.close();
  });
  const auto start = Clock::now();
  EXPECT_EQ(p.tx.send(pattern(4, 2), Deadline::after(10s)), Status::kClosed);
  EXPECT_LT(Clock::now() - start, 2s);
  closer.join();
}

TEST(ChannelTest, ClonesCountAsEnds) {
  Pair p(small(8));
  {
    Receiver rx2 = p.rx;
    Receiver rx3(p.rx.channel());
    EXPECT_EQ(p.rx.channel()->receivers(), 3U);
  }
  EXPECT_EQ(p.rx.channel()->receivers(), 1U);
  Sender moved = std::move(p.tx);
  EXPECT_EQ(moved.channel()->senders(), 1U);
  EXPECT_TRUE(p.tx.is_closed());
}

TEST(ChannelTest, ASideWithOneEndRunsWithoutItsLock) {
  Pair p(small(8));
  ASSERT_EQ(p.status, Status::kOk);
  auto stats = [&] { return p.tx.channel()->stats(); };
  if (!platform::process_barrier_available()) GTEST_SKIP() << "no membarrier here: both sides lock";
  EXPECT_TRUE(stats().lock_free_send);
  EXPECT_TRUE(stats().lock_free_recv);
  {
    Sender second(p.tx);
    EXPECT_FALSE(stats().lock_free_send);
    EXPECT_TRUE(stats().lock_free_recv);
    ASSERT_EQ(second.try_send(pattern(8, 1)), Status::kOk);
    ASSERT_EQ(p.tx.try_send(pattern(8, 2)), Status::kOk);
  }
  EXPECT_TRUE(stats().lock_free_send);  // one sender again
  {
    Receiver second(p.rx);
    EXPECT_FALSE(stats().lock_free_recv);
  }
  EXPECT_TRUE(stats().lock_free_recv);
  std::vector<std::byte> out;
  ASSERT_EQ(p.rx.try_recv(out), Status::kOk);
  EXPECT_TRUE(matches_pattern(out, 1));
  ASSERT_EQ(p.rx.try_recv(out), Status::kOk);
  EXPECT_TRUE(matches_pattern(out, 2));
}

TEST(ChannelTest, SendManyPublishesABatchInOrder) {
  Pair p(small(64, 1 << 16));
  std::vector<std::vector<std::byte>> msgs;
  for (std::uint64_t i = 0; i < 10; ++i) msgs.push_back(pattern(i * 5, i));
  std::vector<std::span<const std::byte>> views(msgs.begin(), msgs.end());
  std::size_t sent = 0;
  ASSERT_EQ(p.tx.send_many(views, Deadline::never(), sent), Status::kOk);
  EXPECT_EQ(sent, 10U);
  std::vector<std::vector<std::byte>> got;
  std::size_t n = 0;
  ASSERT_EQ(p.rx.recv_many_with(
                100, [&](std::span<const std::byte> in) { got.emplace_back(in.begin(), in.end()); },
                Deadline::never(), n),
            Status::kOk);
  ASSERT_EQ(n, 10U);
  for (std::uint64_t i = 0; i < 10; ++i) EXPECT_EQ(got[i], msgs[i]);
}

TEST(ChannelTest, SendManyStopsAtTheDeadlineWithTheSentPrefix) {
  Pair p(small(4));
  std::vector<std::vector<std::byte>> msgs(6, pattern(8, 1));
  std::vector<std::span<const std::byte>> views(msgs.begin(), msgs.end());
  std::size_t sent = 0;
  EXPECT_EQ(p.tx.send_many(views, Deadline::after(20ms), sent), Status::kTimeout);
  EXPECT_EQ(sent, 4U);
}

TEST(ChannelTest, RecvManyTakesAtMostMax) {
  Pair p(small(16));
  for (int i = 0; i < 5; ++i) ASSERT_EQ(p.tx.try_send(pattern(8, 1)), Status::kOk);
  std::size_t n = 0;
  ASSERT_EQ(p.rx.recv_many_with(3, [](std::span<const std::byte>) {}, Deadline::now(), n), Status::kOk);
  EXPECT_EQ(n, 3U);
  EXPECT_EQ(p.rx.channel()->stats().queued, 2U);
}

TEST(ChannelTest, StatsCountTraffic) {
  Pair p(small(16));
  for (int i = 0; i < 5; ++i) ASSERT_EQ(p.tx.try_send(pattern(8, 1)), Status::kOk);
  std::vector<std::byte> out;
  ASSERT_EQ(p.rx.try_recv(out), Status::kOk);
  const ChannelStats s = p.tx.channel()->stats();
  EXPECT_EQ(s.sent, 5U);
  EXPECT_EQ(s.received, 1U);
  EXPECT_EQ(s.queued, 4U);
  EXPECT_EQ(s.queued_bytes, 4U * 16U);
  EXPECT_EQ(s.capacity, 16U);
  EXPECT_EQ(s.senders, 1U);
  EXPECT_EQ(s.receivers, 1U);
  EXPECT_EQ(s.parked_receivers, 0U);
  // Sampled: nobody looked while 5 were in flight (the channel never filled, and no
  // window boundary was crossed), so the mark is what is in flight when asked.
  EXPECT_EQ(s.high_water, 4U);
  EXPECT_EQ(s.high_water_bytes, 4U * 16U);
}

TEST(ChannelTest, HighWaterIsExactAfterManyFillsToCapacity) {
  // Filled to capacity and drained 2,000 times, no send ever finding it full: the mark is
  // the capacity, and never falls in between.
  Pair p(small(8));
  std::vector<std::byte> out;
  std::uint64_t last = 0;
  for (std::uint64_t cycle = 0; cycle < 2000; ++cycle) {
    for (std::uint64_t i = 0; i < 8; ++i) ASSERT_EQ(p.tx.try_send(pattern(32, i)), Status::kOk);
    for (std::uint64_t i = 0; i < 8; ++i) {
      ASSERT_EQ(p.rx.try_recv(out), Status::kOk);
      ASSERT_TRUE(matches_pattern(out, i));
    }
    if (cycle % 100 == 99) {
      const std::uint64_t now = p.tx.channel()->stats().high_water;
      ASSERT_GE(now, last);
      last = now;
    }
  }
  const ChannelStats s = p.tx.channel()->stats();
  EXPECT_EQ(s.high_water, 8U);
  EXPECT_EQ(s.high_water_bytes, 8U * 40U);
  EXPECT_EQ(s.queued, 0U);
  EXPECT_EQ(s.queued_bytes, 0U);
}

TEST(ChannelTest, HighWaterIsExactAfterManyFillsOfTheBuffer) {
  // The same bounded by bytes: four 1000-byte messages fill a 4096-byte buffer.
  Pair p(small(1000, 4096));
  std::vector<std::byte> out;
  for (std::uint64_t cycle = 0; cycle < 2000; ++cycle) {
    for (std::uint64_t i = 0; i < 4; ++i) ASSERT_EQ(p.tx.try_send(pattern(1000, i)), Status::kOk);
    for (std::uint64_t i = 0; i < 4; ++i) ASSERT_EQ(p.rx.try_recv(out), Status::kOk);
  }
  const ChannelStats s = p.tx.channel()->stats();
  EXPECT_EQ(s.high_water, 4U);
  EXPECT_EQ(s.high_water_bytes, 4U * 1008U);
}

TEST(ChannelTest, QueuedBytesAreTheRecordsInFlightNotTheRoomAWrapSkips) {
  // A 64 MiB channel with 256 messages of 32 B in flight, one received and one sent at a
  // time: the sender wraps back to the front at every 256 KiB boundary, leaving a padding
  // of almost 64 MiB that holds no message. It once showed as 66,854,912 queued bytes.
  ChannelConfig config = small(1 << 20, std::uint64_t{64} << 20);
  Pair p(config);
  ASSERT_EQ(p.status, Status::kOk);
  constexpr std::uint64_t kInFlight = 256;
  constexpr std::uint64_t kRecord = 40;  // 8-byte header + 32 B
  for (std::uint64_t i = 0; i < kInFlight; ++i) ASSERT_EQ(p.tx.try_send(pattern(32, i)), Status::kOk);
  std::vector<std::byte> out;
  // Four windows' worth of traffic: several early wraps.
  for (std::uint64_t i = kInFlight; i < kInFlight + 4 * core::SpscByteRing::kHotWindowBytes / kRecord; ++i) {
    ASSERT_EQ(p.rx.try_recv(out), Status::kOk);
    ASSERT_TRUE(matches_pattern(out, i - kInFlight));
    ASSERT_EQ(p.tx.try_send(pattern(32, i)), Status::kOk);
    const ChannelStats s = p.tx.channel()->stats();
    ASSERT_EQ(s.queued, kInFlight) << "message " << i;
    ASSERT_EQ(s.queued_bytes, kInFlight * kRecord) << "message " << i;
  }
  const ChannelStats s = p.tx.channel()->stats();
  EXPECT_EQ(s.high_water, kInFlight);
  EXPECT_EQ(s.high_water_bytes, kInFlight * kRecord);
}

TEST(ChannelTest, ADrainThatRefusesLeavesTheMessageQueued) {
  Pair p(small(8));
  for (std::uint64_t i = 0; i < 3; ++i) ASSERT_EQ(p.tx.try_send(pattern(16, i)), Status::kOk);
  EXPECT_EQ(p.rx.try_recv_with([](std::span<const std::byte>) { return false; }), Status::kNoMemory);
  EXPECT_EQ(p.rx.channel()->stats().queued, 3U);
  // A batch takes the prefix its drain accepted.
  int calls = 0;
  std::size_t got = 0;
  EXPECT_EQ(p.rx.recv_many_with(8, [&](std::span<const std::byte>) { return ++calls <= 2; }, Deadline::now(), got),
            Status::kOk);
  EXPECT_EQ(got, 2U);
  EXPECT_EQ(p.rx.channel()->stats().queued, 1U);
  std::vector<std::byte> out;
  ASSERT_EQ(p.rx.try_recv(out), Status::kOk);
  EXPECT_TRUE(matches_pattern(out, 2));
}

TEST(ChannelTest, ReceiveIntoAVectorThatCannotGrowLeavesTheMessageQueued) {
  Pair p(small(8));
  ASSERT_EQ(p.tx.try_send(pattern(1000, 7)), Status::kOk);
  const std::vector<std::byte> before(5, std::byte{0x5a});
  std::vector<std::byte> out = before;
  Status tried = Status::kOk;
  Status waited = Status::kOk;
  fail_allocations_from = 1000;  // the 1000-byte buffer `out` needs
  tried = p.rx.try_recv(out);
  waited = p.rx.recv(out, Deadline::after(1s));  // returns at once: neither waits nor drops
  fail_allocations_from = 0;
  EXPECT_EQ(tried, Status::kNoMemory);
  EXPECT_EQ(waited, Status::kNoMemory);
  EXPECT_EQ(out, before);
  EXPECT_EQ(p.rx.channel()->stats().queued, 1U);
  ASSERT_EQ(p.rx.try_recv(out), Status::kOk);
  EXPECT_EQ(out.size(), 1000U);
  EXPECT_TRUE(matches_pattern(out, 7));
}

TEST(ChannelTest, ParkedReceiverShowsInStats) {
  Pair p(small(4));
  std::jthread receiver([&] {
    std::vector<std::byte> out;
    EXPECT_EQ(p.rx.recv(out, Deadline::after(10s)), Status::kOk);
  });
  while (p.tx.channel()->stats().parked_receivers == 0) std::this_thread::yield();
  ASSERT_EQ(p.tx.try_send(pattern(4, 1)), Status::kOk);
  receiver.join();
  EXPECT_EQ(p.tx.channel()->stats().parked_receivers, 0U);
}

void on_signal(int) {}

TEST(ChannelTest, SignalInterruptsAParkedReceiver) {
  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: the futex wait returns EINTR
  ASSERT_EQ(sigaction(SIGUSR1, &sa, nullptr), 0);
  Pair p(small(4));
  std::atomic<bool> done{false};
  Status result = Status::kOk;
  std::jthread receiver([&] {
    std::vector<std::byte> out;
    result = p.rx.recv(out, Deadline::after(10s));
    done = true;
  });
  const auto start = Clock::now();
  while (!done.load() && Clock::now() - start < 5s) {
    if (p.rx.channel()->stats().parked_receivers != 0) pthread_kill(receiver.native_handle(), SIGUSR1);
    std::this_thread::sleep_for(1ms);
  }
  receiver.join();
  EXPECT_EQ(result, Status::kInterrupted);
  EXPECT_LT(Clock::now() - start, 5s);
}

}  // namespace
}  // namespace xchan
