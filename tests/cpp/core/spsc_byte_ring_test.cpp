// SpscByteRing: single-threaded edges (empty, full, exact fit, wrap, sizes, validation)
// and a two-thread exactly-once/order check.
#include "xchan/core/spsc_byte_ring.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <thread>

#include "ring_fixture.hpp"

namespace xchan::core {
namespace {

using test::matches_pattern;
using test::OwnedRing;
using test::pattern;

std::vector<std::byte> pop(SpscByteRing& ring, Status& s) {
  // try_pop into a reused buffer big enough for any message (zeroing a fresh one of up
  // to megabytes per call made the streaming tests slow, under TSan most of all).
  static thread_local std::vector<std::byte> buffer;
  if (buffer.size() < ring.max_payload() + 1) buffer.resize(ring.max_payload() + 1);
  std::size_t n = 0;
  s = ring.try_pop(buffer, n);
  return {buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(s == Status::kOk ? n : 0)};
}

/// Writes one message of `size` pattern bytes (seed `seq`) through a Writer and publishes
/// it; returns the payload's offset in the buffer.
std::uint64_t push_at(OwnedRing& r, std::size_t size, std::uint64_t seq) {
  SpscByteRing::Writer w(r.ring);
  std::span<std::byte> out;
  EXPECT_EQ(w.try_reserve(size, out), Status::kOk);
  test::fill_pattern(out, seq);
  w.commit(size);
  w.publish();
  return static_cast<std::uint64_t>(out.data() - r.bytes().data());
}

/// Streams `count` messages of `size` bytes, each taken (and checked) right after it is
/// sent; returns the largest payload offset the producer used.
std::uint64_t stream_max_offset(OwnedRing& r, std::size_t size, std::uint64_t count) {
  std::uint64_t max_offset = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    max_offset = std::max(max_offset, push_at(r, size, i));
    Status s;
    EXPECT_TRUE(matches_pattern(pop(r.ring, s), i));
    EXPECT_EQ(s, Status::kOk);
  }
  return max_offset;
}

TEST(SpscByteRingTest, InitRejectsBadGeometry) {
  RingHeader h{};
  std::vector<std::uint64_t> buf(64);
  auto bytes = std::as_writable_bytes(std::span<std::uint64_t>(buf));
  EXPECT_EQ(SpscByteRing::init(h, bytes.first(100), 4), Status::kInvalidArgument);  // not pow2
  EXPECT_EQ(SpscByteRing::init(h, bytes.first(32), 4), Status::kInvalidArgument);   // too small
  EXPECT_EQ(SpscByteRing::init(h, bytes.first(256), 0), Status::kInvalidArgument);  // no records
  EXPECT_EQ(SpscByteRing::init(h, bytes.subspan(4, 256), 4), Status::kInvalidArgument);  // misaligned
  EXPECT_EQ(SpscByteRing::init(h, bytes.first(256), 4), Status::kOk);
}

TEST(SpscByteRingTest, PopFromEmptyRingReportsEmpty) {
  OwnedRing r(256, 16);
  ASSERT_EQ(r.status, Status::kOk);
  Status s;
  pop(r.ring, s);
  EXPECT_EQ(s, Status::kEmpty);
  EXPECT_EQ(r.ring.size_approx(), 0U);
}

TEST(SpscByteRingTest, MessagesComeOutInOrderAndIntact) {
  OwnedRing r(1024, 64);
  for (std::uint64_t i = 0; i < 10; ++i) ASSERT_EQ(r.ring.try_push(pattern(i * 3, i)), Status::kOk);
  EXPECT_EQ(r.ring.size_approx(), 10U);
  for (std::uint64_t i = 0; i < 10; ++i) {
    Status s;
    const auto got = pop(r.ring, s);
    ASSERT_EQ(s, Status::kOk);
    ASSERT_EQ(got.size(), i * 3);
    EXPECT_TRUE(matches_pattern(got, i));
  }
}

TEST(RingCopyTest, CopiesMoveExactlyTheBytesAskedAtEveryAlignmentOfTheCallersSide) {
  // copy_to_ring may write the rest of the last 8-byte word (a record's padding) and no
  // further; copy_from_ring writes exactly n bytes, whatever the caller's alignment.
  constexpr std::size_t kMax = 300;
  constexpr std::size_t kGuard = 16;
  for (std::size_t n = 0; n <= kMax; ++n) {
    for (std::size_t skew = 0; skew < 8; ++skew) {
      alignas(8) std::array<std::byte, kMax + 8 + kGuard> ring{};
      ring.fill(std::byte{0xee});
      std::array<std::byte, kMax + 8 + 2 * kGuard> outside{};
      const std::vector<std::byte> msg = pattern(n, n * 8 + skew);
      std::byte* src = outside.data() + kGuard + skew;
      if (n != 0) std::memcpy(src, msg.data(), n);
      core::copy_to_ring(ring.data(), src, n);
      ASSERT_TRUE(std::equal(msg.begin(), msg.end(), ring.begin())) << n << " skew " << skew;
      for (std::size_t i = (n + 7) / 8 * 8; i < ring.size(); ++i) {
        ASSERT_EQ(ring[i], std::byte{0xee}) << "wrote past the word at " << i << ", n " << n;
      }
      outside.fill(std::byte{0xcc});
      std::byte* dst = outside.data() + kGuard + skew;
      core::copy_from_ring(dst, ring.data(), n);
      ASSERT_TRUE(std::equal(msg.begin(), msg.end(), dst)) << n << " skew " << skew;
      for (std::size_t i = 0; i < outside.size(); ++i) {
        const bool inside = i >= kGuard + skew && i < kGuard + skew + n;
        if (!inside) {
          ASSERT_EQ(outside[i], std::byte{0xcc}) << "wrote outside at " << i << ", n " << n;
        }
      }
    }
  }
}

TEST(SpscByteRingTest, EverySizeUpToAndPastTheInlineCopiesArrivesIntact) {
  // The ring's copies take blocks of four words, then up to three words, then a 1-7 byte
  // tail, and libc above 128 bytes; each size goes through try_push/try_pop at every
  // alignment the records take.
  OwnedRing r(4096, 64);
  for (std::uint64_t size = 0; size <= 300; ++size) {
    ASSERT_EQ(r.ring.try_push(pattern(size, size)), Status::kOk);
    Status s;
    const auto got = pop(r.ring, s);
    ASSERT_EQ(s, Status::kOk);
    ASSERT_EQ(got.size(), size);
    ASSERT_TRUE(matches_pattern(got, size)) << "size " << size;
  }
}

TEST(SpscByteRingTest, ZeroLengthMessagesAreMessages) {
  OwnedRing r(256, 16);
  ASSERT_EQ(r.ring.try_push({}), Status::kOk);
  Status s;
  const auto got = pop(r.ring, s);
  EXPECT_EQ(s, Status::kOk);
  EXPECT_TRUE(got.empty());
  pop(r.ring, s);
  EXPECT_EQ(s, Status::kEmpty);
}

TEST(SpscByteRingTest, MaximumLengthMessageFitsAnEmptyRingAtAnyOffset) {
  OwnedRing r(256, 16);
  const std::size_t max = r.ring.max_payload();
  EXPECT_EQ(max, 256U / 2 - 8);
  for (std::uint64_t offset = 0; offset < 256; offset += 8) {
    // Empty records are 8 bytes and never need padding: walk the position to `offset`.
    Status s;
    while (r.header.tail % 256 != offset) {
      ASSERT_EQ(r.ring.try_push({}), Status::kOk);
      pop(r.ring, s);
      ASSERT_EQ(s, Status::kOk);
    }
    ASSERT_EQ(r.ring.try_push(pattern(max, offset)), Status::kOk) << "at offset " << offset;
    const auto got = pop(r.ring, s);
    ASSERT_EQ(s, Status::kOk);
    ASSERT_EQ(got.size(), max);
    EXPECT_TRUE(matches_pattern(got, offset));
  }
}

TEST(SpscByteRingTest, OversizeMessageIsRejectedAsTooLarge) {
  OwnedRing r(256, 16);
  EXPECT_EQ(r.ring.try_push(pattern(r.ring.max_payload() + 1, 1)), Status::kTooLarge);
  EXPECT_EQ(r.ring.size_approx(), 0U);
  EXPECT_EQ(r.ring.try_push(pattern(8, 1)), Status::kOk);  // still usable
}

TEST(SpscByteRingTest, PushFailsWhenBytesAreFullAndSucceedsAfterPop) {
  OwnedRing r(256, 1000);
  // Each 24-byte payload takes a 32-byte record: exactly 8 fill 256 bytes.
  int pushed = 0;
  while (r.ring.try_push(pattern(24, static_cast<std::uint64_t>(pushed))) == Status::kOk) ++pushed;
  EXPECT_EQ(pushed, 8);
  EXPECT_EQ(r.ring.bytes_approx(), 256U);
  EXPECT_EQ(r.ring.try_push(pattern(24, 99)), Status::kFull);
  Status s;
  pop(r.ring, s);
  ASSERT_EQ(s, Status::kOk);
  EXPECT_EQ(r.ring.try_push(pattern(24, 8)), Status::kOk);  // exact fit again
  for (int i = 1; i <= 8; ++i) {
    const auto got = pop(r.ring, s);
    ASSERT_EQ(s, Status::kOk);
    EXPECT_TRUE(matches_pattern(got, static_cast<std::uint64_t>(i)));
  }
}

TEST(SpscByteRingTest, PushFailsWhenRecordCountIsFull) {
  OwnedRing r(4096, 3);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(r.ring.try_push(pattern(1, 1)), Status::kOk);
  EXPECT_EQ(r.ring.try_push(pattern(1, 1)), Status::kFull);
  EXPECT_FALSE(r.ring.can_reserve(1));
  Status s;
  pop(r.ring, s);
  EXPECT_TRUE(r.ring.can_reserve(1));
  EXPECT_EQ(r.ring.try_push(pattern(1, 1)), Status::kOk);
}

TEST(SpscByteRingTest, WrapAroundInsertsPaddingAndKeepsPayloadsContiguous) {
  OwnedRing r(256, 100);
  // 40-byte payloads take 48-byte records; the sixth record starts at 240 and cannot fit
  // the 16 bytes left, so it goes to offset 0 after a padding record.
  Status s;
  for (std::uint64_t i = 0; i < 100; ++i) {
    ASSERT_EQ(r.ring.try_push(pattern(40, i)), Status::kOk) << i;
    const auto got = pop(r.ring, s);
    ASSERT_EQ(s, Status::kOk);
    ASSERT_EQ(got.size(), 40U);
    ASSERT_TRUE(matches_pattern(got, i)) << i;
  }
}

TEST(SpscByteRingTest, PaddingCountsAgainstFreeSpace) {
  OwnedRing r(256, 100);
  Status s;
  // Advance to offset 240: five 48-byte records pushed and popped.
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(r.ring.try_push(pattern(40, 0)), Status::kOk);
    pop(r.ring, s);
  }
  // Queue 3 records of 48 (at 240->pad 16, then 0, 48, 96) = 16 + 144 bytes used; the
  // padding is no record, so bytes_approx() leaves it out.
  for (int i = 0; i < 3; ++i) ASSERT_EQ(r.ring.try_push(pattern(40, 0)), Status::kOk);
  EXPECT_EQ(r.ring.bytes_approx(), 144U);
  // 96 bytes left (144..240): a 96-byte record (88 payload) fits exactly, one more does not.
  ASSERT_EQ(r.ring.try_push(pattern(88, 0)), Status::kOk);
  EXPECT_EQ(r.ring.try_push({}), Status::kFull);
}

