// Workers: one OS thread per worker; the thread creates an own-GIL subinterpreter, runs the
// bootstrap in xchan._worker, and destroys the interpreter itself (CPython 3.12 requires
// the creating thread to do so). Only C++ data crosses between interpreters: the encoded
// call as std::string in, the formatted traceback as std::string out.
#include "worker.hpp"

#include <pthread.h>
#include <signal.h>

#include <new>

#include "arguments.hpp"
#include "codec.hpp"
#include "errors.hpp"
#include "waiting.hpp"
#include "worker_state.hpp"
#include "xchan/channel/channel.hpp"

namespace xchan::py {
namespace {

struct WorkerObject {
  PyObject_HEAD
  std::shared_ptr<WorkerState> state;
};

std::string utf8_of(PyObject* s) {
  Py_ssize_t n = 0;
  const char* p = s ? PyUnicode_AsUTF8AndSize(s, &n) : nullptr;
  if (p == nullptr) {
    PyErr_Clear();
    return "<unprintable>";
  }
  return std::string(p, static_cast<std::size_t>(n));
}

/// What a worker's call came to.
struct Outcome {
  bool started = false;  // the call was set up and ran
  bool failed = false;
  std::string error;      // traceback text
  std::string exception;  // the pickled exception, if it could be pickled
};

/// Reads xchan._worker's (text, pickled exception or None) failure tuple; clears errors.
Outcome failure_of(PyObject* failure) {
  Outcome out;
  out.failed = true;
  PyObject* text = PyTuple_Check(failure) && PyTuple_GET_SIZE(failure) == 2 ? PyTuple_GET_ITEM(failure, 0) : nullptr;
  PyObject* data = text ? PyTuple_GET_ITEM(failure, 1) : nullptr;
  out.error = utf8_of(text != nullptr && PyUnicode_Check(text) ? text : nullptr);
  if (data != nullptr && PyBytes_Check(data)) {
    out.exception.assign(PyBytes_AS_STRING(data), static_cast<std::size_t>(PyBytes_GET_SIZE(data)));
  }
  return out;
}

/// The pending exception as a failure that could not even be reported by xchan._worker.
Outcome bootstrap_failure() {
  PyObject* exc = PyErr_GetRaisedException();
  PyObject* text = exc ? PyObject_Str(exc) : nullptr;
  Outcome out;
  out.failed = true;
  out.error = "xchan worker could not start: " + utf8_of(text);
  Py_XDECREF(text);
  Py_XDECREF(exc);
  PyErr_Clear();
  return out;
}

void mark_started(WorkerState& ws) {
  const std::lock_guard<std::mutex> lock(ws.mutex);
  ws.started = true;
  ws.cv.notify_all();
}

// Runs inside the new interpreter (its GIL held): xchan._worker.prepare, then (the worker
// counts as started) xchan._worker.call.
Outcome run_in_interpreter(WorkerState& ws, const std::vector<std::string>& path, const std::string& header,
                           const std::string& blob) {
  PyObject* sys_path = PySys_GetObject("path");  // borrowed
  PyObject* new_path = PyList_New(0);
  for (std::size_t i = 0; new_path != nullptr && i < path.size(); ++i) {
    PyObject* s = PyUnicode_DecodeFSDefaultAndSize(path[i].data(), static_cast<Py_ssize_t>(path[i].size()));
    if (s == nullptr || PyList_Append(new_path, s) != 0) PyErr_Clear();
    Py_XDECREF(s);
  }
  if (sys_path != nullptr && new_path != nullptr &&
      PyList_SetSlice(sys_path, 0, PyList_GET_SIZE(sys_path), new_path) != 0) {
    PyErr_Clear();
  }
  Py_XDECREF(new_path);
  PyErr_Clear();
  PyObject* boot = PyImport_ImportModule("xchan._worker");
  PyObject* prepared = boot ? PyObject_CallMethod(boot, "prepare", "y#y#", header.data(),
                                                  static_cast<Py_ssize_t>(header.size()), blob.data(),
                                                  static_cast<Py_ssize_t>(blob.size()))
                            : nullptr;
  Outcome out;
  if (prepared == nullptr || !PyTuple_Check(prepared) || PyTuple_GET_SIZE(prepared) != 2) {
    out = bootstrap_failure();  // xchan not importable there, say
  } else if (PyTuple_GET_ITEM(prepared, 0) == Py_None) {
    out = failure_of(PyTuple_GET_ITEM(prepared, 1));
  } else {
    mark_started(ws);
    PyObject* result = PyObject_CallMethod(boot, "call", "O", PyTuple_GET_ITEM(prepared, 0));
    if (result == nullptr) out = bootstrap_failure();
    else if (result != Py_None) out = failure_of(result);
    Py_XDECREF(result);
    out.started = true;
  }
  Py_XDECREF(prepared);
  Py_XDECREF(boot);
  PyErr_Clear();
  return out;
}

void finish(WorkerState& ws, bool failed, std::string error) {
  const std::lock_guard<std::mutex> lock(ws.mutex);
  if (!ws.ran) {
    ws.ran = true;
    ws.start_failed = true;
    ws.failed = failed;
    ws.error = std::move(error);
  }
  ws.started = true;
  ws.done = true;
  ws.cv.notify_all();
}

void worker_main(std::shared_ptr<WorkerState> ws, std::vector<std::string> path, std::string header,
                 std::string blob) {
  // Signals go to the main thread, where Python handles them (Ctrl-C).
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);

