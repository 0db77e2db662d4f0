/*
 * servent._native: what _scan.c and _accept.c share about the leecher's piece
 * frames: reading their heads and settling their requests in the ledger.
 *
 * Included by both (each compiles on its own); the build stamps every header of
 * this folder into each module's SOURCE_HASH with its C file, so an edited
 * header makes both stale.  Static functions only.
 */
#ifndef SERVENT_FRAMES_H
#define SERVENT_FRAMES_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define PIECE_ID 7
#define HEAD_SIZE 13 /* length (4), id (1), index (4), begin (4) */
#define BLOCK_OFFSET 9 /* id, index, begin: the piece payload follows */

static uint32_t
read_u32(const unsigned char *at)
{
    return ((uint32_t)at[0] << 24) | ((uint32_t)at[1] << 16) | ((uint32_t)at[2] << 8) |
           (uint32_t)at[3];
}

/* Whether the frame at `at` (HEAD_SIZE bytes readable, `room` bytes left) is a whole
 * piece frame of a legal length for a piece below `last_index`. */
static int
is_block_frame(const unsigned char *at, Py_ssize_t room, unsigned long long max_length,
               unsigned long long last_index)
{
    uint32_t length = read_u32(at);
    return at[4] == PIECE_ID && length >= BLOCK_OFFSET && length <= max_length &&
           (Py_ssize_t)length <= room - 4 && read_u32(at + 5) < last_index;
}

/* `dict.pop(key, None)`: one lookup (a get and a delete hash and compare the
 * tuple key twice).  A new reference, NULL with an error on failure. */
static PyObject *
pop_or_none(PyObject *dict, PyObject *key)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *value;
    if (PyDict_Pop(dict, key, &value) < 0) {
        return NULL;
    }
    return value != NULL ? value : Py_NewRef(Py_None);
#else
    return _PyDict_Pop(dict, key, Py_None);
#endif
}

/* Settle the request `key` as `outstanding.pop(key, None)`, else from `cancelled`
 * (Py_None).  Returns a new reference, NULL without an error when we never asked,
 * NULL with an error on failure. */
static PyObject *
settle(PyObject *outstanding, PyObject *cancelled, PyObject *key)
{
    PyObject *sent_at = pop_or_none(outstanding, key);
    if (sent_at != Py_None) {
        return sent_at; /* the send time, or NULL with an error */
    }
    Py_DECREF(sent_at);
    int known = PyDict_Contains(cancelled, key);
    if (known <= 0) {
        return NULL; /* -1 leaves its error set; 0 is "never asked" */
    }
    if (PyDict_DelItem(cancelled, key) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* The request key of the block frame at `at`: (index, begin, payload length), with
 * its index and begin as new references in `index_obj` and `begin_obj`.  NULL with an
 * error on failure (then neither is set). */
static PyObject *
frame_key(const unsigned char *at, PyObject **index_obj, PyObject **begin_obj)
{
    PyObject *index = PyLong_FromUnsignedLong(read_u32(at + 5));
    PyObject *begin = PyLong_FromUnsignedLong(read_u32(at + 9));
    PyObject *length = PyLong_FromUnsignedLong(read_u32(at) - BLOCK_OFFSET);
    PyObject *key = NULL;
    if (index != NULL && begin != NULL && length != NULL) {
        key = PyTuple_Pack(3, index, begin, length);
    }
    Py_XDECREF(length);
    if (key == NULL) {
        Py_XDECREF(index);
        Py_XDECREF(begin);
        return NULL;
    }
    *index_obj = index;
    *begin_obj = begin;
    return key;
}

/* The arguments both scans begin with, (view, pos, max_length, last_index,
 * outstanding, cancelled), checked, with the view's bytes held. */
typedef struct {
    PyObject *view, *outstanding, *cancelled;
    Py_ssize_t pos;
    unsigned long long max_length, last_index;
    Py_buffer buffer; /* the view's bytes: PyBuffer_Release it when done */
} FrameRun;

/* Parse args[0..5] into `run` and hold the view's buffer: 0, or -1 with an error
 * (then nothing is held). */
static int
frame_run_init(FrameRun *run, PyObject *const *args)
{
    run->view = args[0];
    run->pos = PyLong_AsSsize_t(args[1]);
    run->max_length = PyLong_AsUnsignedLongLong(args[2]);
    run->last_index = PyLong_AsUnsignedLongLong(args[3]);
    run->outstanding = args[4];
    run->cancelled = args[5];
    if (PyErr_Occurred()) {
        return -1;
    }
    if (!PyDict_Check(run->outstanding) || !PyDict_Check(run->cancelled)) {
        PyErr_SetString(PyExc_TypeError, "outstanding, cancelled: dict");
        return -1;
    }
    if (PyObject_GetBuffer(run->view, &run->buffer, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (run->pos < 0 || run->pos > run->buffer.len) {
        PyBuffer_Release(&run->buffer);
        PyErr_SetString(PyExc_ValueError, "position outside the buffer");
        return -1;
    }
    return 0;
}

#endif