TEST(SpscByteRingTest, ReservationCanShrinkOnCommit) {
  OwnedRing r(256, 16);
  {
    SpscByteRing::Writer w(r.ring);
    std::span<std::byte> out;
    ASSERT_EQ(w.try_reserve(100, out), Status::kOk);
    ASSERT_EQ(out.size(), 100U);
    test::fill_pattern(out.first(10), 5);
    w.commit(10);
    EXPECT_EQ(w.unpublished(), 1U);
  }
  EXPECT_EQ(r.ring.bytes_approx(), 8U + 16U);
  Status s;
  const auto got = pop(r.ring, s);
  ASSERT_EQ(s, Status::kOk);
  EXPECT_EQ(got.size(), 10U);
  EXPECT_TRUE(matches_pattern(got, 5));
}

TEST(SpscByteRingTest, CommittedRecordIsVisibleBeforeTheBatchIsPublished) {
  OwnedRing r(1024, 16);
  SpscByteRing::Writer w(r.ring);
  for (std::uint64_t i = 0; i < 3; ++i) {
    std::span<std::byte> out;
    ASSERT_EQ(w.try_reserve(8, out), Status::kOk);
    test::fill_pattern(out, i);
    w.commit(8);
  }
  // Records publish themselves; the batch only defers the shared counters (and with
  // them the has_records() hint).
  {
    SpscByteRing::Reader reader(r.ring);
    std::span<const std::byte> view;
    ASSERT_EQ(reader.try_peek(view), Status::kOk);
    EXPECT_TRUE(matches_pattern(view, 0));
  }
  EXPECT_FALSE(r.ring.has_records());
  EXPECT_EQ(r.ring.size_approx(), 0U);
  w.publish();
  EXPECT_TRUE(r.ring.has_records());
  EXPECT_EQ(r.ring.size_approx(), 3U);
  EXPECT_EQ(r.ring.bytes_approx(), 3U * 16U);
}

