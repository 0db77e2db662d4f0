/*
 * servent._native._scan: the leecher's run of piece frames, parsed in one call.
 *
 * Why in C: at hundreds of MiB/s the loop thread spends most of its time in
 * the interpreter, and the scan of a read's piece frames (header checks,
 * request ledger, one view per block) ran a dozen bytecodes per block.  This
 * file is its own source (no generated code); servent._native checks at
 * import that the compiled module was built from this very text.
 *
 * scan_piece_run does exactly what the pure-Python
 * servent.proto.peerwire.piece_run.scan_piece_run_py does (a differential test
 * holds them together).  It only reads the buffer it is given: every offset
 * is checked against the buffer's length before it is read.
 *
 * The blocks it finds go on to accept_run (_accept.c).
 */
#include "_frames.h"

#ifndef SERVENT_SOURCE_HASH
#define SERVENT_SOURCE_HASH ""
#endif

/* Append (index, begin, view[start:end], sent_at) to `blocks`; 0 or -1. */
static int
append_block(PyObject *blocks, PyObject *view, PyObject *index, PyObject *begin,
             Py_ssize_t start, Py_ssize_t end, PyObject *sent_at)
{
    PyObject *block = PySequence_GetSlice(view, start, end);
    if (block == NULL) {
        return -1;
    }
    PyObject *entry = PyTuple_Pack(4, index, begin, block, sent_at);
    Py_DECREF(block);
    if (entry == NULL) {
        return -1;
    }
    int failed = PyList_Append(blocks, entry);
    Py_DECREF(entry);
    return failed;
}

/* One frame at `at` (HEAD_SIZE bytes readable, `room` bytes left in the buffer):
 * 1 taken, 0 not a block of the run (the caller stops), -1 error. */
static int
take_frame(const unsigned char *at, Py_ssize_t pos, Py_ssize_t room, PyObject *view,
           unsigned long long max_length, unsigned long long last_index,
           PyObject *outstanding, PyObject *cancelled, PyObject *blocks,
           unsigned long long *received)
{
    if (!is_block_frame(at, room, max_length, last_index)) {
        return 0;
    }
    uint32_t length = read_u32(at);
    PyObject *index_obj, *begin_obj;
    PyObject *key = frame_key(at, &index_obj, &begin_obj);
    if (key == NULL) {
        return -1;
    }
    PyObject *sent_at = settle(outstanding, cancelled, key);
    int result = -1;
    if (sent_at == NULL) {
        result = PyErr_Occurred() ? -1 : 0;
    } else if (append_block(blocks, view, index_obj, begin_obj, pos + HEAD_SIZE,
                            pos + 4 + (Py_ssize_t)length, sent_at) == 0) {
        *received += length - BLOCK_OFFSET;
        result = 1;
    }
    Py_DECREF(index_obj);
    Py_DECREF(begin_obj);
    Py_DECREF(key);
    Py_XDECREF(sent_at);
    return result;
}

PyDoc_STRVAR(scan_piece_run_doc,
"scan_piece_run(view, pos, max_length, last_index, outstanding, cancelled, blocks)\n"
"--\n\n"
"Take the whole piece frames of `view` from `pos` while each answers a request.\n\n"
"Appends (index, begin, block view, sent_at) to `blocks` and settles each\n"
"request in `outstanding` (or `cancelled`); stops before the first frame that\n"
"is cut, not a piece, longer than `max_length`, for a piece index >=\n"
"`last_index`, or never asked for.  Returns (next position, payload bytes).");

static PyObject *
scan_piece_run(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "scan_piece_run takes 7 arguments");
        return NULL;
    }
    PyObject *blocks = args[6];
    if (!PyList_Check(blocks)) {
        PyErr_SetString(PyExc_TypeError, "blocks: list");
        return NULL;
    }
    FrameRun run;
    if (frame_run_init(&run, args) < 0) {
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)run.buffer.buf;
    Py_ssize_t size = run.buffer.len, pos = run.pos;
    unsigned long long received = 0;
    while (size - pos >= HEAD_SIZE) {
        int taken = take_frame(data + pos, pos, size - pos, run.view, run.max_length,
                               run.last_index, run.outstanding, run.cancelled, blocks, &received);
        if (taken < 0) {
            PyBuffer_Release(&run.buffer);
            return NULL;
        }
        if (taken == 0) {
            break;
        }
        pos += 4 + (Py_ssize_t)read_u32(data + pos);
    }
    PyBuffer_Release(&run.buffer);
    return Py_BuildValue("nK", pos, received);
}


static PyMethodDef scan_methods[] = {
    {"scan_piece_run", (PyCFunction)(void (*)(void))scan_piece_run, METH_FASTCALL,
     scan_piece_run_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef scan_module = {
    PyModuleDef_HEAD_INIT, "_scan", "The leecher's piece frames, parsed in C.", -1,
    scan_methods,
};

PyMODINIT_FUNC
PyInit__scan(void)
{
    PyObject *module = PyModule_Create(&scan_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddStringConstant(module, "SOURCE_HASH", SERVENT_SOURCE_HASH) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