  PyInterpreterConfig config{};
  config.use_main_obmalloc = 0;
  config.allow_fork = 0;
  config.allow_exec = 0;
  config.allow_threads = 1;
  config.allow_daemon_threads = 0;
  config.check_multi_interp_extensions = 1;
  config.gil = PyInterpreterConfig_OWN_GIL;
  PyThreadState* tstate = nullptr;
  const PyStatus status = Py_NewInterpreterFromConfig(&tstate, &config);
  if (PyStatus_Exception(status)) {
    finish(*ws, true, std::string("could not create an interpreter: ") + (status.err_msg ? status.err_msg : "?"));
    return;
  }
  {
    const std::lock_guard<std::mutex> lock(ws->interp_mutex);
    ws->interp = PyThreadState_GetInterpreter(tstate);
    ws->thread_ident = PyThread_get_thread_ident();
  }
  Outcome outcome = run_in_interpreter(*ws, path, header, blob);
  bool print_here = false;
  {
    const std::lock_guard<std::mutex> lock(ws->mutex);
    ws->ran = true;
    ws->start_failed = !outcome.started;
    ws->started = true;
    ws->cv.notify_all();
    ws->failed = outcome.failed;
    ws->error = std::move(outcome.error);
    ws->exception = std::move(outcome.exception);
    // Its Worker object is gone: nobody will join, so the failure is printed now, from
    // here (the parent prints it instead if the object goes after this point).
    print_here = ws->failed && ws->orphaned && !ws->reported;
    ws->reported = ws->reported || print_here;
  }
  if (print_here) print_failure(*ws, "never joined");
  // No stop request may reach the interpreter once it is being destroyed. The request
  // takes the worker's GIL while holding interp_mutex: release the GIL to take the mutex.
  PyThreadState* saved = PyEval_SaveThread();
  {
    const std::lock_guard<std::mutex> lock(ws->interp_mutex);
    ws->interp = nullptr;
  }
  PyEval_RestoreThread(saved);
  Py_EndInterpreter(tstate);
  finish(*ws, false, {});
}

bool started_here(const WorkerState& ws) noexcept {
  return ws.fork_generation == Channel::current_fork_generation();
}

/// Drops the list's entries nobody can join any more: finished workers whose Worker
/// object is gone (their failures were printed), and those of a parent process.
void prune(WorkerList& list) noexcept {
  std::erase_if(list, [](const std::shared_ptr<WorkerState>& ws) {
    if (!started_here(*ws)) {
      // The thread belongs to the parent: never join or destroy its handle here.
      (void)new (std::nothrow) std::thread(std::move(ws->thread));
      return true;
    }
    const std::lock_guard<std::mutex> lock(ws->mutex);
    if (!(ws->done && ws->orphaned)) return false;
    if (ws->thread.joinable()) ws->thread.join();  // its interpreter is gone: prompt
    return true;
  });
}

void forget(ModuleState* st, const WorkerState* ws) noexcept {
  WorkerList* list = workers_of(st);
  if (list == nullptr) return;
  std::erase_if(*list, [ws](const std::shared_ptr<WorkerState>& w) { return w.get() == ws; });
}

/// WorkerError(message) with `traceback_text` set (new reference), or nullptr.
PyObject* worker_error(ModuleState* st, const WorkerState& ws) {
  PyObject* msg = PyUnicode_FromFormat("worker %s failed:\n%s", ws.description.c_str(), ws.error.c_str());
  if (msg == nullptr) return nullptr;
  PyObject* exc = PyObject_CallOneArg(st->worker_error, msg);
  Py_DECREF(msg);
  if (exc == nullptr) return nullptr;
  PyObject* tb = PyUnicode_FromString(ws.error.c_str());
  if (tb == nullptr || PyObject_SetAttrString(exc, "traceback_text", tb) != 0) PyErr_Clear();
  Py_XDECREF(tb);
  return exc;
}

/// Raises a failed worker's exception as its own type if it can be rebuilt here (its
/// __cause__ a WorkerError carrying the worker's traceback, as concurrent.futures does),
/// else as WorkerError.
PyObject* raise_failure(ModuleState* st, const WorkerState& ws) {
  PyObject* cause = worker_error(st, ws);
  if (cause == nullptr) return nullptr;
  PyObject* original = nullptr;
  if (!ws.exception.empty() && load_pickle(st)) {
    PyObject* data = PyBytes_FromStringAndSize(ws.exception.data(), static_cast<Py_ssize_t>(ws.exception.size()));
    original = data ? PyObject_CallOneArg(st->pickle_loads, data) : nullptr;
    Py_XDECREF(data);
    if (original != nullptr && !PyExceptionInstance_Check(original)) Py_CLEAR(original);
    // Not rebuilt here (its class is not importable in this interpreter, say):
    // WorkerError, with the traceback, says everything.
    if (original == nullptr) PyErr_Clear();
  }
  if (original == nullptr) {
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(cause)), cause);
    Py_DECREF(cause);
    return nullptr;
  }
  PyException_SetCause(original, cause);  // steals `cause`
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(original)), original);
  Py_DECREF(original);
  return nullptr;
}