TEST(SpscByteRingTest, PopIntoSmallBufferConsumesNothing) {
  OwnedRing r(256, 16);
  ASSERT_EQ(r.ring.try_push(pattern(20, 3)), Status::kOk);
  std::vector<std::byte> small(10);
  std::size_t n = 0;
  EXPECT_EQ(r.ring.try_pop(small, n), Status::kTooLarge);
  EXPECT_EQ(n, 20U);
  Status s;
  const auto got = pop(r.ring, s);
  EXPECT_EQ(s, Status::kOk);
  EXPECT_TRUE(matches_pattern(got, 3));
}

TEST(SpscByteRingTest, GarbageRecordHeaderIsReportedAsCorrupted) {
  OwnedRing r(256, 16);
  ASSERT_EQ(r.ring.try_push(pattern(16, 1)), Status::kOk);
  // A peer overwrites the published record's header with garbage: the stamp no longer
  // matches, so the fast path sees no record, and the check against `tail` sees corruption.
  const RecordWord garbage = 0x1234'5678'0000'ffffULL;
  std::memcpy(r.bytes().data(), &garbage, sizeof garbage);
  Status s;
  pop(r.ring, s);
  EXPECT_EQ(s, Status::kEmpty);
  {
    SpscByteRing::Reader reader(r.ring);
    std::span<const std::byte> view;
    EXPECT_EQ(reader.try_peek(view), Status::kEmpty);
    EXPECT_EQ(reader.verify_empty(), Status::kCorrupted);
  }
  // A valid stamp with a length beyond the buffer is caught by try_peek itself.
  const RecordWord too_long = record_word(0, 200);
  std::memcpy(r.bytes().data(), &too_long, sizeof too_long);
  pop(r.ring, s);
  EXPECT_EQ(s, Status::kCorrupted);
  // So is a padding record that does not run to the end of the buffer.
  const RecordWord bad_pad = record_word(0, 16 | kPaddingFlag);
  std::memcpy(r.bytes().data(), &bad_pad, sizeof bad_pad);
  pop(r.ring, s);
  EXPECT_EQ(s, Status::kCorrupted);
}

