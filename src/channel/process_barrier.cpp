// membarrier(2) with MEMBARRIER_CMD_PRIVATE_EXPEDITED: an IPI to each CPU currently running
// a thread of this process, which executes a full barrier there. Registration is needed
// once per process (Linux >= 4.14).
#include "xchan/channel/process_barrier.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace xchan::platform {
namespace {

long membarrier(int cmd) noexcept { return syscall(SYS_membarrier, cmd, 0U, 0); }

bool register_process() noexcept {
  const long supported = membarrier(MEMBARRIER_CMD_QUERY);
  if (supported < 0 || (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
  return membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

}  // namespace

bool process_barrier_available() noexcept {
  static const bool available = register_process();
  return available;
}

void heavy_barrier() noexcept {
  // Cannot fail once registered (EINVAL/EPERM only without registration).
  (void)membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
}

}  // namespace xchan::platform
