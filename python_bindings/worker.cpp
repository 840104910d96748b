// Workers: one OS thread per worker; the thread creates an own-GIL subinterpreter, runs the
// bootstrap in xchan._worker, and destroys the interpreter itself (CPython 3.12 requires
// the creating thread to do so). Only C++ data crosses between interpreters: the pickled
// call as std::string in, the formatted traceback as std::string out.
#include "worker.hpp"

#include <pthread.h>
#include <signal.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "arguments.hpp"
#include "ends.hpp"
#include "errors.hpp"
#include "waiting.hpp"

namespace xchan::py {
namespace {

struct WorkerState {
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  bool failed = false;
  std::string error;  // the worker's formatted traceback, if it failed
  std::thread thread;
  std::mutex join_mutex;  // serializes joining the std::thread
};

using WorkerList = std::vector<std::shared_ptr<WorkerState>>;

struct WorkerObject {
  PyObject_HEAD
  std::shared_ptr<WorkerState> state;
};

void finish(WorkerState& ws, bool failed, std::string error) {
  const std::lock_guard<std::mutex> lock(ws.mutex);
  ws.failed = failed;
  ws.error = std::move(error);
  ws.done = true;
  ws.cv.notify_all();
}

std::string utf8_of(PyObject* s) {
  Py_ssize_t n = 0;
  const char* p = s ? PyUnicode_AsUTF8AndSize(s, &n) : nullptr;
  if (p == nullptr) {
    PyErr_Clear();
    return "<unprintable>";
  }
  return std::string(p, static_cast<std::size_t>(n));
}

// Runs inside the new interpreter (its GIL held). Returns "" on success, else the
// traceback text.
std::string run_in_interpreter(const std::vector<std::string>& path, const std::string& header,
                               const std::string& blob) {
  PyObject* sys_path = PySys_GetObject("path");  // borrowed
  PyObject* new_path = PyList_New(0);
  for (const std::string& p : path) {
    PyObject* s = PyUnicode_DecodeFSDefaultAndSize(p.data(), static_cast<Py_ssize_t>(p.size()));
    if (s == nullptr || PyList_Append(new_path, s) != 0) PyErr_Clear();
    Py_XDECREF(s);
  }
  if (sys_path != nullptr && new_path != nullptr) {
    PyList_SetSlice(sys_path, 0, PyList_GET_SIZE(sys_path), new_path);
  }
  Py_XDECREF(new_path);
  std::string error;
  PyObject* boot = PyImport_ImportModule("xchan._worker");
  PyObject* result = nullptr;
  if (boot != nullptr) {
    result = PyObject_CallMethod(boot, "run", "y#y#", header.data(), static_cast<Py_ssize_t>(header.size()),
                                 blob.data(), static_cast<Py_ssize_t>(blob.size()));
    Py_DECREF(boot);
  }
  if (result == nullptr) {
    // Bootstrapping itself failed (xchan not importable there, ...).
    PyObject* exc = PyErr_GetRaisedException();
    PyObject* text = exc ? PyObject_Str(exc) : nullptr;
    error = "xchan worker could not start: " + utf8_of(text);
    Py_XDECREF(text);
    Py_XDECREF(exc);
  } else if (result != Py_None) {
    error = utf8_of(result);  // run() returns the formatted traceback of fn's exception
  }
  Py_XDECREF(result);
  PyErr_Clear();
  return error;
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
  std::string error = run_in_interpreter(path, header, blob);
  Py_EndInterpreter(tstate);
  const bool failed = !error.empty();  // before the move below
  finish(*ws, failed, std::move(error));
}

WorkerList* workers_of(ModuleState* st) { return static_cast<WorkerList*>(st->workers); }

/// Waits until the worker finished or `deadline`; releases the GIL; wakes for signals in
/// the main interpreter. Returns 1 done, 0 timed out, -1 with a Python exception set.
int wait_done(ModuleState* st, WorkerState& ws, Deadline deadline) {
  const Status s = wait_without_gil(st, deadline, [&ws](Deadline slice) {
    std::unique_lock<std::mutex> lock(ws.mutex);
    auto done = [&ws] { return ws.done; };
    if (slice.is_never()) {
      ws.cv.wait(lock, done);
      return Status::kOk;
    }
    return ws.cv.wait_until(lock, slice.time_point(), done) ? Status::kOk : Status::kTimeout;
  });
  return s == Status::kOk ? 1 : s == Status::kTimeout ? 0 : -1;
}

void join_thread(WorkerState& ws) {
  const std::lock_guard<std::mutex> lock(ws.join_mutex);
  if (ws.thread.joinable()) ws.thread.join();
}

PyObject* w_join(PyObject* obj, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<WorkerObject*>(obj);
  ModuleState* st = state_of(Py_TYPE(obj));
  static const char* const names[] = {"timeout"};
  PyObject* a[1] = {Py_None};
  Deadline deadline = Deadline::never();
  if (!parse_args("join", args, nargs, kwnames, names, 1, 0, a) || !parse_timeout(a[0], deadline)) return nullptr;
  const int r = wait_done(st, *self->state, deadline);
  if (r < 0) return nullptr;
  if (r == 0) Py_RETURN_NONE;  // like Thread.join: check is_alive()
  Py_BEGIN_ALLOW_THREADS
  join_thread(*self->state);
  Py_END_ALLOW_THREADS
  if (self->state->failed) {
    PyObject* msg = PyUnicode_FromFormat("worker failed:\n%s", self->state->error.c_str());
    if (msg != nullptr) {
      PyObject* exc = PyObject_CallOneArg(st->worker_error, msg);
      if (exc != nullptr) {
        PyObject* tb = PyUnicode_FromString(self->state->error.c_str());
        if (tb == nullptr || PyObject_SetAttrString(exc, "traceback_text", tb) != 0) PyErr_Clear();
        Py_XDECREF(tb);
        PyErr_SetObject(st->worker_error, exc);
        Py_DECREF(exc);
      }
      Py_DECREF(msg);
    }
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* w_is_alive(PyObject* obj, PyObject*) {
  auto* self = reinterpret_cast<WorkerObject*>(obj);
  const std::lock_guard<std::mutex> lock(self->state->mutex);
  return PyBool_FromLong(!self->state->done);
}

void w_dealloc(PyObject* obj) {
  auto* self = reinterpret_cast<WorkerObject*>(obj);
  PyTypeObject* type = Py_TYPE(obj);
  self->state.~shared_ptr();  // the interpreter's list still holds it until joined
  type->tp_free(obj);
  Py_DECREF(type);
}

PyMethodDef kWorkerMethods[] = {
    {"join", as_cfunction(w_join), METH_FASTCALL | METH_KEYWORDS,
     "join(timeout=None): wait for the worker; re-raise its exception as WorkerError."},
    {"is_alive", w_is_alive, METH_NOARGS, "is_alive() -> bool"},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot kWorkerSlots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(w_dealloc)},
    {Py_tp_methods, kWorkerMethods},
    {Py_tp_doc, const_cast<char*>("A function running in its own subinterpreter (see xchan.spawn).")},
    {0, nullptr},
};

PyType_Spec kWorkerSpec = {"xchan.Worker", sizeof(WorkerObject), 0,
                           Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
                           kWorkerSlots};

}  // namespace

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
  if (nargs != 3 || !PyList_Check(args[0]) || !PyBytes_Check(args[1]) || !PyBytes_Check(args[2])) {
    PyErr_SetString(PyExc_TypeError, "_spawn(path: list[str], header: bytes, blob: bytes)");
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
    auto* obj = reinterpret_cast<WorkerObject*>(st->worker_type->tp_alloc(st->worker_type, 0));
    if (obj == nullptr) return nullptr;
    new (&obj->state) std::shared_ptr<WorkerState>(ws);
    workers_of(st)->push_back(ws);
    ws->thread = std::thread(worker_main, ws, std::move(path), std::move(header), std::move(blob));
    return reinterpret_cast<PyObject*>(obj);
  });
}

PyObject* join_all_workers(PyObject* module, PyObject*) {
  ModuleState* st = state_of_module(module);
  Py_BEGIN_ALLOW_THREADS
  join_all_workers_nogil(st);
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

void join_all_workers_nogil(ModuleState* st) noexcept {
  WorkerList* list = workers_of(st);
  if (list == nullptr) return;
  for (auto& ws : *list) join_thread(*ws);
  list->clear();
}

bool has_workers(ModuleState* st) noexcept {
  const WorkerList* list = workers_of(st);
  return list != nullptr && !list->empty();
}

void free_workers(ModuleState* st) noexcept {
  delete workers_of(st);
  st->workers = nullptr;
}

}  // namespace xchan::py
