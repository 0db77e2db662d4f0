/*
 * servent._native._accept: the usual blocks of a read taken into the picker and
 * their piece buffers in one call.
 *
 * Why in C: nearly every block a leecher receives is the same case, and the
 * per-block Python step (the picker's bookkeeping and the copy into the piece
 * buffer) was a large share of the loop thread.  This file and the headers
 * it includes are its own source (no generated code); servent._native checks
 * at import that the compiled module was built from this very text.
 *
 * accept_run takes a read's blocks into the picker and their piece buffers
 * while each is the common case (servent.proto.swarm.block_run); it checks
 * everything before it changes anything, and leaves any other block to the
 * Python path, which stays the definition (a differential test holds them
 * together); the accepting of one block is in _accept_block.h.  Split from
 * _scan.c (the frames' scan) so that each file stays a readable size.
 *
 * accept_frames does both halves for the leecher's lane: the frames' scan and
 * settling of _scan.c (_frames.h) and the accepting of accept_run, straight
 * from the read buffer, with no view or tuple per block; the first block that
 * is not the common case is settled and handed back for the Python path.
 */
#include "_accept_block.h"
#include "_frames.h"

#ifndef SERVENT_SOURCE_HASH
#define SERVENT_SOURCE_HASH ""
#endif

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
    Run run;
    FrameRun frames;
    if (run_init(&run, args + 6) < 0 || frame_run_init(&frames, args) < 0) {
        return NULL;
    }
    PyObject *view = frames.view, *outstanding = frames.outstanding, *cancelled = frames.cancelled;
    unsigned long long max_length = frames.max_length, last_index = frames.last_index;
    const unsigned char *data = (const unsigned char *)frames.buffer.buf;
    Py_ssize_t size = frames.buffer.len, pos = frames.pos, received = 0;
    PyObject *latest = Py_NewRef(Py_None), *leftover = NULL;
    int failed = 0;
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
    PyBuffer_Release(&frames.buffer);
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