PyObject* w_join(PyObject* obj, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<WorkerObject*>(obj);
  ModuleState* st = state_of(Py_TYPE(obj));
  static const char* const names[] = {"timeout"};
  PyObject* a[1] = {Py_None};
  Deadline deadline = Deadline::never();
  if (!parse_args("join", args, nargs, kwnames, names, 1, 0, a) || !parse_timeout(a[0], deadline)) return nullptr;
  WorkerState& ws = *self->state;
  if (!started_here(ws)) {
    PyErr_SetString(PyExc_RuntimeError, "can only join a worker started by this process (this one was started "
                                        "before os.fork(), in the parent)");
    return nullptr;
  }
  const int r = wait_done(st, ws, deadline);
  if (r < 0) return nullptr;
  if (r == 0) Py_RETURN_NONE;  // like Thread.join: check is_alive()
  Py_BEGIN_ALLOW_THREADS
  join_thread(ws);
  Py_END_ALLOW_THREADS
  forget(st, &ws);
  bool raise = false;
  {
    const std::lock_guard<std::mutex> lock(ws.mutex);
    raise = ws.failed;
    ws.reported = true;
  }
  if (raise) return raise_failure(st, ws);
  Py_RETURN_NONE;
}

// _wait_started() -> bool: waits until the worker has set up its call (re-run the main
// script, decoded the arguments); False if that failed (join() raises why).
PyObject* w_wait_started(PyObject* obj, PyObject*) {
  WorkerState& ws = *reinterpret_cast<WorkerObject*>(obj)->state;
  if (wait_until_set(state_of(Py_TYPE(obj)), ws, &WorkerState::started, Deadline::never()) < 0) return nullptr;
  const std::lock_guard<std::mutex> lock(ws.mutex);
  return PyBool_FromLong(!ws.start_failed);
}

PyObject* w_is_alive(PyObject* obj, PyObject*) {
  auto* self = reinterpret_cast<WorkerObject*>(obj);
  if (!started_here(*self->state)) Py_RETURN_FALSE;  // it runs in the parent, not here
  const std::lock_guard<std::mutex> lock(self->state->mutex);
  return PyBool_FromLong(!self->state->done);
}

