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

TEST(ChannelRegistryTest, ParkedEndCountsAsOpenUntilTakenBack) {
  Sender tx;
  Receiver rx;
  ASSERT_EQ(make_channel({}, tx, rx), Status::kOk);
  const std::uint64_t token = ChannelRegistry::instance().park(Sender(tx));
  tx.close();  // the only other sender
  EXPECT_EQ(rx.channel()->senders(), 1U);  // the parked one keeps the channel open
  ChannelRegistry::End end;
  ASSERT_TRUE(ChannelRegistry::instance().take(token, end));
  EXPECT_FALSE(ChannelRegistry::instance().take(token, end));  // only once
  Sender back = std::move(std::get<Sender>(end));
  EXPECT_EQ(back.try_send(std::as_bytes(std::span("x", 1))), Status::kOk);
  back.close();
  std::vector<std::byte> out;
  EXPECT_EQ(rx.try_recv(out), Status::kOk);
  EXPECT_EQ(rx.try_recv(out), Status::kClosed);
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