TEST(SpscByteRingTest, OldPayloadThatLooksLikeAHeaderIsNeverReadAsARecord) {
  OwnedRing r(256, 16);
  Status s;
  // Lap 0: A = [0,128) with a 120-byte payload starting at 8, B = [128,144), C = [144,256).
  // Plant, at payload offset 0 of A (buffer offset 8), exactly the word a record starting
  // at index 264 (lap 1, offset 8) would carry.
  std::vector<std::byte> a = pattern(120, 1);
  const RecordWord planted = record_word(264, 5);
  std::memcpy(a.data(), &planted, sizeof planted);
  ASSERT_EQ(r.ring.try_push(a), Status::kOk);
  pop(r.ring, s);
  ASSERT_EQ(r.ring.try_push(pattern(8, 2)), Status::kOk);
  pop(r.ring, s);
  ASSERT_EQ(r.ring.try_push(pattern(104, 3)), Status::kOk);
  pop(r.ring, s);
  ASSERT_EQ(r.header.head, 256U);
  // Lap 1: D = [256,264). After it, the consumer reads the slot at 264: it must find no
  // record, not the planted word.
  ASSERT_EQ(r.ring.try_push({}), Status::kOk);
  pop(r.ring, s);
  ASSERT_EQ(s, Status::kOk);
  pop(r.ring, s);
  EXPECT_EQ(s, Status::kEmpty);
  EXPECT_FALSE(r.ring.has_records());
}

TEST(SpscByteRingTest, VerifyEmptyOnAnEmptyRingSaysEmpty) {
  OwnedRing r(256, 16);
  SpscByteRing::Reader reader(r.ring);
  std::span<const std::byte> view;
  EXPECT_EQ(reader.try_peek(view), Status::kEmpty);
  EXPECT_EQ(reader.verify_empty(), Status::kEmpty);
}

TEST(SpscByteRingTest, StaleRecordsFromAnEarlierLapAreNotReadAgain) {
  OwnedRing r(256, 16);
  Status s;
  // Fill and drain the buffer several times; a stale header left behind at head must
  // never pass for a new record.
  for (std::uint64_t i = 0; i < 40; ++i) {
    ASSERT_EQ(r.ring.try_push(pattern(24, i)), Status::kOk);
    const auto got = pop(r.ring, s);
    ASSERT_EQ(s, Status::kOk);
    ASSERT_TRUE(matches_pattern(got, i));
    pop(r.ring, s);
    ASSERT_EQ(s, Status::kEmpty) << "lap " << i;
    EXPECT_FALSE(r.ring.has_records());
  }
}

TEST(SpscByteRingTest, AttachRejectsCorruptedHeader) {
  OwnedRing r(256, 16);
  SpscByteRing other;
  RingHeader copy = r.header;
  copy.data_bytes = 512;  // does not match the buffer
  EXPECT_EQ(other.attach(copy, r.bytes()), Status::kCorrupted);
  copy = r.header;
  copy.magic = 0;
  EXPECT_EQ(other.attach(copy, r.bytes()), Status::kCorrupted);
  copy = r.header;
  copy.tail = copy.head + 1024;  // more in flight than the buffer holds
  EXPECT_EQ(other.attach(copy, r.bytes()), Status::kCorrupted);
  EXPECT_EQ(other.attach(r.header, r.bytes()), Status::kOk);
}

TEST(SpscByteRingTest, HotWindowKeepsSmallTrafficAtTheFrontOfALargeBuffer) {
  constexpr std::size_t kBytes = 4 * SpscByteRing::kHotWindowBytes;
  OwnedRing r(kBytes, 1 << 20);
  EXPECT_LT(stream_max_offset(r, 64, 3 * kBytes / 72), SpscByteRing::kHotWindowBytes);
}

TEST(SpscByteRingTest, RecordsEndingExactlyAtTheHotWindowStillWrapEarly) {
  // 64-byte records (56 payload + 8) tile the window exactly, so one of them ends right at
  // its edge; the next must still go back to the front, not run on into cold memory.
  constexpr std::size_t kBytes = 4 * SpscByteRing::kHotWindowBytes;
  OwnedRing r(kBytes, 1 << 20);
  EXPECT_LT(stream_max_offset(r, 56, 3 * kBytes / 64), SpscByteRing::kHotWindowBytes);
}

/// Sends and takes one 1000-byte message, then 64-byte messages until the ring is full,
/// taking none: one thread sending a burst before it receives. Returns how many went.
std::uint64_t burst_after_a_drain(OwnedRing& r, std::uint64_t first) {
  EXPECT_EQ(r.ring.try_push(pattern(1000, 0)), Status::kOk);
  Status s;
  EXPECT_TRUE(matches_pattern(pop(r.ring, s), 0));
  std::uint64_t n = first;
  while (r.ring.try_push(pattern(64, n)) == Status::kOk) ++n;
  return n - first;
}

