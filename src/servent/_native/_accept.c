/*
 * servent._native._accept: the usual blocks of a read taken into the picker and
 * their piece buffers in one call.
 *
 * Why in C: nearly every block a leecher receives is the same case, and the
 * per-block Python step (the picker's bookkeeping and the copy into the piece
 * buffer) was a large share of the loop thread.  This file is its own source
 * (no generated code); servent._native checks at import that the compiled
 * module was built from this very text.
 *
 * accept_run takes a read's blocks into the picker and their piece buffers
 * while each is the common case (servent.proto.swarm.block_run); it checks
 * everything before it changes anything, and leaves any other block to the
 * Python path, which stays the definition (a differential test holds them
 * together).  It writes only inside the piece buffer it was given, at
 * [begin, begin + length) checked against its size.  Split from _scan.c (the
 * frames' scan) so that each file stays a readable size.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#ifndef SERVENT_SOURCE_HASH
#define SERVENT_SOURCE_HASH ""
#endif

#define BLOCK_REQUESTED 1 /* servent.proto.piece_blocks: FREE, REQUESTED, RECEIVED */
#define BLOCK_RECEIVED 2

static PyObject *str_state, *str_requesters, *str_sources, *str_received;

/* The objects of the piece the run is in, looked up once per piece instead of once
 * per block: nothing but accept_run itself changes the picker while it runs, and it
 * replaces none of them (it changes `state`, `requesters` and `sources` in place).
 * `partial.received` is read once per piece too, counted here and written back
 * when the run leaves the piece (no Python code runs in between to read it). */
typedef struct {
    Py_ssize_t index;      /* the piece cached; -1: none */
    PyObject *partial;     /* strong: picker._partial[index] */
    PyObject *buffer;      /* strong: buffers[index] */
    PyObject *state;       /* strong: partial.state */
    PyObject *requesters;  /* strong: partial.requesters */
    PyObject *sources;     /* strong: partial.sources */
    Py_ssize_t received;   /* partial.received, counted here */
    int dirty;             /* `received` not yet written back */
} PieceCache;

/* Write `received` back to the partial: 0, or -1 error. */
static int
cache_flush(PieceCache *cache)
{
    if (!cache->dirty) {
        return 0;
    }
    cache->dirty = 0;
    PyObject *received = PyLong_FromSsize_t(cache->received);
    int failed = received == NULL || PyObject_SetAttr(cache->partial, str_received, received) < 0;
    Py_XDECREF(received);
    return failed ? -1 : 0;
}

/* Leave the piece: `received` written back (an error pending stays the one raised). */
static int
cache_clear(PieceCache *cache)
{
    int failed = 0;
    if (cache->dirty) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        failed = cache_flush(cache);
        if (type != NULL) {
            PyErr_Restore(type, value, traceback);
        }
    }
    cache->index = -1;
    Py_CLEAR(cache->partial);
    Py_CLEAR(cache->buffer);
    Py_CLEAR(cache->state);
    Py_CLEAR(cache->requesters);
    Py_CLEAR(cache->sources);
    return failed ? -1 : 0;
}

/* Piece `index` in the cache: 1 (its partial and buffer exist), 0 (not the common
 * case), -1 error. */
