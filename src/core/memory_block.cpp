// mmap-backed MemoryBlock.
#include "xchan/core/memory_block.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <utility>

namespace xchan::core {

MemoryBlock::MemoryBlock(MemoryBlock&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MemoryBlock& MemoryBlock::operator=(MemoryBlock&& other) noexcept {
  if (this != &other) {
    MemoryBlock old(std::move(*this));
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MemoryBlock::~MemoryBlock() {
  if (data_ != nullptr) munmap(data_, size_);
}

Status MemoryBlock::map_anonymous(std::size_t size, std::size_t prefault, MemoryBlock& out) noexcept {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  if (size == 0 || size > (std::size_t{1} << 46)) return Status::kInvalidArgument;
  const std::size_t rounded = (size + page - 1) / page * page;
  void* p = mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Status::kNoMemory;
  MemoryBlock block;
  block.data_ = static_cast<std::byte*>(p);
  block.size_ = rounded;
  // Writing zeroes (the mapping is already zero) just faults the pages in now.
  std::memset(p, 0, prefault < rounded ? prefault : rounded);
  out = std::move(block);
  return Status::kOk;
}

}  // namespace xchan::core