PyObject* w_daemon(PyObject* obj, void*) {
  return PyBool_FromLong(reinterpret_cast<WorkerObject*>(obj)->state->daemon);
}

PyObject* w_repr(PyObject* obj) {
  WorkerState& ws = *reinterpret_cast<WorkerObject*>(obj)->state;
  bool done = false;
  {
    const std::lock_guard<std::mutex> lock(ws.mutex);
    done = ws.done;
  }
  return PyUnicode_FromFormat("<xchan.Worker %s %s%s>", ws.description.c_str(), done ? "finished" : "running",
                              ws.daemon ? " daemon" : "");
}

void w_dealloc(PyObject* obj) {
  auto* self = reinterpret_cast<WorkerObject*>(obj);
  PyTypeObject* type = Py_TYPE(obj);
  bool print_now = false;
  {
    WorkerState& ws = *self->state;
    const std::lock_guard<std::mutex> lock(ws.mutex);
    ws.orphaned = true;
    // (A forked child leaves the parent's workers to the parent.)
    print_now = ws.ran && ws.failed && !ws.reported && started_here(ws);
    ws.reported = ws.reported || print_now;
  }
  // Nobody can join it now: a failure that nobody saw is printed (as threading does).
  if (print_now) print_failure(*self->state, "never joined");
  self->state.~shared_ptr();  // the interpreter's list still holds it until it is joined
  type->tp_free(obj);
  Py_DECREF(type);
}

PyMethodDef kWorkerMethods[] = {
    {"join", as_cfunction(w_join), METH_FASTCALL | METH_KEYWORDS,
     "join($self, /, timeout=None)\n--\n\nWait for the worker; re-raise its exception (its cause a WorkerError with the "
     "worker's traceback), or WorkerError if it cannot be rebuilt here."},
    {"is_alive", w_is_alive, METH_NOARGS, "is_alive($self, /)\n--\n\nTrue until the worker's interpreter is gone."},
    {"_wait_started", w_wait_started, METH_NOARGS, "Waits until the worker's call is set up; False if that failed."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef kWorkerGetSet[] = {
    {"daemon", w_daemon, nullptr, "True if the worker is stopped rather than waited for at exit.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyType_Slot kWorkerSlots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(w_dealloc)},
    {Py_tp_repr, reinterpret_cast<void*>(w_repr)},
    {Py_tp_methods, kWorkerMethods},
    {Py_tp_getset, kWorkerGetSet},
    {Py_tp_doc, const_cast<char*>("A function running in its own subinterpreter (see xchan.spawn).")},
    {0, nullptr},
};

PyType_Spec kWorkerSpec = {"xchan.Worker", sizeof(WorkerObject), 0,
                           Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
                           kWorkerSlots};

}  // namespace

int wait_until_set(ModuleState* st, WorkerState& ws, bool WorkerState::*flag, Deadline deadline) {
  const Status s = wait_without_gil(st, deadline, [&ws, flag](Deadline slice) {
    std::unique_lock<std::mutex> lock(ws.mutex);
    auto set = [&ws, flag] { return ws.*flag; };
    if (slice.is_never()) {
      ws.cv.wait(lock, set);
      return Status::kOk;
    }
    return ws.cv.wait_until(lock, slice.time_point(), set) ? Status::kOk : Status::kTimeout;
  });
  return s == Status::kOk ? 1 : s == Status::kTimeout ? 0 : -1;
}

int wait_done(ModuleState* st, WorkerState& ws, Deadline deadline) {
  return wait_until_set(st, ws, &WorkerState::done, deadline);
}

void join_thread(WorkerState& ws) noexcept {
  const std::lock_guard<std::mutex> lock(ws.join_mutex);
  if (ws.thread.joinable()) ws.thread.join();
}

void print_failure(const WorkerState& ws, const char* why) noexcept {
  PyObject* exc = PyErr_GetRaisedException();  // keep whatever is pending
  PyObject* text = PyUnicode_FromFormat("Exception in xchan worker %s (%s):\n%s", ws.description.c_str(), why,
                                        ws.error.c_str());
  PyObject* err = PySys_GetObject("stderr");  // borrowed
  if (text == nullptr || err == nullptr || err == Py_None || PyFile_WriteObject(text, err, Py_PRINT_RAW) != 0) {
    PyErr_Clear();
  }
  Py_XDECREF(text);
  PyErr_SetRaisedException(exc);
}

void request_stop(const std::shared_ptr<WorkerState>& ws, PyObject* exc) {
  try {
    std::thread([ws, exc] {
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, nullptr);
      const std::lock_guard<std::mutex> lock(ws->interp_mutex);
      if (ws->interp == nullptr) return;  // not started yet, or being destroyed
      PyThreadState* ts = PyThreadState_New(ws->interp);
      if (ts == nullptr) return;
      PyEval_RestoreThread(ts);  // the worker's GIL
      (void)PyThreadState_SetAsyncExc(ws->thread_ident, exc);
      PyThreadState_Clear(ts);
      PyThreadState_DeleteCurrent();
    }).detach();
  } catch (const std::system_error&) {
    // No thread for the request: the worker is then waited for or reported as stuck.
  }
}

int add_worker_type(PyObject* module, ModuleState* st) {
  st->worker_type = reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, &kWorkerSpec, nullptr));
  if (st->worker_type == nullptr || PyModule_AddType(module, st->worker_type) != 0) return -1;
  st->workers = new (std::nothrow) WorkerList();
  if (st->workers == nullptr) {
    PyErr_NoMemory();
    return -1;
  }
  return 0;
}

