// mmap-backed MemoryBlock: anonymous private mappings and memfd segments.
#include "xchan/core/memory_block.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <utility>

namespace xchan::core {

namespace {

constexpr std::size_t kMaxBytes = std::size_t{1} << 46;

std::size_t page_rounded(std::size_t size) noexcept {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return (size + page - 1) / page * page;
}

}  // namespace

MemoryBlock::MemoryBlock(MemoryBlock&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      fd_(std::exchange(other.fd_, -1)) {}

MemoryBlock& MemoryBlock::operator=(MemoryBlock&& other) noexcept {
  if (this != &other) {
    MemoryBlock old(std::move(*this));
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

MemoryBlock::~MemoryBlock() {
  if (data_ != nullptr) munmap(data_, size_);
  if (fd_ >= 0) close(fd_);
}

Status MemoryBlock::map_anonymous(std::size_t size, std::size_t prefault, MemoryBlock& out) noexcept {
  if (size == 0 || size > kMaxBytes) return Status::kInvalidArgument;
  const std::size_t rounded = page_rounded(size);
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

Status MemoryBlock::map_new_shared(std::size_t size, std::size_t prefault, MemoryBlock& out) noexcept {
  if (size == 0 || size > kMaxBytes) return Status::kInvalidArgument;
  const std::size_t rounded = page_rounded(size);
  MemoryBlock block;
  block.fd_ = memfd_create("xchan-channel", MFD_CLOEXEC);
  if (block.fd_ < 0) return Status::kNoMemory;
  // 0600 whatever the umask: only this user's processes that are handed the descriptor.
  // posix_fallocate reserves the pages now, so that a full tmpfs fails here rather than
  // with SIGBUS at some later first touch.
  if (fchmod(block.fd_, S_IRUSR | S_IWUSR) != 0 || ftruncate(block.fd_, static_cast<off_t>(rounded)) != 0 ||
      posix_fallocate(block.fd_, 0, static_cast<off_t>(rounded)) != 0) {
    return Status::kNoMemory;
  }
  void* p = mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_SHARED, block.fd_, 0);
  if (p == MAP_FAILED) return Status::kNoMemory;
  block.data_ = static_cast<std::byte*>(p);
  block.size_ = rounded;
  std::memset(p, 0, prefault < rounded ? prefault : rounded);
  out = std::move(block);
  return Status::kOk;
}

Status MemoryBlock::map_existing_shared(int fd, MemoryBlock& out) noexcept {
  struct stat st {};
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
      static_cast<std::uint64_t>(st.st_size) > kMaxBytes ||
      static_cast<std::size_t>(st.st_size) != page_rounded(static_cast<std::size_t>(st.st_size))) {
    return Status::kInvalidArgument;
  }
  MemoryBlock block;
  block.fd_ = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (block.fd_ < 0) return Status::kNoMemory;
  const auto size = static_cast<std::size_t>(st.st_size);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, block.fd_, 0);
  if (p == MAP_FAILED) return Status::kNoMemory;
  block.data_ = static_cast<std::byte*>(p);
  block.size_ = size;
  out = std::move(block);
  return Status::kOk;
}

}  // namespace xchan::core
