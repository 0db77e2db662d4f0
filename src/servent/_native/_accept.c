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
 *
 * accept_frames does both halves for the leecher's lane: the frames' scan and
 * settling of _scan.c (_frames.h) and the accepting of accept_run, straight
 * from the read buffer, with no view or tuple per block; the first block that
 * is not the common case is settled and handed back for the Python path.
 */
#include "_frames.h"

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

/* One (index, begin, block, sent_at) entry of a run: 1 accepted here, 0 left to the
 * Python path, -1 error; `length_out` is the block's length when accepted. */
static int
accept_entry(Run *run, PyObject *entry, Py_ssize_t *length_out)
{
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 4) {
        return 0;
    }
    PyObject *index_obj = PyTuple_GET_ITEM(entry, 0), *begin_obj = PyTuple_GET_ITEM(entry, 1);
    Py_ssize_t index = PyLong_Check(index_obj) ? PyLong_AsSsize_t(index_obj) : -1;
    Py_ssize_t begin = PyLong_Check(begin_obj) ? PyLong_AsSsize_t(begin_obj) : -1;
    if (PyErr_Occurred()) {
        PyErr_Clear(); /* too large for a position: not the common case */
        return 0;
    }
    Py_buffer source;
    if (PyObject_GetBuffer(PyTuple_GET_ITEM(entry, 2), &source, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    int verdict = accept_bytes(run, index, index_obj, begin, source.buf, source.len);
    *length_out = source.len;
    PyBuffer_Release(&source);
    return verdict;
}

/* `latest` = max(latest, sent_at) for a request time or None: 0, or -1 error. */
static int
note_latest(PyObject **latest, PyObject *sent_at)
{
    if (sent_at == Py_None) {
        return 0;
    }
    int later = *latest == Py_None ? 1 : PyObject_RichCompareBool(sent_at, *latest, Py_GT);
    if (later == 1) {
        Py_INCREF(sent_at);
        Py_SETREF(*latest, sent_at);
    }
    return later < 0 ? -1 : 0;
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
    PyObject *blocks = args[0];
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    Run run;
    if ((start == -1 && PyErr_Occurred()) || run_init(&run, args + 2) < 0) {
        return NULL;
    }
    if (!PyList_CheckExact(blocks) || start < 0) {
        PyErr_SetString(PyExc_TypeError, "blocks: a list, start >= 0");
        return NULL;
    }
    Py_ssize_t received = 0, position = start;
    PyObject *latest = Py_NewRef(Py_None);
    for (; position < PyList_GET_SIZE(blocks); position++) {
        PyObject *entry = Py_NewRef(PyList_GET_ITEM(blocks, position));
        Py_ssize_t length = 0;
        int taken = accept_entry(&run, entry, &length);
        int failed = taken < 0 || (taken == 1 && note_latest(&latest, PyTuple_GET_ITEM(entry, 3)) < 0);
        Py_DECREF(entry);
        if (failed) {
            cache_clear(&run.cache);
            Py_DECREF(latest);
            return NULL;
        }
        if (taken == 0) {
            break;
        }
        received += length;
    }
    if (cache_clear(&run.cache) < 0) {
        Py_DECREF(latest);
        return NULL;
    }
    return Py_BuildValue("nnN", position, received, latest);
}

/* The frame at `at` (a whole block frame, settled as `sent_at`): accept it, or make
 * it the leftover (index, begin, view[start:end], sent_at).  1 accepted, 0 leftover
 * made, -1 error. */
static int
take_or_leave(Run *run, const unsigned char *at, Py_ssize_t pos, PyObject *view,
              PyObject *index_obj, PyObject *begin_obj, PyObject *sent_at, PyObject **leftover)
{
    Py_ssize_t length = (Py_ssize_t)read_u32(at) - BLOCK_OFFSET;
    int taken = accept_bytes(run, (Py_ssize_t)read_u32(at + 5), index_obj,
                             (Py_ssize_t)read_u32(at + 9), (const char *)at + HEAD_SIZE, length);
    if (taken != 0) {
        return taken;
    }
    PyObject *block = PySequence_GetSlice(view, pos + HEAD_SIZE, pos + HEAD_SIZE + length);
    if (block == NULL) {
        return -1;
    }
    *leftover = PyTuple_Pack(4, index_obj, begin_obj, block, sent_at);
    Py_DECREF(block);
    return *leftover == NULL ? -1 : 0;
}

PyDoc_STRVAR(accept_frames_doc,
"accept_frames(view, pos, max_length, last_index, outstanding, cancelled, peer,\n"
"              partials, sizes, block_size, buffers, peer_blocks, blocks_per_piece)\n"
"--\n\n"
"scan_piece_run and accept_run in one pass, straight from the read buffer.\n\n"
"Takes the whole piece frames of `view` from `pos` while each answers a request\n"
"(settled in `outstanding` or `cancelled`, as scan_piece_run) and accepts each that\n"
"is the common case (as accept_run).  Stops after the first block settled but not\n"
"the common case, handed back as the leftover (index, begin, block view, sent_at)\n"
"for the Python path, or before the first frame that is not a block of ours.\n"
"Returns (next position, payload bytes accepted, latest request time of those or\n"
"None, leftover or None).");

static PyObject *
accept_frames(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 13) {
        PyErr_SetString(PyExc_TypeError, "accept_frames takes 13 arguments");
        return NULL;
    }
    PyObject *view = args[0], *outstanding = args[4], *cancelled = args[5];
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    unsigned long long max_length = PyLong_AsUnsignedLongLong(args[2]);
    unsigned long long last_index = PyLong_AsUnsignedLongLong(args[3]);
    Run run;
    if (PyErr_Occurred() || run_init(&run, args + 6) < 0) {
        return NULL;
    }
    if (!PyDict_Check(outstanding) || !PyDict_Check(cancelled)) {
        PyErr_SetString(PyExc_TypeError, "outstanding, cancelled: dict");
        return NULL;
    }
    Py_buffer buffer;
    if (PyObject_GetBuffer(view, &buffer, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)buffer.buf;
    Py_ssize_t size = buffer.len, received = 0;
    PyObject *latest = Py_NewRef(Py_None), *leftover = NULL;
    int failed = pos < 0 || pos > size;
    if (failed) {
        PyErr_SetString(PyExc_ValueError, "position outside the buffer");
    }
    while (!failed && leftover == NULL && size - pos >= HEAD_SIZE &&
           is_block_frame(data + pos, size - pos, max_length, last_index)) {
        PyObject *index_obj, *begin_obj;
        PyObject *key = frame_key(data + pos, &index_obj, &begin_obj);
        if (key == NULL) {
            failed = 1;
            break;
        }
        PyObject *sent_at = settle(outstanding, cancelled, key);
        Py_DECREF(key);
        int taken = -1;
        if (sent_at != NULL) {
            taken = take_or_leave(&run, data + pos, pos, view, index_obj, begin_obj, sent_at,
                                  &leftover);
        }
        Py_DECREF(index_obj);
        Py_DECREF(begin_obj);
        if (sent_at == NULL && !PyErr_Occurred()) {
            break; /* never asked for: not ours, the regular path fails the connection */
        }
        if (taken < 0 || (taken == 1 && note_latest(&latest, sent_at) < 0)) {
            failed = 1;
        } else {
            if (taken == 1) {
                received += (Py_ssize_t)read_u32(data + pos) - BLOCK_OFFSET;
            }
            pos += 4 + (Py_ssize_t)read_u32(data + pos);
        }
        Py_XDECREF(sent_at);
    }
    failed = cache_clear(&run.cache) < 0 || failed;
    PyBuffer_Release(&buffer);
    if (failed) {
        Py_DECREF(latest);
        Py_XDECREF(leftover);
        return NULL;
    }
    return Py_BuildValue("nnNN", pos, received, latest, leftover != NULL ? leftover : Py_NewRef(Py_None));
}

static PyMethodDef accept_methods[] = {
    {"accept_run", (PyCFunction)(void (*)(void))accept_run, METH_FASTCALL, accept_run_doc},
    {"accept_frames", (PyCFunction)(void (*)(void))accept_frames, METH_FASTCALL,
     accept_frames_doc},
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