PyObject* spawn_interpreter(PyObject* module, PyObject* const* args, Py_ssize_t nargs) {
  ModuleState* st = state_of_module(module);
  if (nargs != 5 || !PyList_Check(args[0]) || !PyBytes_Check(args[1]) || !PyBytes_Check(args[2]) ||
      !PyUnicode_Check(args[3])) {
    PyErr_SetString(PyExc_TypeError, "_spawn(path: list[str], header: bytes, blob: bytes, description: str, daemon)");
    return nullptr;
  }
  const int daemon = PyObject_IsTrue(args[4]);
  if (daemon < 0) return nullptr;
  if (st->shutting_down) {
    PyErr_SetString(PyExc_RuntimeError, "cannot spawn a worker at interpreter shutdown");
    return nullptr;
  }
  return guarded(st, [&]() -> PyObject* {
    std::vector<std::string> path;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(args[0]); ++i) {
      PyObject* item = PyList_GET_ITEM(args[0], i);
      if (!PyUnicode_Check(item)) continue;
      PyObject* b = PyUnicode_EncodeFSDefault(item);
      if (b == nullptr) return nullptr;
      path.emplace_back(PyBytes_AS_STRING(b), static_cast<std::size_t>(PyBytes_GET_SIZE(b)));
      Py_DECREF(b);
    }
    std::string header(PyBytes_AS_STRING(args[1]), static_cast<std::size_t>(PyBytes_GET_SIZE(args[1])));
    std::string blob(PyBytes_AS_STRING(args[2]), static_cast<std::size_t>(PyBytes_GET_SIZE(args[2])));
    auto ws = std::make_shared<WorkerState>();
    ws->description = utf8_of(args[3]);
    ws->daemon = daemon != 0;
    ws->fork_generation = Channel::count_forks();
    WorkerList* list = workers_of(st);
    prune(*list);
    list->reserve(list->size() + 1);  // so that push_back below cannot throw
    auto* obj = reinterpret_cast<WorkerObject*>(st->worker_type->tp_alloc(st->worker_type, 0));
    if (obj == nullptr) return nullptr;
    new (&obj->state) std::shared_ptr<WorkerState>(ws);
    try {
      ws->thread = std::thread(worker_main, ws, std::move(path), std::move(header), std::move(blob));
    } catch (...) {
      {
        const std::lock_guard<std::mutex> lock(ws->mutex);
        ws->ran = ws->done = ws->reported = true;  // nothing to report or join
      }
      Py_DECREF(obj);
      throw;
    }
    list->push_back(ws);
    return reinterpret_cast<PyObject*>(obj);
  });
}

PyObject* count_workers(PyObject* module, PyObject*) {
  const WorkerList* list = workers_of(state_of_module(module));
  return PyLong_FromSize_t(list == nullptr ? 0 : list->size());
}

}  // namespace xchan::py