TEST(SpscByteRingTest, BurstAfterADrainStallsAtTheFrontUntilTheWrapIsUndone) {
  // The burst wraps early at the first window boundary (the consumer had taken 1008
  // bytes), fills the front up to the consumer and stops: the room past the padding is
  // held back until the consumer passes it, which in one thread it never does. That is
  // how a 64 MiB channel once took 256 KiB and then blocked for good.
  constexpr std::size_t kBytes = 8 * SpscByteRing::kHotWindowBytes;
  OwnedRing r(kBytes, 1 << 24);
  std::uint64_t n = burst_after_a_drain(r, 0);
  EXPECT_LT(n * 72, SpscByteRing::kHotWindowBytes + 1008);
  EXPECT_TRUE(r.ring.stranded(64));
  ASSERT_TRUE(r.ring.undo_wrap());
  EXPECT_FALSE(r.ring.stranded(64));
  // One run again, and early wraps hold off until the consumer moves: the burst fills the
  // whole buffer but for the padding at its end.
  while (r.ring.try_push(pattern(64, n)) == Status::kOk) ++n;
  EXPECT_GE(n * 72 + 2 * 72, kBytes);
  EXPECT_FALSE(r.ring.undo_wrap());  // the wrap at the end cannot be undone
  for (std::uint64_t i = 0; i < n; ++i) {
    Status s;
    ASSERT_TRUE(matches_pattern(pop(r.ring, s), i)) << i;
    ASSERT_EQ(s, Status::kOk);
  }
  Status s;
  pop(r.ring, s);
  EXPECT_EQ(s, Status::kEmpty);
  // Once the consumer has moved, traffic wraps early again.
  EXPECT_LT(stream_max_offset(r, 64, 3 * kBytes / 72), 2 * SpscByteRing::kHotWindowBytes);
}

TEST(SpscByteRingTest, UndoWrapWithTheConsumerAnywhereBeforeThePadding) {
  // The consumer may have stopped at any record before the padding, or right at it.
  constexpr std::size_t kBytes = 4 * SpscByteRing::kHotWindowBytes;
  for (const bool at_padding : {false, true}) {
    OwnedRing r(kBytes, 1 << 24);
    const std::uint64_t n = burst_after_a_drain(r, 0);
    std::uint64_t popped = 0;
    Status s;
    const std::uint64_t pad = r.header.padded_at;
    ASSERT_NE(pad, 0U);
    while (at_padding ? r.header.head < pad : popped < 100) {
      ASSERT_TRUE(matches_pattern(pop(r.ring, s), popped++));
    }
    ASSERT_TRUE(r.ring.undo_wrap()) << at_padding;
    std::uint64_t more = n;
    while (r.ring.try_push(pattern(64, more)) == Status::kOk) ++more;
    EXPECT_GE((more - popped) * 72 + 2 * 72, kBytes);
    for (; popped < more; ++popped) {
      ASSERT_TRUE(matches_pattern(pop(r.ring, s), popped)) << popped;
      ASSERT_EQ(s, Status::kOk);
    }
    pop(r.ring, s);
    EXPECT_EQ(s, Status::kEmpty);
  }
}

TEST(SpscByteRingTest, UndoWrapOverCorruptedRecordsMovesNothing) {
  // A record written since the wrap was overwritten (shared memory scribbled on): the undo
  // refuses as a whole, and the consumer reports the corruption when it gets there.
  constexpr std::size_t kBytes = 4 * SpscByteRing::kHotWindowBytes;
  OwnedRing r(kBytes, 1 << 24);
  burst_after_a_drain(r, 0);
  ASSERT_TRUE(r.ring.stranded(64));
  const std::uint64_t tail = r.header.tail;
  // The third record at the front gets a garbage header word.
  const std::uint64_t third = 2 * 72;
  std::memset(r.bytes().data() + third, 0xab, 8);
  const std::vector<std::byte> before(r.bytes().begin(), r.bytes().end());
  EXPECT_FALSE(r.ring.undo_wrap());
  EXPECT_EQ(r.header.tail, tail);
  EXPECT_TRUE(std::equal(before.begin(), before.end(), r.bytes().begin()));
  // The records before the garbage arrive; then the ring looks empty although `tail` says
  // otherwise, which is corruption.
  Status s = Status::kOk;
  std::uint64_t got = 0;
  while (pop(r.ring, s), s == Status::kOk) ++got;
  EXPECT_EQ(s, Status::kEmpty);
  EXPECT_GT(got, 2U);
  SpscByteRing::Reader reader(r.ring);
  EXPECT_EQ(reader.verify_empty(), Status::kCorrupted);
}

