// ChannelRegistry: ids find live channels and never keep them alive.
#include "xchan/channel/registry.hpp"

#include <gtest/gtest.h>

#include "xchan/channel/channel.hpp"
#include "xchan/channel/ends.hpp"

namespace xchan {
namespace {

TEST(ChannelRegistryTest, FindsALiveChannelByItsId) {
  Status s;
  auto ch = Channel::create({}, s);
  ASSERT_TRUE(ch);
  EXPECT_NE(ch->id(), 0U);
  EXPECT_EQ(ChannelRegistry::instance().find(ch->id()), ch);
}

TEST(ChannelRegistryTest, ForgetsAChannelWhenItIsDestroyed) {
  Status s;
  auto ch = Channel::create({}, s);
  const std::uint64_t id = ch->id();
  const std::size_t before = ChannelRegistry::instance().size();
  ch.reset();
  EXPECT_EQ(ChannelRegistry::instance().find(id), nullptr);
  EXPECT_EQ(ChannelRegistry::instance().size(), before - 1);
}

TEST(ChannelRegistryTest, IdsAreNotReused) {
  Status s;
  auto a = Channel::create({}, s);
  const std::uint64_t first = a->id();
  a.reset();
  auto b = Channel::create({}, s);
  EXPECT_NE(b->id(), first);
  EXPECT_EQ(ChannelRegistry::instance().find(first), nullptr);
}

TEST(ChannelRegistryTest, ParkedEndCountsAsOpenUntilTakenBackOnce) {
  Sender tx;
  Receiver rx;
  ASSERT_EQ(make_channel({}, tx, rx), Status::kOk);
  const std::uint64_t id = tx.channel()->id();
  const ParkToken token = ChannelRegistry::instance().park(Sender(tx), 7);
  tx.close();  // the only other sender
  EXPECT_EQ(rx.channel()->senders(), 1U);  // the parked one keeps the channel open
  ChannelRegistry::End end;
  using Result = ChannelRegistry::TakeResult;
  ASSERT_EQ(ChannelRegistry::instance().take(token, true, id, end), Result::kTaken);
  EXPECT_EQ(ChannelRegistry::instance().take(token, true, id, end), Result::kUnknown);  // only once
  Sender back = std::move(std::get<Sender>(end));
  EXPECT_EQ(back.try_send(std::as_bytes(std::span("x", 1))), Status::kOk);
  back.close();
  std::vector<std::byte> out;
  EXPECT_EQ(rx.try_recv(out), Status::kOk);
  EXPECT_EQ(rx.try_recv(out), Status::kClosed);
}

TEST(ChannelRegistryTest, ATokenOpensOnlyTheKindAndChannelItWasIssuedFor) {
  Sender tx;
  Receiver rx;
  ASSERT_EQ(make_channel({}, tx, rx), Status::kOk);
  const std::uint64_t id = tx.channel()->id();
  auto& registry = ChannelRegistry::instance();
  const ParkToken token = registry.park(Sender(tx), 7);
  ChannelRegistry::End end;
  using Result = ChannelRegistry::TakeResult;
  EXPECT_EQ(registry.take(token, false, id, end), Result::kMismatch);      // as a Receiver
  EXPECT_EQ(registry.take(token, true, id + 1, end), Result::kMismatch);   // of another channel
  EXPECT_EQ(registry.take({token.hi, token.lo ^ 1}, true, id, end), Result::kUnknown);  // edited
  EXPECT_EQ(registry.take(token, true, id, end), Result::kTaken);          // still there
}

TEST(ChannelRegistryTest, TokensAreRandomAndDistinct) {
  Sender tx;
  Receiver rx;
  ASSERT_EQ(make_channel({}, tx, rx), Status::kOk);
  auto& registry = ChannelRegistry::instance();
  std::vector<ParkToken> tokens;
  int high_bits_set = 0;
  for (int i = 0; i < 64; ++i) {
    tokens.push_back(registry.park(Sender(tx), 9));
    high_bits_set += static_cast<int>(tokens.back().hi >> 63) + static_cast<int>(tokens.back().lo >> 63);
  }
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    for (std::size_t j = i + 1; j < tokens.size(); ++j) EXPECT_FALSE(tokens[i] == tokens[j]);
  }
  EXPECT_GT(high_bits_set, 16);  // 128 random bits: about half of these 128 top bits are set
  EXPECT_LT(high_bits_set, 112);
  EXPECT_EQ(registry.drop_parked_by(9), 64U);
}

TEST(ChannelRegistryTest, DroppingAnOwnersParkedEndsClosesThem) {
  Sender tx;
  Receiver rx;
  ASSERT_EQ(make_channel({}, tx, rx), Status::kOk);
  const std::uint64_t id = tx.channel()->id();
  auto& registry = ChannelRegistry::instance();
  const std::size_t before = registry.parked();
  const ParkToken mine = registry.park(Sender(tx), 11);
  const ParkToken other = registry.park(Receiver(rx), 12);
  tx.close();
  EXPECT_EQ(rx.channel()->senders(), 1U);
  EXPECT_EQ(registry.drop_parked_by(11), 1U);
  EXPECT_EQ(rx.channel()->senders(), 0U);  // the receiver now sees the channel closed
  std::vector<std::byte> out;
  EXPECT_EQ(rx.try_recv(out), Status::kClosed);
  ChannelRegistry::End end;
  EXPECT_EQ(registry.take(mine, true, id, end), ChannelRegistry::TakeResult::kUnknown);
  EXPECT_EQ(registry.take(other, false, id, end), ChannelRegistry::TakeResult::kTaken);  // not 11's
  EXPECT_EQ(registry.parked(), before);
}

TEST(ChannelRegistryTest, DroppingOneTokenClosesOnlyThatEndAndSpendsTheToken) {
  Sender tx;
  Receiver rx;
  ASSERT_EQ(make_channel({}, tx, rx), Status::kOk);
  const std::uint64_t id = tx.channel()->id();
  auto& registry = ChannelRegistry::instance();
  const std::size_t before = registry.parked();
  const ParkToken dropped = registry.park(Sender(tx), 13);
  const ParkToken kept = registry.park(Sender(tx), 13);
  tx.close();
  EXPECT_EQ(rx.channel()->senders(), 2U);
  EXPECT_TRUE(registry.drop(dropped));
  EXPECT_EQ(rx.channel()->senders(), 1U);
  EXPECT_FALSE(registry.drop(dropped));  // spent: a second drop finds nothing
  ChannelRegistry::End end;
  EXPECT_EQ(registry.take(dropped, true, id, end), ChannelRegistry::TakeResult::kUnknown);
  EXPECT_EQ(registry.take(kept, true, id, end), ChannelRegistry::TakeResult::kTaken);
  EXPECT_EQ(registry.parked(), before);
}

TEST(ChannelRegistryTest, OnlyAdmittedChannelsAttachById) {
  Status s;
  auto plain = Channel::create({}, s);
  auto queue = Channel::create({}, s);
  ChannelRegistry::instance().allow_attach_by_id(queue->id());
  EXPECT_EQ(ChannelRegistry::instance().find_attachable(plain->id()), nullptr);
  EXPECT_EQ(ChannelRegistry::instance().find_attachable(queue->id()), queue);
  const std::uint64_t id = queue->id();
  queue.reset();
  EXPECT_EQ(ChannelRegistry::instance().find_attachable(id), nullptr);
}

TEST(ChannelRegistryTest, DrainThatRefusesLeavesTheMessageQueued) {
  Sender tx;
  Receiver rx;
  ASSERT_EQ(make_channel({}, tx, rx), Status::kOk);
  ASSERT_EQ(tx.try_send(std::as_bytes(std::span("abc", 3))), Status::kOk);
  EXPECT_EQ(rx.try_recv_with([](std::span<const std::byte>) { return false; }), Status::kNoMemory);
  std::vector<std::byte> out;
  EXPECT_EQ(rx.try_recv(out), Status::kOk);
  EXPECT_EQ(out.size(), 3U);
}

}  // namespace
}  // namespace xchan
