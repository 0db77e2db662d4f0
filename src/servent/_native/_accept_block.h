/*
 * servent._native: a block accepted into the picker and its piece buffer, the
 * common case only (servent.proto.swarm.block_run); what accept_run and
 * accept_frames (_accept.c) share.
 *
 * It checks everything before it changes anything and writes only inside the
 * piece buffer it was given, at [begin, begin + length) checked against its
 * size.  Included by _accept.c alone; the build stamps the headers into the
 * module's SOURCE_HASH with the C file.  Static functions only.
 */
#ifndef SERVENT_ACCEPT_BLOCK_H
#define SERVENT_ACCEPT_BLOCK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

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
    const char *source;    /* the block's bytes (the caller holds their buffer) */
    Py_ssize_t length;
    Py_buffer target;      /* the piece buffer, writable */
    int has_target;
} Plan;

static void
plan_clear(Plan *plan)
{
    Py_CLEAR(plan->block_obj);
    Py_CLEAR(plan->key);
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

/* A writable piece buffer that holds [begin, begin + length): 1, 0 (another case),
 * -1 error.  The export keeps the bytearray from being resized until the copy. */
static int
plan_target(Plan *plan, PyObject *buffer, Py_ssize_t begin)
{
    if (!PyByteArray_CheckExact(buffer)) {
        return 0;
    }
    if (PyObject_GetBuffer(buffer, &plan->target, PyBUF_WRITABLE) < 0) {
        return -1;
    }
    plan->has_target = 1;
    return begin <= plan->target.len && plan->length <= plan->target.len - begin;
}

/* Carry the plan out: the picker's bookkeeping for an accepted block and the copy. */
static int
plan_apply(Plan *plan, PyObject *peer, PyObject *peer_blocks, Py_ssize_t begin)
{
    if (PyObject_SetItem(plan->sources, plan->block_obj, peer) < 0 ||
        PyDict_DelItem(plan->requesters, plan->block_obj) < 0) {
        return -1;
    }
    memcpy((char *)plan->target.buf + begin, plan->source, (size_t)plan->length);
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

/* What a run shares between its blocks: the peer, the picker's containers and the
 * cache of the piece it is in.  The objects are borrowed from the caller's arguments. */
typedef struct {
    PyObject *peer, *partials, *sizes, *buffers, *peer_blocks;
    Py_ssize_t block_size, per_piece;
    PieceCache cache;
} Run;

/* Parse the picker's arguments (args[0..6]: peer, partials, sizes, block_size,
 * buffers, peer_blocks, blocks_per_piece) into `run`: 0, or -1 with an error. */
static int
run_init(Run *run, PyObject *const *args)
{
    run->peer = args[0];
    run->partials = args[1];
    run->sizes = args[2];
    run->buffers = args[4];
    run->peer_blocks = args[5];
    run->block_size = PyLong_AsSsize_t(args[3]);
    run->per_piece = PyLong_AsSsize_t(args[6]);
    run->cache = (PieceCache){-1, NULL, NULL, NULL, NULL, NULL, 0, 0};
    if (PyErr_Occurred()) {
        return -1;
    }
    if (!PyDict_CheckExact(run->partials) || !PyList_CheckExact(run->sizes) ||
        !PyDict_CheckExact(run->buffers) || !PyDict_CheckExact(run->peer_blocks)) {
        PyErr_SetString(PyExc_TypeError, "sizes: list; partials, buffers, peer_blocks: dict");
        return -1;
    }
    if (run->block_size <= 0 || run->per_piece <= 0) {
        PyErr_SetString(PyExc_ValueError, "block_size <= 0 or blocks_per_piece <= 0");
        return -1;
    }
    return 0;
}

/* A block of `length` bytes at `source` for piece `index` at `begin`: 1 accepted
 * (copied and noted in the picker), 0 left to the Python path, -1 error. */
static int
accept_bytes(Run *run, Py_ssize_t index, PyObject *index_obj, Py_ssize_t begin,
             const char *source, Py_ssize_t length)
{
    Py_ssize_t per_piece = run->per_piece;
    if (index < 0 || index >= PyList_GET_SIZE(run->sizes) || begin < 0 ||
        index > (PY_SSIZE_T_MAX - per_piece) / per_piece) {
        return 0;
    }
    Py_ssize_t size = PyLong_AsSsize_t(PyList_GET_ITEM(run->sizes, index));
    if (size == -1 && PyErr_Occurred()) {
        return -1;
    }
    PieceCache *cache = &run->cache;
    int verdict = cache_piece(cache, index, index_obj, run->partials, run->buffers);
    if (verdict != 1) {
        return verdict;
    }
    Plan plan = {0};
    plan.partial = cache->partial;
    plan.state = cache->state;
    plan.requesters = cache->requesters;
    plan.sources = cache->sources;
    plan.received = cache->received;
    plan.source = source;
    plan.length = length;
    verdict = plan_target(&plan, cache->buffer, begin);
    if (verdict == 1) {
        verdict = plan_picker(&plan, run->peer, begin, size, run->block_size, length);
    }
    if (verdict == 1) {
        plan.key = PyLong_FromSsize_t(index * per_piece + plan.block);
        verdict = plan.key == NULL ? -1 : plan_apply(&plan, run->peer, run->peer_blocks, begin);
        if (verdict == 0) {
            verdict = 1;
            cache->received++;
            cache->dirty = 1;
        }
    }
    plan_clear(&plan);
    return verdict;
}

#endif