TEST(SpscByteRingTest, UndoWrapTrustsNoPaddingIndexThatNamesNoPadding) {
  // `padded_at` overwritten to point into records still in flight: nothing moves.
  constexpr std::size_t kBytes = 4 * SpscByteRing::kHotWindowBytes;
  OwnedRing r(kBytes, 1 << 24);
  burst_after_a_drain(r, 0);
  const std::uint64_t pad = r.header.padded_at;
  const std::uint64_t tail = r.header.tail;
  std::vector<std::byte> before(r.bytes().begin(), r.bytes().end());
  r.header.padded_at = pad - 10 * 72;  // a data record, not the padding
  EXPECT_FALSE(r.ring.undo_wrap());
  EXPECT_EQ(r.header.tail, tail);
  EXPECT_TRUE(std::equal(before.begin(), before.end(), r.bytes().begin()));
  r.header.padded_at = pad;  // the real one still works
  EXPECT_TRUE(r.ring.undo_wrap());
}

TEST(SpscByteRingTest, UndoWrapLeavesAWrapTheConsumerPassedAlone) {
  constexpr std::size_t kBytes = 4 * SpscByteRing::kHotWindowBytes;
  OwnedRing r(kBytes, 1 << 24);
  const std::uint64_t n = burst_after_a_drain(r, 0);
  Status s;
  for (std::uint64_t i = 0; i + 1 < n; ++i) ASSERT_TRUE(matches_pattern(pop(r.ring, s), i));
  EXPECT_FALSE(r.ring.stranded(64));
  EXPECT_FALSE(r.ring.undo_wrap());
  ASSERT_TRUE(matches_pattern(pop(r.ring, s), n - 1));
  EXPECT_FALSE(r.ring.undo_wrap());  // nothing in flight
  OwnedRing fresh(kBytes, 16);
  EXPECT_FALSE(fresh.ring.undo_wrap());  // never wrapped
}

TEST(SpscByteRingTest, HighWaterIsExactWhenTheRingFills) {
  // Full by records: the producer looks at the consumer before it reports Full.
  OwnedRing by_count(4096, 5);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(by_count.ring.try_push(pattern(8, i)), Status::kOk);
  EXPECT_EQ(by_count.ring.try_push(pattern(8, 5)), Status::kFull);
  Status s;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(matches_pattern(pop(by_count.ring, s), i));
  EXPECT_EQ(by_count.ring.high_water().records, 5U);
  EXPECT_EQ(by_count.ring.high_water().bytes, 5U * 16U);
  // Full by bytes: four 1008-byte records in 4096 bytes.
  OwnedRing by_bytes(4096, 1000);
  int n = 0;
  while (by_bytes.ring.try_push(pattern(1000, n)) == Status::kOk) ++n;
  for (int i = 0; i < n; ++i) ASSERT_TRUE(matches_pattern(pop(by_bytes.ring, s), i));
  EXPECT_EQ(by_bytes.ring.high_water().records, static_cast<std::uint64_t>(n));
  EXPECT_EQ(by_bytes.ring.high_water().bytes, static_cast<std::uint64_t>(n) * 1008U);
}

TEST(SpscByteRingTest, HighWaterKeepsWhatItWasAskedAndNeverFalls) {
  OwnedRing r(4096, 100);
  EXPECT_EQ(r.ring.high_water().records, 0U);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(r.ring.try_push(pattern(8, i)), Status::kOk);
  EXPECT_EQ(r.ring.high_water().records, 3U);  // what is in flight now counts
  Status s;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(matches_pattern(pop(r.ring, s), i));
  ASSERT_EQ(r.ring.try_push(pattern(8, 3)), Status::kOk);
  EXPECT_EQ(r.ring.high_water().records, 3U);
  EXPECT_EQ(r.ring.high_water().bytes, 3U * 16U);
}

