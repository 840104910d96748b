// The module functions that make channels and re-attach ends: channel(), max_message_for(),
// and the private ones pickled ends and queues use.
#pragma once

#include "module_state.hpp"

namespace xchan::py {

/// Bytes a bytes/str message needs beyond its payload (a tag and a u32 length): the
/// largest one a channel takes is its ring's largest payload minus this.
inline constexpr std::uint64_t kBytesMessageOverhead = 5;

/// channel(*, capacity=1024, max_bytes=64 MiB) -> (Sender, Receiver)
PyObject* f_channel(PyObject* module, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames);
/// max_message_for(max_bytes) -> int: the largest bytes/str such a channel takes.
PyObject* f_max_message(PyObject* module, PyObject* arg);
/// _attach(token, channel_id, is_sender): unpickles an end (see m_reduce in ends.cpp).
PyObject* f_attach(PyObject* module, PyObject* const* args, Py_ssize_t nargs);
/// _queue_channel(capacity, max_bytes): a channel whose ends may also be opened by its
/// id alone (_attach_queue): for xchan.Queue, every copy of which holds both ends.
PyObject* f_queue_channel(PyObject* module, PyObject* const* args, Py_ssize_t nargs);
/// _attach_queue(channel_id) -> (Sender, Receiver): new ends of a queue's channel.
PyObject* f_attach_queue(PyObject* module, PyObject* arg);

}  // namespace xchan::py