static int
cache_piece(PieceCache *cache, Py_ssize_t index, PyObject *index_obj, PyObject *partials,
            PyObject *buffers)
{
    if (cache->index == index) {
        return 1;
    }
    if (cache_clear(cache) < 0) {
        return -1;
    }
    PyObject *partial = PyDict_GetItemWithError(partials, index_obj);
    PyObject *buffer = partial == NULL ? NULL : PyDict_GetItemWithError(buffers, index_obj);
    if (buffer == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    cache->partial = Py_NewRef(partial);
    cache->buffer = Py_NewRef(buffer);
    if ((cache->state = PyObject_GetAttr(partial, str_state)) == NULL ||
        (cache->requesters = PyObject_GetAttr(partial, str_requesters)) == NULL ||
        (cache->sources = PyObject_GetAttr(partial, str_sources)) == NULL) {
        cache_clear(cache);
        return -1;
    }
    PyObject *received = PyObject_GetAttr(partial, str_received);
    if (received == NULL) {
        cache_clear(cache);
        return -1;
    }
    cache->received = PyLong_AsSsize_t(received);
    Py_DECREF(received);
    if (cache->received == -1 && PyErr_Occurred()) {
        cache_clear(cache);
        return -1;
    }
    cache->index = index;
    return 1;
}

/* What one block of the run needs, looked up and checked before anything changes. */
typedef struct {
    PyObject *partial;     /* borrowed (cache): picker._partial[index] */
    PyObject *block_obj;   /* new: the block number */
    PyObject *key;         /* new: index * blocks_per_piece + block, the peer's entry in _peer_blocks */
    PyObject *state;       /* borrowed (cache): partial.state (a bytearray) */
    PyObject *requesters;  /* borrowed (cache): partial.requesters */
    PyObject *sources;     /* borrowed (cache): partial.sources */
    Py_ssize_t block;
    Py_ssize_t received;   /* partial.received before this block */
    Py_buffer source;      /* the block's bytes */
    Py_buffer target;      /* the piece buffer, writable */
    int has_source, has_target;
} Plan;

static void
plan_clear(Plan *plan)
{
    Py_CLEAR(plan->block_obj);
    Py_CLEAR(plan->key);
    if (plan->has_source) {
        PyBuffer_Release(&plan->source);
        plan->has_source = 0;
    }
    if (plan->has_target) {
        PyBuffer_Release(&plan->target);
        plan->has_target = 0;
    }
}

/* The picker's answer for a block whose piece is in `partial` at `begin`, when it
 * is the common one (requested from this peer alone, not the piece's last block):
 * 1, and the plan filled; 0 for any other case; -1 error. */
static int
plan_picker(Plan *plan, PyObject *peer, Py_ssize_t begin, Py_ssize_t size,
            Py_ssize_t block_size, Py_ssize_t length)
{
    if (begin < 0 || begin % block_size != 0) {
        return 0;
    }
    plan->block = begin / block_size;
    if (!PyByteArray_CheckExact(plan->state) || plan->block >= PyByteArray_GET_SIZE(plan->state) ||
        PyByteArray_AS_STRING(plan->state)[plan->block] != BLOCK_REQUESTED) {
        return 0;
    }
    Py_ssize_t rest = size - begin;
    if (length != (rest > block_size ? block_size : rest)) {
        return 0;
    }
    if (plan->received + 1 >= PyByteArray_GET_SIZE(plan->state)) {
        return 0; /* it completes the piece: the Python path hands it to storage */
    }
    plan->block_obj = PyLong_FromSsize_t(plan->block);
    if (plan->block_obj == NULL) {
        return -1;
    }
    if (!PyDict_CheckExact(plan->requesters)) {
        return 0;
    }
    PyObject *asked = PyDict_GetItemWithError(plan->requesters, plan->block_obj);
    if (asked == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (asked != peer) {
        return 0; /* another peer, or a list of them (endgame): they hear a cancel */
    }
    return 1;
}

/* The bytes: a source of `length` bytes and a writable piece buffer that holds
 * [begin, begin + length).  1, 0 (another case), -1 error. */
static int
plan_copy(Plan *plan, PyObject *view, PyObject *buffer, Py_ssize_t begin)
{
    if (!PyByteArray_CheckExact(buffer)) {
        return 0;
    }
    if (PyObject_GetBuffer(view, &plan->source, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    plan->has_source = 1;
    if (PyObject_GetBuffer(buffer, &plan->target, PyBUF_WRITABLE) < 0) {
        return -1;
    }
    plan->has_target = 1;
    return begin <= plan->target.len && plan->source.len <= plan->target.len - begin;
}

/* Carry the plan out: the picker's bookkeeping for an accepted block and the copy. */
static int
plan_apply(Plan *plan, PyObject *peer, PyObject *peer_blocks, Py_ssize_t begin)
{
    if (PyObject_SetItem(plan->sources, plan->block_obj, peer) < 0 ||
        PyDict_DelItem(plan->requesters, plan->block_obj) < 0) {
        return -1;
    }
    memcpy((char *)plan->target.buf + begin, plan->source.buf, (size_t)plan->source.len);
    PyByteArray_AS_STRING(plan->state)[plan->block] = BLOCK_RECEIVED;
    PyObject *mine = PyDict_GetItemWithError(peer_blocks, peer);
    if (mine == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (PySet_Check(mine) && PySet_Discard(mine, plan->key) < 0) {
        return -1;
    }
    return 0;
}

/* One block of the run: 1 accepted here, 0 left to the Python path, -1 error. */
static int
accept_one(PyObject *entry, PyObject *peer, PyObject *partials, PyObject *sizes,
           Py_ssize_t block_size, PyObject *buffers, PyObject *peer_blocks,
           Py_ssize_t per_piece, PieceCache *cache, Py_ssize_t *length_out)
{
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 4) {
        return 0;
    }
    PyObject *index_obj = PyTuple_GET_ITEM(entry, 0), *begin_obj = PyTuple_GET_ITEM(entry, 1);
    Plan plan = {0};
    int verdict = 0;
    Py_ssize_t index = PyLong_Check(index_obj) ? PyLong_AsSsize_t(index_obj) : -1;
    Py_ssize_t begin = PyLong_Check(begin_obj) ? PyLong_AsSsize_t(begin_obj) : -1;
    if (PyErr_Occurred()) {
        PyErr_Clear(); /* too large for a position: not the common case */
        return 0;
    }
    if (index < 0 || index >= PyList_GET_SIZE(sizes) || begin < 0 ||
        index > (PY_SSIZE_T_MAX - per_piece) / per_piece) {
        return 0;
    }
    Py_ssize_t size = PyLong_AsSsize_t(PyList_GET_ITEM(sizes, index));
    if (size == -1 && PyErr_Occurred()) {
        return -1;
    }
    verdict = cache_piece(cache, index, index_obj, partials, buffers);
    if (verdict != 1) {
        return verdict;
    }
    plan.partial = cache->partial;
    plan.state = cache->state;
    plan.requesters = cache->requesters;
    plan.sources = cache->sources;
    plan.received = cache->received;
    verdict = plan_copy(&plan, PyTuple_GET_ITEM(entry, 2), cache->buffer, begin);
    if (verdict == 1) {
        verdict = plan_picker(&plan, peer, begin, size, block_size, plan.source.len);
    }
    if (verdict == 1) {
        plan.key = PyLong_FromSsize_t(index * per_piece + plan.block);
        verdict = plan.key == NULL ? -1 : plan_apply(&plan, peer, peer_blocks, begin);
        if (verdict == 0) {
            verdict = 1;
            *length_out = plan.source.len;
            cache->received++;
            cache->dirty = 1;
        }
    }
    plan_clear(&plan);
    return verdict;
}

PyDoc_STRVAR(accept_run_doc,
"accept_run(blocks, start, peer, partials, sizes, block_size, buffers, peer_blocks,\n"
"           blocks_per_piece)\n"
"--\n\n"
"Accept blocks[start:] while each is the common case, as the picker and core would.\n\n"
"The common case: its piece is in progress with a buffer, the block was requested\n"
"from `peer` alone, has its expected length and does not complete the piece.  For\n"
"each: the copy into its piece buffer and the picker's bookkeeping.  Returns\n"
"(index of the first block not taken, payload bytes, latest request time or None).");

static PyObject *
accept_run(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "accept_run takes 9 arguments");
        return NULL;
    }
    PyObject *blocks = args[0], *peer = args[2], *partials = args[3], *sizes = args[4];
    PyObject *buffers = args[6], *peer_blocks = args[7];
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    Py_ssize_t block_size = PyLong_AsSsize_t(args[5]);
    Py_ssize_t per_piece = PyLong_AsSsize_t(args[8]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (!PyList_CheckExact(blocks) || !PyDict_CheckExact(partials) || !PyList_CheckExact(sizes) ||
        !PyDict_CheckExact(buffers) || !PyDict_CheckExact(peer_blocks)) {
        PyErr_SetString(PyExc_TypeError, "blocks, sizes: list; partials, buffers, peer_blocks: dict");
        return NULL;
    }
    if (start < 0 || block_size <= 0 || per_piece <= 0) {
        PyErr_SetString(PyExc_ValueError, "start < 0, block_size <= 0 or blocks_per_piece <= 0");
        return NULL;
    }
    Py_ssize_t received = 0, position = start;
    PyObject *latest = Py_None;
    Py_INCREF(latest);
    PieceCache cache = {-1, NULL, NULL, NULL, NULL, NULL, 0, 0};
    for (; position < PyList_GET_SIZE(blocks); position++) {
        PyObject *entry = PyList_GET_ITEM(blocks, position);
        Py_INCREF(entry);
        Py_ssize_t length = 0;
        int taken = accept_one(entry, peer, partials, sizes, block_size, buffers, peer_blocks,
                               per_piece, &cache, &length);
        PyObject *sent_at = taken == 1 ? PyTuple_GET_ITEM(entry, 3) : NULL;
        int later = 0;
        if (sent_at != NULL && sent_at != Py_None) {
            later = latest == Py_None ? 1 : PyObject_RichCompareBool(sent_at, latest, Py_GT);
        }
        if (later == 1) {
            Py_INCREF(sent_at);
            Py_SETREF(latest, sent_at);
        }
        Py_DECREF(entry);
        if (taken < 0 || later < 0) {
            cache_clear(&cache);
            Py_DECREF(latest);
            return NULL;
        }
        if (taken == 0) {
            break;
        }
        received += length;
    }
    if (cache_clear(&cache) < 0) {
        Py_DECREF(latest);
        return NULL;
    }
    return Py_BuildValue("nnN", position, received, latest);
}

static PyMethodDef accept_methods[] = {
    {"accept_run", (PyCFunction)(void (*)(void))accept_run, METH_FASTCALL, accept_run_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef accept_module = {
    PyModuleDef_HEAD_INIT, "_accept", "The usual blocks of a read, taken in C.", -1,
    accept_methods,
};

PyMODINIT_FUNC
PyInit__accept(void)
{
    str_state = PyUnicode_InternFromString("state");
    str_requesters = PyUnicode_InternFromString("requesters");
    str_sources = PyUnicode_InternFromString("sources");
    str_received = PyUnicode_InternFromString("received");
    if (!str_state || !str_requesters || !str_sources || !str_received) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&accept_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddStringConstant(module, "SOURCE_HASH", SERVENT_SOURCE_HASH) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