TEST(SpscByteRingTest, HighWaterIsExactAfterManyFillAndDrainCycles) {
  // Filled to the record limit and drained, 2,000 times, with no push ever failing: the
  // fill itself must be seen. (The producer used to look at the consumer only when its
  // stale copy of `popped` said full, which in these cycles is right after each drain.)
  OwnedRing by_count(4096, 8);
  Status s;
  for (std::uint64_t cycle = 0; cycle < 2000; ++cycle) {
    for (std::uint64_t i = 0; i < 8; ++i) ASSERT_EQ(by_count.ring.try_push(pattern(8, i)), Status::kOk);
    for (std::uint64_t i = 0; i < 8; ++i) ASSERT_TRUE(matches_pattern(pop(by_count.ring, s), i));
  }
  EXPECT_EQ(by_count.ring.high_water().records, 8U);
  EXPECT_EQ(by_count.ring.high_water().bytes, 8U * 16U);
  // Filled by bytes: four 1008-byte records leave no room for a fifth, and the padding
  // that the next cycle's wrap leaves is no record.
  OwnedRing by_bytes(4096, 1000);
  for (std::uint64_t cycle = 0; cycle < 2000; ++cycle) {
    for (std::uint64_t i = 0; i < 4; ++i) ASSERT_EQ(by_bytes.ring.try_push(pattern(1000, i)), Status::kOk);
    for (std::uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(matches_pattern(pop(by_bytes.ring, s), i));
  }
  EXPECT_EQ(by_bytes.ring.high_water().records, 4U);
  EXPECT_EQ(by_bytes.ring.high_water().bytes, 4U * 1008U);
}

TEST(SpscByteRingTest, HighWaterSeesAFillThroughABatchWriter) {
  // The same through a Writer: the batch that reaches the record limit is seen before it
  // is published, so draining it before anyone asks loses nothing.
  OwnedRing r(4096, 6);
  Status s;
  for (std::uint64_t cycle = 0; cycle < 100; ++cycle) {
    SpscByteRing::Writer w(r.ring);
    for (std::uint64_t i = 0; i < 6; ++i) {
      std::span<std::byte> out;
      ASSERT_EQ(w.try_reserve(24, out), Status::kOk);
      test::fill_pattern(out, i);
      w.commit(24);
    }
    w.publish();
    for (std::uint64_t i = 0; i < 6; ++i) ASSERT_TRUE(matches_pattern(pop(r.ring, s), i));
  }
  EXPECT_EQ(r.ring.high_water().records, 6U);
  EXPECT_EQ(r.ring.high_water().bytes, 6U * 32U);
}

TEST(SpscByteRingTest, BytesInFlightLeaveOutTheRoomAWrapSkips) {
  // 256 messages of 32 B (40-byte records) in flight through a 4 MiB ring, one in and one
  // out at a time: the producer wraps early at every window boundary, and the padding it
  // leaves (most of the buffer) takes room but holds no record.
  constexpr std::size_t kBytes = 16 * SpscByteRing::kHotWindowBytes;
  constexpr std::uint64_t kInFlight = 256;
  OwnedRing r(kBytes, 1 << 20);
  for (std::uint64_t i = 0; i < kInFlight; ++i) ASSERT_EQ(r.ring.try_push(pattern(32, i)), Status::kOk);
  Status s;
  std::uint64_t max_seen = 0;
  for (std::uint64_t i = kInFlight; i < kInFlight + 3 * kBytes / 40; ++i) {
    ASSERT_TRUE(matches_pattern(pop(r.ring, s), i - kInFlight));
    ASSERT_EQ(r.ring.try_push(pattern(32, i)), Status::kOk);
    max_seen = std::max(max_seen, r.ring.bytes_approx());
    ASSERT_EQ(r.ring.bytes_approx(), kInFlight * 40) << "message " << i;
  }
  EXPECT_EQ(max_seen, kInFlight * 40);
  EXPECT_EQ(r.ring.high_water().records, kInFlight);
  EXPECT_EQ(r.ring.high_water().bytes, kInFlight * 40);
}

TEST(SpscByteRingTest, APaddingPassedByAPeekWithoutReleaseCountsNoBytes) {
  // A consumer that peeks past a padding record and then does not take the record behind
  // it (a drain that refused) has passed the padding for good; the record stays, and so
  // do its bytes.
  OwnedRing r(256, 100);
  Status s;
  for (int i = 0; i < 5; ++i) {  // to offset 240: the next 48-byte record goes to 0
    ASSERT_EQ(r.ring.try_push(pattern(40, 0)), Status::kOk);
    pop(r.ring, s);
  }
  ASSERT_EQ(r.ring.try_push(pattern(40, 7)), Status::kOk);
  {
    SpscByteRing::Reader reader(r.ring);
    std::span<const std::byte> in;
    ASSERT_EQ(reader.try_peek(in), Status::kOk);
    EXPECT_TRUE(matches_pattern(in, 7));
  }  // published without a release
  EXPECT_EQ(r.ring.size_approx(), 1U);
  EXPECT_EQ(r.ring.bytes_approx(), 48U);
  EXPECT_TRUE(matches_pattern(pop(r.ring, s), 7));
  EXPECT_EQ(s, Status::kOk);
  EXPECT_EQ(r.ring.bytes_approx(), 0U);
}

TEST(SpscByteRingTest, BytesInFlightStayTheSameWhenAWrapIsUndone) {
  // undo_wrap moves the records and drops the padding: the records in flight, and their
  // bytes, are what they were.
  constexpr std::size_t kBytes = 4 * SpscByteRing::kHotWindowBytes;
  OwnedRing r(kBytes, 1 << 24);
  const std::uint64_t n = burst_after_a_drain(r, 0);
  EXPECT_EQ(r.ring.bytes_approx(), n * 72);
  ASSERT_TRUE(r.ring.undo_wrap());
  EXPECT_EQ(r.ring.bytes_approx(), n * 72);
  EXPECT_EQ(r.ring.size_approx(), n);
  std::uint64_t more = n;
  while (r.ring.try_push(pattern(64, more)) == Status::kOk) ++more;
  EXPECT_EQ(r.ring.bytes_approx(), more * 72);
  EXPECT_EQ(r.ring.high_water().bytes, more * 72);  // the burst filled it: exact
  EXPECT_EQ(r.ring.high_water().records, more);
}

TEST(SpscByteRingTest, BacklogUsesTheWholeBufferBeyondTheHotWindow) {
  constexpr std::size_t kBytes = 4 * SpscByteRing::kHotWindowBytes;
  OwnedRing r(kBytes, 1 << 20);
  std::uint64_t n = 0;
  while (r.ring.try_push(pattern(64, n)) == Status::kOk) ++n;
  EXPECT_EQ(n, kBytes / 72);  // every record fits; none wasted on early wrap
  for (std::uint64_t i = 0; i < n; ++i) {
    Status s;
    const auto got = pop(r.ring, s);
    ASSERT_EQ(s, Status::kOk);
    ASSERT_TRUE(matches_pattern(got, i));
  }
}

TEST(SpscByteRingTest, TrafficThatABacklogPushedPastTheWindowComesBack) {
  constexpr std::size_t kWindow = SpscByteRing::kHotWindowBytes;
  constexpr std::size_t kBytes = 16 * kWindow;
  OwnedRing r(kBytes, 1 << 20);
  // A backlog of two windows' worth pushes the producer past the first window.
  std::uint64_t pushed = 0;
  while (r.ring.bytes_approx() < 2 * SpscByteRing::kHotWindowBytes) {
    ASSERT_EQ(r.ring.try_push(pattern(64, pushed)), Status::kOk);
    ++pushed;
  }
  // Then steady traffic with the consumer caught up, for less than one lap: within about a
  // window the producer is back at the front, and stays there (it does not walk the other
  // 13 windows first).
  std::uint64_t popped = 0;
  std::uint64_t late_max_offset = 0;
  for (std::uint64_t i = 0; i < kBytes / 2 / 72; ++i) {
    Status s;
    while (popped < pushed) {
      ASSERT_TRUE(matches_pattern(pop(r.ring, s), popped));
      ASSERT_EQ(s, Status::kOk);
      ++popped;
    }
    const std::uint64_t offset = push_at(r, 64, pushed++);
    if (i > 2 * kWindow / 72) late_max_offset = std::max(late_max_offset, offset);
  }
  EXPECT_LT(late_max_offset, kWindow);
}

TEST(SpscByteRingTest, LargeRecordsGoBackToTheFrontWheneverItIsFree) {
  // A stream of large records with a backlog of one (push, then pop the older one) stays
  // in the first two record slots of a much larger buffer, and arrives intact.
  constexpr std::size_t kSize = SpscByteRing::kLargeRecordBytes;
  constexpr std::size_t kBytes = 64 * kSize;
  OwnedRing r(kBytes, 1 << 20);
  std::uint64_t max_offset = 0;
  ASSERT_EQ(r.ring.try_push(pattern(kSize, 0)), Status::kOk);
  for (std::uint64_t i = 1; i < 200; ++i) {
    max_offset = std::max(max_offset, push_at(r, kSize, i));
    Status s;
    ASSERT_TRUE(matches_pattern(pop(r.ring, s), i - 1));
    ASSERT_EQ(s, Status::kOk);
  }
  EXPECT_LT(max_offset, 2 * (kSize + 64));
}

TEST(SpscByteRingTest, BacklogOfLargeRecordsUsesTheWholeBuffer) {
  constexpr std::size_t kSize = SpscByteRing::kLargeRecordBytes;
  constexpr std::size_t kBytes = 16 * kSize;
  OwnedRing r(kBytes, 1 << 20);
  std::uint64_t n = 0;
  while (r.ring.try_push(pattern(kSize, n)) == Status::kOk) ++n;
  EXPECT_EQ(n, kBytes / (kSize + 8));  // none wasted on early wrap while nothing is free
  for (std::uint64_t i = 0; i < n; ++i) {
    Status s;
    ASSERT_TRUE(matches_pattern(pop(r.ring, s), i));
    ASSERT_EQ(s, Status::kOk);
  }
}

TEST(SpscByteRingTest, TwoThreadsDeliverEveryMessageOnceInOrder) {
  // A small buffer and sizes up to its maximum: most pushes wrap or pad, and every empty
  // poll also asks verify_empty(), which must never mistake a record in flight for garbage.
  OwnedRing r(1024, 64);
  constexpr std::uint64_t kCount = 200'000;
  const std::uint64_t max = r.ring.max_payload();
  std::jthread producer([&] {
    for (std::uint64_t i = 0; i < kCount; ++i) {
      const auto msg = pattern((i * 37) % (max + 1), i);
      while (r.ring.try_push(msg) != Status::kOk) std::this_thread::yield();
    }
  });
  std::vector<std::byte> buf(max);
  for (std::uint64_t i = 0; i < kCount;) {
    std::size_t n = 0;
    const Status s = r.ring.try_pop(buf, n);
    if (s == Status::kEmpty) {
      SpscByteRing::Reader reader(r.ring);
      ASSERT_NE(reader.verify_empty(), Status::kCorrupted) << "message " << i;
      std::this_thread::yield();
      continue;
    }
    ASSERT_EQ(s, Status::kOk);
    ASSERT_EQ(n, (i * 37) % (max + 1));
    ASSERT_TRUE(matches_pattern(std::span(buf).first(n), i)) << i;
    ++i;
  }
  producer.join();
  Status s;
  pop(r.ring, s);
  EXPECT_EQ(s, Status::kEmpty);
}

}  // namespace
}  // namespace xchan::core
